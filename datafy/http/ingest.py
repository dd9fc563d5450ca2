"""Client routes: append a message (see also fastpath.py), signal typing, health."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from datafy.http import context
from datafy.http.auth import ingest_access
from datafy.http.intake import RAISED, accept_message
from datafy.http.validation import parse_ttl, parse_user, read_json_bytes, read_json_object
from datafy.model import iso_from_ms

bp = Blueprint("ingest", __name__)


@bp.before_request
def _raise_fast_path_error() -> None:
    """The fast path (datafy/http/fastpath.py) hands every error to Flask, whose handlers render it."""
    raised = request.environ.pop(RAISED, None)
    if raised is not None:
        raise raised


@bp.post("/api/message")
@bp.post("/message")  # older clients of the original system
@bp.post("/")
def append_message() -> Response:
    """Buffer one message for its user and (re)start the user's silence timer."""
    reply = accept_message(
        context.routes(), context.settings(), context.store(), request.headers, lambda: read_json_bytes(request)
    )
    return jsonify(reply)


@bp.post("/api/typing")
def typing() -> Response:
    """The user is typing: push the pending batch's deadline back (no-op without one)."""
    table = context.routes()
    access = ingest_access(context.settings(), table)
    settings = table.settings(access.route) or context.settings()
    body = read_json_object(request)
    user = parse_user(body)
    deadline = context.store().buffer.extend(access.chat(user), parse_ttl(body, settings))
    if deadline is None:
        return jsonify({"success": True, "user": user, "pending": False, "message": "no pending batch"})
    return jsonify(
        {"success": True, "user": user, "pending": True, "flush_at": iso_from_ms(deadline), "message": "timer extended"}
    )


@bp.get("/health")
def health() -> Response:
    """Liveness and Redis reachability, for container healthchecks."""
    context.store().connection.ping()
    return jsonify({"status": "ok", "redis": "ok"})
