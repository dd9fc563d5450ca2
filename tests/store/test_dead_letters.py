"""Dead letters (datafy/store/dead_letters.py): listed, replayed, deleted, and capped overall (real Redis)."""

from __future__ import annotations

import time
from dataclasses import replace

import redis

from datafy.config import Settings
from datafy.payload import webhook_body
from datafy.store import Store
from devtools.oracle import leftover_keys
from tests.support.messages import msg


def test_dead_letters_replay_and_delete(store: Store, redis_client: redis.Redis) -> None:
    store.buffer.append(msg("u1", "oi", flush_reason="request"))
    store.buffer.append(msg("u1", "next", flush_reason="request"))
    [claim] = store.outbox.claim(10, 10)
    assert store.outbox.bury(claim, 410, "HTTP 410", "not_retryable") == (True, 0)
    total, [letter] = store.dead_letters.page(0, 10)
    assert total == 1 and letter.batch_id == claim.batch_id
    assert letter.info["attempts"] == 1 and letter.info["last_status"] == 410 and letter.info["user"] == "u1"
    [following] = store.outbox.claim(10, 10)  # one bad batch does not block the user's next one
    assert webhook_body(following.body)["messages"] == ["next"]
    store.outbox.ack(following)
    assert store.dead_letters.replay(claim.batch_id)
    [replayed] = store.outbox.claim(10, 10)
    assert replayed.batch_id == claim.batch_id and replayed.attempt == 1
    store.outbox.ack(replayed)
    assert store.dead_letters.page(0, 10) == (0, [])
    assert not store.dead_letters.replay(claim.batch_id) and not store.dead_letters.delete(claim.batch_id)
    assert leftover_keys(redis_client) == []


def test_dead_letters_are_capped_overall_oldest_first(settings: Settings) -> None:
    store = Store(replace(settings, dead_letter_max=3))
    users = ["same-user"] * 3 + ["other-a", "other-b"]  # one partition must not be trimmed on its own
    for i, user in enumerate(users):
        store.buffer.append(msg(user, f"m{i}", flush_reason="request"))
    buried = []
    for _ in users:
        [claim] = store.outbox.claim(1, 10)
        buried.append((claim.batch_id, store.outbox.bury(claim, 400, "HTTP 400", "not_retryable")))
        time.sleep(0.002)  # distinct dead_at, so "oldest" is well defined
    assert sum(trimmed for _, (_, trimmed) in buried) == 2
    total, letters = store.dead_letters.page(0, 10)
    assert total == 3 and {letter.batch_id for letter in letters} == {bid for bid, _ in buried[2:]}


def test_only_one_monitor_trims_dead_letters_at_a_time(settings: Settings, redis_client: redis.Redis) -> None:
    store = Store(replace(settings, dead_letter_max=1))
    for user in ("a", "b"):
        store.buffer.append(msg(user, "oi", flush_reason="request"))
    redis_client.set(store.keys.dead_trim_lock(), "1")  # another monitor is trimming
    for claim in store.outbox.claim(10, 10):
        # it leaves the excess to the next bury
        assert store.outbox.bury(claim, 410, "HTTP 410", "not_retryable") == (True, 0)
    assert store.dead_letters.page(0, 10)[0] == 2
    redis_client.delete(store.keys.dead_trim_lock())
    assert store.dead_letters.trim() == 1 and store.dead_letters.page(0, 10)[0] == 1
    assert not redis_client.exists(store.keys.dead_trim_lock())


def test_dead_letter_ids_must_look_like_batch_ids(store: Store) -> None:
    store.buffer.append(msg("u1", "oi", flush_reason="request"))
    [claim] = store.outbox.claim(10, 10)
    store.outbox.bury(claim, 410, "HTTP 410", "not_retryable")
    assert not store.dead_letters.replay(f"i:{claim.batch_id}") and not store.dead_letters.delete(f"i:{claim.batch_id}")
    assert store.dead_letters.get(claim.batch_id) is not None and store.dead_letters.page(0, 10)[0] == 1
