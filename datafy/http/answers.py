"""Answering well while people keep typing: the answer guard (did the chat say more since this batch?) and the
workflow's verdict on a delivered batch (answered, or unanswered: its messages go to the next batch). The
workflow holds the ingest key, so these take it, or an admin key."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, jsonify, request

from datafy.config.env import parse_duration
from datafy.errors import ApiError
from datafy.http import context
from datafy.http.auth import answer_access
from datafy.http.validation import read_json_object
from datafy.metrics import instruments
from datafy.model import iso_from_ms
from datafy.store.answers import Verdict

log = logging.getLogger(__name__)

bp = Blueprint("answers", __name__)
MAX_PAUSE_SECONDS = 7 * 86400


@bp.before_request
def _check_key() -> None:
    """As open as ingest: the ingest key (or an admin key) unless INGEST_AUTH=off. A route's keys reach its own
    chats only: another route's chat is, for them, a chat that does not exist."""
    settings = context.settings()
    g.access = answer_access(settings, context.routes())
    if "/batches/" in request.path and not settings.answer_window:
        raise ApiError(404, "answer_window_off", "the answer routes are off: ANSWER_WINDOW is 0")


@bp.get("/api/chats/<chat:user>/batches/<batch_id>")
def batch_state(user: str, batch_id: str) -> Response:
    """The answer guard: call it right before sending a reply; if `newer` is true, drop the reply."""
    state = context.store().answers.state(g.access.chat(user), batch_id)
    if state is None:
        raise _unknown(user, batch_id)
    return jsonify({"success": True, "user": user, "batch_id": batch_id, "sequence": state.sequence,
                    "state": state.state, "newer": state.newer_messages > 0,
                    "newer_messages": state.newer_messages})  # fmt: skip


@bp.post("/api/chats/<chat:user>/batches/<batch_id>/answered")
def answered(user: str, batch_id: str) -> Response:
    """The workflow answered this batch."""
    verdict = context.store().answers.answered(g.access.chat(user), batch_id)
    _check(verdict, user, batch_id, "answered")
    _log_verdict(verdict, user, batch_id)
    return jsonify({"success": True, "user": user, "batch_id": batch_id, "state": "answered"})


@bp.post("/api/chats/<chat:user>/batches/<batch_id>/unanswered")
def unanswered(user: str, batch_id: str) -> Response:
    """The workflow did not answer: the batch's messages go back to the front of the chat's buffer."""
    verdict = context.store().answers.unanswered(g.access.chat(user), batch_id)
    _check(verdict, user, batch_id, "unanswered")
    _log_verdict(verdict, user, batch_id)
    reply: dict[str, object] = {"success": True, "user": user, "batch_id": batch_id, "state": "unanswered",
                                "carried": verdict.carried}  # fmt: skip
    reply["flush_at"] = iso_from_ms(verdict.flush_at_ms) if verdict.flush_at_ms else None
    return jsonify(reply)


@bp.post("/api/chats/<chat:user>/pause")
def pause(user: str) -> Response:
    """A person takes the chat over: `{"for": "30m"}` (seconds, or with s, m or h). Its batches still go out,
    carrying `paused` and `paused_until`, so the workflow routes them to that person."""
    seconds = _parse_for(read_json_object(request))
    until = context.store().answers.pause(g.access.chat(user), seconds)
    log.info("paused user=%s for=%.0fs", user, seconds)
    return jsonify({"success": True, "user": user, "paused": True, "paused_until": iso_from_ms(until)})


@bp.post("/api/chats/<chat:user>/resume")
def resume(user: str) -> Response:
    """The chat goes back to the AI."""
    was_paused = context.store().answers.resume(g.access.chat(user))
    log.info("resumed user=%s was_paused=%s", user, was_paused)
    return jsonify({"success": True, "user": user, "paused": False, "was_paused": was_paused})


def _parse_for(body: dict[str, object]) -> float:
    value = body.get("for")
    if value is None:
        raise ApiError(400, "missing_field", "for is required: seconds, or a duration like 30m or 2h", "for")
    try:
        seconds = parse_duration(value) if isinstance(value, str) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_field", "for must be seconds, or a duration like 30m or 2h", "for") from None
    if isinstance(value, bool) or not (1 <= seconds <= MAX_PAUSE_SECONDS):
        raise ApiError(400, "invalid_field", f"for must be between 1 s and {MAX_PAUSE_SECONDS // 86400} days", "for")
    return seconds


def _log_verdict(verdict: Verdict, user: str, batch_id: str) -> None:
    if verdict.outcome == "same":
        return
    instruments.VERDICTS.labels(verdict.state).inc()
    released = f" released=hold sealed={verdict.sealed or '-'}" if verdict.released else ""
    log.info("%s user=%s batch=%s carried=%d%s", verdict.state, user, batch_id, verdict.carried, released)


def _check(verdict: Verdict, user: str, batch_id: str, wanted: str) -> None:
    if verdict.outcome == "unknown":
        state = context.store().answers.state(g.access.chat(user), batch_id)
        if state is None:
            raise _unknown(user, batch_id)
        raise ApiError(409, "not_delivered", f"batch {batch_id} is {state.state}, not delivered yet", "batch_id")
    if verdict.outcome == "conflict":
        raise ApiError(409, "already_" + verdict.state, f"batch {batch_id} is already {verdict.state}; it cannot be "
                       f"{wanted} too", "batch_id")  # fmt: skip


def _unknown(user: str, batch_id: str) -> ApiError:
    return ApiError(404, "batch_not_found", f"no batch {batch_id} of this chat within ANSWER_WINDOW", "batch_id")
