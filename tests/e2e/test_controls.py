"""Burst controls end to end, through real gunicorn, monitor and receiver processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis
import requests

from devtools.oracle import leftover_keys
from devtools.processes import system
from devtools.receiver import Receiver
from tests.support.env import TEST_ENV

ADMIN = {"Authorization": f"Bearer {TEST_ENV['ADMIN_API_KEY']}"}


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def api_url(env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path) -> Iterator[str]:
    env.update(
        WEBHOOK_URL=receiver.url, MAX_BATCH_MESSAGES="5", MAX_BATCH_BYTES="2048", FLUSH_KEYWORDS="pronto, é isso"
    )
    with system(env, tmp_path) as (api, _monitor):
        yield api.extra["url"]
    assert leftover_keys(redis_client) == []


def send(api_url: str, **body: object) -> dict:
    response = requests.post(f"{api_url}/api/message", json=body, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def sealed_on_time(batch: dict, after: float) -> bool:
    """Sealed `after` seconds past its first message; a monitor process that stalls is covered by another
    once the deadline is 1 s overdue, so a busy machine may be that much late."""
    return -0.05 <= ts(batch["processed_at"]) - ts(batch["first_message_at"]) - after <= 1.3


def batches_of(receiver: Receiver, user: str) -> list[dict]:
    return sorted((b for b in receiver.delivered if b["user"] == user), key=lambda b: b["sequence"])


def test_max_wait_flushes_a_user_who_never_pauses(api_url: str, receiver: Receiver) -> None:
    first = send(api_url, user="chatty", message="m0", ttl=1, max_wait=1.5)
    started = time.time()
    i = 1
    while time.time() - started < 2.5:
        time.sleep(0.4)  # under MAX_BATCH_MESSAGES=5 within max_wait
        send(api_url, user="chatty", message=f"m{i}", ttl=1, max_wait=1.5)
        i += 1
    assert receiver.wait_for(lambda r: len(batches_of(r, "chatty")) == 2, timeout=5)
    one, two = batches_of(receiver, "chatty")
    assert one["flush_reason"] == "max_wait" and one["sequence"] == 1
    assert ts(one["processed_at"]) - ts(first["flush_at"]) < 1.0  # not a full ttl late
    assert sealed_on_time(one, after=1.5)
    assert one["messages"] + two["messages"] == [f"m{n}" for n in range(i)]


def test_max_messages_and_hard_caps_flush_without_dropping(api_url: str, receiver: Receiver) -> None:
    for n in range(7):
        send(api_url, user="counted", message=f"c{n}", ttl=1, max_messages=3)
    for n in range(12):
        send(api_url, user="capped", message=f"h{n}", ttl=1)
    for n in range(8):
        send(api_url, user="bytes", message=f"b{n}-" + "x" * 600, ttl=1)
    assert receiver.wait_for(lambda r: len(r.delivered) >= 3 + 3 + 3, timeout=10)
    time.sleep(0.5)
    counted = batches_of(receiver, "counted")
    assert [len(b["messages"]) for b in counted] == [3, 3, 1]
    assert [b["flush_reason"] for b in counted] == ["max_messages", "max_messages", "ttl"]
    capped = batches_of(receiver, "capped")
    assert [len(b["messages"]) for b in capped] == [5, 5, 2]  # MAX_BATCH_MESSAGES=5
    sized = batches_of(receiver, "bytes")
    assert all(len(b["messages"]) <= 3 for b in sized) and sized[0]["flush_reason"] == "max_bytes"
    assert [m for b in sized for m in b["messages"]] == [f"b{n}-" + "x" * 600 for n in range(8)]


def test_flush_now_by_request_and_by_keyword(api_url: str, receiver: Receiver) -> None:
    send(api_url, user="asker", message="quanto custa?", ttl=60)
    reply = send(api_url, user="asker", message="responde", ttl=60, flush=True)
    assert reply["flushed"] is True
    send(api_url, user="typer", message="quero pizza", ttl=60)
    send(api_url, user="typer", message="  É ISSO ", ttl=60)
    assert receiver.wait_for(lambda r: len(r.delivered) == 2, timeout=3)
    [asked] = batches_of(receiver, "asker")
    [typed] = batches_of(receiver, "typer")
    assert asked["flush_reason"] == "request" and asked["messages"] == ["quanto custa?", "responde"]
    assert typed["flush_reason"] == "keyword" and typed["messages"] == ["quero pizza", "  É ISSO "]


def test_typing_extends_the_deadline_but_not_past_max_wait(api_url: str, receiver: Receiver) -> None:
    sent = send(api_url, user="slow", message="oi", ttl=1)
    send(api_url, user="capped", message="oi", ttl=1, max_wait=2)
    time.sleep(0.5)
    typing = requests.post(f"{api_url}/api/typing", json={"user": "slow", "ttl": 3}, timeout=5).json()
    assert typing["pending"] is True and ts(typing["flush_at"]) - ts(sent["flush_at"]) > 2
    requests.post(f"{api_url}/api/typing", json={"user": "capped", "ttl": 10}, timeout=5)
    nobody = requests.post(f"{api_url}/api/typing", json={"user": "nobody", "ttl": 3}, timeout=5).json()
    assert nobody["pending"] is False
    assert receiver.wait_for(lambda r: len(r.delivered) == 2, timeout=6)
    [slow] = batches_of(receiver, "slow")
    [capped] = batches_of(receiver, "capped")
    assert ts(slow["processed_at"]) - ts(slow["first_message_at"]) >= 3.4
    assert capped["flush_reason"] == "max_wait"
    assert sealed_on_time(capped, after=2)


def test_message_ids_dedupe_across_batches_and_items_carry_details(api_url: str, receiver: Receiver) -> None:
    send(api_url, user="wa", message="oi", message_id="wamid.1", ttl=0.5, pushName="Ana")
    media = {"type": "image", "mediaId": "abc", "caption": "olha"}
    send(api_url, user="wa", message=media, message_id="wamid.2", ttl=0.5, mimetype="image/jpeg")
    assert send(api_url, user="wa", message="oi", message_id="wamid.1", ttl=0.5)["duplicate"] is True
    assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=3)
    assert send(api_url, user="wa", message=media, message_id="wamid.2", ttl=0.5)["duplicate"] is True
    send(api_url, user="wa", message="e aí?", message_id="wamid.3", ttl=0.5)
    assert receiver.wait_for(lambda r: len(r.delivered) == 2, timeout=3)
    first, second = batches_of(receiver, "wa")
    assert first["messages"] == ["oi", media] and second["messages"] == ["e aí?"]
    assert [first["sequence"], second["sequence"]] == [1, 2]
    one, two = first["items"]
    assert one["message_id"] == "wamid.1" and one["pushName"] == "Ana" and one["received_at"]
    assert two["message"] == media and two["mimetype"] == "image/jpeg" and "pushName" not in two
    assert first["pushName"] == "Ana" and first["mimetype"] == "image/jpeg"


def test_control_endpoints_peek_list_flush_and_discard(api_url: str, receiver: Receiver) -> None:
    send(api_url, user="human", message="quero falar com atendente", ttl=60)
    send(api_url, user="manual", message="oi", ttl=60)
    listing = requests.get(f"{api_url}/api/chats", headers=ADMIN, timeout=5).json()
    assert listing["total"] == 2
    peek = requests.get(f"{api_url}/api/chats/human", headers=ADMIN, timeout=5).json()
    assert peek["messages"] == ["quero falar com atendente"] and peek["count"] == 1
    dropped = requests.delete(f"{api_url}/api/chats/human", headers=ADMIN, timeout=5).json()
    assert dropped["discarded"] == 1
    flushed = requests.post(f"{api_url}/api/chats/manual/flush", headers=ADMIN, timeout=5)
    assert flushed.status_code == 200
    assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=3)
    time.sleep(0.3)
    [batch] = receiver.delivered
    assert batch["user"] == "manual" and batch["flush_reason"] == "manual"
    no_key = requests.get(f"{api_url}/api/chats", timeout=5)
    assert no_key.status_code == 401
