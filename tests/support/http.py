"""Requests to the in-process app and the shape of its error replies."""

from __future__ import annotations

import json

from flask.testing import FlaskClient


def post(client: FlaskClient, body: object, path: str = "/api/message", **kwargs: object):
    """POST `body` as JSON (the client's own json= would refuse what the tests must send)."""
    return client.post(path, data=json.dumps(body), content_type="application/json", **kwargs)


def assert_error(response, status: int, code: str, field: str | None = None) -> None:
    """The reply is our JSON error: this status, code and field, and a message."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["field"] == field
    assert body["error"]["message"]
