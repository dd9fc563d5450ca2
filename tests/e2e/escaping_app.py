"""The real API behind a WSGI middleware that fails on one path: an exception that escapes the Flask app and
reaches gunicorn's own error handler, as any middleware (a tracer, a proxy fix) or server-side fault can make."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from datafy.launch import api_app

ESCAPE_PATH = "/escape"

_api = api_app()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The API, except that ESCAPE_PATH raises outside Flask's error handlers."""
    if environ.get("PATH_INFO") == ESCAPE_PATH:
        raise RuntimeError("a middleware failed")
    return _api(environ, start_response)
