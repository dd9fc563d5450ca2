"""Webhook signing secrets as an operator writes them."""

from __future__ import annotations

import base64
import os


def new_secret() -> str:
    """A fresh WEBHOOK_SECRET in the Standard Webhooks form (whsec_ + base64 of 32 bytes)."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()
