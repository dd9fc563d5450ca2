"""The answer routes through the whole WSGI stack on a real Redis: guard, answered, unanswered, bad input."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from flask.testing import FlaskClient

from datafy.config import Settings
from datafy.http import create_app
from datafy.store import Store


def delivered_batch(client: FlaskClient, store: Store, user: str) -> str:
    reply = client.post("/api/message", json={"user": user, "message": "oi", "flush": True}).get_json()
    [claim] = store.outbox.claim(1, 60)
    store.outbox.ack(claim)
    assert claim.batch_id == reply["batch_id"]
    return claim.batch_id


def test_the_guard_says_newer_once_the_chat_said_more(client: FlaskClient, store: Store) -> None:
    user = "5511/99 é"  # a slash and a space: percent-encoded in the path, as the admin routes take it
    batch = delivered_batch(client, store, user)
    url = f"/api/chats/{quote(user, safe='')}/batches/{batch}"
    assert client.get(url).get_json() == {"success": True, "user": user, "batch_id": batch, "sequence": 1,
                                          "state": "delivered", "newer": False, "newer_messages": 0}  # fmt: skip
    client.post("/api/message", json={"user": user, "message": "do modelo azul"})
    reply = client.get(url).get_json()
    assert reply["newer"] is True and reply["newer_messages"] == 1


def test_answered_and_unanswered_answer_with_the_state(client: FlaskClient, store: Store) -> None:
    batch = delivered_batch(client, store, "5511")
    reply = client.post(f"/api/chats/5511/batches/{batch}/unanswered")
    assert reply.status_code == 200 and reply.get_json()["carried"] == 1 and reply.get_json()["flush_at"]
    assert client.post(f"/api/chats/5511/batches/{batch}/unanswered").get_json()["carried"] == 0  # said before
    reply = client.post(f"/api/chats/5511/batches/{batch}/answered")
    assert reply.status_code == 409 and reply.get_json()["error"]["code"] == "already_unanswered"


def test_unknown_batches_other_chats_and_undelivered_batches_are_refused(client: FlaskClient, store: Store) -> None:
    batch = delivered_batch(client, store, "5511")
    for url in (f"/api/chats/5512/batches/{batch}", "/api/chats/5511/batches/0123456789abcdef0123456789abcdef"):
        reply = client.get(url)
        assert reply.status_code == 404 and reply.get_json()["error"]["code"] == "batch_not_found"
    pending = client.post("/api/message", json={"user": "5511", "message": "e o verde?", "flush": True}).get_json()
    reply = client.post(f"/api/chats/5511/batches/{pending['batch_id']}/answered")
    assert reply.status_code == 409 and reply.get_json()["error"]["code"] == "not_delivered"
    assert client.get(f"/api/chats/5511/batches/{pending['batch_id']}").get_json()["state"] == "pending"


def test_pause_and_resume_take_a_duration_and_work_with_nothing_pending(client: FlaskClient) -> None:
    reply = client.post("/api/chats/5511/pause", json={"for": "30m"})
    assert reply.status_code == 200 and reply.get_json()["paused"] is True and reply.get_json()["paused_until"]
    assert client.post("/api/chats/5511/resume").get_json() == {"success": True, "user": "5511", "paused": False,
                                                                "was_paused": True}  # fmt: skip
    for bad in ({"for": 0}, {"for": "9d"}, {"for": "soon"}, {"for": True}, {}):
        reply = client.post("/api/chats/5511/pause", json=bad)
        assert reply.status_code == 400 and reply.get_json()["error"]["field"] == "for", bad


def test_await_answer_must_be_a_boolean(client: FlaskClient) -> None:
    reply = client.post("/api/message", json={"user": "5511", "message": "oi", "await_answer": "sim"})
    assert reply.status_code == 400 and reply.get_json()["error"]["field"] == "await_answer"
    reply = client.post("/api/message", json={"user": "5511", "message": "oi", "answer_timeout": -1})
    assert reply.status_code == 400 and reply.get_json()["error"]["field"] == "answer_timeout"


def test_the_answer_routes_take_the_ingest_key_or_an_admin_key(settings: Settings, store: Store) -> None:
    client = create_app(replace(settings, ingest_auth=True, api_keys=("ingest",)), store).test_client()
    batch = "0123456789abcdef0123456789abcdef"
    for method, path in (("get", f"/api/chats/5511/batches/{batch}"), ("post", "/api/chats/5511/resume"),
                         ("post", f"/api/chats/5511/batches/{batch}/answered")):  # fmt: skip
        reply = getattr(client, method)(path)
        assert reply.status_code == 401 and reply.get_json()["error"]["code"] == "unauthorized", path
    assert client.get(f"/api/chats/5511/batches/{batch}", headers={"X-API-Key": "ingest"}).status_code == 404
    admin = {"Authorization": f"Bearer {settings.admin_api_keys[0]}"}
    assert client.post("/api/chats/5511/resume", headers=admin).status_code == 200
