"""The whole system on a real local Redis Cluster: real gunicorn, real monitors, a real receiver."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from redis.cluster import RedisCluster
from redis.crc import key_slot

from datafy.keys import KeySpace
from devtools.cluster import LocalCluster
from devtools.oracle import Ledger, all_acked_delivered, assert_all_delivered, delivered_messages
from devtools.processes import PROJECT_ROOT, process_env, running, start_api, start_monitor, system, wait_log
from devtools.receiver import Receiver, Reply
from devtools.redis_server import wait_until
from tests.support.env import TEST_ENV
from tests.support.load import Load
from tests.support.recovery import WITHIN_SECONDS, measure_recovery


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(primaries=3) as local:
        yield local


@pytest.fixture
def replicated_cluster() -> Iterator[LocalCluster]:
    with LocalCluster(primaries=3, replicas_per_primary=1) as local:
        yield local


def cluster_env(cluster: LocalCluster, receiver: Receiver, **extra: str) -> dict[str, str]:
    return {**TEST_ENV, "REDIS_URL": cluster.url, "WEBHOOK_URL": receiver.url, **extra}


def cluster_client(cluster: LocalCluster) -> RedisCluster:
    return RedisCluster.from_url(cluster.url, decode_responses=True)


def test_burst_on_three_primaries_with_two_monitors(cluster: LocalCluster, receiver: Receiver, tmp_path: Path) -> None:
    users, per_user = 200, 10
    env = cluster_env(cluster, receiver)
    # One chat in ten fails its first attempt: retries (and their catch-up) run on the Cluster too.
    receiver.behaviour = lambda batch, nth: Reply(status=503) if nth == 1 and batch["user"].endswith("0") else Reply()
    api = start_api(env, tmp_path)
    monitors = [start_monitor(env, tmp_path, name=f"monitor-{i}") for i in range(2)]
    with running(*monitors, api):
        assert "redis mode=cluster" in monitors[0].log()
        session = requests.Session()
        with ThreadPoolExecutor(16) as pool:  # message i of every user before message i+1 of any
            for i in range(per_user):
                bodies = [{"user": f"5511{u:05d}", "message": f"msg {i}", "ttl": 5} for u in range(users)]
                replies = list(pool.map(lambda b: session.post(f"{api.extra['url']}/api/message", json=b), bodies))
                assert all(r.status_code == 200 for r in replies)
        typing = session.post(f"{api.extra['url']}/api/typing", json={"user": "551100001", "ttl": 3}).json()
        assert typing["pending"] is True  # the typing script runs on the chat's primary
        holding = [node.client().dbsize() for node in cluster.primaries()]
        assert all(count > 0 for count in holding), holding  # the partitions spread over every primary
        assert receiver.wait_for(lambda r: len(r.delivered) >= users, timeout=30)
        time.sleep(1)
        served = [proc.log().count("delivered user=") for proc in monitors]
    assert len(receiver.delivered) == users and all(count > 0 for count in served), served
    assert len(receiver.received) == users + users // 10  # each failed first attempt was retried once
    for batch in receiver.delivered:
        assert batch["messages"] == [f"msg {i}" for i in range(per_user)]
    assert_all_delivered(Ledger(), receiver, cluster_client(cluster))


@pytest.mark.parametrize("wait_replicas", [1, 0], ids=["wait-1-replica", "no-wait"])
def test_primary_killed_under_load_fails_over(
    replicated_cluster: LocalCluster, receiver: Receiver, tmp_path: Path, wait_replicas: int
) -> None:
    cluster = replicated_cluster
    env = cluster_env(cluster, receiver, REDIS_WAIT_REPLICAS=str(wait_replicas))
    with system(env, tmp_path) as (api, monitor):
        with Load(api.extra["url"], [f"chat{u}" for u in range(60)]) as load:
            time.sleep(2)
            victim = cluster.primaries()[0]
            cluster.kill(victim)
            cluster.wait_for_failover(victim)
            failed_over = load.ledger.statuses[200]
            time.sleep(3)
        assert load.ledger.statuses[200] > failed_over  # the API recovered by itself
        assert set(load.ledger.statuses) <= {200, 503}, load.ledger.statuses  # never a 500
        assert load.ledger.statuses[503] > 0  # the window was seen
        client = cluster_client(cluster)
        if wait_replicas:
            assert receiver.wait_for(all_acked_delivered(load.ledger), timeout=30), monitor.log()[-3000:]
            assert_all_delivered(load.ledger, receiver, client)
        else:  # replication is asynchronous: what the dead primary had not yet passed on may be lost
            receiver.wait_for(all_acked_delivered(load.ledger), timeout=15)
            delivered = delivered_messages(receiver)
            lost = sum(1 for user, sent in load.ledger.acked.items() for m in sent if m not in delivered.get(user, []))
            print(f"\nfailover without REDIS_WAIT_REPLICAS: {lost} of {load.ledger.acked_count} acknowledged lost")
        # The monitor delivers what is sent after the failover.
        session = requests.Session()
        assert load.ledger.send(session, api.extra["url"], "after-failover", "oi", ttl=0.2) == 200
        assert receiver.wait_for(lambda r: any(b["user"] == "after-failover" for b in r.delivered), timeout=15)


def test_a_busy_partition_resharded_live(cluster: LocalCluster, receiver: Receiver, tmp_path: Path) -> None:
    keys = KeySpace("datafy")
    busy = [f"busy{u}" for u in range(400) if keys.partition_of(f"busy{u}") == 3][:20]
    slot = key_slot(keys.partition(3).due.encode())
    with system(cluster_env(cluster, receiver), tmp_path) as (api, _monitor):
        with Load(api.extra["url"], busy, threads=4, ttl=0.3) as load:
            time.sleep(1)
            source = cluster.primary_for_slot(slot)
            target = next(node for node in cluster.primaries() if node is not source)
            moved = cluster.migrate_slot(slot, target, batch=3, pause=0.05)
            time.sleep(1.5)
        assert moved > 0 and cluster.primary_for_slot(slot) is target
        assert set(load.ledger.statuses) <= {200, 503}, load.ledger.statuses
        assert load.ledger.acked_count > 50
        assert receiver.wait_for(all_acked_delivered(load.ledger), timeout=30)
        assert_all_delivered(load.ledger, receiver, cluster_client(cluster))


def test_a_database_other_than_0_on_a_cluster_stops_start_up_with_one_line(cluster: LocalCluster) -> None:
    env = {**TEST_ENV, "REDIS_URL": cluster.url + "/2"}
    done = subprocess.run([sys.executable, "monitor.py"], cwd=PROJECT_ROOT, env=process_env(env), capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("configuration error: REDIS_DB=2: a Redis Cluster has only")


def test_a_dead_primary_without_replicas_gives_503_not_500(
    cluster: LocalCluster, receiver: Receiver, tmp_path: Path
) -> None:
    with system(cluster_env(cluster, receiver), tmp_path) as (api, _monitor):
        cluster.kill(cluster.primaries()[1])
        session = requests.Session()
        statuses = {session.post(f"{api.extra['url']}/api/message", json={"user": f"u{i}", "message": "oi"}).status_code
                    for i in range(30)}  # fmt: skip
        assert statuses <= {200, 503} and 503 in statuses, statuses
        assert session.get(f"{api.extra['url']}/health").status_code == 503


def test_monitor_killed_and_subscribers_killed_on_a_cluster(
    cluster: LocalCluster, receiver: Receiver, tmp_path: Path
) -> None:
    env = cluster_env(cluster, receiver)
    ledger = Ledger()
    api = start_api(env, tmp_path)
    with running(api):
        monitor = start_monitor(env, tmp_path)
        session = requests.Session()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda u: ledger.send(session, api.extra["url"], f"k{u}", "oi", ttl=1), range(500)))
        assert receiver.wait_for(lambda r: len(r.delivered) >= 30, timeout=15)
        monitor.kill()  # its processes die with it
        restarted = start_monitor(env, tmp_path, name="monitor-2")
        with running(restarted):
            assert receiver.wait_for(all_acked_delivered(ledger), timeout=30)
            for round_ in range(3):  # keyspace events are per primary: kill every primary's subscribers
                for node in cluster.primaries():
                    node.client().client_kill_filter(_type="pubsub")
                list(pool_send(ledger, api.extra["url"], [f"r{round_}-{u}" for u in range(20)]))
                time.sleep(0.5)
            assert receiver.wait_for(all_acked_delivered(ledger), timeout=20)
            wait_log(restarted, "subscribed to")
            # The killed monitor's leased batches are delivered again once their lease ran out: keep running.
            assert_all_delivered(ledger, receiver, cluster_client(cluster))


def pool_send(ledger: Ledger, api_url: str, users: list[str]) -> list[int]:
    session = requests.Session()
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda user: ledger.send(session, api_url, user, "oi", ttl=0.3), users))


def test_admin_listings_page_across_primaries(cluster: LocalCluster, receiver: Receiver, tmp_path: Path) -> None:
    receiver.behaviour = lambda batch, nth: Reply(status=410) if batch["user"].startswith("dead") else Reply()
    with system(cluster_env(cluster, receiver), tmp_path) as (api, _monitor):
        url, session = api.extra["url"], requests.Session()
        session.headers["Authorization"] = f"Bearer {TEST_ENV['ADMIN_API_KEY']}"
        for i in range(30):  # deadlines 1 ms apart, spread over every primary
            assert session.post(f"{url}/api/message", json={"user": f"wait{i}", "message": "oi", "ttl": 60 + i / 1000})
        pages = [session.get(f"{url}/api/chats", params={"offset": o, "limit": 7}).json() for o in range(0, 35, 7)]
        assert {page["total"] for page in pages} == {30}
        assert [c["user"] for page in pages for c in page["chats"]] == [f"wait{i}" for i in range(30)]
        for i in range(12):
            session.post(f"{url}/api/message", json={"user": f"dead{i}", "message": "oi", "ttl": 0.1})
        wait_until(lambda: session.get(f"{url}/api/dead-letters").json()["total"] == 12, 20, "12 dead letters")
        pages = [session.get(f"{url}/api/dead-letters", params={"offset": o, "limit": 5}).json() for o in (0, 5, 10)]
        letters = [letter for page in pages for letter in page["dead_letters"]]
        assert sorted(letter["user"] for letter in letters) == sorted(f"dead{i}" for i in range(12))
        receiver.behaviour = lambda batch, nth: Reply()
        replayed, deleted = letters[0]["batch_id"], letters[1]["batch_id"]
        assert session.post(f"{url}/api/dead-letters/{replayed}/replay").status_code == 200
        assert session.delete(f"{url}/api/dead-letters/{deleted}").status_code == 200
        assert receiver.wait_for(lambda r: any(b["batch_id"] == replayed for b in r.delivered), timeout=15)
        assert session.get(f"{url}/api/dead-letters").json()["total"] == 10

        # The status and the metrics read every primary (and the {stats} and {monitors} slots) of the Cluster
        wait_until(lambda: session.get(f"{url}/api/status").json()["deliveries"]["last_minute"]["delivered"] == 1,
                   10, "the replayed delivery counted")  # fmt: skip
        status = session.get(f"{url}/api/status").json()
        assert status["chats"]["pending"] == 30 and status["dead_letters"] == 10 and status["monitors"]["alive"] >= 1
        assert "datafy_pending_chats 30.0" in session.get(f"{url}/metrics").text


def test_one_waiting_chat_is_delivered_soon_after_the_receiver_returns(
    cluster: LocalCluster, receiver: Receiver, tmp_path: Path
) -> None:
    """As tests/e2e/test_recovery.py, on a Cluster: the probe's batch may live on any primary."""
    took = measure_recovery(cluster_env(cluster, receiver), receiver, tmp_path, containers=2, processes=2, rounds=2)
    assert all(seconds <= WITHIN_SECONDS for seconds in took), took


def test_routes_on_a_cluster(cluster: LocalCluster, receiver: Receiver, tmp_path: Path) -> None:
    """The route table lives on one slot ({routes}); each route's chats spread over the primaries as before, its
    batches reach its own path, and a route whose receiver is down delays no other."""
    admin = {"X-API-Key": TEST_ENV["ADMIN_API_KEY"]}
    receiver.behaviour = lambda batch, nth: Reply(status=503) if batch.get("route") == "down" else Reply()
    env = cluster_env(cluster, receiver, API_KEY="cluster-env-key", INGEST_AUTH="on")
    with system(env, tmp_path) as (api, _monitor):
        url = api.extra["url"]
        for name in ("loja", "down"):
            doc = {"name": name, "webhook_url": f"{receiver.url}/{name}", "api_keys": [f"{name}-key-on-the-cluster"]}
            assert requests.post(f"{url}/api/routes", json=doc, headers=admin, timeout=5).status_code == 201
        session = requests.Session()
        for name in ("down", "loja"):
            for u in range(30):
                reply = session.post(f"{url}/api/message", json={"user": f"5511{u:03d}", "message": name, "ttl": 0.3},
                                     headers={"X-API-Key": f"{name}-key-on-the-cluster"})  # fmt: skip
                assert reply.status_code == 200
        assert receiver.wait_for(lambda r: sum(b.get("route") == "loja" for b in r.delivered) == 30, timeout=20)
        routes = session.get(f"{url}/api/routes", headers=admin).json()["routes"]
    assert [route["name"] for route in routes] == ["default", "down", "loja"]
    assert all(r.path == "/webhook/loja" for r in receiver.received if r.body.get("route") == "loja")
    assert {b["messages"][0] for b in receiver.delivered} == {"loja"}
    keys = KeySpace("datafy").routes()
    assert len({key_slot(key.encode()) for key in (keys.rows, keys.keys, keys.match, keys.version)}) == 1
