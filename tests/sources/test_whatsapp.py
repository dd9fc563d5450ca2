"""WhatsApp Cloud API webhooks to actions, the handshake and the signature (tests/fixtures/whatsapp/)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from datafy.sources import Append, Ignore, MalformedError
from datafy.sources.whatsapp import handshake_challenge, parse_whatsapp, signature_matches
from tests.support.gateway_bodies import fixture


def test_two_messages_in_one_body_are_two_buffers_for_one_chat() -> None:
    body = fixture("whatsapp/two_messages")
    text, image = parse_whatsapp(body)
    assert isinstance(text, Append) and isinstance(image, Append)
    assert text.user == image.user == "whatsapp:106540352242922:16505551234"
    assert text.message == "Does it come in another color?"
    assert text.message_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    assert text.metadata == {"source": "whatsapp", "phone_number_id": "106540352242922",
                             "display_phone_number": "15550783881", "number": "16505551234",
                             "wa_user_id": "US.13491208655302741918", "pushName": "Sheena Nelson"}  # fmt: skip
    assert text.item_fields["data"] == body["entry"][0]["changes"][0]["value"]["messages"][0]
    assert image.message == {"type": "image", "caption": "like this one", "mimetype": "image/jpeg",
                             "mediaId": "1003383421387256",
                             "sha256": "dhSWeK2M0H1ZIpC0gcOwyXjSBPNIAS5vbWSNmYoLrCU="}  # fmt: skip
    assert image.text == "like this one"


def test_without_a_phone_the_chat_is_the_business_scoped_user_id_and_every_kind_maps() -> None:
    audio, document, location, reaction, choice, button, unsupported = parse_whatsapp(
        fixture("whatsapp/kinds_without_phone")
    )
    assert audio.user == "whatsapp:106540352242922:US.13491208655302741918"
    assert "number" not in audio.metadata and audio.metadata["username"] == "@sheena"
    assert audio.message == {"type": "audio", "caption": None, "mimetype": "audio/ogg; codecs=opus",
                             "mediaId": "1827364554637281", "sha256": "Ak3n", "voice": True}  # fmt: skip
    assert document.message["fileName"] == "invoice.pdf" and document.text == "invoice"
    assert location.message["latitude"] == 37.483307 and location.message["type"] == "location"
    assert reaction.message == {"type": "reaction", "emoji": "\u2764\ufe0f",
                                "message_id": "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}  # fmt: skip
    assert choice.message == {"type": "reply", "reply_type": "list_reply", "id": "blue", "title": "Blue",
                              "description": "Navy blue"}  # fmt: skip
    assert choice.text == "Blue"
    assert button.message == {"type": "reply", "id": "talk-to-sales", "title": "Talk to sales"}
    assert isinstance(unsupported, Ignore) and "unsupported" in unsupported.reason


def test_an_order_is_an_item_with_its_text_and_an_unknown_interactive_keeps_its_object() -> None:
    """Regression: orders were ignored though they carry the customer's words; a call permission reply was
    buffered as an empty reply."""
    body = fixture("whatsapp/order_and_call_permission")
    order, permission = parse_whatsapp(body)
    assert isinstance(order, Append) and order.text == "can you deliver tomorrow?"
    assert order.message == {"type": "order", "catalog_id": "1462927044538412", "text": "can you deliver tomorrow?",
                             "product_items": [{"product_retailer_id": "sku-blue-42", "quantity": 2,
                                                "item_price": 89.9, "currency": "BRL"}]}  # fmt: skip
    sent = body["entry"][0]["changes"][0]["value"]["messages"][1]["interactive"]
    assert isinstance(permission, Append) and permission.text is None
    assert permission.message == {"type": "interactive", "interactive_type": "call_permission_reply",
                                  "interactive": sent}  # fmt: skip
    assert order.user == permission.user == "whatsapp:106540352242922:16505551234"


def test_statuses_echoes_and_other_objects_are_ignored() -> None:
    [status] = parse_whatsapp(fixture("whatsapp/status"))
    assert isinstance(status, Ignore) and status.reason == "status update"
    [echo] = parse_whatsapp(fixture("whatsapp/echo"))
    assert isinstance(echo, Ignore) and "smb_message_echoes" in echo.reason
    assert isinstance(parse_whatsapp({"object": "page", "entry": []})[0], Ignore)


def test_groups_follow_the_group_policy() -> None:
    body = fixture("whatsapp/group")
    [ignored] = parse_whatsapp(body)
    assert isinstance(ignored, Ignore)
    [group] = parse_whatsapp(body, groups="chat")
    group_id = "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyODM4ODk="
    assert group.user == f"whatsapp:106540352242922:group:{group_id}" and group.metadata["group_id"] == group_id


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda b: b.__setitem__("entry", {}), "entry"),
        (lambda b: b["entry"][0].__setitem__("changes", None), "entry[0].changes"),
        (lambda b: b["entry"][0]["changes"][0].__setitem__("value", []), "entry[0].changes[0].value"),
        (lambda b: b["entry"][0]["changes"][0]["value"].__setitem__("messages", "x"),
         "entry[0].changes[0].value.messages"),
        (lambda b: b["entry"][0]["changes"][0]["value"]["metadata"].pop("phone_number_id"),
         "entry[0].changes[0].value.metadata.phone_number_id"),
        (lambda b: b["entry"][0]["changes"][0]["value"]["messages"][1].pop("id"),
         "entry[0].changes[0].value.messages[1].id"),
        (lambda b: b["entry"][0]["changes"][0]["value"]["messages"][0].pop("from"),
         "entry[0].changes[0].value.messages[0].from"),
    ],
)  # fmt: skip
def test_malformed_bodies_name_the_path(change: Any, path: str) -> None:
    body = fixture("whatsapp/two_messages")
    value = body["entry"][0]["changes"][0]["value"]
    if path.endswith("messages[0].from"):  # no phone and no user id anywhere
        value["contacts"] = []
        del value["messages"][0]["from_user_id"]
    change(body)
    with pytest.raises(MalformedError) as caught:
        parse_whatsapp(body)
    assert caught.value.path == path


def test_handshake_answers_only_our_token() -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    assert handshake_challenge(good, "tok") == "1158201444"
    assert handshake_challenge({**good, "hub.verify_token": "nope"}, "tok") is None
    assert handshake_challenge({**good, "hub.mode": "unsubscribe"}, "tok") is None
    assert handshake_challenge(good, "") is None  # no token configured: nothing verifies


def test_signature_is_the_hmac_of_the_raw_body() -> None:
    raw = b'{"object":"whatsapp_business_account","entry":[]}'
    good = "sha256=" + hmac.new(b"app-secret", raw, hashlib.sha256).hexdigest()
    assert signature_matches(raw, good, "app-secret")
    assert signature_matches(raw, good.upper().replace("SHA256=", "sha256="), "app-secret")
    assert not signature_matches(raw + b" ", good, "app-secret")
    assert not signature_matches(raw, good, "other-secret")
    assert not signature_matches(raw, None, "app-secret")
    assert not signature_matches(raw, good[7:], "app-secret")  # the sha256= prefix is part of the format
