"""The Lua scripts' contracts, through the store: append, flush, lease, acknowledge, retry, dead letters."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
import redis

from datafy.config import Settings
from datafy.errors import ConfigurationError, StoreUnavailableError
from datafy.model import IncomingMessage
from datafy.payload import webhook_body
from datafy.store import Store
from datafy.store.servers import enable_expiry_events
from devtools.oracle import leftover_keys
from devtools.redis_server import RedisServer


def msg(user: str, text: object, ttl_ms: int = 50, **kwargs: object) -> IncomingMessage:
    return IncomingMessage(user=user, message=text, ttl_ms=ttl_ms, **kwargs)  # type: ignore[arg-type]


def deliver_all(store: Store) -> list[dict]:
    """Claim and acknowledge every ready batch, as a monitor with a perfect webhook would."""
    bodies = []
    while claims := store.outbox.claim(100, 10):
        for claim in claims:
            bodies.append(webhook_body(claim.body))
            assert store.outbox.ack(claim)
    return bodies


def test_batch_is_sealed_only_after_its_deadline(store: Store, redis_client: redis.Redis) -> None:
    store.buffer.append(msg("u1", "oi", ttl_ms=300, metadata={"name": "Ana"}))
    store.buffer.append(msg("u1", "tudo bem?", ttl_ms=300))
    assert store.buffer.flush_due(100) == []
    time.sleep(0.35)
    [flushed] = store.buffer.flush_due(100)
    assert (flushed.user, flushed.sequence, flushed.count) == ("u1", 1, 2)
    [body] = deliver_all(store)
    assert body["messages"] == ["oi", "tudo bem?"]
    assert body["user"] == body["user_id"] == "u1"
    assert body["text"] == "oi\ntudo bem?"
    assert body["message_count"] == 2 and body["flush_reason"] == "ttl" and body["sequence"] == 1
    assert body["name"] == "Ana"
    assert leftover_keys(redis_client) == []


def test_a_newer_message_moves_the_deadline(store: Store) -> None:
    store.buffer.append(msg("u1", "a", ttl_ms=1000))
    time.sleep(0.6)
    store.buffer.append(msg("u1", "b", ttl_ms=1000))
    time.sleep(0.6)
    assert store.buffer.flush_due(100) == []  # first deadline passed, but the second message moved it
    time.sleep(0.6)
    assert [f.count for f in store.buffer.flush_due(100)] == [2]


def test_metadata_last_value_wins_and_reserved_names_win(store: Store) -> None:
    store.buffer.append(msg("u1", "a", metadata={"name": "Ana", "phone": "1", "user": "spoof", "messages": "x"}))
    store.buffer.append(msg("u1", {"type": "image", "id": "m1"}, metadata={"name": "Ana Maria", "tags": [], "o": {}}))
    time.sleep(0.1)
    store.buffer.flush_due(100)
    [body] = deliver_all(store)
    assert body["name"] == "Ana Maria" and body["phone"] == "1" and body["tags"] == [] and body["o"] == {}
    assert body["user"] == "u1" and body["messages"] == ["a", {"type": "image", "id": "m1"}]
    assert body["text"] == "a"
    assert [item["message"] for item in body["items"]] == body["messages"]
    assert body["items"][0]["phone"] == "1" and "phone" not in body["items"][1]


def test_messages_racing_flushes_land_in_exactly_one_batch(store: Store, redis_client: redis.Redis) -> None:
    sent = 400
    done = threading.Event()

    def flusher() -> None:
        while not done.is_set():
            store.buffer.flush_due(100)

    thread = threading.Thread(target=flusher)
    thread.start()
    for i in range(sent):
        store.buffer.append(msg("racer", f"m{i}", ttl_ms=1))
        if i % 20 == 0:
            time.sleep(0.002)  # let deadlines pass while the flusher is mid-flight
    done.set()
    thread.join()
    time.sleep(0.01)
    store.buffer.flush_due(100)
    bodies = deliver_all(store)
    received = [m for body in bodies for m in body["messages"]]
    assert received == [f"m{i}" for i in range(sent)]  # each once, in order, across batches
    assert [b["sequence"] for b in bodies] == list(range(1, len(bodies) + 1))
    assert len(bodies) > 1
    assert leftover_keys(redis_client) == []


def test_only_the_head_batch_of_a_user_is_delivered(store: Store) -> None:
    store.buffer.append(msg("u1", "first", flush_reason="request"))
    store.buffer.append(msg("u1", "second", flush_reason="request"))
    store.buffer.append(msg("u2", "other", flush_reason="request"))
    claims = store.outbox.claim(10, 10)
    assert sorted(webhook_body(c.body)["messages"][0] for c in claims) == ["first", "other"]
    assert store.outbox.claim(10, 10) == []  # u1's second waits for its first
    first = next(c for c in claims if c.user == "u1")
    store.outbox.ack(first)
    [second] = store.outbox.claim(10, 10)
    assert webhook_body(second.body)["messages"] == ["second"]


def test_a_lease_runs_out_and_another_monitor_takes_over(store: Store) -> None:
    store.buffer.append(msg("u1", "oi", flush_reason="request"))
    [claim] = store.outbox.claim(10, lease_seconds=0.1)
    assert store.outbox.claim(10, 10) == []
    time.sleep(0.15)
    [again] = store.outbox.claim(10, 10)
    assert again.batch_id == claim.batch_id and again.attempt == 2
    assert not store.outbox.retry(claim, 1, 500, "HTTP 500")  # the first holder lost its lease
    assert store.outbox.ack(claim)  # but a 2xx it got still counts
    assert not store.outbox.ack(again)


def test_retry_keeps_the_batch_and_waits(store: Store) -> None:
    store.buffer.append(msg("u1", "oi", flush_reason="request"))
    [claim] = store.outbox.claim(10, 10)
    assert store.outbox.retry(claim, 0.2, 503, "HTTP 503")
    assert store.outbox.claim(10, 10) == []
    time.sleep(0.25)
    [again] = store.outbox.claim(10, 10)
    assert again.batch_id == claim.batch_id and again.attempt == 2


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


def test_a_head_without_a_body_does_not_strand_the_batches_behind(store: Store, redis_client: redis.Redis) -> None:
    store.buffer.append(msg("u1", "first", flush_reason="request"))
    store.buffer.append(msg("u1", "second", flush_reason="request"))
    outbox = store.keys.user("u1").outbox
    redis_client.hdel(store.keys.user("u1").batches, redis_client.lindex(outbox, 0))  # a damaged record
    assert store.outbox.claim(10, 10) == []
    assert [b["messages"] for b in deliver_all(store)] == [["second"]]
    assert leftover_keys(redis_client) == []


def test_dead_letter_ids_must_look_like_batch_ids(store: Store) -> None:
    store.buffer.append(msg("u1", "oi", flush_reason="request"))
    [claim] = store.outbox.claim(10, 10)
    store.outbox.bury(claim, 410, "HTTP 410", "not_retryable")
    assert not store.dead_letters.replay(f"i:{claim.batch_id}") and not store.dead_letters.delete(f"i:{claim.batch_id}")
    assert store.dead_letters.get(claim.batch_id) is not None and store.dead_letters.page(0, 10)[0] == 1


def test_outcomes_are_recorded_when_redis_is_out_of_memory(settings: Settings) -> None:
    server = RedisServer().start()
    try:
        store = Store(replace(settings, redis_url=server.url))
        for user in ("u1", "u2", "u3"):
            store.buffer.append(msg(user, "oi", flush_reason="request"))
        claims = store.outbox.claim(10, 10)
        store.client.config_set("maxmemory", int(store.client.info("memory")["used_memory"]))
        with pytest.raises(StoreUnavailableError):
            store.buffer.append(msg("u4", "x" * 100_000))
        assert store.outbox.retry(claims[0], 5, 503, "HTTP 503")  # the failure is recorded ...
        assert store.outbox.bury(claims[1], 410, "HTTP 410", "not_retryable")[0]  # ... or the batch dead-lettered
        assert store.outbox.ack(claims[2])
    finally:
        server.cleanup()


def test_redis_refusing_writes_for_lack_of_replicas_is_unavailable(settings: Settings) -> None:
    server = RedisServer().start()
    try:
        store = Store(replace(settings, redis_url=server.url))
        store.buffer.append(msg("u1", "oi", ttl_ms=1))
        store.client.config_set("min-replicas-to-write", 1)
        time.sleep(0.01)
        with pytest.raises(StoreUnavailableError, match="NOREPLICAS"):
            store.buffer.append(msg("u1", "oi"))
        with pytest.raises(StoreUnavailableError, match="NOREPLICAS"):
            store.buffer.flush_due(100)  # through a pipeline, whose errors carry a prefix
    finally:
        server.cleanup()


def test_typing_extends_only_a_pending_batch(store: Store) -> None:
    assert store.buffer.extend("nobody", 5000) is None
    first = store.buffer.append(msg("u1", "oi", ttl_ms=1000)).flush_at_ms
    extended = store.buffer.extend("u1", 5000)
    assert extended is not None and extended >= first + 3900
    assert store.buffer.extend("u1", 10) == extended  # never brings the deadline forward


def test_typing_never_passes_max_wait(store: Store) -> None:
    store.buffer.append(msg("u1", "oi", ttl_ms=1000, max_wait_ms=2000))
    first = store.buffer.peek("u1")
    assert first is not None
    assert store.buffer.extend("u1", 60_000) == first.first_ms + 2000


def test_discard_returns_what_was_pending(store: Store, redis_client: redis.Redis) -> None:
    store.buffer.append(msg("u1", "oi", ttl_ms=10_000))
    store.buffer.append(msg("u1", "tchau", ttl_ms=10_000))
    assert [item["m"] for _, item in store.buffer.discard("u1")] == ["oi", "tchau"]
    assert store.buffer.discard("u1") == []
    assert leftover_keys(redis_client) == []


def test_pending_chats_are_ordered_by_flush_time(store: Store) -> None:
    for i, ttl in enumerate([3000, 1000, 2000]):
        store.buffer.append(msg(f"user{i}", "oi", ttl_ms=ttl))
    total, page = store.buffer.pending(0, 2)
    assert total == 3 and [user for user, _ in page] == ["user1", "user2"]
    assert [user for user, _ in store.buffer.pending(2, 2)[1]] == ["user0"]


def test_expired_events_of_keys_that_are_not_utf8_are_skipped(store: Store) -> None:
    assert all(enable_expiry_events(server) for server in store.connection.primaries())
    subscription = store.expiry_subscription()
    try:
        raw = redis.Redis.from_url(store.settings.redis_url)  # bytes in, bytes out
        raw.set(b"other-app:\xff\xfe", 1, px=10)
        raw.set(store.keys.user("alice").timer, 1, px=50)
        deadline, users = time.monotonic() + 3, []
        while time.monotonic() < deadline and "alice" not in users:
            users.append(subscription.next_user(timeout=0.2))
        assert "alice" in users
    finally:
        subscription.close()


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


def test_the_partition_count_is_fixed_at_first_start(settings: Settings) -> None:
    Store(settings).connection.ping()
    other = Store(replace(settings, redis=replace(settings.redis, partitions=32)))
    with pytest.raises(ConfigurationError, match="REDIS_PARTITIONS=32 but this Redis holds 16 partitions"):
        other.connection.ping()


def test_monitors_beat_share_and_leave(store: Store) -> None:
    assert store.monitors.beat("b", {"host": "h", "pid": 2}) == ["b"]
    assert store.monitors.beat("a", {"host": "h", "pid": 1}) == ["a", "b"]
    alive = store.monitors.alive()
    assert [(m["id"], m["pid"]) for m in alive] == [("a", "1"), ("b", "2")] and int(alive[0]["beat_ms"]) > 0
    store.monitors.leave("a")
    assert [m["id"] for m in store.monitors.alive()] == ["b"]


def test_views_count_pending_ready_retrying_and_dead(store: Store) -> None:
    for user in ("a", "b", "c"):
        store.buffer.append(msg(user, "oi", ttl_ms=10))
    store.buffer.append(msg("later", "oi", ttl_ms=120_000))
    time.sleep(0.05)
    assert store.views.counts().pending_chats == 4 and store.views.counts().due_next_minute == 3
    store.buffer.flush_due(100)
    counts = store.views.counts()
    assert (counts.pending_chats, counts.ready, counts.scheduled, counts.dead_letters) == (1, 3, 0, 0)
    first, second, _in_flight = store.outbox.claim(10, 10)
    store.outbox.retry(first, 60, 500, "HTTP 500")
    store.outbox.bury(second, 410, "HTTP 410", "not_retryable")
    counts = store.views.counts()
    assert (counts.ready, counts.retrying, counts.scheduled, counts.dead_letters) == (0, 1, 2, 1)
