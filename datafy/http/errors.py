"""One error handler turns every failure into a JSON reply; no request ever sees a traceback."""

from __future__ import annotations

import logging
import math

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from datafy.errors import ApiError, StoreUnavailableError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024  # an oversized body up to this is read and dropped, so the client reads our 413


def register(app: Flask) -> None:
    """Install the JSON error handlers on `app`."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(StoreUnavailableError, _store_unavailable)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _reply(error: ApiError) -> tuple[Response, int]:
    response = jsonify(error.to_json())
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response, error.status


def _api_error(error: ApiError) -> tuple[Response, int]:
    if error.status == 413:
        return _too_large(error)
    return _reply(error)


def _too_large(error: ApiError) -> tuple[Response, int]:
    """A client still writing its body would get a broken pipe, not the reply: read the rest (up to a bound),
    then answer and close the connection."""
    length = request.content_length
    stream = request.environ.get("wsgi.input")
    if stream is not None and (length is None or length <= DRAIN_LIMIT_BYTES):
        left = DRAIN_LIMIT_BYTES if length is None else length
        while left > 0 and (chunk := stream.read(min(64 * 1024, left))):
            left -= len(chunk)
    response, status = _reply(error)
    response.headers["Connection"] = "close"
    return response, status


def _store_unavailable(error: StoreUnavailableError) -> tuple[Response, int]:
    log.warning("redis unavailable, answering 503: %s", error)
    # After a timeout the script may have run before the reply was lost: a retry is safe with a message_id.
    message = "the message store is unavailable; retry shortly, with the same message_id"
    response, status = _reply(ApiError(503, "store_unavailable", message))
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response, status


def _http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    code = (error.name or "error").lower().replace(" ", "_")
    if status == 413:
        return _too_large(ApiError(413, "body_too_large", "the request body is larger than MAX_BODY_BYTES"))
    elif status == 404:
        message = "no such route; messages go to POST /api/message"
    elif status == 405:
        message = "method not allowed on this route"
    else:
        message = error.description or error.name
    response, status = _reply(ApiError(status, code, message))
    if status == 405 and error.get_response().headers.get("Allow"):
        response.headers["Allow"] = error.get_response().headers["Allow"]
    return response, status


def _unexpected(error: Exception) -> tuple[Response, int]:
    log.exception("unexpected error while handling a request")
    return _reply(ApiError(500, "internal_error", "unexpected server error; see the API logs"))


def limit_error(status: str, retry_after_ms: int) -> ApiError:
    """429 with Retry-After: too many messages from one chat, or too many open chats (existing ones go on)."""
    retry_after = max(1, math.ceil(retry_after_ms / 1000))
    if status == "rate_limited":
        return ApiError(429, "rate_limited", "too many messages for this user this minute (RATE_LIMIT_PER_USER)",
                        "user", retry_after)  # fmt: skip
    if status == "key_rate_limited":
        return ApiError(429, "key_rate_limited", "too many messages with this API key this minute "
                        "(RATE_LIMIT_PER_KEY)", None, retry_after)  # fmt: skip
    return ApiError(429, "too_many_chats", "too many chats are waiting (MAX_PENDING_CHATS); open chats still take "
                    "messages", None, retry_after)  # fmt: skip
