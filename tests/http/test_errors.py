"""Every failure is a JSON reply (datafy/http/errors.py): unknown routes, wrong methods, Redis down."""

from __future__ import annotations

from dataclasses import replace

from flask.testing import FlaskClient

from datafy.config import Settings
from datafy.http import create_app
from tests.support.http import assert_error, post


def test_unknown_routes_and_wrong_methods_are_json(client: FlaskClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    response = client.get("/api/message")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    assert_error(client.put("/api/message", json={}), 405, "method_not_allowed")


def test_redis_down_gives_503_with_retry_after(settings: Settings) -> None:
    dead = replace(settings, redis_url="redis://127.0.0.1:1/0")
    client = create_app(dead).test_client()
    response = post(client, {"user": "u", "message": "oi"})
    assert_error(response, 503, "store_unavailable")
    assert "same message_id" in response.get_json()["error"]["message"]  # after a timeout it may be stored
    assert response.headers["Retry-After"] == "1"
    assert_error(client.get("/health"), 503, "store_unavailable")
