"""Admin endpoints: dead letters and pending chats. They need an admin key and are off without one. An environment
admin key (ADMIN_API_KEY) sees every route (?route=<name> picks a route's chat); a route's admin key its own."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from datafy.errors import ApiError
from datafy.http import context
from datafy.http.auth import EVERY_ROUTE, admin_access
from datafy.metrics import instruments
from datafy.model import iso_from_ms
from datafy.payload import webhook_body
from datafy.routes.chats import DEFAULT_ROUTE, chat_prefix, split_chat
from datafy.store import DeadLetter

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__)
MAX_PAGE = 500
MAX_OFFSET = 100_000


@bp.before_request
def _check_admin_key() -> None:
    g.access = admin_access(context.settings(), context.routes())


@bp.get("/api/dead-letters")
def list_dead_letters() -> Response:
    """Dead letters, newest first: ?offset=0&limit=50."""
    offset, limit = _page()
    if g.access.route is EVERY_ROUTE:
        total, letters = context.store().dead_letters.page(offset, limit)
    else:  # a route's own: filtered from every dead letter (at most DEAD_LETTER_MAX)
        _, every = context.store().dead_letters.page(0, context.settings().dead_letter_max)
        mine = [letter for letter in every if g.access.sees(letter.info["user"])]
        total, letters = len(mine), mine[offset : offset + limit]
    return jsonify(
        {
            "success": True,
            "total": total,
            "offset": offset,
            "limit": limit,
            "dead_letters": [_dead_letter_json(letter.batch_id, letter.body, letter.info) for letter in letters],
        }
    )


@bp.post("/api/dead-letters/<batch_id>/replay")
def replay_dead_letter(batch_id: str) -> Response:
    """Queue a dead letter for delivery again, under the same batch_id."""
    _own_dead_letter(batch_id)
    if not context.store().dead_letters.replay(batch_id):
        raise ApiError(404, "not_found", f"no dead letter {batch_id}", "batch_id")
    log.info("dead letter replayed batch=%s", batch_id)
    return jsonify({"success": True, "batch_id": batch_id, "message": "queued for delivery"})


@bp.delete("/api/dead-letters/<batch_id>")
def delete_dead_letter(batch_id: str) -> Response:
    """Forget a dead letter."""
    _own_dead_letter(batch_id)
    if not context.store().dead_letters.delete(batch_id):
        raise ApiError(404, "not_found", f"no dead letter {batch_id}", "batch_id")
    log.info("dead letter deleted batch=%s", batch_id)
    return jsonify({"success": True, "batch_id": batch_id, "message": "deleted"})


@bp.get("/api/chats")
def list_chats() -> Response:
    """Pending chats, soonest flush first: ?offset=0&limit=50."""
    offset, limit = _page()
    if g.access.route is EVERY_ROUTE:
        total, page = context.store().buffer.pending(offset, limit)
    else:
        total, page = context.store().buffer.pending_of(chat_prefix(g.access.route), offset, limit)
    chats = [_chat_json(chat, flush_at) for chat, flush_at in page]
    return jsonify({"success": True, "total": total, "offset": offset, "limit": limit, "chats": chats})


@bp.get("/api/chats/<chat:user>")
def peek_chat(user: str) -> Response:
    """The pending batch of one user."""
    snapshot = context.store().buffer.peek(g.access.chat(user))
    if snapshot is None:
        raise ApiError(404, "not_found", "no pending batch for this user", "user")
    messages = [item["m"] for _, item in snapshot.items]
    return jsonify(
        {
            "success": True,
            "user": user,
            "count": len(messages),
            "messages": messages,
            "flush_at": iso_from_ms(snapshot.flush_at_ms),
            "first_message_at": iso_from_ms(snapshot.first_ms),
        }
    )


@bp.post("/api/chats/<chat:user>/flush")
def flush_chat(user: str) -> Response:
    """Flush a user's pending batch now (flush_reason "manual")."""
    flushed = context.store().buffer.flush(g.access.chat(user), reason="manual")
    if flushed is None:
        raise ApiError(404, "not_found", "no pending batch for this user", "user")
    instruments.count_sealed(["manual"])
    log.info("manual flush user=%s count=%d", user, flushed.count)
    return jsonify({"success": True, "user": user, "flushed": flushed.count, "sequence": flushed.sequence})


@bp.delete("/api/chats/<chat:user>")
def discard_chat(user: str) -> Response:
    """Discard a user's pending batch (a human took over) and return what was discarded."""
    entries = context.store().buffer.discard(g.access.chat(user))
    if not entries:
        raise ApiError(404, "not_found", "no pending batch for this user", "user")
    log.info("pending batch discarded user=%s count=%d", user, len(entries))
    messages = [item["m"] for _, item in entries]
    return jsonify({"success": True, "user": user, "discarded": len(messages), "messages": messages})


def _page() -> tuple[int, int]:
    return _int_arg("offset", 0, 0, MAX_OFFSET), _int_arg("limit", 50, 1, MAX_PAGE)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_field", f"{name} must be a whole number", name) from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_field", f"{name} must be between {low} and {high}", name)
    return value


def _own_dead_letter(batch_id: str) -> None:
    """404 for a dead letter of another route, as for one that does not exist."""
    if g.access.route is EVERY_ROUTE:
        return
    letter: DeadLetter | None = context.store().dead_letters.get(batch_id)
    if letter is None or not g.access.sees(letter.info["user"]):
        raise ApiError(404, "not_found", f"no dead letter {batch_id}", "batch_id")


def _chat_json(chat: str, flush_at_ms: int) -> dict[str, Any]:
    route, user = split_chat(chat)
    return {"user": user, "flush_at": iso_from_ms(flush_at_ms), **({"route": route} if route != DEFAULT_ROUTE else {})}


def _dead_letter_json(batch_id: str, body: str, info: dict[str, Any]) -> dict[str, Any]:
    route, user = split_chat(info["user"])
    return {
        "batch_id": batch_id,
        "user": user,
        **({"route": route} if route != DEFAULT_ROUTE else {}),
        "attempts": info["attempts"],
        "last_status": info["last_status"],
        "last_error": info["last_error"],
        "reason": info.get("reason"),  # not_retryable, retries_exhausted or expired (None: dead before 1.1)
        "dead_at": iso_from_ms(info["dead_ms"]),
        "payload": webhook_body(body, route=route),
    }
