"""API keys: clients send `Authorization: Bearer <key>` or `X-API-Key: <key>`."""

from __future__ import annotations

import hmac

from flask import request

from datafy.errors import ApiError


def presented_key() -> str:
    """The key the client sent, or ''."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key", "").strip()


def require_key(expected: str) -> None:
    """Raise 401 unless the client presented `expected` (no-op when `expected` is '')."""
    if expected and not _matches(presented_key(), expected.encode()):
        raise ApiError(401, "unauthorized", "a valid API key is required (Authorization: Bearer <key>)")


def require_admin_key(expected: str) -> None:
    """Admin routes exist only once a key is configured, and then need it."""
    if not expected:
        raise ApiError(
            403, "admin_disabled", "admin routes are disabled: set ADMIN_API_KEY (or API_KEY) to enable them"
        )
    require_key(expected)


def _matches(presented: str, expected: bytes) -> bool:
    """Constant-time match. WSGI decodes header bytes as latin-1: curl sends a non-ASCII key as UTF-8 bytes,
    Python's http.client as latin-1 bytes, so both readings are compared."""
    as_utf8 = hmac.compare_digest(presented.encode("latin-1", "replace"), expected)
    as_latin1 = hmac.compare_digest(presented.encode(), expected)
    return as_utf8 or as_latin1
