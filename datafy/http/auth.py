"""API keys: clients send `Authorization: Bearer <key>` or `X-API-Key: <key>`."""

from __future__ import annotations

import hmac

from flask import request

from datafy.errors import ApiError


def presented_key() -> str:
    """The key the client sent, or ''."""
    header = request.headers.get("Authorization", "")
    # Only spaces and tabs are trimmed: str.strip() would also eat latin-1 \xa0 and \x85, which end some
    # UTF-8 keys as WSGI hands them over ("à" arrives as "\xc3\xa0").
    if header[:7].lower() == "bearer ":
        return header[7:].strip(" \t")
    return request.headers.get("X-API-Key", "").strip(" \t")


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
    sent_utf8 = hmac.compare_digest(presented.encode("latin-1", "replace"), expected)
    sent_latin1 = hmac.compare_digest(presented.encode(), expected)
    return sent_utf8 or sent_latin1
