"""Property-based: any JSON body of any shape, depth, size and Unicode gets 2xx or a 4xx JSON error, never a
5xx, and a refused body leaves nothing in Redis. Fixed seed, bounded example count (it runs in CI)."""

from __future__ import annotations

import json

import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datafy.model import CONTROL_FIELDS
from devtools.oracle import datafy_keys

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.integers(min_value=10**30)
values = st.recursive(scalars, lambda children: st.lists(children) | st.dictionaries(st.text(), children),
                      max_leaves=40)  # fmt: skip
names = st.sampled_from(sorted(CONTROL_FIELDS)) | st.text(max_size=20)
bodies = st.dictionaries(names, values, max_size=12) | values
FUZZ = settings(max_examples=400, derandomize=True, deadline=None,
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
