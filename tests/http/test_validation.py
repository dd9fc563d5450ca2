"""Request validation (datafy/http/validation.py): every field rule and every bad input is refused with a JSON
error naming the field, and a refused body leaves nothing in Redis. Then property-based: any JSON body of any
shape, depth, size and Unicode gets 2xx or a 4xx JSON error, never a 5xx. Fixed seed, bounded example count
(it runs in CI)."""

from __future__ import annotations

import json
from dataclasses import replace

import hypothesis
import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from datafy.config import Settings
from datafy.http import create_app
from datafy.http.validation import MAX_METADATA_FIELDS
from datafy.model import CONTROL_FIELDS
from datafy.store import Store
from devtools.oracle import datafy_keys
from tests.support.http import assert_error, post


def test_integer_user_is_its_decimal_string(client: FlaskClient) -> None:
    assert post(client, {"user": 5511999, "message": "oi"}).get_json()["user"] == "5511999"


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


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.integers(min_value=10**30)


values = st.recursive(scalars, lambda children: st.lists(children) | st.dictionaries(st.text(), children),
                      max_leaves=40)  # fmt: skip


names = st.sampled_from(sorted(CONTROL_FIELDS)) | st.text(max_size=20)


bodies = st.dictionaries(names, values, max_size=12) | values


FUZZ = hypothesis.settings(max_examples=400, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip


def check(client: FlaskClient, redis_client: redis.Redis, raw: bytes) -> None:
    redis_client.flushall()
    reply = client.post("/api/message", data=raw, content_type="application/json")
    assert reply.status_code < 500, reply.get_data(as_text=True)
    answer = reply.get_json()
    assert isinstance(answer, dict) and isinstance(answer.get("success"), bool)
    if reply.status_code >= 400:
        assert answer["success"] is False and answer["error"]["code"]
        assert datafy_keys(redis_client) == []


@FUZZ
@given(body=bodies)
def test_any_json_body_gets_2xx_or_a_json_4xx(client: FlaskClient, redis_client: redis.Redis, body: object) -> None:
    check(client, redis_client, json.dumps(body, allow_nan=True).encode())


@FUZZ
@given(raw=st.binary(max_size=200) | st.text().map(str.encode), depth=st.integers(min_value=0, max_value=2000))
def test_any_bytes_and_any_nesting_get_a_json_4xx_at_worst(
    client: FlaskClient, redis_client: redis.Redis, raw: bytes, depth: int
) -> None:
    check(client, redis_client, raw)
    deep = b'{"user": "u", "message": ' + b"[" * depth + b'"x"' + b"]" * depth + b"}"
    check(client, redis_client, deep)
