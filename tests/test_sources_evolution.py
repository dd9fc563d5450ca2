"""Evolution API v2 webhooks to actions, from real-shaped fixtures (tests/fixtures/evolution/)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from datafy.sources import Buffer, Discard, Ignore, MalformedError, Typing
from datafy.sources.evolution import event_slug, parse_evolution

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    """A gateway body as the gateway sends it (the `_source` link dropped)."""
    body = json.loads((FIXTURES / f"{name}.json").read_text())
    body.pop("_source")
    return body


def only(body: dict[str, Any], **policies: str) -> Any:
    [action] = parse_evolution(body, **policies)
    return action


def test_text_is_buffered_per_instance_and_jid_with_the_batch_fields_and_the_raw_data() -> None:
    body = fixture("evolution/text")
    action = only(body)
    assert isinstance(action, Buffer)
    assert action.user == "evolution:loja:5511987654321@s.whatsapp.net"
    assert action.message == "oi" and action.text is None
    assert action.message_id == "3EB0C431C26A1916E07A"
    assert action.metadata == {"source": "evolution", "instance": "loja", "remoteJid": "5511987654321@s.whatsapp.net",
                               "number": "5511987654321", "pushName": "Ana Souza"}  # fmt: skip
    assert action.item_fields == {"data": body["data"], "sent_at": "2025-11-26T23:40:01Z"}
    assert "apikey" not in action.metadata and "sender" not in action.metadata  # Evolution's, not the customer's


def test_extended_text_from_evolution_before_2_2_is_plain_text() -> None:
    action = only(fixture("evolution/extended_text"))
    assert action.message == "queria saber o preço do https://loja.example.com/p/42"


def test_image_caption_is_the_text_and_the_references_are_kept() -> None:
    action = only(fixture("evolution/image_caption"))
    assert action.message["type"] == "image" and action.message["caption"] == "olha esse modelo"
    assert action.message["mimetype"] == "image/jpeg"
    assert action.message["url"].startswith("https://mmg.whatsapp.net/")
    assert action.message["mediaUrl"].startswith("https://s3.example.com/")
    assert action.text == "olha esse modelo"


def test_audio_keeps_base64_once_in_the_media_object() -> None:
    body = fixture("evolution/audio")
    action = only(body)
    assert action.message["type"] == "audio" and action.message["ptt"] is True and action.message["seconds"] == 3
    assert action.message["base64"] == body["data"]["message"]["base64"]
    assert action.message["caption"] is None and action.text is None
    assert "base64" not in action.item_fields["data"]["message"]  # not stored twice
    assert action.item_fields["data"]["message"]["audioMessage"] == body["data"]["message"]["audioMessage"]


def test_document_location_and_reaction() -> None:
    document = only(fixture("evolution/document")).message
    assert document == {**document, "type": "document", "fileName": "orcamento.pdf", "caption": "segue o orçamento",
                        "mimetype": "application/pdf"}  # fmt: skip
    location = only(fixture("evolution/location")).message
    assert location == {"type": "location", "latitude": -23.5613, "longitude": -46.6565,
                        "name": "Av. Paulista, 1578", "address": "Bela Vista, São Paulo - SP"}  # fmt: skip
    reaction = only(fixture("evolution/reaction")).message
    assert reaction == {"type": "reaction", "emoji": "👍", "message_id": "BAE5F1E2D3C4B5A6"}


def test_lid_chat_keeps_the_jid_as_sent_and_the_phone_from_remote_jid_alt_or_sender_pn() -> None:
    for name in ("evolution/lid", "evolution/lid_sender_pn"):
        action = only(fixture(name))
        assert action.user == "evolution:loja:145602933870765@lid"
        assert action.metadata["remoteJid"] == "145602933870765@lid"
        assert action.metadata["number"] == "5521998887777"
    body = fixture("evolution/lid")
    del body["data"]["key"]["remoteJidAlt"]  # WhatsApp shared no phone
    assert "number" not in only(body).metadata


def test_groups_are_ignored_by_default_and_buffered_per_group_with_chat() -> None:
    body = fixture("evolution/group")
    assert isinstance(only(body), Ignore) and "group" in only(body).reason
    action = only(body, groups="chat")
    assert action.user == "evolution:loja:120363025246125486@g.us"
    assert "number" not in action.metadata and action.item_fields["participant"] == "5511977776666@s.whatsapp.net"


def test_from_me_is_ignored_or_discards_the_pending_batch() -> None:
    body = fixture("evolution/from_me")
    assert isinstance(only(body), Ignore) and "fromMe" in only(body).reason
    assert only(body, from_me="discard") == Discard("evolution:loja:5511987654321@s.whatsapp.net")


def test_presence_composing_is_typing_and_paused_is_ignored() -> None:
    assert only(fixture("evolution/presence_composing")) == Typing("evolution:loja:5511987654321@s.whatsapp.net")
    paused = only(fixture("evolution/presence_paused"))
    assert isinstance(paused, Ignore) and "paused" in paused.reason


def test_other_events_and_types_and_broadcasts_are_ignored() -> None:
    assert isinstance(only(fixture("evolution/connection_update")), Ignore)
    body = fixture("evolution/text")
    body["data"]["message"] = {"pollCreationMessageV3": {"name": "?"}}
    body["data"]["messageType"] = "pollCreationMessageV3"
    assert "pollCreationMessageV3" in only(body).reason
    body = fixture("evolution/text")
    body["data"]["key"]["remoteJid"] = "status@broadcast"
    assert isinstance(only(body), Ignore)


def test_event_names_as_the_per_event_urls_spell_them() -> None:
    assert event_slug("messages.upsert") == event_slug("MESSAGES_UPSERT") == "messages-upsert"
    body = fixture("evolution/text")
    body["event"] = "MESSAGES_UPSERT"
    assert isinstance(only(body), Buffer)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda b: b.pop("data"), "data"),
        (lambda b: b.__setitem__("data", [1]), "data"),
        (lambda b: b["data"].__setitem__("key", "x"), "data.key"),
        (lambda b: b["data"]["key"].pop("remoteJid"), "data.key.remoteJid"),
        (lambda b: b["data"]["key"].__setitem__("id", 7), "data.key.id"),
        (lambda b: b["data"]["key"].__setitem__("fromMe", "no"), "data.key.fromMe"),
        (lambda b: b["data"].pop("message"), "data.message"),
        (lambda b: b.pop("instance"), "instance"),
        (lambda b: b.pop("event"), "event"),
    ],
)
def test_malformed_bodies_name_the_path(change: Any, path: str) -> None:
    body = copy.deepcopy(fixture("evolution/text"))
    change(body)
    with pytest.raises(MalformedError) as caught:
        parse_evolution(body)
    assert caught.value.path == path
