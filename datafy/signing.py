"""Signed batches, Standard Webhooks (standardwebhooks.com): webhook-id, webhook-timestamp, webhook-signature.

The signature is `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per configured secret,
space-separated, so a receiver that knows any of the secrets verifies (rotation without downtime).
"""

from __future__ import annotations

import base64
import binascii
import time
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the spec asks for 24 to 64 random bytes


def check_secret(secret: str) -> None:
    """Raise ValueError unless `secret` is a `whsec_<base64>` secret of at least MIN_SECRET_BYTES bytes."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError("too short")


class Signer:
    """Signs each POST with every secret; the id is the batch_id, so it stays the same across retries."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.webhooks = [Webhook(secret) for secret in secrets]

    def headers(self, batch_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
        """The three Standard Webhooks headers for one attempt at `now` (unix seconds)."""
        # sign() reads the datetime's clock as UTC whatever its zone, so it gets an aware UTC time.
        moment = datetime.fromtimestamp(int(time.time() if now is None else now), tz=UTC)
        text = body.decode()  # sign() takes text and encodes it as UTF-8 again: exactly the bytes we send
        signatures = " ".join(webhook.sign(batch_id, moment, text) for webhook in self.webhooks)
        return {"webhook-id": batch_id, "webhook-timestamp": str(int(moment.timestamp())),
                "webhook-signature": signatures}  # fmt: skip
