"""Recording delivery attempts in Redis: acknowledge, reschedule or dead-letter each, and log one line for it."""

from __future__ import annotations

import logging

from datafy.config import Settings
from datafy.errors import StoreUnavailableError
from datafy.monitor.sender import Sent
from datafy.retry import retry_delay
from datafy.store import Store

log = logging.getLogger(__name__)


class Recorder:
    """Writes the outcome of finished attempts back to Redis; acknowledgements go in one round trip."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store

    def record(self, attempts: list[Sent]) -> None:
        """Record every attempt; if Redis cannot take an outcome, that batch's lease runs out and it is tried again."""
        delivered = [sent for sent in attempts if sent.result.delivered]
        try:
            if delivered:
                self.store.ack_many([sent.claim for sent in delivered])
        except StoreUnavailableError as exc:
            log.warning("could not record %d delivery(ies), retried after their lease: %s", len(delivered), exc)
        else:
            for sent in delivered:
                log.info(
                    "delivered %s messages=%d reason=%s status=%d ms=%.0f",
                    _ids(sent), sent.messages, sent.reason, sent.result.status, sent.result.duration_ms,
                )  # fmt: skip
        for sent in attempts:
            if sent.result.delivered:
                continue
            try:
                self._record_failure(sent)
            except StoreUnavailableError as exc:
                log.warning("could not record delivery outcome %s: %s", _ids(sent), exc)

    def _record_failure(self, sent: Sent) -> None:
        """Schedule the next attempt, or move the batch to the dead letters when it is not retryable or spent."""
        claim, result = sent.claim, sent.result
        delay = retry_delay(claim.attempt, self.settings.webhook_retry_schedule, result.retry_after)
        if result.retryable and delay is not None:
            if self.store.retry_later(claim, delay, result.status, result.error):
                log.warning("delivery failed, retrying %s error=%r in=%.1fs", _ids(sent), result.error, delay)
            return
        moved, trimmed = self.store.bury(claim, result.status, result.error)
        if moved:
            why = "retries exhausted" if result.retryable else "not retryable"
            log.error("dead-lettered %s error=%r (%s)", _ids(sent), result.error, why)
        if trimmed:
            log.error("DEAD_LETTER_MAX reached: dropped %d oldest dead letter(s)", trimmed)


def _ids(sent: Sent) -> str:
    """The ids an operator greps for: user, batch, sequence (when known) and attempt."""
    claim = sent.claim
    seq = f" seq={sent.sequence}" if sent.sequence else ""
    return f"user={claim.user} batch={claim.batch_id}{seq} attempt={claim.attempt}"
