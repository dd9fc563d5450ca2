"""Gateway endpoints: Evolution API and WhatsApp Cloud API webhooks, buffered like POST /api/message.

The mapping is in datafy/sources/ (pure); here are only auth, the per-source debounce settings from the query
string, and the same validation and store calls as the core routes. Gateways retry what is not 2xx, so an event
we do not use gets 200 with the reason, and a refused body stores nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Response, jsonify, request

from datafy.config import Settings
from datafy.errors import ApiError
from datafy.http import context
from datafy.http.auth import Access, source_access
from datafy.http.errors import limit_error
from datafy.http.validation import (
    check_controls,
    parse_json_object,
    parse_message,
    parse_ttl,
    read_json_bytes,
    read_json_object,
)
from datafy.metrics import instruments
from datafy.model import IncomingMessage, iso_from_ms
from datafy.routes.chats import DEFAULT_ROUTE, chat_id, user_of
from datafy.sources import Action, Append, Discard, Ignore, MalformedError, Pause, Typing
from datafy.sources.evolution import parse_evolution
from datafy.sources.whatsapp import handshake_challenge, parse_whatsapp, phone_number_id, signature_matches

log = logging.getLogger(__name__)

bp = Blueprint("sources", __name__)

QUERY_CONTROLS = ("ttl", "max_wait", "max_messages")
# With "webhook by events" on, Evolution appends "/<event>" to the URL it was given, after any query string:
# "…/evolution?ttl=8" becomes "…/evolution?ttl=8/messages-upsert", "…?key=K" becomes "…?key=K/call". The event is
# its name lowercased with "-" for "." and "_" (webhook.controller.ts: messages-upsert, call, send-message-update),
# so a query value must not itself end in "/" and lowercase letters.
_EVENT_SUFFIX = re.compile(r"/[a-z]+(?:-[a-z]+)*$")


@bp.post("/api/sources/evolution")
@bp.post("/api/sources/evolution/<event>")  # "webhook by events": the body's own event decides, not the path
def evolution(event: str | None = None) -> Response:
    """Evolution API v2: buffer messages.upsert, extend the timer on presence.update, ignore the rest."""
    settings = context.settings()
    query = _query()
    # An admin key opens this endpoint too: only with it may the business's own message discard a pending batch
    # (EVOLUTION_FROM_ME=discard). A leaked ingest key must not reach customers' pending messages.
    access = source_access(settings, context.routes(), query.get("key", ""))
    body = read_json_object(request)
    try:
        actions = parse_evolution(body, settings.evolution_from_me, settings.group_messages, settings.max_message_bytes)
    except MalformedError as exc:
        raise _malformed(exc) from None
    instance = body.get("instance")
    route = _route_of(access, "evolution_instance", instance if isinstance(instance, str) else None)
    return _carry_out(actions, query, route, access)


@bp.get("/api/sources/whatsapp")
def whatsapp_handshake() -> Response | tuple[Response, int]:
    """Meta's subscription check: echo hub.challenge as plain text when hub.verify_token is ours, else 403."""
    settings = context.settings()
    _require_whatsapp_enabled(settings)
    challenge = handshake_challenge(request.args, settings.whatsapp_verify_token)
    if challenge is None:
        log.warning("whatsapp webhook verification refused (wrong hub.verify_token or hub.mode)")
        raise ApiError(403, "forbidden", "hub.verify_token does not match WHATSAPP_VERIFY_TOKEN")
    return Response(challenge, status=200, mimetype="text/plain")


@bp.post("/api/sources/whatsapp")
def whatsapp() -> Response:
    """WhatsApp Cloud API: check the signature of the raw body, then buffer every message it holds."""
    settings = context.settings()
    _require_whatsapp_enabled(settings)
    query = _query()
    access = source_access(settings, context.routes(), query.get("key", ""))
    raw = read_json_bytes(request)
    if not signature_matches(raw, request.headers.get("X-Hub-Signature-256"), settings.whatsapp_app_secret):
        log.warning("whatsapp webhook with a missing or wrong X-Hub-Signature-256 refused")
        raise ApiError(401, "invalid_signature", "X-Hub-Signature-256 is missing or does not match "
                       "WHATSAPP_APP_SECRET")  # fmt: skip
    body = parse_json_object(raw)
    try:
        actions = parse_whatsapp(body, settings.group_messages, settings.evolution_from_me)
    except MalformedError as exc:
        raise _malformed(exc) from None
    route = _route_of(access, "whatsapp_phone_number_id", phone_number_id(body))
    return _carry_out(actions, query, route, access)


def _require_whatsapp_enabled(settings: Settings) -> None:
    if not settings.whatsapp_app_secret:
        raise ApiError(404, "source_disabled", "the WhatsApp Cloud API webhook is off: set WHATSAPP_APP_SECRET (and "
                       "WHATSAPP_VERIFY_TOKEN) to enable it")  # fmt: skip


def _query() -> dict[str, str]:
    """The query parameters, without the event name Evolution may have glued to the last one."""
    raw = _EVENT_SUFFIX.sub("", request.query_string.decode("utf-8", "replace"))
    return dict(parse_qsl(raw, keep_blank_values=True))


def _controls(query: dict[str, str]) -> dict[str, Any]:
    """ttl, max_wait and max_messages from the query, as body fields: the JSON rules then apply unchanged."""
    controls: dict[str, Any] = {name: query[name] for name in QUERY_CONTROLS if name in query}
    if controls.get("max_messages", "").strip().isdigit():
        controls["max_messages"] = int(controls["max_messages"])  # a query has only strings; JSON wants a number
    return controls


def _malformed(exc: MalformedError) -> ApiError:
    log.warning("%s webhook refused: %s", request.path.split("/")[3], exc)  # the path only, never the payload
    code = "missing_field" if str(exc).endswith("is missing") else "invalid_field"
    return ApiError(400, code, str(exc), exc.path)


def _route_of(access: Access, kind: str, value: str | None) -> str:
    """A route's key names its route; an environment key leaves it to the route that matches the event (the
    Evolution instance, Meta's phone_number_id), or `default`."""
    if access.route is not None:
        return access.route
    return (context.routes().by_match(kind, value) if value else None) or DEFAULT_ROUTE


def _carry_out(actions: list[Action], query: dict[str, str], route: str, access: Access) -> Response:
    """Validate every message first (a refused body stores nothing), then apply the actions in order, in `route`.
    Only an admin key's events may discard a pending batch."""
    settings = context.routes().settings(route) or context.settings()
    controls = _controls(query)
    check_controls(controls, settings)  # a bad URL is refused on every event, not only when a message comes
    validated: list[tuple[Action, IncomingMessage | None]] = []
    for action in actions:
        msg = None
        if isinstance(action, Append):
            fields = {**action.metadata, **controls, "user": action.user, "message": action.message,
                      "message_id": action.message_id}  # fmt: skip
            msg = parse_message(fields, settings, action.item_fields, action.text, route)
        validated.append((action, msg))
    typing_ttl = parse_ttl(controls, settings) if any(isinstance(a, Typing) for a in actions) else 0
    results = [_apply(action, msg, typing_ttl, route, access, settings) for action, msg in validated]
    counts: dict[str, int] = {}
    for result in results:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    summary = ", ".join(f"{count} {status}" for status, count in counts.items())
    return jsonify({"success": True, "results": results, "message": summary})


def _apply(
    action: Action, msg: IncomingMessage | None, typing_ttl: int, route: str, access: Access, settings: Settings
) -> dict[str, Any]:
    """Carry out one action in `route`, whose `settings` the caller already looked up."""
    store = context.store()
    if isinstance(action, Discard) and not access.admin:
        log.warning("fromMe event ignored user=%s: discarding a pending batch needs the admin key", action.user)
        action = Ignore("fromMe: discarding a pending batch needs ADMIN_API_KEY on this webhook "
                        "(EVOLUTION_FROM_ME=discard)", action.user)  # fmt: skip
    if isinstance(action, Ignore):
        log.debug("source event ignored user=%s reason=%s", action.user, action.reason)
        return {"status": "ignored", "reason": action.reason, **({"user": action.user} if action.user else {})}
    if isinstance(action, Typing):
        chat = store.aliases.resolve(chat_id(route, action.user))  # a presence may name the customer's other id
        user = user_of(chat)
        deadline = store.buffer.extend(chat, typing_ttl)
        flush_at = iso_from_ms(deadline) if deadline is not None else None
        return {"status": "typing", "user": user, "pending": deadline is not None, "flush_at": flush_at}
    if isinstance(action, Pause):  # not destructive: the ingest key may (a person answered on the phone)
        until = store.answers.pause(chat_id(route, action.user), context.settings().human_pause)
        log.info("chat paused: the business answered user=%s", action.user)
        return {"status": "paused", "user": action.user, "paused_until": iso_from_ms(until)}
    if isinstance(action, Discard):
        dropped = store.buffer.discard(chat_id(route, action.user))
        if dropped:
            log.info("pending batch discarded: the business answered user=%s count=%d", action.user, len(dropped))
        return {"status": "discarded", "user": action.user, "discarded": len(dropped)}
    assert msg is not None
    result = store.buffer.append(msg, access.key_id, settings, context.routes().pending_cap(route))
    if isinstance(action, Append) and action.alias and not result.refused:
        store.aliases.remember(chat_id(route, action.alias), msg.chat)
    if result.refused:
        raise limit_error(result.status, result.retry_after_ms)
    instruments.count_append(result, route)
    reply: dict[str, Any] = {
        "status": "duplicate" if result.status == "duplicate" else "buffered",
        "user": msg.user,
        "message_id": msg.message_id,
        "buffered": result.buffered,
        "flush_at": iso_from_ms(result.flush_at_ms) if result.flush_at_ms else None,
    }
    if result.status == "flushed":
        reply.update(flushed=True, batch_id=result.batch_id)
        log.info("flushed on append user=%s batch=%s count=%d", msg.user, result.batch_id, result.buffered)
    if result.sealed is not None:
        sealed = result.sealed  # the same shape as POST /api/message's
        reply["sealed"] = {"batch_id": sealed.batch_id, "sequence": sealed.sequence, "message_count": sealed.count,
                           "flush_reason": sealed.reason}  # fmt: skip
    return reply
