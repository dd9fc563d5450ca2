"""Sealed batches (datafy/store/outbox.py): one head per user, leases, retries, burials, and outcomes recorded
even at maxmemory (real Redis)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import redis

from datafy.config import Settings
from datafy.errors import StoreUnavailableError
from datafy.model import IncomingMessage
from datafy.payload import webhook_body
from datafy.store import Store
from datafy.store.outbox import ACKED, ACKED_LATE, CLAIM, PARK
from devtools.oracle import leftover_keys
from devtools.redis_server import RedisServer
from tests.support.messages import deliver_all, msg


def test_only_the_head_batch_of_a_user_is_claimed(store: Store) -> None:
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
    # But a 2xx it got still counts, said to be late: the receiver may get the batch again from `again`.
    assert store.outbox.ack_and_claim([claim], 0, 0)[0] == [ACKED_LATE]
    assert not store.outbox.ack(again)


def test_an_acknowledgement_within_the_lease_is_on_time(store: Store) -> None:
    store.buffer.append(msg("u1", "oi", flush_reason="request"))
    [claim] = store.outbox.claim(10, lease_seconds=0.1)
    time.sleep(0.15)  # run out, but taken by no one: no one else can have POSTed it
    assert store.outbox.ack_and_claim([claim], 0, 0)[0] == [ACKED]


def test_retry_keeps_the_batch_and_waits(store: Store) -> None:
    store.buffer.append(msg("u1", "oi", flush_reason="request"))
    [claim] = store.outbox.claim(10, 10)
    assert store.outbox.retry(claim, 0.2, 503, "HTTP 503")
    assert store.outbox.claim(10, 10) == []
    time.sleep(0.25)
    [again] = store.outbox.claim(10, 10)
    assert again.batch_id == claim.batch_id and again.attempt == 2


def test_a_head_without_a_body_does_not_strand_the_batches_behind(store: Store, redis_client: redis.Redis) -> None:
    store.buffer.append(msg("u1", "first", flush_reason="request"))
    store.buffer.append(msg("u1", "second", flush_reason="request"))
    outbox = store.keys.user("u1").outbox
    redis_client.hdel(store.keys.user("u1").batches, redis_client.lindex(outbox, 0))  # a damaged record
    assert store.outbox.claim(10, 10) == []
    assert [b["messages"] for b in deliver_all(store)] == [["second"]]
    assert leftover_keys(redis_client) == []


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


def test_an_attempt_not_counted_leaves_the_attempts_as_they_were(store: Store) -> None:
    store.buffer.append(IncomingMessage(user="u", message="oi", ttl_ms=1000, flush_reason="request"))
    [claim] = store.outbox.claim(1, 60)
    assert store.outbox.retry(claim, 0, 503, "HTTP 503", counted=False)
    [again] = store.outbox.claim(1, 60)
    assert again.attempt == claim.attempt == 1


def test_a_parked_batch_waits_for_its_routes_catch_up_and_other_routes_go_on(store: Store) -> None:
    """A batch whose receiver is down is set aside in its route's retrying index (not leased, not lost); the
    catch-up of that route brings it back, and a batch the catch-up made due is left for the probe."""
    routed = replace(msg("5511", "oi"), route="loja-a", flush_reason="request")
    store.buffer.append(routed)
    store.buffer.append(replace(msg("5511", "oi"), flush_reason="request"))  # the same user, route default
    decide = lambda chat: PARK if chat.startswith("\x1f") else CLAIM  # noqa: E731  # loja-a's receiver is down
    _, claims = store.outbox.ack_and_claim([], 10, 60, admit=decide)
    assert [c.user for c in claims] == ["5511"]
    assert store.outbox.ack_and_claim([], 10, 60)[1] == []  # parked: not due any more
    store.breaker.catch_up(routes=["default"])
    assert store.outbox.ack_and_claim([], 10, 60)[1] == []  # another route's catch-up leaves it parked
    store.breaker.catch_up(per_partition=1, routes=["loja-a"])  # loja-a's probe candidate
    assert store.outbox.ack_and_claim([], 10, 60, admit=decide)[1] == []  # parked again? no: left for the probe
    [probe] = store.outbox.ack_and_claim([], 10, 60)[1]
    assert probe.user == "\x1floja-a\x1f5511" and probe.attempt == 1
