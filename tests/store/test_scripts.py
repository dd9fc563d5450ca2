"""Running the Lua scripts (datafy/store/scripts.py): one user's failing script never stalls the others."""

from __future__ import annotations

import time

import pytest
import redis

from datafy.store import Store
from tests.support.messages import msg


def test_one_users_failing_script_does_not_stall_the_others(store: Store, redis_client: redis.Redis) -> None:
    store.buffer.append(msg("poison", "oi", ttl_ms=1))
    store.buffer.append(msg("fine", "oi", ttl_ms=1))
    redis_client.delete(store.keys.user("poison").buffer)
    redis_client.set(store.keys.user("poison").buffer, "not a list")  # flush fails with WRONGTYPE
    time.sleep(0.01)
    assert [batch.user for batch in store.buffer.flush_due(100)] == ["fine"]
    store.buffer.append(msg("stuck", "oi", flush_reason="request"))
    redis_client.delete(store.keys.user("stuck").outbox)
    redis_client.set(store.keys.user("stuck").outbox, "not a list")  # claim fails with WRONGTYPE
    assert [claim.user for claim in store.outbox.claim(10, 10)] == ["fine"]


def test_scripts_a_restarted_server_lost_are_loaded_again(store: Store, redis_client: redis.Redis) -> None:
    store.buffer.append(msg("u", "oi"))
    redis_client.script_flush()
    assert store.buffer.append(msg("u", "tudo bem?")).buffered == 2


def test_a_dropped_connection_or_a_failing_script_leaves_the_next_call_working(
    store: Store, redis_client: redis.Redis
) -> None:
    store.buffer.append(msg("u", "oi"))
    redis_client.client_kill_filter(_id=store.connection.client.client_id())  # the store's one pooled connection
    assert store.buffer.append(msg("u", "tudo bem?")).buffered == 2
    redis_client.set(store.keys.user("poison").meta, "not a hash")  # append fails with WRONGTYPE
    with pytest.raises(Exception, match="WRONGTYPE"):
        store.buffer.append(msg("poison", "oi"))
    assert store.buffer.append(msg("u", "e aí?")).buffered == 3


def test_a_pipelined_round_loads_lost_scripts_and_keeps_each_reply_in_its_place(
    store: Store, redis_client: redis.Redis
) -> None:
    for user in ("a", "b", "c"):
        store.buffer.append(msg(user, "oi", ttl_ms=1))
    redis_client.delete(store.keys.user("b").buffer)
    redis_client.set(store.keys.user("b").buffer, "not a list")  # b's flush fails with WRONGTYPE
    redis_client.script_flush()
    time.sleep(0.01)
    assert sorted(batch.user for batch in store.buffer.flush_due(100)) == ["a", "c"]


def test_one_call_reads_the_due_batches_of_every_partition(store: Store) -> None:
    users = [f"user-{i}" for i in range(64)]  # every partition has some
    for user in users:
        store.buffer.append(msg(user, "oi", ttl_ms=1))
    time.sleep(0.01)
    indexes = [(part.due, 0) for part in store.keys.all_partitions()]
    assert len(indexes) == store.keys.partitions and len(store.connection.scripts.due_calls(indexes, 100)) == 1
    assert sorted(batch.user for batch in store.buffer.flush_due(100)) == sorted(users)
