"""Gateway webhooks end to end: real gunicorn, real monitor, real receiver, real Redis, real-shaped bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import redis
import requests

from datafy.keys import KeySpace
from devtools.oracle import datafy_keys, leftover_keys
from devtools.processes import system
from devtools.receiver import Receiver
from tests.support.env import TEST_ENV
from tests.support.gateway_bodies import SHAPES, VERSIONS, encodings, fixture

KEY = "e2e-source-key-0123456789"
APP_SECRET = "meta-app-secret-for-e2e"
BURST = ["text", "image_caption", "extended_text", "reaction"]


def post(url: str, body: dict[str, Any], **headers: str) -> requests.Response:
    return requests.post(url, data=json.dumps(body), headers={"Content-Type": "application/json", **headers},
                         timeout=10)  # fmt: skip


def ok(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def signed(body: dict[str, Any], secret: str = APP_SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}


def test_an_evolution_burst_gives_one_ordered_batch_per_instance_and_drops_redeliveries(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env.update(WEBHOOK_URL=receiver.url, INGEST_AUTH="on", API_KEY=KEY, GUNICORN_ACCESS_LOG="-")
    with system(env, tmp_path) as (api, _monitor):
        base = f"{api.extra['url']}/api/sources/evolution"
        urls = [f"{base}?ttl=1.5&key={KEY}", f"{base}/messages-upsert?ttl=1.5&key={KEY}",
                f"{base}?ttl=1.5&key={KEY}/messages-upsert"]  # fmt: skip  # plain, by events, by events after a query
        for n, name in enumerate(BURST):
            ok(post(urls[n % 3], fixture(f"evolution/{name}")))
            time.sleep(0.1)
        other = fixture("evolution/text")
        other["instance"] = "filial"  # the same customer writing to a second number
        ok(post(urls[0], other))
        redelivered = ok(post(urls[0], fixture("evolution/text")))  # Evolution retries after a lost reply
        assert redelivered["results"][0]["status"] == "duplicate"
        [call] = ok(post(f"{base}?ttl=1.5&key={KEY}/call", fixture("evolution/call")))["results"]  # no hyphen
        assert call["status"] == "ignored"
        assert receiver.wait_for(lambda r: len(r.delivered) >= 2, timeout=10)
        time.sleep(0.5)
        log = api.log()
    by_instance = {batch["instance"]: batch for batch in receiver.delivered}
    assert len(receiver.delivered) == 2 and set(by_instance) == {"loja", "filial"}
    batch = by_instance["loja"]
    assert batch["user"] == "evolution:loja:5511987654321@s.whatsapp.net"
    assert batch["source"] == "evolution" and batch["remoteJid"] == "5511987654321@s.whatsapp.net"
    assert batch["number"] == "5511987654321" and batch["pushName"] == "Ana Souza"
    assert batch["message_count"] == len(BURST) and batch["flush_reason"] == "ttl"
    kinds = [m if isinstance(m, str) else m["type"] for m in batch["messages"]]
    assert kinds == ["oi", "image", "queria saber o preço do https://loja.example.com/p/42", "reaction"]
    assert batch["text"] == "oi\nolha esse modelo\nqueria saber o preço do https://loja.example.com/p/42"
    for name, item in zip(BURST, batch["items"], strict=True):
        raw = fixture(f"evolution/{name}")["data"]
        assert item["data"]["key"] == raw["key"] and item["message_id"] == raw["key"]["id"]
        assert "data.message.messageContextInfo" in item["dropped"] and encodings(item) == []
    quote = {"message_id": "3EB0B7C1D2E3F4A5B6C7D8", "participant": "5511912345678@s.whatsapp.net",
             "text": "Posso ajudar?"}  # fmt: skip
    assert batch["items"][2]["quote"] == quote
    assert "apikey" not in batch and "sender" not in batch
    assert by_instance["filial"]["user"] == "evolution:filial:5511987654321@s.whatsapp.net"
    assert by_instance["filial"]["messages"] == ["oi"]
    assert "POST /api/sources/evolution" in log and KEY not in log  # the access log masks ?key=
    assert leftover_keys(redis_client) == []


def test_every_shape_of_every_tested_evolution_version_is_delivered_to_one_chat_and_stored_small(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Image (12,000-byte thumbnail), sticker, document, video, voice note, location, contact card and text reply,
    as Evolution 2.3.6, 2.3.7 and 2.4.0-rc2 send them, from one LID-addressed customer: each is accepted, stored
    in a few kB (the bodies are up to 130 kB) and delivered, all in one chat. A voice note whose base64 would pass
    MAX_MESSAGE_BYTES arrives too, without the base64, and the API's log names the chat and the message."""
    env["WEBHOOK_URL"] = receiver.url
    bodies = [fixture(f"evolution/{version}/{shape}") for version in VERSIONS for shape in SHAPES]
    big = fixture("evolution/2.3.7/voice")
    big["data"]["key"]["id"] = "B16B0D1E5000000000000000000000AA"
    big["data"]["message"]["base64"] = base64.b64encode(b"OggS" + bytes(range(256)) * 300).decode()  # 76,800 B
    user = "evolution:loja:5521998887777@s.whatsapp.net"
    with system(env, tmp_path) as (api, _monitor):
        url = f"{api.extra['url']}/api/sources/evolution?ttl=3"
        for body in [*bodies, big]:
            [result] = ok(post(url, body))["results"]
            assert result["status"] == "buffered" and result["user"] == user, result
        buffer = KeySpace(env.get("REDIS_PREFIX", "datafy")).user(user).buffer
        sizes = [len(entry.encode()) for entry in redis_client.lrange(buffer, 0, -1)]
        assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=10)
        log = api.log()
    assert len(sizes) == len(bodies) + 1 and max(sizes) < 10_000  # MAX_MESSAGE_BYTES is 65,536
    assert max(len(json.dumps(body)) for body in bodies) > 130_000
    [batch] = receiver.delivered
    assert batch["user"] == user and batch["message_count"] == len(bodies) + 1 and batch["lid"] == "145602933870765@lid"
    kinds = [m if isinstance(m, str) else m["type"] for m in batch["messages"]]
    expected = ["image", "sticker", "document", "video", "audio", "location", "contact", "quero o azul"]
    assert kinds == expected * len(VERSIONS) + ["audio"]
    assert [item["message_id"] for item in batch["items"]] == [b["data"]["key"]["id"] for b in [*bodies, big]]
    assert all(encodings(item) == [] for item in batch["items"])
    assert batch["items"][4]["message"]["base64"] == bodies[4]["data"]["message"]["base64"]  # within the limit
    last = batch["items"][-1]
    assert "base64" not in last["message"] and last["message"]["url"] and last["dropped"][-1] == "message.base64"
    assert "base64 dropped" in log and user in log and big["data"]["key"]["id"] in log
    assert leftover_keys(redis_client) == []


def test_from_me_and_groups_are_ignored_by_default(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env["WEBHOOK_URL"] = receiver.url
    with system(env, tmp_path) as (api, _monitor):
        url = f"{api.extra['url']}/api/sources/evolution?ttl=0.5"
        for name in ("group", "from_me"):
            [result] = ok(post(url, fixture(f"evolution/{name}")))["results"]
            assert result["status"] == "ignored" and result["reason"]
        assert datafy_keys(redis_client) == []
        ok(post(url, fixture("evolution/text")))
        ok(post(url, fixture("evolution/from_me")))  # the bot answered: still ignored, the batch goes out
        assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=5)
        time.sleep(0.5)
    assert [b["messages"] for b in receiver.delivered] == [["oi"]]


def test_discard_policy_drops_the_pending_batch_and_groups_can_be_chats(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env.update(WEBHOOK_URL=receiver.url, EVOLUTION_FROM_ME="discard", GROUP_MESSAGES="chat")
    with system(env, tmp_path) as (api, _monitor):
        url = f"{api.extra['url']}/api/sources/evolution?ttl=1"
        ok(post(url, fixture("evolution/text")))
        ok(post(url, fixture("evolution/extended_text")))  # the same customer
        # A forged fromMe with the ingest key (or none) cannot discard a customer's messages ...
        [forged] = ok(post(url, fixture("evolution/from_me")))["results"]
        assert forged["status"] == "ignored" and "ADMIN_API_KEY" in forged["reason"]
        # ... the webhook that carries the admin key can: an attendant answered by hand
        [result] = ok(post(url, fixture("evolution/from_me"), **{"X-API-Key": TEST_ENV["ADMIN_API_KEY"]}))["results"]
        assert result == {"status": "discarded", "user": "evolution:loja:5511987654321@s.whatsapp.net",
                          "discarded": 2}  # fmt: skip
        ok(post(url, fixture("evolution/group")))
        assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=5)
        time.sleep(1.5)
    [batch] = receiver.delivered  # only the group's: the customer's batch was discarded
    assert batch["user"] == "evolution:loja:120363025246125486@g.us" and batch["messages"] == ["bom dia grupo"]
    assert batch["items"][0]["participant"] == "5511977776666@s.whatsapp.net"
    assert leftover_keys(redis_client) == []


def test_composing_extends_the_deadline(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env["WEBHOOK_URL"] = receiver.url
    with system(env, tmp_path) as (api, _monitor):
        url = f"{api.extra['url']}/api/sources/evolution"
        [first] = ok(post(f"{url}?ttl=2", fixture("evolution/text")))["results"]
        assert first["status"] == "buffered"
        time.sleep(0.7)
        typing_at = time.time()
        [typing] = ok(post(f"{url}/presence-update?ttl=3", fixture("evolution/presence_composing")))["results"]
        assert typing["status"] == "typing" and typing["pending"] is True and typing["flush_at"] > first["flush_at"]
        [paused] = ok(post(f"{url}?ttl=2", fixture("evolution/presence_paused")))["results"]  # reported as available
        assert paused["status"] == "ignored"
        assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=10)
    arrived = receiver.received[0].at
    assert arrived - typing_at >= 2.9  # without the presence it would have left 1.3 s after it


def test_whatsapp_handshake_signed_body_and_bad_signature(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env.update(WEBHOOK_URL=receiver.url, WHATSAPP_APP_SECRET=APP_SECRET, WHATSAPP_VERIFY_TOKEN="verify-me")
    with system(env, tmp_path) as (api, _monitor):
        url = f"{api.extra['url']}/api/sources/whatsapp"
        handshake = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
        answer = requests.get(url, params=handshake, timeout=5)
        assert answer.status_code == 200 and answer.text == "1158201444"
        assert answer.headers["Content-Type"].startswith("text/plain")
        wrong = requests.get(url, params={**handshake, "hub.verify_token": "guess"}, timeout=5)
        assert wrong.status_code == 403

        body = fixture("whatsapp/two_messages")
        raw, headers = signed(body)
        forged = raw.replace(b"another color", b"a free sample")
        assert requests.post(f"{url}?ttl=1", data=forged, headers=headers, timeout=5).status_code == 401
        unsigned = {"Content-Type": "application/json"}
        assert requests.post(f"{url}?ttl=1", data=raw, headers=unsigned, timeout=5).status_code == 401
        assert datafy_keys(redis_client) == []  # nothing stored

        results = ok(requests.post(f"{url}?ttl=1", data=raw, headers=headers, timeout=5))["results"]
        assert [r["status"] for r in results] == ["buffered", "buffered"]
        status_raw, status_headers = signed(fixture("whatsapp/status"))
        [status] = ok(requests.post(url, data=status_raw, headers=status_headers, timeout=5))["results"]
        assert status == {"status": "ignored", "reason": "status update"}
        assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=5)
        time.sleep(0.5)
    [batch] = receiver.delivered
    assert batch["user"] == "whatsapp:106540352242922:16505551234" and batch["source"] == "whatsapp"
    assert batch["pushName"] == "Sheena Nelson" and batch["number"] == "16505551234"
    assert batch["messages"][0] == "Does it come in another color?" and batch["messages"][1]["type"] == "image"
    assert batch["text"] == "Does it come in another color?\nlike this one"
    sent = body["entry"][0]["changes"][0]["value"]["messages"]
    assert [item["message_id"] for item in batch["items"]] == [message["id"] for message in sent]
    assert batch["items"][0]["data"] == sent[0]


def test_malformed_bodies_get_400_naming_the_path_and_store_nothing(
    env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    env["WHATSAPP_APP_SECRET"] = APP_SECRET
    with system(env, tmp_path) as (api, _monitor):
        evolution = f"{api.extra['url']}/api/sources/evolution"
        no_data = fixture("evolution/text")
        del no_data["data"]
        key_not_object = fixture("evolution/text")
        key_not_object["data"]["key"] = "3EB0C431C26A1916E07A"
        entry_not_list = fixture("whatsapp/two_messages")
        entry_not_list["entry"] = entry_not_list["entry"][0]
        raw, headers = signed(entry_not_list)
        replies = [
            (post(evolution, no_data), "missing_field", "data"),
            (post(evolution, key_not_object), "invalid_field", "data.key"),
            (requests.post(f"{api.extra['url']}/api/sources/whatsapp", data=raw, headers=headers, timeout=5),
             "invalid_field", "entry"),
        ]  # fmt: skip
        for reply, code, field in replies:
            assert reply.status_code == 400, reply.text
            assert reply.json()["error"]["code"] == code and reply.json()["error"]["field"] == field
    assert datafy_keys(redis_client) == []
