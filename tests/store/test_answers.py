"""The answer window against a real Redis: the guard's state and newer count, answered, and the carry-over."""

from __future__ import annotations

import json

import redis

from datafy.model import IncomingMessage
from datafy.payload import webhook_body
from datafy.store import Store


def deliver(store: Store, user: str) -> str:
    """Lease and acknowledge the user's next batch, as a monitor does; returns its id."""
    [claim] = store.outbox.claim(1, 60)
    assert claim.user == user
    store.outbox.ack(claim)
    return claim.batch_id


def send(store: Store, user: str, *texts: str, flush: bool = False, **extra: object) -> None:
    for i, text in enumerate(texts):
        last = flush and i == len(texts) - 1
        store.buffer.append(IncomingMessage(user=user, message=text, ttl_ms=5000, message_id=f"{user}-{text}",
                                            flush_reason="request" if last else "", **extra))  # type: ignore[arg-type]


def test_the_guard_follows_a_batch_from_pending_to_delivered_and_counts_newer_messages(store: Store) -> None:
    send(store, "5511", "oi", "quero o preço", flush=True)
    [pending] = store.client.lrange(store.keys.user("5511").outbox, 0, -1)
    state = store.answers.state("5511", pending)
    assert (state.state, state.sequence, state.newer_messages) == ("pending", 1, 0)
    assert deliver(store, "5511") == pending
    assert store.answers.state("5511", pending).state == "delivered"
    send(store, "5511", "do modelo azul")  # the customer goes on while the AI thinks
    state = store.answers.state("5511", pending)
    assert state.newer_messages == 1 and state.state == "delivered"
    send(store, "5511", "e o verde?", flush=True)  # sealed: still newer than the first batch
    assert store.answers.state("5511", pending).newer_messages == 2
    assert store.answers.state("5512", pending) is None  # another chat's batch id is unknown here


def test_unanswered_puts_the_messages_back_in_front_and_the_next_batch_carries_them(store: Store) -> None:
    send(store, "5511", "oi", "quero o preço", flush=True)
    first = deliver(store, "5511")
    send(store, "5511", "do modelo azul")
    verdict = store.answers.unanswered("5511", first)
    assert (verdict.outcome, verdict.carried) == ("carried", 2)
    assert store.answers.unanswered("5511", first).outcome == "same"  # idempotent: nothing carried twice
    store.buffer.flush("5511")
    [claim] = store.outbox.claim(1, 60)
    batch = webhook_body(claim.body)
    assert batch["messages"] == ["oi", "quero o preço", "do modelo azul"]
    assert batch["carried_over"] == [first]
    assert [item["message_id"] for item in batch["items"]] == ["5511-oi", "5511-quero o preço", "5511-do modelo azul"]
    assert store.answers.state("5511", first).state == "unanswered"


def test_unanswered_with_nothing_pending_opens_a_buffer_with_the_chats_ttl(
    store: Store, redis_client: redis.Redis
) -> None:
    send(store, "5511", "oi", flush=True)
    first = deliver(store, "5511")
    verdict = store.answers.unanswered("5511", first)
    assert verdict.carried == 1 and verdict.flush_at_ms > 0
    assert redis_client.pttl(store.keys.user("5511").timer) > 4000  # the chat's ttl (5 s), counted from now


def test_answered_is_once_and_excludes_unanswered(store: Store) -> None:
    send(store, "5511", "oi", flush=True)
    first = deliver(store, "5511")
    assert store.answers.answered("5511", first).outcome == "answered"
    assert store.answers.answered("5511", first).outcome == "same"
    verdict = store.answers.unanswered("5511", first)
    assert (verdict.outcome, verdict.state) == ("conflict", "answered")


def test_a_delivered_batch_is_kept_for_the_answer_window_only(store: Store, redis_client: redis.Redis) -> None:
    send(store, "5511", "oi", flush=True)
    first = deliver(store, "5511")
    ttl = redis_client.pttl(store.keys.answer("5511", first))
    assert 0 < ttl <= store.settings.answer_window * 1000
    record = redis_client.hgetall(store.keys.answer("5511", first))
    assert record["state"] == "delivered" and json.loads(record["body"])["batch_id"] == first
