"""The client routes (datafy/http/ingest.py): a message buffered and its reply, legacy paths, duplicates, flush
now, typing, health, the per-request and environment limits, and the 429s of the rate and chat caps."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
import redis
from flask.testing import FlaskClient

from datafy.config import Settings
from datafy.http import create_app
from datafy.keys import partition_of
from datafy.store import Store, is_batch_id
from tests.support.http import assert_error, post


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


def test_object_message_and_odd_user_ids_are_kept(client: FlaskClient, store: Store) -> None:
    media = {"type": "image", "url": "https://x/y.jpg", "caption": "olha", "list": [], "n": 1.5}
    for user in ["a:b", "{tag}", "*", "with space", "emoji 😀", "}{"]:
        assert post(client, {"user": user, "message": media}).status_code == 200
        snapshot = store.buffer.peek(user)
        assert snapshot is not None and snapshot.user == user
        assert [item["m"] for _, item in snapshot.items] == [media]


def test_health(client: FlaskClient) -> None:
    assert client.get("/health").get_json() == {"status": "ok", "redis": "ok"}


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
