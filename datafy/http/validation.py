"""Request validation: turns a JSON body into an IncomingMessage or an ApiError naming the field."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import Request

from datafy.config import Settings, normalize_keyword
from datafy.errors import ApiError
from datafy.model import CONTROL_FIELDS, IncomingMessage, compact_json
from datafy.routes.chats import DEFAULT_ROUTE, MARK

MAX_USER_CHARS = 256
MAX_MESSAGE_ID_CHARS = 256
MAX_METADATA_FIELDS = 256
MAX_JSON_DEPTH = 32  # deeper values are refused: they would cost recursion in every later encode and decode
# A JSON \uD800-\uDFFF escape: the only way a JSON body can hold text that is not valid UTF-8 once stored.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
MAX_ANSWER_TIMEOUT_SECONDS = 86400.0  # a workflow that never answers holds its chat a day at most


def _check_stored_size(message: str | dict[str, Any], metadata: dict[str, Any], settings: Settings) -> None:
    """MAX_MESSAGE_BYTES bounds what one request stores: the message and its metadata together (413)."""
    if not metadata:
        return  # the message alone was checked already
    sizes = {name: len(compact_json({name: value}).encode()) for name, value in metadata.items()}
    message_size = len(message.encode()) if isinstance(message, str) else len(compact_json(message).encode())
    total = message_size + sum(sizes.values())
    if total > settings.max_message_bytes:
        largest = max(sizes, key=sizes.__getitem__)
        raise ApiError(413, "message_too_large", f"the message and its fields are {total} bytes; the limit is "
                       f"{settings.max_message_bytes} (the largest field is {largest})", largest)  # fmt: skip


def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx ApiError."""
    return parse_json_object(read_json_bytes(request))


def read_json_bytes(request: Request) -> bytes:
    """The raw body of a JSON request (for signature checks before parsing), or a 4xx ApiError."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
    return _read_body(request)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Raw bytes as a JSON object we can store, or a 400 ApiError."""
    overflow: list[str] = []
    try:
        text = raw.decode()  # strict UTF-8, as JSON must be (RFC 8259): no raw surrogates
        body = json.loads(text, parse_constant=_reject_constant, parse_float=lambda number: _float(number, overflow))
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "the body is not valid UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    for name, value in body.items():
        if _depth(value) > MAX_JSON_DEPTH:
            field = name.encode("utf-8", "replace").decode()
            raise ApiError(400, "invalid_field", f"{field} is nested deeper than {MAX_JSON_DEPTH} levels", field)
    if overflow or _SURROGATE_ESCAPE.search(text):
        _reject_unstorable(body)
    return body


def _depth(value: Any) -> int:
    """How deeply `value` nests lists and objects (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _read_body(request: Request) -> bytes:
    """The raw body; 413 past MAX_CONTENT_LENGTH, also for chunked bodies that announce no length."""
    limit = request.max_content_length
    if request.content_length is not None or limit is None:
        return request.get_data(cache=False)  # Werkzeug answers 413 from Content-Length
    # Without a length Werkzeug would cut the body at the limit silently; read one byte more to tell.
    stream = request.environ["wsgi.input"]
    raw = stream.read(limit + 1) if request.environ.get("wsgi.input_terminated") else b""
    if len(raw) > limit:
        raise ApiError(413, "body_too_large", "the request body is larger than MAX_BODY_BYTES")
    return raw


def _float(text: str, overflow: list[str]) -> float:
    value = float(text)
    if not math.isfinite(value):
        overflow.append(text)
    return value


def _reject_unstorable(body: dict[str, Any]) -> None:
    """400 naming the first field that holds a number beyond float range or a lone UTF-16 surrogate."""
    for name, value in body.items():
        try:
            compact_json({name: value}).encode()
        except ValueError:  # UnicodeEncodeError is a ValueError too
            field = name.encode("utf-8", "replace").decode()
            raise ApiError(
                400, "invalid_field", f"{field} holds a number out of range or invalid unicode", field
            ) from None


def parse_message(
    body: dict[str, Any],
    settings: Settings,
    item_fields: dict[str, Any] | None = None,
    text: str | None = None,
    route: str = DEFAULT_ROUTE,
) -> IncomingMessage:
    """Validate a message request of `route`; every other field becomes metadata. `item_fields` (kept on the item
    only) and `text` (an object message's share of the batch's text) come from the gateway endpoints, never from a
    body."""
    user = parse_user(body)
    message = _parse_text_or_object(body, settings)
    flush = body.get("flush", False)
    if not isinstance(flush, bool):
        raise ApiError(400, "invalid_field", "flush must be true or false", "flush")
    reason = "request" if flush else ""
    if not reason and isinstance(message, str) and normalize_keyword(message) in settings.flush_keywords:
        reason = "keyword"
    max_wait = _seconds(body, "max_wait", settings.max_wait or None, settings.max_ttl)
    max_messages = _parse_max_messages(body, settings)
    await_ms = parse_await(body, settings)
    metadata = {k: v for k, v in body.items() if k not in CONTROL_FIELDS}
    if len(metadata) > MAX_METADATA_FIELDS:
        raise ApiError(400, "too_many_fields", f"at most {MAX_METADATA_FIELDS} extra (metadata) fields per message")
    _check_stored_size(message, {**metadata, **(item_fields or {})}, settings)
    return IncomingMessage(
        user=user,
        message=message,
        ttl_ms=_to_ms(_seconds(body, "ttl", settings.default_ttl, settings.max_ttl)),
        metadata=metadata,
        message_id=_parse_message_id(body),
        max_wait_ms=_to_ms(max_wait) if max_wait else 0,
        max_messages=max_messages,
        flush_reason=reason,
        item_fields=item_fields or {},
        text=text,
        await_ms=await_ms,
        route=route,
    )


def parse_await(body: dict[str, Any], settings: Settings) -> int:
    """How long, in ms, a delivered batch of this chat holds the next one back waiting for the workflow's verdict:
    `await_answer` (default AWAIT_ANSWER) for `answer_timeout` seconds (default ANSWER_TIMEOUT); 0 when off."""
    wanted = body.get("await_answer", settings.await_answer)
    if isinstance(wanted, str) and wanted.strip().lower() in ("true", "false"):  # a query string, a no-code tool
        wanted = wanted.strip().lower() == "true"
    if not isinstance(wanted, bool):
        raise ApiError(400, "invalid_field", "await_answer must be true or false", "await_answer")
    timeout = _seconds(body, "answer_timeout", settings.answer_timeout, MAX_ANSWER_TIMEOUT_SECONDS)
    return _to_ms(timeout) if wanted and timeout else 0


def parse_user(body: dict[str, Any]) -> str:
    """The chat id: a 1-256 character string, or an integer taken as its decimal string."""
    user = _identifier(body, "user", MAX_USER_CHARS)
    if user is None:
        raise ApiError(400, "missing_field", "user is required", "user")
    if not user.strip():  # an expression that evaluated to nothing: never one shared chat for everyone
        raise ApiError(400, "invalid_field", "user must not be blank", "user")
    if user.startswith(MARK):  # it would read as another route's chat id
        raise ApiError(400, "invalid_field", "user must not start with the control character U+001F", "user")
    return user


def parse_ttl(body: dict[str, Any], settings: Settings) -> int:
    """The ttl field in milliseconds (DEFAULT_TTL when absent)."""
    return _to_ms(_seconds(body, "ttl", settings.default_ttl, settings.max_ttl))


def check_controls(body: dict[str, Any], settings: Settings) -> None:
    """400 unless ttl, max_wait and max_messages, where present, follow the rules of a message request."""
    _seconds(body, "ttl", settings.default_ttl, settings.max_ttl)
    _seconds(body, "max_wait", None, settings.max_ttl)
    _parse_max_messages(body, settings)
    parse_await(body, settings)


def _parse_text_or_object(body: dict[str, Any], settings: Settings) -> str | dict[str, Any]:
    if "message" not in body or body["message"] is None:
        raise ApiError(400, "missing_field", "message is required", "message")
    message = body["message"]
    if isinstance(message, str):
        if not message:
            raise ApiError(400, "invalid_field", "message must not be empty", "message")
        size = len(message.encode())
    elif isinstance(message, dict):
        size = len(compact_json(message).encode())  # as stored
    else:
        raise ApiError(400, "invalid_field", "message must be a string or a JSON object", "message")
    if size > settings.max_message_bytes:
        limit = settings.max_message_bytes
        raise ApiError(413, "message_too_large", f"message is {size} bytes; the limit is {limit}", "message")
    return message


def _parse_message_id(body: dict[str, Any]) -> str | None:
    return _identifier(body, "message_id", MAX_MESSAGE_ID_CHARS)


def _parse_max_messages(body: dict[str, Any], settings: Settings) -> int:
    value = body.get("max_messages")
    if value is None:
        return settings.max_messages
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "invalid_field", "max_messages must be a whole number", "max_messages")
    if not 0 <= value <= settings.max_batch_messages:  # 0: no limit but the hard caps, for this message
        raise ApiError(
            400, "invalid_field", f"max_messages must be between 0 and {settings.max_batch_messages}", "max_messages"
        )
    return value


def _identifier(body: dict[str, Any], name: str, max_chars: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ApiError(400, "invalid_field", f"{name} must be a string or an integer", name)
    text = str(value)
    if not 1 <= len(text) <= max_chars:
        raise ApiError(400, "invalid_field", f"{name} must be 1 to {max_chars} characters", name)
    return text


def _seconds(body: dict[str, Any], name: str, default: float | None, maximum: float) -> float | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, str):  # no-code tools often send numbers as strings
        try:
            value = float(value.strip())
        except ValueError:
            raise ApiError(400, "invalid_field", f"{name} must be a number of seconds", name) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, "invalid_field", f"{name} must be a number of seconds", name)
    if not (0 < value <= maximum):  # also false for NaN; compares huge integers without converting them
        raise ApiError(400, "invalid_field", f"{name} must be greater than 0 and at most {maximum:g}", name)
    return float(value)


def _to_ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
