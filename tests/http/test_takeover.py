"""Human takeover from the gateways: with EVOLUTION_FROM_ME=pause, the business's own message (Evolution's fromMe,
Meta's smb_message_echoes) pauses the chat; its batches still go out, marked paused. Nothing is dropped."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace

from flask.testing import FlaskClient

from datafy.config import Settings
from datafy.http import create_app
from datafy.payload import webhook_body
from datafy.store import Store
from tests.support.gateway_bodies import fixture

SECRET = "meta-app-secret"


def paused_client(settings: Settings, store: Store) -> FlaskClient:
    changed = replace(settings, evolution_from_me="pause", whatsapp_app_secret=SECRET, whatsapp_verify_token="v")
    return create_app(changed, store).test_client()


def test_a_fromme_message_pauses_the_chat_and_nothing_is_dropped(settings: Settings, store: Store) -> None:
    client = paused_client(settings, store)
    send = lambda body: client.post("/api/sources/evolution?ttl=1", json=body).get_json()["results"]  # noqa: E731
    [buffered] = send(fixture("evolution/text"))
    [paused] = send(fixture("evolution/from_me"))  # an attendant answered on the phone, with the ingest key
    assert paused["status"] == "paused" and paused["user"] == buffered["user"] and paused["paused_until"]
    store.buffer.flush(buffered["user"])
    [claim] = store.outbox.claim(1, 60)
    batch = webhook_body(claim.body)
    assert batch["paused"] is True and len(batch["messages"]) == 1  # the customer's message is still there


def test_a_meta_echo_pauses_the_chat_it_went_to(settings: Settings, store: Store) -> None:
    client = paused_client(settings, store)
    raw = json.dumps(fixture("whatsapp/echo")).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    reply = client.post("/api/sources/whatsapp", data=raw, content_type="application/json",
                        headers={"X-Hub-Signature-256": signature})  # fmt: skip
    [result] = reply.get_json()["results"]
    assert result["status"] == "paused" and result["user"] == "whatsapp:106540352242922:16505551234"
    assert store.views.counts().paused == 1
