"""Delivering one claimed batch: POST it, then acknowledge, reschedule or dead-letter it in Redis."""

from __future__ import annotations

import json
import logging
from contextlib import suppress

from datafy.config import Settings
from datafy.errors import StoreUnavailableError
from datafy.model import Claim, webhook_body
from datafy.retry import retry_delay
from datafy.store import Store
from datafy.webhook import WebhookClient

log = logging.getLogger(__name__)


class Deliverer:
    """Runs on the monitor's thread pool; every outcome is written back to Redis before it returns."""

    def __init__(self, settings: Settings, store: Store, webhook: WebhookClient) -> None:
        self.settings = settings
        self.store = store
        self.webhook = webhook

    def deliver(self, claim: Claim) -> None:
        """One delivery attempt of a leased batch."""
        try:
            self._deliver(claim)
        except StoreUnavailableError as exc:
            # The outcome could not be recorded; the lease runs out and the batch is tried again.
            log.warning("could not record delivery outcome user=%s batch=%s: %s", claim.user, claim.batch_id, exc)
        except Exception as exc:
            # A bug, not the receiver: still record an outcome, so the batch follows the retry schedule to
            # the dead letters instead of being leased again forever.
            log.exception("delivery failed unexpectedly user=%s batch=%s", claim.user, claim.batch_id)
            with suppress(Exception):
                self._record_failure(claim, None, f"internal error: {type(exc).__name__}", retryable=True)

    def _deliver(self, claim: Claim) -> None:
        body = webhook_body(claim.body)
        payload = json.dumps(body, ensure_ascii=False).encode()
        result = self.webhook.send_batch(payload, claim.batch_id)
        ids = f"user={claim.user} batch={claim.batch_id} seq={body['sequence']} attempt={claim.attempt}"
        if result.delivered:
            self.store.ack(claim)
            log.info(
                "delivered %s messages=%d reason=%s status=%d ms=%.0f",
                ids, body["message_count"], body["flush_reason"], result.status, result.duration_ms,
            )  # fmt: skip
            return
        self._record_failure(claim, result.status, result.error, result.retryable, result.retry_after, ids)

    def _record_failure(
        self,
        claim: Claim,
        status: int | None,
        error: str,
        retryable: bool,
        retry_after: float | None = None,
        ids: str = "",
    ) -> None:
        """Schedule the next attempt, or move the batch to the dead letters when it is not retryable or spent."""
        ids = ids or f"user={claim.user} batch={claim.batch_id} attempt={claim.attempt}"
        delay = retry_delay(claim.attempt, self.settings.webhook_retry_schedule, retry_after)
        if retryable and delay is not None:
            if self.store.retry_later(claim, delay, status, error):
                log.warning("delivery failed, retrying %s error=%r in=%.1fs", ids, error, delay)
            return
        moved, trimmed = self.store.bury(claim, status, error)
        if moved:
            why = "retries exhausted" if retryable else "not retryable"
            log.error("dead-lettered %s error=%r (%s)", ids, error, why)
        if trimmed:
            log.error("DEAD_LETTER_MAX reached: dropped %d oldest dead letter(s)", trimmed)
