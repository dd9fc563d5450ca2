"""The receiver's breaker and the catch-up, against a real Redis: the opening rule, probes, pauses."""

from __future__ import annotations

import time

import redis

from datafy.model import IncomingMessage
from datafy.store import Store
from datafy.store.breaker import OPEN_AFTER_FAILURES, PROBE_EVERY_SECONDS


def test_failures_in_a_row_with_no_recent_success_open_it(store: Store) -> None:
    breaker = store.breaker
    for _ in range(OPEN_AFTER_FAILURES - 1):
        assert not breaker.record(0, 1).open
    state = breaker.record(0, 1)
    assert state.open and state.paused_until_ms > state.now_ms  # the first probe comes a little later
    assert breaker.record(1, 0).closed_from_ms == state.open_since_ms  # any answer closes it


def test_intermittent_errors_are_not_an_outage(store: Store) -> None:
    breaker = store.breaker
    breaker.record(1, 0)  # the receiver answered just now
    assert not breaker.record(0, 2 * OPEN_AFTER_FAILURES).open  # many failures, but a success within seconds
    breaker.record(1, 0)
    assert breaker.record(0, 1).failures == 1  # a success resets the count


def test_one_probe_at_a_time(store: Store) -> None:
    breaker = store.breaker
    opened = breaker.record(0, OPEN_AFTER_FAILURES)
    assert not breaker.record(0, 0, take_probe=True).probe_granted  # not yet: probes come every few seconds
    store.client.hset(breaker.key, "probe_at_ms", opened.now_ms)  # the wait passed
    assert breaker.record(0, 0, take_probe=True).probe_granted
    assert not breaker.record(0, 0, take_probe=True).probe_granted  # another monitor: not its turn


def test_retry_after_pauses_the_receiver(store: Store) -> None:
    state = store.breaker.record(0, 1, pause_seconds=3)
    assert state.open and 2900 <= state.paused_until_ms - state.now_ms <= 3000


def test_a_failed_probe_brings_the_next_one_within_seconds(store: Store) -> None:
    breaker = store.breaker
    opened = breaker.record(0, OPEN_AFTER_FAILURES)
    store.client.hset(breaker.key, "probe_at_ms", opened.now_ms)
    assert breaker.record(0, 0, take_probe=True).probe_granted  # the turn is held for a whole POST ...
    failed = breaker.record(0, 1)  # ... but its failure brings the next probe back to a few seconds
    assert failed.paused_until_ms - failed.now_ms <= PROBE_EVERY_SECONDS * 1000


def test_catch_up_makes_waiting_batches_due_oldest_first_and_leaves_leases(
    store: Store, redis_client: redis.Redis
) -> None:
    for user in ("old", "new", "leased"):
        store.buffer.append(IncomingMessage(user=user, message="oi", ttl_ms=1000, flush_reason="request"))
        time.sleep(0.005)
    claims = {claim.user: claim for claim in store.outbox.claim(10, 60)}
    assert store.outbox.retry(claims["old"], 3600, 503, "HTTP 503")
    time.sleep(0.005)
    assert store.outbox.retry(claims["new"], 3600, 503, "HTTP 503")
    assert store.outbox.claim(10, 60) == []  # waiting an hour, or leased
    assert store.breaker.catch_up() == 2
    assert [claim.user for claim in store.outbox.claim(1, 60)] == ["old"]
    assert [claim.user for claim in store.outbox.claim(1, 60)] == ["new"]
    assert store.outbox.claim(10, 60) == []  # "leased" keeps its lease


def test_a_probe_catch_up_makes_only_the_oldest_wait_of_each_partition_ready(store: Store) -> None:
    """Through a large outage a probe comes every few seconds: it must not pass over every waiting batch."""
    partition = store.keys.partition_of("first")
    neighbours = [f"u{i}" for i in range(10_000) if store.keys.partition_of(f"u{i}") == partition]
    users = ["first", *neighbours[:2]]
    for user in users:
        store.buffer.append(IncomingMessage(user=user, message="oi", ttl_ms=1000, flush_reason="request"))
    claims = {claim.user: claim for claim in store.outbox.claim(10, 60)}
    for user in users:
        assert store.outbox.retry(claims[user], 3600, 503, "HTTP 503")
        time.sleep(0.005)
    assert store.breaker.catch_up(per_partition=1) == 1
    assert [claim.user for claim in store.outbox.claim(10, 60)] == ["first"]
    assert store.breaker.catch_up() == 2  # the receiver answered: all the others


def test_a_failed_probe_goes_to_the_back_of_the_catch_up(store: Store) -> None:
    """A batch the receiver always fails must not be the probe every time: the others get their turn (the
    lease took it out of `retrying`, and its failure puts it back with a new start)."""
    partition = store.keys.partition_of("poison")
    other = next(f"u{i}" for i in range(10_000) if store.keys.partition_of(f"u{i}") == partition)
    for user in ("poison", other):
        store.buffer.append(IncomingMessage(user=user, message="oi", ttl_ms=1000, flush_reason="request"))
        time.sleep(0.005)
    claims = {claim.user: claim for claim in store.outbox.claim(10, 60)}
    assert store.outbox.retry(claims["poison"], 3600, 500, "HTTP 500")  # counted: the outage began
    time.sleep(0.005)
    assert store.outbox.retry(claims[other], 3600, 503, "HTTP 503")
    store.breaker.catch_up()
    [probe] = store.outbox.claim(1, 60)
    assert probe.user == "poison"  # the oldest wait is the first probe ...
    assert store.outbox.retry(probe, 3600, 500, "HTTP 500", counted=False)  # ... it fails while open ...
    store.breaker.catch_up()
    assert [claim.user for claim in store.outbox.claim(1, 60)] == [other]  # ... and the next probe is another


def test_a_probe_without_a_verdict_frees_the_turn(store: Store) -> None:
    """An expired batch used as the probe tells nothing of the receiver: the next probe may go at once."""
    breaker = store.breaker
    opened = breaker.record(0, OPEN_AFTER_FAILURES)
    store.client.hset(breaker.key, "probe_at_ms", opened.now_ms)
    assert breaker.record(0, 0, take_probe=True).probe_granted
    assert breaker.record(0, 0, take_probe=True, release_seconds=0).probe_granted


def test_the_breaker_starts_with_a_write_that_frees_memory(store: Store) -> None:
    """At maxmemory the breaker still records outcomes, so acknowledgements keep flowing and memory drains."""
    store.client.config_set("maxmemory", "1")
    try:
        assert store.breaker.record(1, 0).closed_from_ms == 0
        assert store.breaker.catch_up() == 0
    finally:
        store.client.config_set("maxmemory", "0")


def test_a_failure_after_a_close_does_not_owe_that_close_a_catch_up(store: Store) -> None:
    store.breaker.record(0, OPEN_AFTER_FAILURES)
    assert store.breaker.record(1, 0).catch_up_owed
    store.client.hset(store.breaker.key, "last_success_ms", 0)
    assert not store.breaker.record(0, OPEN_AFTER_FAILURES).catch_up_owed  # down again: the next close owes one
