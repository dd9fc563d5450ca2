"""The admin routes (datafy/http/admin.py): pending chats listed, peeked, flushed and discarded; dead letters."""

from __future__ import annotations

import redis
from flask.testing import FlaskClient

from tests.support.http import assert_error, post


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
