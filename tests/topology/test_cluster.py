"""LocalCluster: a real cluster forms, fails a killed primary over, and reshards a slot while a client writes to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

from devtools.cluster import LocalCluster

PASSWORD = "cluster-secret"  # a password on every node also exercises MIGRATE ... AUTH and masterauth


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Three primaries without replicas, shared by the tests that do not kill nodes."""
    with LocalCluster(primaries=3, password=PASSWORD) as started:
        yield started


@pytest.fixture
def cluster_client(cluster: LocalCluster) -> Iterator[RedisCluster]:
    """redis-py's cluster client, as the app will use it."""
    client = RedisCluster.from_url(cluster.url, decode_responses=True)
    yield client
    client.close()


def keys_on_each_primary(cluster: LocalCluster, client: RedisCluster, prefix: str) -> dict[int, str]:
    """One key name per primary (by port), found by hashing candidate names."""
    found: dict[int, str] = {}
    for i in range(1000):
        key = f"{prefix}:{i}"
        found.setdefault(cluster.primary_for_slot(client.keyslot(key)).port, key)
        if len(found) == len(cluster.primaries()):
            return found
    raise AssertionError("no key hashes to some primary")


def test_three_primaries_share_all_slots_and_each_serves_keys(
    cluster: LocalCluster, cluster_client: RedisCluster
) -> None:
    primaries = cluster.primaries()
    assert len(primaries) == 3 and all(p.role == "primary" for p in primaries)
    assert cluster.primary_for_slot(0) is primaries[0] and cluster.primary_for_slot(16383) is primaries[-1]
    for port, key in keys_on_each_primary(cluster, cluster_client, "serve").items():
        assert cluster_client.set(key, f"on {port}")
        assert cluster_client.get(key) == f"on {port}"
        node = next(p for p in primaries if p.port == port)
        assert node.client().get(key) == f"on {port}".encode()  # it really lives on that primary


def test_migrate_slot_moves_every_key_while_a_client_keeps_writing(
    cluster: LocalCluster, cluster_client: RedisCluster
) -> None:
    slot = cluster_client.keyslot("{moving}")
    source = cluster.primary_for_slot(slot)
    target = next(p for p in cluster.primaries() if p is not source)
    for i in range(200):
        cluster_client.set(f"{{moving}}:old:{i}", i)

    written: list[int] = []
    errors: list[Exception] = []
    stop, writing = threading.Event(), threading.Event()

    def write() -> None:
        """New keys and updates of old ones: the client must follow ASK/MOVED to wherever each key is now."""
        client = RedisCluster.from_url(cluster.url, decode_responses=True)
        try:
            while not stop.is_set():
                n = len(written)
                client.set(f"{{moving}}:new:{n}", n)
                client.incr(f"{{moving}}:old:{n % 200}", 1000)
                written.append(n)
                writing.set()
        except redis.RedisError as error:
            errors.append(error)
        finally:
            client.close()

    writes_at_batch: list[int] = []
    asked_to_target: list[int] = []  # keys on the target that MIGRATE did not bring: written there after an ASK

    def record(moved: int) -> None:
        writes_at_batch.append(len(written))
        asked_to_target.append(target.client().execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) - moved)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert writing.wait(10)
        # A short pause after each batch gives the writer time to hit keys on both sides of the move.
        moved = cluster.migrate_slot(slot, target, batch=20, on_batch=record, pause=0.01)
    finally:
        stop.set()
        writer.join(10)

    assert errors == []
    assert moved >= 200 and len(writes_at_batch) >= 10
    assert writes_at_batch[-1] > writes_at_batch[0]  # the writer wrote while the slot was half-moved
    assert max(asked_to_target) > 0  # ... and some of its new keys went straight to the target
    assert cluster.primary_for_slot(slot) is target
    assert source.client().execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    assert target.client().execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 200 + len(written)
    increments = [sum(1 for n in written if n % 200 == i) for i in range(200)]
    assert [int(cluster_client.get(f"{{moving}}:old:{i}")) for i in range(200)] == [
        i + 1000 * increments[i] for i in range(200)
    ]
    assert all(cluster_client.get(f"{{moving}}:new:{n}") == str(n) for n in written)


def test_killed_primary_is_replaced_by_its_replica_and_comes_back_as_a_replica() -> None:
    with LocalCluster(primaries=3, replicas_per_primary=1) as cluster:
        client = RedisCluster.from_url(cluster.url, decode_responses=True)
        try:
            victim = cluster.primaries()[1]
            replica = cluster.replicas_of(victim)[0]
            key = next(
                f"victim:{i}" for i in range(1000) if cluster.primary_for_slot(client.keyslot(f"victim:{i}")) is victim
            )
            client.set(key, "before")
            assert victim.client().wait(1, 2000) == 1  # the replica has it before the crash

            cluster.kill(victim)
            promoted = cluster.wait_for_failover(victim, timeout=20)

            assert promoted is replica and promoted.role == "primary"
            assert cluster.primary_for_slot(client.keyslot(key)) is promoted
            assert victim not in cluster.primaries()
            assert client.get(key) == "before"
            assert client.set(key, "after") and promoted.client().get(key) == b"after"

            cluster.restart(victim)
            assert victim.role == "replica" and cluster.replicas_of(promoted) == [victim]
            assert cluster.primary_for_slot(client.keyslot(key)) is promoted
        finally:
            client.close()
