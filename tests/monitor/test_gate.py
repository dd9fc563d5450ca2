"""The receiver gate of one monitor process over the shared breaker in a real Redis: probe turns are used or
handed back, answers reach the other monitors, and the catch-up after a close is never lost."""

from __future__ import annotations

import time

from datafy.model import Claim, IncomingMessage
from datafy.monitor.gate import ReceiverGate
from datafy.monitor.sender import Sent
from datafy.store import Store
from datafy.store.breaker import OPEN_AFTER_FAILURES, PROBE_EVERY_SECONDS
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


def test_failures_just_after_a_close_do_not_count_toward_the_dead_letter(store: Store) -> None:
    store.breaker.record(0, OPEN_AFTER_FAILURES)
    closed = store.breaker.record(1, 0)
    assert not closed.counts_attempts  # the receiver may be flapping: its first failures cost no attempt
    store.client.hset(store.breaker.key, "closed_ms", closed.now_ms - 5001)
    assert store.breaker.record(0, 1).counts_attempts
    assert ReceiverGate(store.breaker).settle([], claiming=True).counts_attempts  # a receiver never down counts
