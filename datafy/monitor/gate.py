"""How much the monitor may send: the receiver's breaker, shared in Redis, seen from one monitor process.

Closed, every free slot may take a batch. Open (the receiver is down, or asked for a pause with
Retry-After), nothing goes out but one probe at a time, every few seconds, from whichever monitor gets
the turn. The first answer closes it, and every batch waiting for a retry is due at once (the catch-up).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace

from datafy.errors import StoreUnavailableError
from datafy.monitor.sender import NOT_POSTED, Sent
from datafy.retry import MAX_RETRY_AFTER_SECONDS
from datafy.routes.chats import DEFAULT_ROUTE
from datafy.store.breaker import CLOSED, NO_RELEASE, PROBE_EVERY_SECONDS, Breaker, BreakerState

log = logging.getLogger(__name__)

SYNC_EVERY_SECONDS = 1.0  # a monitor with nothing to report still looks at the shared state this often
PAUSING_STATUSES = frozenset({429, 503})  # their Retry-After pauses the whole receiver


class ReceiverGate:
    """Feeds each round's outcomes to the shared breaker and says how many batches may go out."""

    def __init__(self, breaker: Breaker, routes: Callable[[], list[str]] = lambda: [DEFAULT_ROUTE]) -> None:
        self.breaker = breaker
        self.routes = routes  # the routes whose batches go to this receiver (their waiting batches catch up)
        self.state: BreakerState = CLOSED
        self.synced = -math.inf
        # Answers not yet written: while all is well they travel with the next sync, so that another monitor
        # judging "no success for a few seconds" reads a fresh last success.
        self.unreported = 0
        self.release = NO_RELEASE  # a probe turn to hand back at the next settle (seconds until the next probe)

    def settle(self, finished: list[Sent], claiming: bool) -> BreakerState:
        """Record the round's outcomes where they matter, and take the probe turn when it is due."""
        answered = sum(1 for sent in finished if sent.result.status is not None and not sent.result.retryable)
        answered += sum(1 for sent in finished if sent.result.delivered)
        self.unreported += answered
        failed = [sent for sent in finished if receiver_failed(sent)]
        pause = max((sent.result.retry_after or 0.0 for sent in failed if sent.result.status in PAUSING_STATUSES),
                    default=0.0)  # fmt: skip
        pause = min(pause, MAX_RETRY_AFTER_SECONDS)  # a receiver may ask for a pause, not for forever
        # An expired batch or one we could not build tells nothing of the receiver: a probe turn it used is freed.
        if any(not sent.result.delivered and sent.result.status is None and not receiver_failed(sent)
               for sent in finished):  # fmt: skip
            self.release = 0.0
        state, since_sync = self.state, time.monotonic() - self.synced
        redis_now_ms = state.now_ms + since_sync * 1000  # the breaker's times are on the Redis clock
        probe_due = claiming and state.open and redis_now_ms >= state.paused_until_ms
        wanted = failed or (self.unreported and state.troubled) or probe_due or self.release >= 0
        if not (wanted or since_sync >= SYNC_EVERY_SECONDS):
            return state
        try:
            new = self.breaker.record(self.unreported, len(failed), pause, take_probe=claiming,
                                      release_seconds=self.release)  # fmt: skip
        except StoreUnavailableError as exc:  # the round's acknowledgements must still go through
            log.debug("receiver breaker not updated: %s", exc)
            return state
        self.synced, self.unreported, self.release = time.monotonic(), 0, NO_RELEASE
        if new.open and not state.open:
            why = f"asked for a pause of {pause:.0f}s" if pause else f"failed {new.failures} times in a row"
            log.warning("receiver %s: sending only one probe every few seconds until it answers%s", why, self._names())
        if new.closed_from_ms or new.catch_up_owed:
            self._catch_up(new)
        elif state.open and not new.open:
            # Another monitor closed it and caught up, but this one parked batches until now: make them due too.
            self._catch_up(new, own=True)
        elif new.probe_granted:
            try:
                self.breaker.catch_up(per_partition=1, routes=self.routes())  # the oldest waiting batch is the probe
            except StoreUnavailableError as exc:  # the probe is then a batch that became ready by itself
                log.debug("no catch-up for the probe: %s", exc)
        self.state = new
        return new

    def _catch_up(self, state: BreakerState, own: bool = False) -> None:
        """Make every waiting batch due, then tell the breaker so. Until one monitor has, every monitor's next
        sync is told to try (the closing one may lose Redis, or die, in between). `own`: only what this monitor
        parked while it still saw the receiver down (the breaker already has its catch-up)."""
        try:
            caught_up = self.breaker.catch_up(routes=self.routes())
            if not own:
                self.breaker.record(0, 0, caught_up=True)
        except StoreUnavailableError as exc:
            later = "they go out within a minute" if own else "retrying"  # a parked batch is looked at again by then
            log.warning("receiver answers again, but the waiting batches are not due yet (%s); %s%s", exc, later,
                        self._names())  # fmt: skip
            return
        if state.closed_from_ms:
            log.info("receiver answers again after %.0fs; %d waiting batch(es) are due now%s",
                     (state.now_ms - state.closed_from_ms) / 1000, caught_up, self._names())  # fmt: skip
        elif own:
            log.info("receiver answers again (closed by another monitor); %d waiting batch(es) are due now%s",
                     caught_up, self._names())  # fmt: skip
        else:
            log.info("caught up for another monitor: %d waiting batch(es) are due now%s", caught_up, self._names())

    def _names(self) -> str:
        """' routes=a,b' for a receiver that is not (only) the route default's; '' for WEBHOOK_URL's alone."""
        names = self.routes()
        return "" if names == [DEFAULT_ROUTE] else f" routes={','.join(names)}"

    def allowance(self, free: int) -> tuple[int, bool]:
        """How many of `free` slots may take a batch now (all while closed, the one probe while open), and
        whether that one is the probe (a probe may take a batch from any partition)."""
        if not self.state.open:
            return free, False
        if self.state.probe_granted and free > 0:
            self.state = replace(self.state, probe_granted=False)  # the turn is used once
            return 1, True
        return 0, False

    def unused_probe(self) -> None:
        """The probe turn found nothing to send: hand it back at the next settle, the next probe at the usual pace
        (held, the turn would keep every monitor from probing for a whole POST's time)."""
        self.release = PROBE_EVERY_SECONDS


def receiver_failed(sent: Sent) -> bool:
    """A failure that says the receiver is down or overloaded (not our bug, not a batch we did not POST, not a 4xx)."""
    result = sent.result
    if result.status is None and (result.error in NOT_POSTED or result.error.startswith("internal error")):
        return False
    return result.retryable
