"""The fast path (datafy/http/fastpath.py): message requests answered without Flask, with the same replies, and
every error and every other request rendered by Flask as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, request, request_started
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from datafy.store import Store
from tests.support.http import assert_error


@pytest.fixture
def flask_requests(app: Flask) -> Iterator[list[str]]:
    """The paths of the requests that reached Flask."""
    seen: list[str] = []

    def started(sender: Flask, **_: object) -> None:
        seen.append(request.path)

    request_started.connect(started, app)
    yield seen
    request_started.disconnect(started, app)


def _post(client: FlaskClient, body: bytes, content_type: str = "application/json", **environ: str) -> TestResponse:
    return client.post("/api/message", data=body, content_type=content_type, environ_overrides=environ)


def test_a_message_is_stored_without_entering_flask(
    client: FlaskClient, store: Store, flask_requests: list[str]
) -> None:
    response = _post(client, b'{"user": "5511", "message": "oi"}', "application/json; charset=utf-8")
    assert response.status_code == 200 and response.get_json()["buffered"] == 1
    assert flask_requests == []
    assert store.buffer.peek("5511") is not None


def test_its_reply_is_the_flask_views_byte_for_byte(client: FlaskClient, flask_requests: list[str]) -> None:
    body = b'{"user": "%s", "message": "ol\xc3\xa1", "message_id": "m1"}'
    fast = _post(client, body % b"fast")
    # A spelling of the JSON type that the fast path leaves to Flask: the view answers the same request.
    slow = _post(client, body % b"slow", "Application/JSON ; charset=utf-8")
    assert flask_requests == ["/api/message"]
    assert fast.headers["Content-Type"] == slow.headers["Content-Type"] == "application/json"
    assert fast.data.replace(b"fast", b"slow").split(b'"flush_at"')[0] == slow.data.split(b'"flush_at"')[0]
    assert fast.data.endswith(b"}\n") and int(fast.headers["Content-Length"]) == len(fast.data)


def test_its_errors_are_rendered_by_flask_and_store_nothing(
    client: FlaskClient, store: Store, flask_requests: list
) -> None:
    assert_error(_post(client, b'{"message": "oi"}'), 400, "missing_field", "user")
    assert_error(_post(client, b'{"user": "u", "message": "oi"'), 400, "invalid_json")
    assert len(flask_requests) == 2
    assert store.buffer.peek("u") is None


def test_a_body_shorter_than_its_length_is_a_400(client: FlaskClient, store: Store) -> None:
    response = _post(client, b'{"user": "u", "message": "oi"}', CONTENT_LENGTH="100")
    assert response.status_code == 400
    assert store.buffer.peek("u") is None


def test_other_routes_and_methods_still_reach_flask(client: FlaskClient, flask_requests: list[str]) -> None:
    assert client.get("/api/message").status_code == 405
    assert client.get("/health").status_code == 200
    assert flask_requests == ["/api/message", "/health"]
