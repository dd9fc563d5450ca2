"""POST /api/message without Flask's machinery: a WSGI layer in front of the Flask app for the one hot route.

Per message, Flask's request context, routing and Response objects cost about as much CPU as our own work
(docs/PERFORMANCE.md, "The reply storm"). A JSON body of a known length sent to a message path is answered
here by the very code the Flask view runs (`intake.accept_message`). Anything else goes to Flask untouched,
and so does every error met here, raised again inside Flask (`intake.RAISED`, see ingest.py) so that its
handlers render it: one implementation, one set of error replies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import ClientDisconnected

from datafy.config import Settings
from datafy.http.intake import RAISED, accept_message
from datafy.routes.table import RouteTable
from datafy.store import Store

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MESSAGE_PATHS = frozenset({"/api/message", "/message", "/"})  # the paths of ingest.append_message
# Exactly the types Werkzeug reads as JSON that clients send; any other spelling takes the Flask route.
JSON_TYPES = frozenset({"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"})


class FastPath:
    """The WSGI app: message requests answered directly, the rest passed to `app` (Flask's wsgi_app)."""

    def __init__(self, app: WSGIApplication, settings: Settings, store: Store, table: RouteTable) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.table = table

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH", "")
        if (
            environ["REQUEST_METHOD"] != "POST"
            or environ.get("PATH_INFO") not in MESSAGE_PATHS
            or environ.get("CONTENT_TYPE", "").lower() not in JSON_TYPES
            or not length.isdigit()  # chunked: Flask reads it, bounded (validation._read_body)
            or int(length) > self.settings.max_body_bytes  # Flask answers 413 and drains the body
        ):
            return self.app(environ, start_response)
        try:
            headers = EnvironHeaders(environ)
            reply = accept_message(self.table, self.settings, self.store, headers, lambda: _read(environ, int(length)))
        except Exception as exc:
            environ[RAISED] = exc
            return self.app(environ, start_response)
        return _json_reply(reply, start_response)


def _read(environ: WSGIEnvironment, length: int) -> bytes:
    raw = environ["wsgi.input"].read(length)
    if len(raw) < length:
        raise ClientDisconnected()  # as Werkzeug's request.get_data would
    return raw


def _json_reply(reply: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """The bytes and headers Flask's jsonify gives (compact, ASCII-escaped, a newline at the end)."""
    body = (json.dumps(reply, separators=(",", ":")) + "\n").encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
