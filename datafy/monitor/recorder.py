"""Recording delivery attempts: reschedule or dead-letter the failed ones, log one line for each attempt, and
count them (Prometheus, and the per-minute figures in Redis that /api/status reads)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from datafy.config import Settings
from datafy.errors import StoreUnavailableError
from datafy.metrics import instruments
from datafy.monitor.gate import receiver_failed
from datafy.monitor.sender import EXPIRED, LEASE_SHORT, NOT_POSTED, UNKNOWN_ROUTE, Sent
from datafy.retry import retry_delay
from datafy.routes.chats import DEFAULT_ROUTE, route_of, split_chat
from datafy.store import Store

log = logging.getLogger(__name__)

UNKNOWN_ROUTE_WAIT_SECONDS = 0.5  # a route created a moment ago: this process loads it at its next beat
# The per-minute figures go to Redis at most this often: a round trip per round cost a storm ~8% of the
# monitor's CPU, and the status reads minutes. At most this much of them is lost if the process dies.
FIGURES_EVERY_SECONDS = 1.0


class Recorder:
    """Writes failed attempts back to Redis (retry or dead letter), and one log line for every attempt."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        # Outcomes not yet added to Redis's per-minute figures, per minute: delivered, their lags, retries and
        # dead letters.
        self.pending: dict[int, _Tally] = {}
        self.written = -FIGURES_EVERY_SECONDS

    def delivered(self, attempts: list[Sent], late: Sequence[Sent] = ()) -> None:
        """Log and count the attempts whose acknowledgement Redis took (the caller acknowledged them with its
        claims), and count them in the minute's figures. `late`: those acknowledged after another process had
        leased them (this one stalled past the lease)."""
        lags = []
        for sent in attempts:
            log.info(
                "delivered %s messages=%d reason=%s status=%d ms=%.0f%s",
                _ids(sent), sent.messages, sent.reason, sent.result.status, sent.result.duration_ms,
                f" hold=next batch waits up to {sent.await_ms / 1000:.0f}s for the answer" if sent.await_ms else "",
            )  # fmt: skip
            instruments.count_attempt("delivered", route_of(sent.claim.user))
            instruments.DELIVERY_DURATION.observe(sent.result.duration_ms / 1000)
            if sent.lag_ms is not None:
                instruments.DELIVERY_LAG.observe(max(0.0, sent.lag_ms) / 1000)
                lags.append(sent.lag_ms)
        if attempts:  # most rounds of a quiet monitor deliver nothing
            tally = self._tally()
            tally.delivered += len(attempts)
            tally.lags += lags
        for sent in late:
            log.warning("acknowledged %s after its lease had passed to another process (this one stalled); the "
                        "receiver may get it twice", _ids(sent))  # fmt: skip
        self.write_figures()

    def write_figures(self, force: bool = False) -> None:
        """Add the outcomes counted since the last write to Redis's per-minute figures, if FIGURES_EVERY_SECONDS
        have passed since then (or `force`): a round trip per minute with outcomes."""
        if not force and time.monotonic() - self.written < FIGURES_EVERY_SECONDS:
            return
        self.written = time.monotonic()
        pending, self.pending = self.pending, {}
        for minute, t in pending.items():
            try:
                self.store.stats.record(minute, t.delivered, t.lags, t.retries, t.dead_letters)
            except StoreUnavailableError as exc:  # figures are not worth holding deliveries up: these are lost
                log.debug("could not record the delivery figures: %s", exc)

    def _tally(self) -> _Tally:
        """The current minute's outcomes not yet written."""
        minute = int(time.time()) // 60 * 60
        if minute not in self.pending:
            self.pending[minute] = _Tally()
        return self.pending[minute]

    def failed(self, attempts: list[Sent], counted: bool = True) -> None:
        """Reschedule or dead-letter each failed attempt; if Redis cannot take it, its lease runs out instead.
        Attempts not `counted` (the receiver is down) are rescheduled, never dead-lettered for running out."""
        for sent in attempts:
            if sent.result.status is not None or sent.result.error not in NOT_POSTED:
                instruments.DELIVERY_DURATION.observe(sent.result.duration_ms / 1000)
            try:
                self._record_failure(sent, counted)
            except StoreUnavailableError as exc:
                log.warning("could not record delivery outcome %s: %s", _ids(sent), exc)
            except Exception:  # a bug in one outcome must not keep the others from being recorded
                log.exception("recording the outcome failed %s; retried after its lease", _ids(sent))

    def _record_failure(self, sent: Sent, counted: bool) -> None:
        """Schedule the next attempt, or move the batch to the dead letters when it is not retryable or spent."""
        claim, result = sent.claim, sent.result
        if result.error == LEASE_SHORT:  # not tried: handed back at once, as if the attempt had not begun
            if self.store.outbox.retry(claim, 0, None, result.error, counted=False):
                log.warning("lease ran short before the POST (process stalled); handed back %s", _ids(sent))
            return
        if result.error == UNKNOWN_ROUTE:  # not tried: this process loads the route, then tries again
            if self.store.outbox.retry(claim, UNKNOWN_ROUTE_WAIT_SECONDS, None, result.error, counted=False):
                log.info("route not loaded yet in this process; handed back %s", _ids(sent))
            return
        counted = counted or not receiver_failed(sent)  # our own bug counts even while the receiver is down
        schedule = self.settings.webhook_retry_schedule
        attempt = claim.attempt if counted else min(claim.attempt, len(schedule))  # an uncounted one never runs out
        delay = retry_delay(attempt, schedule, result.retry_after)
        if result.retryable and delay is not None:
            if self.store.outbox.retry(claim, delay, result.status, result.error, counted):
                instruments.count_attempt("retry", route_of(claim.user))
                self._tally().retries += 1
                log.warning("delivery failed, retrying %s error=%r in=%.1fs", _ids(sent), result.error, delay)
            return
        reasons = {True: "retries_exhausted", False: "not_retryable"}
        reason = "expired" if result.error == EXPIRED else reasons[result.retryable]
        moved, trimmed = self.store.outbox.bury(claim, result.status, result.error, reason)
        if moved:
            instruments.count_attempt("dead_letter", route_of(claim.user))
            self._tally().dead_letters += 1
            log.error("dead-lettered %s error=%r reason=%s", _ids(sent), result.error, reason)
        if trimmed:
            log.error("DEAD_LETTER_MAX reached: dropped %d oldest dead letter(s)", trimmed)


@dataclass
class _Tally:
    delivered: int = 0
    lags: list[float] = field(default_factory=list)
    retries: int = 0
    dead_letters: int = 0


def _ids(sent: Sent) -> str:
    """The ids an operator greps for: route (unless default), user, batch, sequence (when known) and attempt."""
    claim = sent.claim
    route, user = split_chat(claim.user)
    seq = f" seq={sent.sequence}" if sent.sequence else ""
    where = f"route={route} " if route != DEFAULT_ROUTE else ""
    return f"{where}user={user} batch={claim.batch_id}{seq} attempt={claim.attempt}"
