"""Delivering one claimed batch: POST it, then acknowledge, reschedule or dead-letter it in Redis."""

from __future__ import annotations

import json
import logging

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
        except Exception:
            log.exception("delivery failed unexpectedly user=%s batch=%s", claim.user, claim.batch_id)

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
        delay = retry_delay(claim.attempt, self.settings.webhook_retry_schedule, result.retry_after)
        if result.retryable and delay is not None:
            if self.store.retry_later(claim, delay, result.status, result.error):
                log.warning("delivery failed, retrying %s error=%r in=%.1fs", ids, result.error, delay)
            return
        moved, trimmed = self.store.bury(claim, result.status, result.error)
        if moved:
            why = "retries exhausted" if result.retryable else "not retryable"
            log.error("dead-lettered %s error=%r (%s)", ids, result.error, why)
        if trimmed:
            log.error("DEAD_LETTER_MAX reached: dropped %d oldest dead letter(s)", trimmed)
