"""GET /api/status (datafy/http/status.py): the status document, behind the admin key."""

from __future__ import annotations

from flask.testing import FlaskClient

ADMIN = {"Authorization": "Bearer admin-secret"}


def test_status_needs_the_admin_key(client: FlaskClient) -> None:
    assert client.get("/api/status").status_code == 401
    assert client.get("/api/status", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/api/status", headers=ADMIN).status_code == 200
