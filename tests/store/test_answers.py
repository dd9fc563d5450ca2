"""The answer window against a real Redis: the guard's state and newer count, answered, and the carry-over."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

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
        store.buffer.append(
            IncomingMessage(
                user=user,
                message=text,
                ttl_ms=5000,
                message_id=f"{user}-{text}",
                flush_reason="request" if last else "",
                **extra,
            )
        )  # type: ignore[arg-type]


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


def test_await_answer_holds_the_next_batch_until_answered(store: Store) -> None:
    send(store, "5511", "oi", flush=True, await_ms=5000)
    first = deliver(store, "5511")
    send(store, "5511", "do modelo azul", await_ms=5000)  # the customer goes on while the AI thinks
    store.client.zadd(store.keys.indexes_of("5511").due, {"5511": 0})  # its deadline passes
    assert store.buffer.flush_due(10) == []  # held: one answer at a time
    send(store, "5511", "e o verde?", flush=True, await_ms=5000)  # even a flush waits
    assert store.outbox.claim(5, 60) == []
    verdict = store.answers.answered("5511", first)
    assert verdict.released and verdict.sealed
    [claim] = store.outbox.claim(5, 60)
    batch = webhook_body(claim.body)
    assert batch["messages"] == ["do modelo azul", "e o verde?"] and batch["flush_reason"] == "answered"


def test_a_held_batch_leaves_with_answer_timeout_when_no_verdict_comes(store: Store) -> None:
    send(store, "5511", "oi", flush=True, await_ms=300)
    deliver(store, "5511")
    send(store, "5511", "alô?", await_ms=300)
    store.client.zadd(store.keys.indexes_of("5511").due, {"5511": 0})
    assert store.buffer.flush_due(10) == []
    time.sleep(0.35)
    [flushed] = store.buffer.flush_due(10)
    assert flushed.reason == "answer_timeout"


def test_unanswered_while_held_sends_the_carried_messages_first_at_once(store: Store) -> None:
    send(store, "5511", "oi", "quero o preço", flush=True, await_ms=5000)
    first = deliver(store, "5511")
    send(store, "5511", "do modelo azul", await_ms=5000)
    store.client.zadd(store.keys.indexes_of("5511").due, {"5511": 0})
    assert store.buffer.flush_due(10) == []
    verdict = store.answers.unanswered("5511", first)
    assert verdict.released and verdict.sealed and verdict.carried == 2
    [claim] = store.outbox.claim(5, 60)
    batch = webhook_body(claim.body)
    assert batch["messages"] == ["oi", "quero o preço", "do modelo azul"]
    assert (batch["flush_reason"], batch["carried_over"]) == ("unanswered", [first])


def test_a_paused_chats_batches_still_go_out_marked_paused(store: Store) -> None:
    until = store.answers.pause("5511", 60)
    send(store, "5511", "oi", flush=True)
    [claim] = store.outbox.claim(1, 60)
    batch = webhook_body(claim.body, public_url="https://datafy.example.com")
    assert batch["paused"] is True and batch["paused_until"]
    assert batch["links"]["answered"] == f"https://datafy.example.com/api/chats/5511/batches/{claim.batch_id}/answered"
    assert until > 0 and store.answers.resume("5511") and not store.answers.resume("5511")


def test_a_thousand_verdicts_racing_new_messages_lose_and_duplicate_nothing(store: Store) -> None:
    chats = [f"c{i}" for i in range(50)]
    for chat in chats:
        send(store, chat, f"{chat}-a", f"{chat}-b", flush=True)
    first = {}
    for claim in store.outbox.claim(100, 60):
        store.outbox.ack(claim)
        first[claim.user] = claim.batch_id
    calls = [(verb, chat) for chat in chats for verb in ("answered", "unanswered") for _ in range(10)]
    calls += [("message", f"{chat}#{n}") for chat in chats for n in range(5)]
    random.shuffle(calls)

    def run(call: tuple[str, str]) -> None:
        verb, target = call
        if verb == "message":
            chat = target.split("#")[0]
            store.buffer.append(IncomingMessage(user=chat, message=target, ttl_ms=60_000, message_id=target))
        else:
            getattr(store.answers, verb)(target, first[target])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(run, calls))
    for chat in chats:
        store.buffer.flush(chat)
    batches = [webhook_body(claim.body) for claim in store.outbox.claim(100, 60)]
    assert len(batches) == len(chats)
    for batch in batches:
        chat = batch["user"]
        state = store.answers.state(chat, first[chat]).state
        carried = [f"{chat}-a", f"{chat}-b"] if state == "unanswered" else []
        assert batch["messages"][: len(carried)] == carried  # carried first, once
        assert sorted(batch["messages"][len(carried) :]) == sorted(f"{chat}#{n}" for n in range(5))  # each once


def test_held_and_paused_chats_are_counted(store: Store) -> None:
    send(store, "5511", "oi", flush=True, await_ms=5000)
    deliver(store, "5511")
    store.answers.pause("5512", 60)
    counts = store.views.counts()
    assert (counts.held, counts.paused) == (1, 1)
    store.answers.resume("5512")
    assert store.views.counts().paused == 0
