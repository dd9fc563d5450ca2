"""The gateway routes on the real app and the real Redis: auth, query settings, replies and refusals."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import replace
from typing import Any

import jwt
import pytest
import redis
from flask.testing import FlaskClient

from datafy.config import Settings
from datafy.http import create_app
from datafy.store import Store
from devtools.oracle import datafy_keys
from tests.support.gateway_bodies import fixture
from tests.support.http import assert_error

KEY = "k3y-for-sources"
JWT_SECRET = "evolution-jwt-key-" + "0123456789abcdef" * 3  # 64 bytes: HS512 in the test wants as much
APP_SECRET = "meta-app-secret"
EVOLUTION = "/api/sources/evolution"


@pytest.fixture
def secured(settings: Settings, store: Store) -> FlaskClient:
    """The app with the ingest key on, Evolution's JWT secret and the WhatsApp route enabled."""
    settings = replace(settings, ingest_auth=True, api_keys=(KEY,), evolution_jwt_secret=JWT_SECRET,
                       whatsapp_app_secret=APP_SECRET, whatsapp_verify_token="verify-me")  # fmt: skip
    return create_app(settings, store).test_client()


def send(client: FlaskClient, path: str, body: dict[str, Any], **headers: str):
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def test_the_key_goes_in_a_header_or_the_query_and_nothing_else_opens_the_route(secured: FlaskClient) -> None:
    body = fixture("evolution/text")
    assert_error(send(secured, EVOLUTION, body), 401, "unauthorized")
    assert_error(send(secured, f"{EVOLUTION}?key=wrong", body), 401, "unauthorized")
    assert_error(send(secured, EVOLUTION, body, apikey=KEY), 401, "unauthorized")  # Evolution's header, not ours
    assert send(secured, EVOLUTION, body, **{"X-API-Key": KEY}).status_code == 200
    assert send(secured, f"{EVOLUTION}?key={KEY}", body).status_code == 200
    assert send(secured, EVOLUTION, body, Authorization=f"Bearer {KEY}").status_code == 200


def test_evolution_jwt_must_be_hs256_with_our_secret_and_not_expired(secured: FlaskClient) -> None:
    now = int(time.time())
    claims = {"iat": now, "exp": now + 600, "app": "evolution", "action": "webhook"}  # as Evolution signs them

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    body = fixture("evolution/text")
    assert (
        send(secured, EVOLUTION, body, **bearer(jwt.encode(claims, JWT_SECRET, algorithm="HS256"))).status_code == 200
    )
    expired = {**claims, "iat": now - 700, "exp": now - 100}
    for token in (
        jwt.encode(expired, JWT_SECRET, algorithm="HS256"),
        jwt.encode(claims, "another-secret-0123456789abcdefghij", algorithm="HS256"),
        jwt.encode({"iat": now}, JWT_SECRET, algorithm="HS256"),  # no expiry
        jwt.encode(claims, JWT_SECRET, algorithm="HS512"),
    ):
        assert_error(send(secured, EVOLUTION, body, **bearer(token)), 401, "unauthorized")
    # With the JWT, the X-API-Key header a webhook may also carry still counts on its own.
    assert send(secured, EVOLUTION, body, **bearer("not.a.jwt"), **{"X-API-Key": KEY}).status_code == 200


def test_query_settings_follow_the_json_rules(client: FlaskClient, redis_client: redis.Redis) -> None:
    body = fixture("evolution/text")
    assert_error(send(client, f"{EVOLUTION}?ttl=0", body), 400, "invalid_field", "ttl")
    assert_error(send(client, f"{EVOLUTION}?ttl=abc", body), 400, "invalid_field", "ttl")
    assert_error(send(client, f"{EVOLUTION}?max_wait=-1", body), 400, "invalid_field", "max_wait")
    assert_error(send(client, f"{EVOLUTION}?max_messages=1.5", body), 400, "invalid_field", "max_messages")
    assert datafy_keys(redis_client) == []
    reply = send(client, f"{EVOLUTION}?ttl=7.5&max_wait=60", body).get_json()
    [result] = reply["results"]
    assert result["status"] == "buffered" and result["buffered"] == 1
    ttl_ms = redis_client.pttl(next(k for k in datafy_keys(redis_client) if ":timer:" in k or "timer" in k))
    assert 6000 < ttl_ms <= 7500
    second = fixture("evolution/extended_text")  # the same customer
    [flushed] = send(client, f"{EVOLUTION}?max_messages=2", second).get_json()["results"]
    assert flushed["flushed"] is True and flushed["batch_id"]


def test_a_bad_query_setting_is_refused_whatever_the_event(client: FlaskClient) -> None:
    """Regression (schemathesis): ?max_wait=_ passed on events that buffer nothing, so a wrong webhook URL went
    unnoticed until a message came (and ?max_wait= on presence events never)."""
    for name in ("connection_update", "presence_composing", "from_me"):
        body = fixture(f"evolution/{name}")
        assert_error(send(client, f"{EVOLUTION}?max_wait=_", body), 400, "invalid_field", "max_wait")
        assert_error(send(client, f"{EVOLUTION}?max_messages=5000", body), 400, "invalid_field", "max_messages")
        assert_error(send(client, f"{EVOLUTION}?ttl=0", body), 400, "invalid_field", "ttl")
        assert send(client, f"{EVOLUTION}?ttl=8&max_wait=60&max_messages=20", body).status_code == 200


def test_evolution_glues_the_event_after_the_query_string(client: FlaskClient) -> None:
    """With webhook_by_events, Evolution posts to "<url>/messages-upsert": after "?ttl=8" that is the query."""
    reply = send(client, f"{EVOLUTION}?ttl=8/messages-upsert", fixture("evolution/text"))
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert (
        send(client, f"{EVOLUTION}/presence-update?ttl=8", fixture("evolution/presence_composing")).status_code == 200
    )


@pytest.mark.parametrize(
    "url",
    [
        f"{EVOLUTION}/call",
        f"{EVOLUTION}?ttl=2/call",  # one word: the suffix has no hyphen
        f"{EVOLUTION}?ttl=2&key={KEY}/call",
        f"{EVOLUTION}?key={KEY}&ttl=2/call",
        f"{EVOLUTION}?key={KEY}/send-message-update",  # two hyphens
        f"{EVOLUTION}?key={KEY}/typebot-change-status",
        f"{EVOLUTION}/call?ttl=2&key={KEY}",
    ],
)
def test_every_event_suffix_is_cut_from_the_query_with_or_without_a_key(secured: FlaskClient, url: str) -> None:
    """Regression: `call` has no hyphen, so "?ttl=2/call" gave 400 (ttl) and "?ttl=2&key=K/call" 401."""
    headers = {} if "key=" in url else {"X-API-Key": KEY}
    reply = send(secured, url, fixture("evolution/call"), **headers)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.get_json()["results"][0]["status"] == "ignored"


def test_the_event_suffix_cut_leaves_the_settings_and_key_intact(
    secured: FlaskClient, redis_client: redis.Redis
) -> None:
    [result] = send(secured, f"{EVOLUTION}?ttl=7.5&key={KEY}/messages-upsert", fixture("evolution/text")).get_json()[
        "results"
    ]
    assert result["status"] == "buffered"
    ttl_ms = redis_client.pttl(next(k for k in datafy_keys(redis_client) if ":timer:" in k))
    assert 6000 < ttl_ms <= 7500
    assert_error(send(secured, f"{EVOLUTION}?ttl=2&key=wrong/call", fixture("evolution/call")), 401, "unauthorized")


def stored_items(redis_client: redis.Redis, user: str) -> list[dict[str, Any]]:
    """The items of `user`'s open batch, as Redis holds them."""
    buffer = next(k for k in datafy_keys(redis_client) if k.endswith(f":buf:{user}"))
    return [json.loads(entry)[1] for entry in redis_client.lrange(buffer, 0, -1)]


def test_media_base64_past_max_message_bytes_is_left_out_and_the_message_buffered(
    settings: Settings, store: Store, redis_client: redis.Redis
) -> None:
    """Evolution retries a 413 for about 20 minutes and then drops the message: a voice note whose base64 would
    pass MAX_MESSAGE_BYTES is buffered with its caption, mimetype and url, and says what it left out."""
    client = create_app(replace(settings, max_message_bytes=4096), store).test_client()
    body = fixture("evolution/2.3.6/voice")  # 4,970 bytes of audio: 6,628 of base64
    [result] = send(client, EVOLUTION, body).get_json()["results"]
    assert result["status"] == "buffered"
    [item] = stored_items(redis_client, result["user"])
    assert "base64" not in item["m"] and item["m"]["mimetype"] == "audio/ogg; codecs=opus" and item["m"]["url"]
    assert item["x"]["dropped"][-1] == "message.base64"
    roomy = create_app(settings, store).test_client()  # 64 KiB: the same note keeps its bytes
    body["data"]["key"]["id"] = "ANOTHER0000000000000000000000001"
    [result] = send(roomy, EVOLUTION, body).get_json()["results"]
    assert stored_items(redis_client, result["user"])[-1]["m"]["base64"] == body["data"]["message"]["base64"]


def test_replies_say_buffered_duplicate_or_ignored_with_the_reason(client: FlaskClient) -> None:
    body = fixture("evolution/text")
    first = send(client, EVOLUTION, body).get_json()
    assert first["success"] is True and first["results"][0]["status"] == "buffered"
    assert first["results"][0]["message_id"] == body["data"]["key"]["id"] and first["results"][0]["flush_at"]
    again = send(client, EVOLUTION, fixture("evolution/text")).get_json()
    assert again["results"][0]["status"] == "duplicate"
    ignored = send(client, EVOLUTION, fixture("evolution/connection_update"))
    assert ignored.status_code == 200
    assert ignored.get_json()["results"] == [
        {
            "status": "ignored",
            "reason": "event connection.update is not used (enable only MESSAGES_UPSERT and PRESENCE_UPDATE)",
        }
    ]


def test_whatsapp_route_is_off_until_the_app_secret_is_set(client: FlaskClient) -> None:
    assert_error(client.get("/api/sources/whatsapp?hub.mode=subscribe"), 404, "source_disabled")
    reply = send(client, "/api/sources/whatsapp", fixture("whatsapp/two_messages"))
    assert_error(reply, 404, "source_disabled")
    assert "WHATSAPP_APP_SECRET" in reply.get_json()["error"]["message"]


def test_a_refused_multi_message_body_stores_nothing(
    settings: Settings, store: Store, redis_client: redis.Redis
) -> None:
    small = replace(settings, whatsapp_app_secret=APP_SECRET, max_message_bytes=900)
    client = create_app(small, store).test_client()
    body = fixture("whatsapp/two_messages")
    body["entry"][0]["changes"][0]["value"]["messages"][1]["image"]["caption"] = "x" * 1000  # the second is too big
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    reply = client.post("/api/sources/whatsapp", data=raw, content_type="application/json",
                        headers={"X-Hub-Signature-256": signature})  # fmt: skip
    assert reply.status_code == 413
    assert datafy_keys(redis_client) == []


def test_redis_down_gives_503_so_the_gateway_retries(settings: Settings) -> None:
    dead = create_app(replace(settings, redis_url="redis://127.0.0.1:1/0")).test_client()
    assert_error(send(dead, EVOLUTION, fixture("evolution/text")), 503, "store_unavailable")
    assert_error(send(dead, EVOLUTION, fixture("evolution/presence_composing")), 503, "store_unavailable")


def test_a_body_that_is_not_json_is_refused(client: FlaskClient) -> None:
    assert_error(client.post(EVOLUTION, data="oi", content_type="text/plain"), 415, "unsupported_media_type")
    assert_error(client.post(EVOLUTION, data="{", content_type="application/json"), 400, "invalid_json")


def test_a_presence_under_the_customers_lid_reaches_the_phones_chat(client: FlaskClient) -> None:
    """2.3.5+ name the customer's chat by the phone (remoteJidAlt) while Baileys' presence names the @lid."""
    phone_chat = "evolution:loja:5521998887777@s.whatsapp.net"
    [buffered] = send(client, "/api/sources/evolution?ttl=2", fixture("evolution/lid")).get_json()["results"]
    assert buffered["user"] == phone_chat
    [typing] = send(client, "/api/sources/evolution?ttl=8", fixture("evolution/presence_composing_lid")).get_json()[
        "results"
    ]
    assert typing["status"] == "typing" and typing["user"] == phone_chat and typing["pending"] is True


def test_a_global_key_reaches_the_route_that_matches_the_event(secured: FlaskClient, store: Store) -> None:
    """One Meta app for several numbers, one Evolution server for several instances: the event's number or
    instance picks the route (match); a route's own key picks its route whatever the event says."""
    admin = {"X-API-Key": "admin-secret"}
    body = fixture("whatsapp/two_messages")
    number = body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"]
    doc = {"name": "loja-w", "webhook_url": "http://127.0.0.1:9/w", "match": {"whatsapp_phone_number_id": [number]}}
    assert secured.post("/api/routes", json=doc, headers=admin).status_code == 201
    doc = {"name": "loja-e", "webhook_url": "http://127.0.0.1:9/e", "api_keys": ["loja-e-own-key-0001"]}
    assert secured.post("/api/routes", json=doc, headers=admin).status_code == 201
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    reply = secured.post(f"/api/sources/whatsapp?key={KEY}", data=raw, content_type="application/json",
                         headers={"X-Hub-Signature-256": signature})  # fmt: skip
    assert reply.status_code == 200
    chats = secured.get("/api/chats", headers=admin).get_json()["chats"]
    assert {chat.get("route") for chat in chats} == {"loja-w"}
    assert send(secured, f"{EVOLUTION}?key=loja-e-own-key-0001", fixture("evolution/text")).status_code == 200
    chats = secured.get("/api/chats", headers=admin).get_json()["chats"]
    assert {chat.get("route") for chat in chats} == {"loja-e", "loja-w"}
