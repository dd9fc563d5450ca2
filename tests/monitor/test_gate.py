"""The receiver gate of one monitor process (datafy/monitor/gate.py) over the shared breaker in a real Redis: how
many batches may go out, probe turns used or handed back, Retry-After pauses, answers reaching the other
monitors, and the catch-up after a close never lost."""

from __future__ import annotations

import time

import pytest

from datafy.model import Claim, IncomingMessage
from datafy.monitor.gate import SYNC_EVERY_SECONDS, ReceiverGate
from datafy.monitor.sender import EXPIRED, Sent
from datafy.retry import MAX_RETRY_AFTER_SECONDS
from datafy.store import Store
from datafy.store.breaker import OPEN_AFTER_FAILURES, PROBE_EVERY_SECONDS
from datafy.store.outbox import PARK
from datafy.webhook import DeliveryResult

OK = DeliveryResult(True, 200, "", False, None, 5.0)
DOWN = DeliveryResult(False, 503, "HTTP 503", True, None, 5.0)


def sent(result: DeliveryResult) -> Sent:
    return Sent(Claim("u", "b", "{}", 1, "t"), result)


def open_with_probe_due(store: Store) -> None:
    """The breaker open, and its next probe due now."""
    opened = store.breaker.record(0, OPEN_AFTER_FAILURES)
    store.client.hset(store.breaker.key, "probe_at_ms", opened.now_ms)


def test_a_probe_turn_with_nothing_to_send_is_handed_back_at_the_usual_pace(store: Store) -> None:
    open_with_probe_due(store)
    gate = ReceiverGate(store.breaker)
    assert gate.settle([], claiming=True).probe_granted
    assert gate.allowance(4) == (1, True)
    assert gate.allowance(4) == (0, False)  # the turn is used once
    gate.unused_probe()
    state = gate.settle([], claiming=False)
    # Held, the turn would block every monitor for WEBHOOK_TIMEOUT + 2 s; handed back, the next probe is near.
    assert state.paused_until_ms - state.now_ms <= PROBE_EVERY_SECONDS * 1000
    assert store.breaker.probe_hold_ms > PROBE_EVERY_SECONDS * 1000 + 1000


def test_answers_between_syncs_reach_the_shared_breaker(store: Store) -> None:
    """A monitor whose POSTs all succeed writes its answers at its next sync, so that another monitor's failures
    are judged against a fresh last success (and the breaker does not open while the receiver answers)."""
    gate = ReceiverGate(store.breaker)
    gate.settle([sent(OK)], claiming=True)  # the first settle syncs
    first = int(store.client.hget(store.breaker.key, "last_success_ms"))
    time.sleep(0.2)
    gate.settle([sent(OK)], claiming=True)  # all is well: not written at once ...
    time.sleep(1.0)
    gate.settle([], claiming=True)  # ... but with the next sync, although that round had no answer
    assert int(store.client.hget(store.breaker.key, "last_success_ms")) >= first + 1000


def test_a_catch_up_the_closing_monitor_never_ran_is_run_by_another(store: Store) -> None:
    """The monitor that closed the breaker died (or lost Redis) before the catch-up: another monitor's next sync
    makes the waiting batches due, rather than leaving them to their own retry step (up to hours)."""
    store.buffer.append(IncomingMessage(user="waiting", message="oi", ttl_ms=1000, flush_reason="request"))
    [claim] = store.outbox.claim(1, 60)
    assert store.outbox.retry(claim, 3600, 503, "HTTP 503")  # waits an hour for its next attempt
    store.breaker.record(0, OPEN_AFTER_FAILURES)
    assert store.breaker.record(1, 0).catch_up_owed  # closed by a monitor that then died
    assert store.outbox.claim(1, 60) == []
    other = ReceiverGate(store.breaker)
    assert other.settle([], claiming=True).catch_up_owed
    assert [c.user for c in store.outbox.claim(1, 60)] == ["waiting"]
    assert store.client.hget(store.breaker.key, "catch_up") == "0"  # reported done: no monitor runs a second pass


def test_a_batch_parked_by_a_monitor_that_had_not_seen_the_close_is_due_at_its_next_sync(store: Store) -> None:
    """Monitor A closes the breaker and catches up; monitor B, not synced since, still sees it open and parks a
    ready batch (for up to a minute). B's next sync sees the close and makes what it parked due."""
    store.breaker.record(0, OPEN_AFTER_FAILURES)
    b = ReceiverGate(store.breaker)
    assert b.settle([], claiming=False).open
    store.buffer.append(IncomingMessage(user="parked", message="oi", ttl_ms=1000, flush_reason="request"))
    closing = ReceiverGate(store.breaker)
    closing.settle([sent(OK)], claiming=True)  # A: closed, caught up, reported done
    assert store.client.hget(store.breaker.key, "catch_up") == "0"
    admit = lambda chat: PARK  # noqa: E731  # B's view: the receiver is down
    assert store.outbox.ack_and_claim([], 10, 60, admit=admit)[1] == []
    b.synced -= SYNC_EVERY_SECONDS  # B's next sync is due
    assert not b.settle([], claiming=True).open
    assert [c.user for c in store.outbox.claim(1, 60)] == ["parked"]


def test_failures_just_after_a_close_do_not_count_toward_the_dead_letter(store: Store) -> None:
    store.breaker.record(0, OPEN_AFTER_FAILURES)
    closed = store.breaker.record(1, 0)
    assert not closed.counts_attempts  # the receiver may be flapping: its first failures cost no attempt
    store.client.hset(store.breaker.key, "closed_ms", closed.now_ms - 5001)
    assert store.breaker.record(0, 1).counts_attempts
    assert ReceiverGate(store.breaker).settle([], claiming=True).counts_attempts  # a receiver never down counts


def test_closed_every_free_slot_may_take_a_batch(store: Store) -> None:
    gate = ReceiverGate(store.breaker)
    assert not gate.settle([sent(OK)], claiming=True).open
    assert gate.allowance(4) == (4, False)
    assert gate.allowance(4) == (4, False)  # no turn to use up while the receiver answers
    assert gate.allowance(0) == (0, False)


def test_open_nothing_goes_out_until_the_probe_turn_and_then_only_one(store: Store) -> None:
    store.breaker.record(0, OPEN_AFTER_FAILURES)  # open; its first probe comes a little later
    gate = ReceiverGate(store.breaker)
    state = gate.settle([], claiming=True)
    assert state.open and not state.probe_granted
    assert gate.allowance(4) == (0, False)
    store.client.hset(store.breaker.key, "probe_at_ms", state.now_ms)  # the wait passed
    gate = ReceiverGate(store.breaker)  # a monitor at its next sync (a new gate syncs at once)
    assert gate.settle([], claiming=True).probe_granted
    assert gate.allowance(0) == (0, False)  # no free slot: the turn waits for one ...
    assert gate.allowance(4) == (1, True)  # ... and then goes out once
    assert gate.allowance(4) == (0, False)


@pytest.mark.parametrize(
    "result",
    [DeliveryResult(False, None, EXPIRED, False, None, 0.0),
     DeliveryResult(False, None, "internal error: JSONDecodeError", True, None, 0.0)],
    ids=["expired", "our-bug"],
)  # fmt: skip
def test_a_probe_that_tells_nothing_of_the_receiver_frees_the_turn_at_once(
    store: Store, result: DeliveryResult
) -> None:
    """An expired batch (dead-lettered unposted) or one we could not build used the probe turn: the next probe
    may go now, not after a whole POST's hold."""
    open_with_probe_due(store)
    gate = ReceiverGate(store.breaker)
    assert gate.settle([], claiming=True).probe_granted
    assert gate.allowance(4) == (1, True)
    assert gate.settle([sent(result)], claiming=True).probe_granted
    assert gate.allowance(4) == (1, True)


def test_a_probe_the_receiver_failed_brings_no_turn_back_at_once(store: Store) -> None:
    open_with_probe_due(store)
    gate = ReceiverGate(store.breaker)
    assert gate.settle([], claiming=True).probe_granted
    assert gate.allowance(4) == (1, True)
    state = gate.settle([sent(DOWN)], claiming=True)
    assert state.open and not state.probe_granted and gate.allowance(4) == (0, False)
    assert 0 < state.paused_until_ms - state.now_ms <= PROBE_EVERY_SECONDS * 1000


def test_retry_after_on_a_429_or_503_pauses_the_receiver_at_most_for_the_cap(store: Store) -> None:
    gate = ReceiverGate(store.breaker)
    asked = DeliveryResult(False, 503, "HTTP 503", True, 10.0**9, 5.0)  # "come back in 30 years"
    state = gate.settle([sent(asked)], claiming=True)
    assert state.open and gate.allowance(4) == (0, False)  # one answer is enough: the receiver asked
    assert 0 < state.paused_until_ms - state.now_ms <= MAX_RETRY_AFTER_SECONDS * 1000


def test_retry_after_on_another_status_pauses_nothing(store: Store) -> None:
    gate = ReceiverGate(store.breaker)
    state = gate.settle([sent(DeliveryResult(False, 500, "HTTP 500", True, 60.0, 5.0))], claiming=True)
    assert not state.open and state.failures == 1 and gate.allowance(4) == (4, False)
