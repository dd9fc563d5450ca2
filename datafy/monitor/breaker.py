"""How much the monitor may send: the receiver's breaker, shared in Redis, seen from one monitor process.

Closed, every free slot may take a batch. Open (the receiver is down, or asked for a pause with
Retry-After), nothing goes out but one probe at a time, every few seconds, from whichever monitor gets
the turn. The first answer closes it, and every batch waiting for a retry is due at once (the catch-up).
"""

from __future__ import annotations

import logging
import math
import time

from datafy.errors import StoreUnavailableError
from datafy.monitor.sender import NOT_POSTED, Sent
from datafy.retry import MAX_RETRY_AFTER_SECONDS
from datafy.store.breaker import CLOSED, Breaker, BreakerState

log = logging.getLogger(__name__)

SYNC_EVERY_SECONDS = 1.0  # a monitor with nothing to report still looks at the shared state this often
PAUSING_STATUSES = frozenset({429, 503})  # their Retry-After pauses the whole receiver


class ReceiverGate:
    """Feeds each round's outcomes to the shared breaker and says how many batches may go out."""

    def __init__(self, breaker: Breaker) -> None:
        self.breaker = breaker
        self.state: BreakerState = CLOSED
        self.synced = -math.inf

    def settle(self, finished: list[Sent], claiming: bool) -> BreakerState:
        """Record the round's outcomes where they matter, and take the probe turn when it is due."""
        answered = sum(1 for sent in finished if sent.result.status is not None and not sent.result.retryable)
        answered += sum(1 for sent in finished if sent.result.delivered)
        failed = [sent for sent in finished if receiver_failed(sent)]
        pause = max((sent.result.retry_after or 0.0 for sent in failed if sent.result.status in PAUSING_STATUSES),
                    default=0.0)  # fmt: skip
        pause = min(pause, MAX_RETRY_AFTER_SECONDS)  # a receiver may ask for a pause, not for forever
        # An expired batch or one we could not build tells nothing of the receiver: a probe turn it used is freed.
        release = any(not sent.result.delivered and sent.result.status is None and not receiver_failed(sent)
                      for sent in finished)  # fmt: skip
        state, since_sync = self.state, time.monotonic() - self.synced
        redis_now_ms = state.now_ms + since_sync * 1000  # the breaker's times are on the Redis clock
        probe_due = claiming and state.open and redis_now_ms >= state.paused_until_ms
        if not (failed or (answered and state.troubled) or probe_due or release or since_sync >= SYNC_EVERY_SECONDS):
            return state
        try:
            new = self.breaker.record(answered, len(failed), pause, take_probe=claiming and state.open, release=release)
        except StoreUnavailableError as exc:  # the round's acknowledgements must still go through
            log.debug("receiver breaker not updated: %s", exc)
            return state
        self.synced = time.monotonic()
        if new.open and not state.open:
            why = f"asked for a pause of {pause:.0f}s" if pause else f"failed {new.failures} times in a row"
            log.warning("receiver %s: sending only one probe every few seconds until it answers", why)
        if new.closed_from_ms:
            caught_up = self.breaker.catch_up()
            log.info("receiver answers again after %.0fs; %d waiting batch(es) are due now",
                     (new.now_ms - new.closed_from_ms) / 1000, caught_up)  # fmt: skip
        elif new.probe_granted:
            self.breaker.catch_up(per_partition=1)  # so that the oldest waiting batch is the probe
        self.state = new
        return new

    def allowance(self, free: int) -> int:
        """How many of `free` slots may take a batch now: all while closed, the one probe while open."""
        if not self.state.open:
            return free
        if self.state.probe_granted and free > 0:
            self.state = BreakerState(**{**self.state.__dict__, "probe_granted": False})  # the turn is used once
            return 1
        return 0


def receiver_failed(sent: Sent) -> bool:
    """A failure that says the receiver is down or overloaded (not our bug, not a batch we did not POST, not a 4xx)."""
    result = sent.result
    if result.status is None and (result.error in NOT_POSTED or result.error.startswith("internal error")):
        return False
    return result.retryable
