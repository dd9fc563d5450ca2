"""The OpenAPI document: served, complete (every Flask route and no other), and real replies conform to it."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from datafy.config import Settings
from datafy.http import create_app
from datafy.store import Store
from devtools.contract import METHODS, Contract
from devtools.oracle import datafy_keys
from tests.support.gateway_bodies import fixture

ADMIN = {"Authorization": "Bearer admin-secret"}
APP_SECRET = "meta-app-secret"


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract()


class Checked:
    """A test client whose every reply is checked against the document."""

    def __init__(self, client: FlaskClient, contract: Contract) -> None:
        self.client, self.contract = client, contract

    def __call__(self, method: str, path: str, body: Any = None, status: int = 200, **kwargs: Any):
        if body is not None and "data" not in kwargs:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        response = self.client.open(path, method=method, **kwargs)
        assert response.status_code == status, response.get_data(as_text=True)
        route = path.split("?")[0]
        self.contract.check(method, route, response.status_code, response.headers, response.get_data())
        return response


def rules(app: Flask) -> set[tuple[str, str]]:
    """(METHOD, path template) of every URL rule, in OpenAPI's spelling."""
    return {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_route_is_documented_and_nothing_else(app: Flask, contract: Contract) -> None:
    """So the document cannot drift: a new route, or a removed one, fails here until the document says so."""
    documented, live = contract.operations(), rules(app)
    assert live - documented == set(), "routes missing from datafy/http/openapi.json"
    assert documented - live == set(), "documented operations that no route serves"
    for template, item in contract.doc["paths"].items():
        assert set(item) <= set(METHODS), template


def test_the_document_is_served_and_well_formed(client: FlaskClient, contract: Contract) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    served = response.get_json()
    assert served == contract.doc and served["openapi"] == "3.1.0"
    refs = set(re.findall(r'"\$ref": "#/([^"]+)"', response.get_data(as_text=True)))
    for ref in refs:  # every reference resolves
        node = served
        for part in ref.split("/"):
            node = node[part.replace("~1", "/")]
    for (method, template), operation in (
        ((m, t), served["paths"][t][m]) for t in served["paths"] for m in METHODS if m in served["paths"][t]
    ):
        assert operation["responses"], f"{method} {template} documents no reply"


def test_ingest_replies_conform(client: FlaskClient, contract: Contract, redis_client) -> None:
    call = Checked(client, contract)
    for path in ("/api/message", "/message", "/"):
        call("POST", path, {"user": "ana", "message": "oi", "ttl": "3", "message_id": "m1", "pushName": "Ana"})
    duplicate = call("POST", "/api/message", {"user": "ana", "message": "oi", "message_id": "m1"}).get_json()
    assert duplicate["duplicate"] is True
    flushed = call("POST", "/api/message", {"user": "ana", "message": {"type": "image"}, "flush": True}).get_json()
    assert flushed["flushed"] is True
    assert call("POST", "/api/message", {"user": 5511, "message": "oi", "max_messages": 1}).get_json()["flushed"]
    assert call("POST", "/api/typing", {"user": "bia"}).get_json()["pending"] is False
    call("POST", "/api/message", {"user": "bia", "message": "oi", "max_wait": 60})
    assert call("POST", "/api/typing", {"user": "bia", "ttl": 20}).get_json()["pending"] is True
    before = datafy_keys(redis_client)
    for path in ("/api/message", "/api/typing"):
        call("POST", path, data="{", content_type="application/json", status=400)
        call("POST", path, [1], status=400)
        call("POST", path, {"message": "oi"}, status=400)
        call("POST", path, {"user": "x", "message": "oi", "ttl": 0}, status=400)
        call("POST", path, data="{}", content_type="text/plain", status=415)
        call("POST", path, data=b"x" * 1_100_000, content_type="application/json", status=413)
    call("POST", "/api/message", {"user": "x", "message": "oi", **{f"f{i}": i for i in range(300)}}, status=400)
    call("POST", "/api/message", {"user": "x", "message": "é" * 40_000}, status=413)
    call("POST", "/api/message", {"user": "x", "message": "oi", "meta": "a" * 70_000}, status=413)
    call("GET", "/api/message", status=405)
    call("GET", "/nowhere", status=404)
    assert datafy_keys(redis_client) == before, "a rejected request changed Redis"
    call("GET", "/health")
    call("GET", "/openapi.json")


def test_limits_auth_and_outages_conform(settings: Settings, store: Store, contract: Contract) -> None:
    limited = replace(settings, rate_limit_per_user=1, ingest_auth=True, api_keys=("ingest-key",))
    call = Checked(create_app(limited, Store(limited)).test_client(), contract)
    key = {"X-API-Key": "ingest-key"}
    call("POST", "/api/message", {"user": "u", "message": "oi"}, status=401)
    call("POST", "/api/typing", {"user": "u"}, headers={"Authorization": "Bearer wrong"}, status=401)
    call("POST", "/api/message", {"user": "u", "message": "oi"}, headers=key)
    assert call("POST", "/api/message", {"user": "u", "message": "2"}, headers=key, status=429).headers["Retry-After"]
    call("GET", "/api/chats", headers=key, status=401)  # the ingest key never opens admin routes
    few = replace(settings, max_pending_chats=16)  # one open chat per partition
    call = Checked(create_app(few, Store(few)).test_client(), contract)
    statuses = {
        call.client.post("/api/message", json={"user": f"u{i}", "message": "oi"}).status_code for i in range(80)
    }
    assert 429 in statuses
    call("POST", "/api/message", {"user": "another", "message": "oi"}, status=429)
    dead = replace(settings, redis_url="redis://127.0.0.1:1/0")
    call = Checked(create_app(dead).test_client(), contract)
    call("POST", "/api/message", {"user": "u", "message": "oi"}, status=503)
    call("POST", "/api/typing", {"user": "u"}, status=503)
    call("GET", "/health", status=503)
    call("GET", "/api/chats", headers=ADMIN, status=503)
    call("POST", "/api/sources/evolution", fixture("evolution/text"), status=503)
    closed = replace(settings, admin_api_keys=())
    call = Checked(create_app(closed, store).test_client(), contract)
    call("GET", "/api/dead-letters", status=403)
    call("DELETE", "/api/chats/u", status=403)


def test_admin_replies_conform(settings: Settings, store: Store, contract: Contract) -> None:
    small = replace(settings, max_batch_bytes=1024)
    call = Checked(create_app(small, Store(small)).test_client(), contract)
    call("POST", "/api/message", {"user": "a/b c", "message": "a" * 600, "lang": "pt"})
    call("POST", "/api/message", {"user": "a/b c", "message": {"type": "audio"}})
    sealed = call("POST", "/api/message", {"user": "a/b c", "message": "b" * 600}).get_json()["sealed"]
    call("POST", "/api/message", {"user": "zé", "message": "oi"})
    assert call("GET", "/api/chats?limit=1", headers=ADMIN).get_json()["total"] == 2
    call("GET", "/api/chats?offset=5", headers=ADMIN)
    call("GET", "/api/chats?limit=0", headers=ADMIN, status=400)
    call("GET", "/api/dead-letters?offset=x", headers=ADMIN, status=400)
    call("GET", "/api/chats", status=401)
    call("GET", "/api/chats/a%2Fb%20c", headers=ADMIN)
    call("GET", "/api/chats/nobody", headers=ADMIN, status=404)
    call("POST", "/api/chats/z%C3%A9/flush", headers=ADMIN)
    call("POST", "/api/chats/z%C3%A9/flush", headers=ADMIN, status=404)
    call("DELETE", "/api/chats/a%2Fb%20c", headers=ADMIN)
    call("DELETE", "/api/chats/a%2Fb%20c", headers=ADMIN, status=404)
    claims = store.outbox.claim(10, 10)
    for claim in claims:
        assert store.outbox.bury(claim, 410, "HTTP 410", "not_retryable")[0]
    letters = call("GET", "/api/dead-letters", headers=ADMIN).get_json()["dead_letters"]
    assert {letter["batch_id"] for letter in letters} >= {sealed["batch_id"]}
    call("POST", f"/api/dead-letters/{sealed['batch_id']}/replay", headers=ADMIN)
    call("POST", f"/api/dead-letters/{sealed['batch_id']}/replay", headers=ADMIN, status=404)
    [other] = [letter["batch_id"] for letter in letters if letter["batch_id"] != sealed["batch_id"]]
    call("DELETE", f"/api/dead-letters/{other}", headers=ADMIN)
    call("DELETE", "/api/dead-letters/not-a-batch", headers=ADMIN, status=404)
    call("PUT", "/api/dead-letters", headers=ADMIN, status=405)


def sign(raw: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()


def test_gateway_replies_conform(settings: Settings, store: Store, contract: Contract) -> None:
    call = Checked(create_app(settings, store).test_client(), contract)
    call("GET", "/api/sources/whatsapp?hub.mode=subscribe&hub.challenge=1", status=404)
    call("POST", "/api/sources/whatsapp", {"object": "x"}, status=404)
    meta = replace(
        settings, whatsapp_app_secret=APP_SECRET, whatsapp_verify_token="verify-me", evolution_from_me="discard"
    )
    call = Checked(create_app(meta, store).test_client(), contract)
    for name in ("text", "image_caption", "presence_composing", "presence_paused", "connection_update", "group"):
        call("POST", "/api/sources/evolution?ttl=8&max_wait=60&max_messages=20", fixture(f"evolution/{name}"))
    call("POST", "/api/sources/evolution", fixture("evolution/text"))  # a redelivery: duplicate
    call("POST", "/api/sources/evolution/messages-upsert", fixture("evolution/from_me"))  # discards the chat
    call("POST", "/api/sources/evolution", {"event": "messages.upsert"}, status=400)
    call("POST", "/api/sources/evolution?ttl=0", fixture("evolution/lid"), status=400)
    call("POST", "/api/sources/evolution", data="[]", content_type="application/json", status=400)
    challenge = "/api/sources/whatsapp?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=42"
    assert call("GET", challenge).get_data(as_text=True) == "42"
    call("GET", challenge.replace("verify-me", "wrong"), status=403)
    for name in ("two_messages", "status", "echo", "kinds_without_phone"):
        raw = json.dumps(fixture(f"whatsapp/{name}")).encode()
        headers = {"X-Hub-Signature-256": sign(raw)}
        call("POST", "/api/sources/whatsapp?ttl=5", data=raw, content_type="application/json", headers=headers)
    call("POST", "/api/sources/whatsapp", {"object": "whatsapp_business_account"}, status=401)
    raw = b'{"object": "whatsapp_business_account", "entry": [{"changes": 3}]}'
    headers = {"X-Hub-Signature-256": sign(raw)}
    call("POST", "/api/sources/whatsapp", data=raw, content_type="application/json", headers=headers, status=400)


def test_a_gateway_reply_names_the_batch_the_byte_cap_sent_as_the_core_route_does(
    settings: Settings, contract: Contract
) -> None:
    """Regression: the gateway routes' `sealed` lacked the `sequence` POST /api/message gives."""
    small = replace(settings, max_batch_bytes=1)  # every message seals the one before
    call = Checked(create_app(small, Store(small)).test_client(), contract)
    first, second = fixture("evolution/text"), fixture("evolution/extended_text")
    call("POST", "/api/sources/evolution", first)
    [result] = call("POST", "/api/sources/evolution", second).get_json()["results"]
    assert "sealed" in result, result
    assert result["sealed"]["sequence"] == 1 and result["sealed"]["flush_reason"] == "max_bytes"


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [("/api/status", ADMIN, 200), ("/api/status", {}, 401), ("/metrics", ADMIN, 200), ("/metrics", {}, 401),
     ("/admin", {}, 200), ("/admin/", {}, 200), ("/admin/static/dashboard.js", {}, 200)],
)  # fmt: skip
def test_status_metrics_and_dashboard_replies_conform(
    app: Flask, contract: Contract, path: str, headers: dict[str, str], status: int
) -> None:
    app.test_client().post("/api/message", json={"user": "u", "message": "oi"})
    Checked(app.test_client(), contract)("GET", path, headers=headers, status=status)
