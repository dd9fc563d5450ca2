"""Running the Lua scripts (datafy/store/scripts.py): one user's failing script never stalls the others."""

from __future__ import annotations

import time

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
