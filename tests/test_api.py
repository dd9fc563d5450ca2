"""The HTTP API: every field rule, every bad input, and that bad input leaves nothing in Redis."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest
import redis
from flask.testing import FlaskClient

from datafy.config import Settings
from datafy.errors import ConfigurationError
from datafy.http import create_app
from datafy.http.validation import MAX_METADATA_FIELDS
from datafy.keys import partition_of
from datafy.store import Store, is_batch_id
from devtools.oracle import datafy_keys


def post(client: FlaskClient, body: object, path: str = "/api/message", **kwargs: object):
    return client.post(path, data=json.dumps(body), content_type="application/json", **kwargs)


def assert_error(response, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["field"] == field
    assert body["error"]["message"]


def test_message_is_buffered_with_reply_fields(client: FlaskClient, store: Store) -> None:
    response = post(client, {"user": "5511999", "message": "oi", "ttl": 10, "name": "Ana"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True and body["user"] == "5511999" and body["buffered"] == 1
    assert body["message"]
    flush_at = datetime.fromisoformat(body["flush_at"].replace("Z", "+00:00"))
    assert abs(flush_at.timestamp() * 1000 - store.connection.now_ms() - 10_000) < 1000
    assert post(client, {"user": "5511999", "message": "tudo bem?"}).get_json()["buffered"] == 2


@pytest.mark.parametrize("path", ["/api/message", "/message", "/"])
def test_legacy_routes_accept_messages(client: FlaskClient, path: str) -> None:
    assert post(client, {"user": "u", "message": "oi"}, path).status_code == 200


def test_integer_user_is_its_decimal_string(client: FlaskClient) -> None:
    assert post(client, {"user": 5511999, "message": "oi"}).get_json()["user"] == "5511999"


def test_object_message_and_odd_user_ids_are_kept(client: FlaskClient, store: Store) -> None:
    media = {"type": "image", "url": "https://x/y.jpg", "caption": "olha", "list": [], "n": 1.5}
    for user in ["a:b", "{tag}", "*", "with space", "emoji 😀", "}{"]:
        assert post(client, {"user": user, "message": media}).status_code == 200
        snapshot = store.buffer.peek(user)
        assert snapshot is not None and snapshot.user == user
        assert [item["m"] for _, item in snapshot.items] == [media]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"message": "oi"}, "missing_field", "user"),
        ({"user": None, "message": "oi"}, "missing_field", "user"),
        ({"user": "", "message": "oi"}, "invalid_field", "user"),
        ({"user": "x" * 257, "message": "oi"}, "invalid_field", "user"),
        ({"user": True, "message": "oi"}, "invalid_field", "user"),
        ({"user": 1.5, "message": "oi"}, "invalid_field", "user"),
        ({"user": ["a"], "message": "oi"}, "invalid_field", "user"),
        ({"user": {"id": 1}, "message": "oi"}, "invalid_field", "user"),
        ({"user": "u"}, "missing_field", "message"),
        ({"user": "u", "message": ""}, "invalid_field", "message"),
        ({"user": "u", "message": 12}, "invalid_field", "message"),
        ({"user": "u", "message": ["a"]}, "invalid_field", "message"),
        ({"user": "u", "message": True}, "invalid_field", "message"),
        ({"user": "u", "message": "oi", "ttl": 0}, "invalid_field", "ttl"),
        ({"user": "u", "message": "oi", "ttl": -1}, "invalid_field", "ttl"),
        ({"user": "u", "message": "oi", "ttl": 86401}, "invalid_field", "ttl"),
        ({"user": "u", "message": "oi", "ttl": "soon"}, "invalid_field", "ttl"),
        ({"user": "u", "message": "oi", "ttl": True}, "invalid_field", "ttl"),
        ({"user": "u", "message": "oi", "ttl": "NaN"}, "invalid_field", "ttl"),
        ({"user": "u", "message": "oi", "ttl": "inf"}, "invalid_field", "ttl"),
        ({"user": "u", "message": "oi", "ttl": [5]}, "invalid_field", "ttl"),
        ({"user": "u", "message": "oi", "ttl": 10**400}, "invalid_field", "ttl"),
        ({"user": "u", "message": "oi", "max_wait": -(10**400)}, "invalid_field", "max_wait"),
        ({"user": "u", "message": "oi", "max_wait": 0}, "invalid_field", "max_wait"),
        ({"user": "u", "message": "oi", "max_wait": -3}, "invalid_field", "max_wait"),
        ({"user": "u", "message": "oi", "max_wait": 86401}, "invalid_field", "max_wait"),
        ({"user": "u", "message": "oi", "max_wait": "later"}, "invalid_field", "max_wait"),
        ({"user": "u", "message": "oi", "max_wait": False}, "invalid_field", "max_wait"),
        ({"user": "u", "message": "oi", "max_messages": -1}, "invalid_field", "max_messages"),
        ({"user": "u", "message": "oi", "max_messages": 1001}, "invalid_field", "max_messages"),
        ({"user": "u", "message": "oi", "max_messages": 2.5}, "invalid_field", "max_messages"),
        ({"user": "u", "message": "oi", "max_messages": "3"}, "invalid_field", "max_messages"),
        ({"user": "u", "message": "oi", "max_messages": True}, "invalid_field", "max_messages"),
        ({"user": "u", "message": "oi", "flush": "yes"}, "invalid_field", "flush"),
        ({"user": "u", "message": "oi", "flush": 1}, "invalid_field", "flush"),
        ({"user": "u", "message": "oi", "message_id": ""}, "invalid_field", "message_id"),
        ({"user": "u", "message": "oi", "message_id": "x" * 257}, "invalid_field", "message_id"),
        ({"user": "u", "message": "oi", "message_id": {"id": 1}}, "invalid_field", "message_id"),
        ({"user": "u", "message": "oi", "message_id": False}, "invalid_field", "message_id"),
    ],
)
def test_bad_fields_are_rejected_and_store_nothing(
    client: FlaskClient, redis_client: redis.Redis, body: dict, code: str, field: str
) -> None:
    assert_error(post(client, body), 400, code, field)
    assert datafy_keys(redis_client) == []


def test_nan_and_infinity_literals_are_invalid_json(client: FlaskClient, redis_client: redis.Redis) -> None:
    for raw in ('{"user": "u", "message": "oi", "ttl": NaN}', '{"user": "u", "message": "oi", "ttl": Infinity}'):
        assert_error(client.post("/api/message", data=raw, content_type="application/json"), 400, "invalid_json")
    overflow = client.post(
        "/api/message", data='{"user": "u", "message": "oi", "ttl": 1e400}', content_type="application/json"
    )
    assert_error(overflow, 400, "invalid_field", "ttl")
    assert datafy_keys(redis_client) == []


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"user": "u", "message": {"score": 1e400}}', "message"),
        ('{"user": "u", "message": "oi", "rating": -1e400}', "rating"),
        ('{"user": "\\ud800", "message": "oi"}', "user"),
        ('{"user": "u", "message": "oi \\udfff"}', "message"),
        ('{"user": "u", "message": "oi", "pushName": ["\\ud83d"]}', "pushName"),
    ],
    ids=["overflow-in-message", "overflow-in-metadata", "surrogate-user", "surrogate-message", "surrogate-metadata"],
)
def test_values_that_cannot_be_stored_as_json_name_their_field(
    client: FlaskClient, redis_client: redis.Redis, raw: str, field: str
) -> None:
    assert_error(client.post("/api/message", data=raw, content_type="application/json"), 400, "invalid_field", field)
    assert datafy_keys(redis_client) == []


def test_escaped_emoji_are_kept(client: FlaskClient, store: Store) -> None:
    raw = '{"user": "u", "message": "oi \\ud83d\\ude00"}'  # a valid surrogate pair, as ensure_ascii JSON sends it
    assert client.post("/api/message", data=raw, content_type="application/json").status_code == 200
    snapshot = store.buffer.peek("u")
    assert snapshot is not None and snapshot.items[0][1]["m"] == "oi \U0001f600"


def test_too_many_metadata_fields_are_rejected(client: FlaskClient, redis_client: redis.Redis) -> None:
    body = {"user": "u", "message": "oi", **{f"k{i}": i for i in range(MAX_METADATA_FIELDS + 1)}}
    assert_error(post(client, body), 400, "too_many_fields")
    assert datafy_keys(redis_client) == []
    del body["k0"]
    assert post(client, body).status_code == 200


def test_ttl_accepts_fractions_and_numeric_strings(client: FlaskClient) -> None:
    assert post(client, {"user": "u", "message": "oi", "ttl": 0.5}).status_code == 200
    assert post(client, {"user": "u", "message": "oi", "ttl": "2.5"}).status_code == 200


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "invalid_json"),
        ("", "application/json", 400, "invalid_json"),
        ("[1, 2]", "application/json", 400, "invalid_body"),
        ('"text"', "application/json", 400, "invalid_body"),
        ("null", "application/json", 400, "invalid_body"),
        ('{"user": "u", "message": "oi"}', "text/plain", 415, "unsupported_media_type"),
        ("user=u&message=oi", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("\xff\xfe", "application/json", 400, "invalid_json"),
        (b'{"user": "u", "message": "a \xed\xa0\x80"}', "application/json", 400, "invalid_json"),  # raw surrogate
        ('{"user": "u", "message": "oi"}'.encode("utf-16"), "application/json", 400, "invalid_json"),  # not UTF-8
        ("[" * 100_000, "application/json", 400, "invalid_json"),
    ],
)
def test_malformed_requests(
    client: FlaskClient, redis_client: redis.Redis, data: str, content_type: str, status: int, code: str
) -> None:
    assert_error(client.post("/api/message", data=data, content_type=content_type), status, code)
    assert datafy_keys(redis_client) == []


def test_body_and_message_size_limits(client: FlaskClient, settings: Settings, redis_client: redis.Redis) -> None:
    big_body = {"user": "u", "message": "oi", "pad": "x" * (settings.max_body_bytes + 1)}
    assert_error(post(client, big_body), 413, "body_too_large")
    too_long = "é" * (settings.max_message_bytes // 2 + 1)
    assert_error(post(client, {"user": "u", "message": too_long}), 413, "message_too_large", "message")
    big_media = {"data": "x" * settings.max_message_bytes}
    assert_error(post(client, {"user": "u", "message": big_media}), 413, "message_too_large", "message")
    assert datafy_keys(redis_client) == []
    assert post(client, {"user": "u", "message": "x" * settings.max_message_bytes}).status_code == 200


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


def test_health(client: FlaskClient) -> None:
    assert client.get("/health").get_json() == {"status": "ok", "redis": "ok"}


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


def test_duplicate_message_id_is_ignored(client: FlaskClient, store: Store) -> None:
    first = post(client, {"user": "u", "message": "oi", "message_id": "wamid.1"}).get_json()
    again = post(client, {"user": "u", "message": "oi", "message_id": "wamid.1"}).get_json()
    assert "duplicate" not in first and again["duplicate"] is True and again["buffered"] == 1
    assert post(client, {"user": "other", "message": "oi", "message_id": "wamid.1"}).get_json().get("duplicate") is None
    snapshot = store.buffer.peek("u")
    assert snapshot is not None and len(snapshot.items) == 1
    post(client, {"user": "f", "message": "oi", "message_id": "wamid.2", "flush": True})
    late = post(client, {"user": "f", "message": "oi", "message_id": "wamid.2"}).get_json()
    assert late["duplicate"] is True and late["buffered"] == 0 and late["flush_at"] is None  # nothing pending


def test_flush_true_and_keywords_flush_at_once(settings: Settings, store: Store) -> None:
    from datafy.config import normalize_keyword

    keywords = frozenset(normalize_keyword(w) for w in ["pronto", "É só isso"])
    client = create_app(replace(settings, flush_keywords=keywords), store).test_client()
    reply = post(client, {"user": "u", "message": "oi", "flush": True}).get_json()
    assert reply["flushed"] is True and reply["batch_id"] and reply["buffered"] == 1
    post(client, {"user": "k", "message": "quero pizza"})
    reply = post(client, {"user": "k", "message": "  e so ISSO "}).get_json()
    assert reply["flushed"] is True and reply["buffered"] == 2
    assert post(client, {"user": "k", "message": "prontos"}).get_json().get("flushed") is None


def test_typing_route(client: FlaskClient) -> None:
    assert post(client, {"user": "u", "ttl": 5}, "/api/typing").get_json()["pending"] is False
    post(client, {"user": "u", "message": "oi", "ttl": 1})
    reply = post(client, {"user": "u", "ttl": 5}, "/api/typing").get_json()
    assert reply["pending"] is True and reply["flush_at"]
    assert_error(post(client, {"ttl": 5}, "/api/typing"), 400, "missing_field", "user")
    assert_error(post(client, {"user": "u", "ttl": -1}, "/api/typing"), 400, "invalid_field", "ttl")


def test_chat_admin_routes(client: FlaskClient, redis_client: redis.Redis) -> None:
    admin = {"Authorization": "Bearer admin-secret"}
    post(client, {"user": "a:b c", "message": "oi", "ttl": 30})
    post(client, {"user": "a:b c", "message": {"type": "audio"}, "ttl": 30})
    post(client, {"user": "z", "message": "x", "ttl": 10})
    listing = client.get("/api/chats?limit=10", headers=admin).get_json()
    assert listing["total"] == 2 and [c["user"] for c in listing["chats"]] == ["z", "a:b c"]
    peek = client.get("/api/chats/a:b c", headers=admin).get_json()
    assert peek["count"] == 2 and peek["messages"] == ["oi", {"type": "audio"}] and peek["flush_at"]
    assert peek["first_message_at"]
    discarded = client.delete("/api/chats/a:b c", headers=admin).get_json()
    assert discarded["discarded"] == 2 and discarded["messages"] == ["oi", {"type": "audio"}]
    assert_error(client.get("/api/chats/a:b c", headers=admin), 404, "not_found", "user")
    flushed = client.post("/api/chats/z/flush", headers=admin).get_json()
    assert flushed["flushed"] == 1 and flushed["sequence"] == 1
    assert_error(client.post("/api/chats/z/flush", headers=admin), 404, "not_found", "user")
    post(client, {"user": "/lead", "message": "oi"})  # a leading slash: no redirect to the chat "lead"
    assert client.get("/api/chats//lead", headers=admin).get_json()["user"] == "/lead"
    assert_error(client.get("/api/dead-letters/i:0123/replay", headers=admin), 405, "method_not_allowed")
    assert_error(client.post(f"/api/dead-letters/i:{'0' * 32}/replay", headers=admin), 404, "not_found", "batch_id")
    assert_error(client.get("/api/chats?limit=0", headers=admin), 400, "invalid_field", "limit")
    assert_error(client.get("/api/chats?offset=x", headers=admin), 400, "invalid_field", "offset")


def test_env_defaults_for_max_wait_and_max_messages(settings: Settings, store: Store) -> None:
    client = create_app(replace(settings, max_messages=2, max_wait=5), store).test_client()
    first = post(client, {"user": "u", "message": "a", "ttl": 60}).get_json()
    snapshot = store.buffer.peek("u")
    assert snapshot is not None and snapshot.flush_at_ms == snapshot.first_ms + 5000  # max_wait caps ttl 60
    assert "flushed" not in first
    assert post(client, {"user": "u", "message": "b", "ttl": 60}).get_json()["flushed"] is True  # MAX_MESSAGES=2
    for text in "abc":  # max_messages 0: no per-message limit for this request, only the hard caps
        assert "flushed" not in post(client, {"user": "v", "message": text, "max_messages": 0}).get_json()


def test_the_byte_cap_names_the_batch_it_sealed_with_a_real_batch_id(settings: Settings) -> None:
    """Regression: a byte-capped batch got the id 'x' + batch_id, which no admin route accepts."""
    settings = replace(settings, max_batch_bytes=1024)
    store = Store(settings)
    client = create_app(settings, store).test_client()
    first = post(client, {"user": "big", "message": "a" * 600}).get_json()
    assert first["buffered"] == 1 and "sealed" not in first
    second = post(client, {"user": "big", "message": "b" * 600}).get_json()
    assert second["buffered"] == 1  # this message starts the next batch
    sealed = second["sealed"]
    assert sealed["message_count"] == 1 and sealed["flush_reason"] == "max_bytes" and sealed["sequence"] == 1
    assert is_batch_id(sealed["batch_id"])
    [claim] = store.outbox.claim(1, 10)
    assert claim.batch_id == sealed["batch_id"]
    assert store.outbox.bury(claim, 410, "HTTP 410", "not_retryable")[0]
    admin = {"Authorization": f"Bearer {settings.admin_api_keys[0]}"}
    assert client.post(f"/api/dead-letters/{sealed['batch_id']}/replay", headers=admin).status_code == 200
    [again] = store.outbox.claim(1, 10)
    assert again.batch_id == sealed["batch_id"]
    assert store.outbox.bury(again, 410, "HTTP 410", "not_retryable")[0]
    assert client.delete(f"/api/dead-letters/{sealed['batch_id']}", headers=admin).status_code == 200


@pytest.mark.parametrize("user", ["", " ", "\t\n", "\u3000"])
def test_blank_user_ids_are_refused(client: FlaskClient, redis_client: redis.Redis, user: str) -> None:
    """Regression: an n8n expression that evaluated to nothing put different customers in one shared chat."""
    assert_error(post(client, {"user": user, "message": "oi"}), 400, "invalid_field", "user")
    assert datafy_keys(redis_client) == []


def nested(levels: int) -> object:
    value: object = "fundo"
    for _ in range(levels):
        value = [value]
    return value


def test_deep_nesting_is_refused_naming_the_field(client: FlaskClient, redis_client: redis.Redis) -> None:
    """Regression: 979 levels were stored (and broke the dead-letter listing), 980 answered 500."""
    assert post(client, {"user": "u", "message": {"a": nested(31)}}).status_code == 200
    redis_client.flushall()
    assert_error(post(client, {"user": "u", "message": {"a": nested(32)}}), 400, "invalid_field", "message")
    assert_error(post(client, {"user": "u", "message": "oi", "deep": nested(33)}), 400, "invalid_field", "deep")
    for levels in (979, 980, 5000):
        raw = '{"user": "u", "message": "oi", "deep": ' + "[" * levels + '"x"' + "]" * levels + "}"
        reply = client.post("/api/message", data=raw, content_type="application/json")
        assert reply.status_code == 400, levels
    assert datafy_keys(redis_client) == []


def test_metadata_counts_toward_max_message_bytes(settings: Settings, redis_client: redis.Redis) -> None:
    """Regression: with MAX_MESSAGE_BYTES=1024 a 1 MB metadata field was accepted and added 3.35 MB to Redis."""
    settings = replace(settings, max_message_bytes=1024)
    client = create_app(settings, Store(settings)).test_client()
    reply = post(client, {"user": "u", "message": "oi", "pushName": "Ana", "blob": "x" * 1_000_000})
    assert_error(reply, 413, "message_too_large", "blob")
    assert datafy_keys(redis_client) == []
    assert post(client, {"user": "u", "message": "oi", "pushName": "Ana"}).status_code == 200


def test_a_chat_over_its_rate_limit_gets_429_and_others_go_on(settings: Settings, redis_client: redis.Redis) -> None:
    settings = replace(settings, rate_limit_per_user=3)
    client = create_app(settings, Store(settings)).test_client()
    assert all(post(client, {"user": "spam", "message": f"m{i}"}).status_code == 200 for i in range(3))
    reply = post(client, {"user": "spam", "message": "m3"})
    assert_error(reply, 429, "rate_limited", "user")
    assert 1 <= int(reply.headers["Retry-After"]) <= 60
    assert post(client, {"user": "other", "message": "oi"}).status_code == 200
    assert Store(settings).buffer.peek("spam").items[-1][1]["m"] == "m2"  # the refused one was not stored


def test_past_max_pending_chats_new_chats_get_429_and_open_ones_go_on(settings: Settings) -> None:
    settings = replace(settings, max_pending_chats=16)  # one open chat per partition
    store = Store(settings)
    client = create_app(settings, store).test_client()
    users = {}
    for i in range(200):  # one user in each partition
        users.setdefault(partition_of(f"c{i}"), f"c{i}")
    assert all(post(client, {"user": user, "message": "oi"}).status_code == 200 for user in users.values())
    newcomer = next(f"n{i}" for i in range(100) if partition_of(f"n{i}") == partition_of(users[0]))
    reply = post(client, {"user": newcomer, "message": "oi"})
    assert_error(reply, 429, "too_many_chats")
    assert reply.headers["Retry-After"] == "1"
    assert post(client, {"user": users[0], "message": "ainda aqui"}).status_code == 200  # open chats go on
    assert store.buffer.peek(newcomer) is None


def test_merged_metadata_counts_toward_max_batch_bytes(settings: Settings) -> None:
    settings = replace(settings, max_batch_bytes=2048)
    client = create_app(settings, Store(settings)).test_client()
    first = post(client, {"user": "m", "message": "oi", "perfil": "x" * 700}).get_json()
    second = post(client, {"user": "m", "message": "oi", "perfil": "y" * 700}).get_json()
    assert first["buffered"] == 1 and second["sealed"]["flush_reason"] == "max_bytes"  # 2 x (item + metadata)
