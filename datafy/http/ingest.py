"""Client routes: append a message, signal typing, health."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from datafy.http import context
from datafy.http.auth import ingest_access
from datafy.http.errors import limit_error
from datafy.http.validation import parse_message, parse_ttl, parse_user, read_json_object
from datafy.metrics import instruments
from datafy.model import iso_from_ms

log = logging.getLogger(__name__)

bp = Blueprint("ingest", __name__)


@bp.post("/api/message")
@bp.post("/message")  # older clients of the original system
@bp.post("/")
def append_message() -> Response:
    """Buffer one message for its user and (re)start the user's silence timer."""
    table = context.routes()
    access = ingest_access(context.settings(), table)
    settings = table.settings(access.route) or context.settings()
    msg = parse_message(read_json_object(request), settings, route=access.route)
    result = context.store().buffer.append(msg, access.key_id, settings, table.pending_cap(access.route))
    if result.refused:
        raise limit_error(result.status, result.retry_after_ms)
    instruments.count_append(result, msg.route)
    # flush_at: when the batch is (or was, when flushed now) due; null for a duplicate with nothing pending.
    flush_at = iso_from_ms(result.flush_at_ms) if result.flush_at_ms else None
    reply: dict[str, object] = {"success": True, "user": msg.user, "buffered": result.buffered, "flush_at": flush_at}
    if result.status == "flushed":
        reply["flushed"] = True
        reply["batch_id"] = result.batch_id
        reply["message"] = f"batch of {result.buffered} message(s) flushed now ({msg.flush_reason or 'limit'})"
        log.info("flushed on append user=%s batch=%s count=%d", msg.user, result.batch_id, result.buffered)
    elif result.status == "duplicate":
        reply["duplicate"] = True
        reply["message"] = "duplicate message_id ignored"
    else:
        reply["message"] = f"message buffered; {result.buffered} waiting"
    if result.sealed is not None:  # the byte cap closed the open batch; this message starts the next one
        sealed = result.sealed
        reply["sealed"] = {"batch_id": sealed.batch_id, "sequence": sealed.sequence,
                           "message_count": sealed.count, "flush_reason": sealed.reason}  # fmt: skip
        reply["message"] = (
            f"the open batch of {sealed.count} message(s) was sent ({sealed.reason}); this message starts the next one"
        )
        log.info("flushed on append user=%s batch=%s count=%d reason=%s", msg.user, sealed.batch_id, sealed.count,
                 sealed.reason)  # fmt: skip
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
