"""Open batches (datafy/store/buffer.py): deadlines, merged metadata, typing, discard, the pending list, racing
flushes, and what a chat leaves behind in Redis (real Redis)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import redis

from datafy.model import IncomingMessage
from datafy.store import Store
from devtools.oracle import leftover_keys
from tests.support.messages import deliver_all, msg


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


def test_a_delivered_chat_leaves_its_numbering_for_sequence_ttl_and_the_batch_for_answer_window(
    store: Store, redis_client: redis.Redis
) -> None:
    store.buffer.append(IncomingMessage(user="5511", message="oi", ttl_ms=1000, flush_reason="request"))
    [claim] = store.outbox.claim(1, 60)
    store.outbox.ack(claim)
    k = store.keys.user("5511")
    answer = store.keys.answer("5511", claim.batch_id)
    assert sorted(redis_client.keys("*5511*")) == sorted([k.sequence, k.sealed, answer])
    for key in (k.sequence, k.sealed):
        assert 0 < redis_client.ttl(key) <= store.settings.sequence_ttl == 86400
        assert redis_client.memory_usage(key) <= 128  # what each user id costs for a day (docs/SECURITY.md)
    assert 0 < redis_client.ttl(answer) <= store.settings.answer_window == 600


def test_typing_holds_a_batch_at_most_max_typing_extension_past_its_last_message(store: Store) -> None:
    result = store.buffer.append(IncomingMessage(user="5511", message="oi", ttl_ms=2000))
    deadline = store.buffer.extend("5511", 86400 * 1000)
    assert deadline is not None and deadline <= result.flush_at_ms - 2000 + 60_000 + 50  # last message + 60 s


def test_typing_is_unbounded_when_max_typing_extension_is_0(store: Store) -> None:
    store.buffer.settings = replace(store.settings, max_typing_extension=0)
    result = store.buffer.append(IncomingMessage(user="5511", message="oi", ttl_ms=2000))
    deadline = store.buffer.extend("5511", 3600 * 1000)
    assert deadline is not None and deadline >= result.flush_at_ms + 3000_000


def test_a_flush_round_tells_when_the_next_open_batch_comes_due(store: Store) -> None:
    assert store.buffer.flush_due_timed(100) == ([], None)  # nothing open
    store.buffer.append(msg("later", "oi", ttl_ms=5_000))
    store.buffer.append(msg("sooner", "oi", ttl_ms=2_000))
    flushed, wait = store.buffer.flush_due_timed(100)
    assert flushed == [] and wait is not None and 1.5 < wait <= 2.0
    part = store.keys.partition_of("now")
    neighbour = next(f"n{i}" for i in range(1000) if store.keys.partition_of(f"n{i}") == part)
    for user in ("now", neighbour):
        store.buffer.append(msg(user, "oi", ttl_ms=1))
    time.sleep(0.01)
    flushed, wait = store.buffer.flush_due_timed(1)  # a full page of a partition: more may be due already
    assert len(flushed) == 1 and wait == 0
