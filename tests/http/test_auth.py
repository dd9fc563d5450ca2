"""Keys (datafy/http/auth.py): ingest needs its key by default, the admin routes need theirs and are off without
one, and neither key opens the other's routes."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask.testing import FlaskClient

from datafy.config import Settings
from datafy.errors import ConfigurationError
from datafy.http import create_app
from datafy.store import Store
from tests.support.http import assert_error, post


def test_ingest_needs_a_key_by_default_and_any_configured_key_opens_it(settings: Settings, store: Store) -> None:
    with pytest.raises(ConfigurationError, match=r"API_KEY is not set.*INGEST_AUTH=off"):
        create_app(replace(settings, ingest_auth=True, api_keys=()), store)
    client = create_app(replace(settings, ingest_auth=True, api_keys=("old", "new")), store).test_client()
    assert_error(post(client, {"user": "u", "message": "oi"}), 401, "unauthorized")
    assert_error(post(client, {"user": "u", "message": "oi"}, headers={"X-API-Key": ""}), 401, "unauthorized")
    assert_error(
        post(client, {"user": "u", "message": "oi"}, headers={"X-API-Key": "admin-secret"}), 401, "unauthorized"
    )
    assert post(client, {"user": "u", "message": "oi"}, headers={"Authorization": "Bearer old"}).status_code == 200
    assert post(client, {"user": "u", "message": "oi"}, headers={"X-API-Key": "new"}).status_code == 200
    assert_error(client.post("/api/typing", json={"user": "u"}), 401, "unauthorized")


def test_a_request_without_a_key_learns_nothing_about_its_body(settings: Settings, store: Store) -> None:
    client = create_app(replace(settings, ingest_auth=True, api_keys=("k",), max_body_bytes=64), store).test_client()
    assert_error(client.post("/api/message", data="oi", content_type="text/plain"), 401, "unauthorized")
    assert_error(client.post("/api/message", json={"user": "u", "message": "x" * 100}), 401, "unauthorized")
    assert_error(client.post("/api/message", json={"message": "oi"}), 401, "unauthorized")


def test_the_ingest_key_never_opens_the_admin_routes(settings: Settings, store: Store) -> None:
    """Regression: the admin key fell back to API_KEY, so every integration could read and discard chats."""
    client = create_app(
        replace(settings, ingest_auth=True, api_keys=("ingest",), admin_api_keys=()), store
    ).test_client()
    assert_error(client.get("/api/chats", headers={"X-API-Key": "ingest"}), 403, "admin_disabled")
    client = create_app(replace(settings, ingest_auth=True, api_keys=("ingest",)), store).test_client()
    assert_error(client.get("/api/chats", headers={"X-API-Key": "ingest"}), 401, "unauthorized")


def test_admin_routes_are_off_without_a_key(settings: Settings, store: Store) -> None:
    client = create_app(replace(settings, admin_api_keys=()), store).test_client()
    assert_error(client.get("/api/dead-letters"), 403, "admin_disabled")
    assert_error(client.get("/api/chats"), 403, "admin_disabled")


def test_a_non_ascii_admin_key_matches(settings: Settings, store: Store) -> None:
    for key in ("sécret", "voilà"):  # "à" is c3 a0 in UTF-8, and a0 is latin-1 whitespace
        client = create_app(replace(settings, admin_api_keys=(key,)), store).test_client()
        as_sent = key.encode().decode("latin-1")  # how a WSGI server hands over the header's UTF-8 bytes
        assert client.get("/api/chats", headers={"X-API-Key": as_sent}).status_code == 200, key
        assert_error(client.get("/api/chats", headers={"X-API-Key": "secret"}), 401, "unauthorized")


def test_admin_routes_need_the_key(client: FlaskClient) -> None:
    assert_error(client.get("/api/dead-letters"), 401, "unauthorized")
    assert_error(client.get("/api/dead-letters", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    ok = client.get("/api/dead-letters", headers={"Authorization": "Bearer admin-secret"})
    assert ok.status_code == 200 and ok.get_json()["total"] == 0
