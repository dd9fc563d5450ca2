"""Evolution API v2 webhooks to actions, from fixtures built on each version's serializer (fixtures/evolution/)."""

from __future__ import annotations

import base64
import copy
import importlib.util
import logging
import sys
from typing import Any

import pytest

from datafy.sources import Append, Discard, Ignore, MalformedError, Typing
from datafy.sources.evolution import event_slug, parse_evolution
from datafy.sources.evolution_payload import stored_size
from tests.support.gateway_bodies import FIXTURES, SHAPES, VERSIONS, encodings, fixture

BRUNO = "evolution:loja:5521998887777@s.whatsapp.net"  # the LID-addressed customer of the versioned fixtures
ANA = "evolution:loja:5511987654321@s.whatsapp.net"


def only(body: dict[str, Any], **policies: Any) -> Any:
    [action] = parse_evolution(body, **policies)
    return action


def stored(action: Append) -> int:
    """What MAX_MESSAGE_BYTES counts for this message."""
    return stored_size(action.message, {**action.metadata, **action.item_fields})


def test_the_fixtures_are_what_the_serializer_model_writes() -> None:
    """Each file is rebuilt by tests/fixtures/evolution/build.py; a hand edit would drift from the cited source."""
    spec = importlib.util.spec_from_file_location("evolution_fixtures", FIXTURES / "evolution" / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build  # its dataclasses look their module up
    try:
        spec.loader.exec_module(build)
    finally:
        del sys.modules[spec.name]
    for path, text in build.fixtures().items():
        assert (FIXTURES / "evolution" / path).read_text() == text, path


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_of_every_version_is_buffered_small_and_decoded(version: str, shape: str) -> None:
    body = fixture(f"evolution/{version}/{shape}")
    action = only(body)
    assert isinstance(action, Append), action
    assert action.user == BRUNO  # one chat whatever the version put in remoteJid
    assert action.message_id == body["data"]["key"]["id"]
    assert action.item_fields["sent_at"].startswith("2025-11-26T23:")
    assert encodings(action.item_fields) == [] and encodings(action.message) == []
    assert stored(action) < 10_000  # the 12,000-byte thumbnail alone is 130 kB of Evolution's JSON


@pytest.mark.parametrize("version", VERSIONS)
def test_the_kept_fields_are_what_a_workflow_reads_and_the_dropped_are_named(version: str) -> None:
    image = only(fixture(f"evolution/{version}/image"))
    assert image.message["type"] == "image" and image.message["caption"] == image.text == "olha esse modelo"
    assert image.message["mimetype"] == "image/jpeg" and image.message["url"].startswith("https://mmg.whatsapp.net/")
    assert image.message["mediaUrl"].startswith("https://s3.example.com/")
    dropped = image.item_fields["dropped"]
    assert "data.message.imageMessage.jpegThumbnail" in dropped and "data.message.messageContextInfo" in dropped
    kept = image.item_fields["data"]["message"]["imageMessage"]
    assert "jpegThumbnail" not in kept and kept["fileLength"] == 184213 and kept["directPath"].startswith("/o1/")
    raw_key = fixture(f"evolution/{version}/image")["data"]["message"]["imageMessage"]["mediaKey"]
    assert (
        base64.b64decode(kept["mediaKey"]) == bytes(raw_key[str(n)] for n in range(len(raw_key))) and len(raw_key) == 32
    )

    voice = only(fixture(f"evolution/{version}/voice"))
    assert voice.message["type"] == "audio" and voice.message["ptt"] is True and voice.message["seconds"] == 6
    assert base64.b64decode(voice.message["base64"]).startswith(b"OggS")  # the webhook's base64 option, kept once
    assert "base64" not in voice.item_fields["data"]["message"]
    assert "data.message.audioMessage.waveform" in voice.item_fields["dropped"]
    assert voice.item_fields["quote"] == {"message_id": "3EB0B7C1D2E3F4A5B6C7D8",
                                          "participant": "5511912345678@s.whatsapp.net",
                                          "text": "Qual cor você prefere?"}  # fmt: skip

    document = only(fixture(f"evolution/{version}/document")).message
    assert document == {**document, "type": "document", "fileName": "orcamento.pdf", "caption": "segue o orçamento",
                        "mimetype": "application/pdf"}  # fmt: skip
    video = only(fixture(f"evolution/{version}/video"))
    assert video.message["type"] == "video" and video.message["seconds"] == 14 and video.text == "funciona assim?"
    sticker = only(fixture(f"evolution/{version}/sticker"))
    assert sticker.message["type"] == "sticker" and sticker.message["mimetype"] == "image/webp"
    assert sticker.item_fields["data"]["message"]["stickerMessage"]["stickerSentTs"] == 1764200501517 + 100_000 * (
        VERSIONS.index(version)
    )  # an int64 whose low half is negative on the wire
    location = only(fixture(f"evolution/{version}/location")).message
    assert location == {"type": "location", "latitude": -23.5613, "longitude": -46.6565,
                        "name": "Av. Paulista, 1578", "address": "Bela Vista, São Paulo - SP"}  # fmt: skip
    contact = only(fixture(f"evolution/{version}/contact")).message
    assert (
        contact["type"] == "contact" and contact["displayName"] == "Carlos" and "waid=5511977776666" in contact["vcard"]
    )


def test_the_quote_of_a_text_reply_is_kept_where_evolution_sends_it() -> None:
    for version in ("2.3.6", "2.3.7"):
        reply = only(fixture(f"evolution/{version}/text_reply"))
        assert reply.message == "quero o azul"
        assert reply.item_fields["quote"]["message_id"] == "3EB0B7C1D2E3F4A5B6C7D8"
        assert reply.item_fields["quote"]["text"] == "Temos em azul e verde"
    # 2.4.0-rc2's prepareMessage() sends messageContextInfo as contextInfo: a text reply's quote never arrives.
    reply = only(fixture("evolution/2.4.0-rc2/text_reply"))
    assert reply.message == "quero o azul" and "quote" not in reply.item_fields
    assert only(fixture("evolution/extended_text")).item_fields["quote"]["text"] == "Posso ajudar?"


def test_text_is_buffered_per_instance_and_phone_with_the_batch_fields() -> None:
    body = fixture("evolution/text")
    action = only(body)
    assert isinstance(action, Append)
    assert action.user == ANA and action.message == "oi" and action.text is None
    assert action.message_id == body["data"]["key"]["id"]
    assert action.metadata == {"source": "evolution", "instance": "loja", "remoteJid": "5511987654321@s.whatsapp.net",
                               "lid": "209853716452031@lid", "number": "5511987654321",
                               "pushName": "Ana Souza"}  # fmt: skip
    kept = {**body["data"], "message": {"conversation": "oi"}}
    assert action.item_fields == {"data": kept, "sent_at": "2025-11-26T23:40:01Z",
                                  "dropped": ["data.message.messageContextInfo"]}  # fmt: skip
    assert "apikey" not in action.metadata and "sender" not in action.metadata  # Evolution's, not the customer's


def test_one_customer_is_one_chat_whichever_field_the_version_put_the_phone_in() -> None:
    lid_keys = {
        "2.3.0 (senderPn)": fixture("evolution/lid_sender_pn"),
        "2.3.5/2.3.6 (remoteJid @lid, remoteJidAlt phone)": fixture("evolution/lid"),
        "2.3.7 (remoteJid phone)": fixture("evolution/2.3.7/text_reply"),
        "2.4.0-rc2 (swapped, addressingMode pn)": fixture("evolution/2.4.0-rc2/text_reply"),
    }
    moved = fixture("evolution/lid_sender_pn")  # 2.3.1-2.3.2 copied senderPn over remoteJid (2.3.1 L1051-L1054)
    moved["data"]["key"].update(remoteJid="5521998887777@s.whatsapp.net", previousRemoteJid="145602933870765@lid")
    lid_keys["2.3.1-2.3.2 (previousRemoteJid)"] = moved
    for name, body in lid_keys.items():
        action = only(body)
        assert action.user == BRUNO, name
        assert (
            action.metadata["remoteJid"] == "5521998887777@s.whatsapp.net"
            and action.metadata["number"] == "5521998887777"
        )
        if "2.3.7" not in name:  # 2.3.7 overwrote the @lid: it is nowhere in the body
            assert action.metadata["lid"] == "145602933870765@lid", name
    body = fixture("evolution/lid")
    del body["data"]["key"]["remoteJidAlt"]  # WhatsApp shared no phone: the @lid is the chat
    action = only(body)
    assert action.user == "evolution:loja:145602933870765@lid" and "number" not in action.metadata
    assert action.metadata["lid"] == action.metadata["remoteJid"] == "145602933870765@lid"


def test_presence_reaches_the_chat_of_the_address_it_names() -> None:
    """A presence carries one address (Baileys' chatstate `from`): the phone reaches the phone's chat; an @lid
    reaches the @lid's chat only (docs/sources.md: what this means for LID-addressed customers)."""
    assert only(fixture("evolution/presence_composing")) == Typing(ANA)
    assert only(fixture("evolution/presence_composing_lid")) == Typing("evolution:loja:145602933870765@lid")
    paused = only(fixture("evolution/presence_paused"))  # Baileys reports a paused chatstate as available
    assert isinstance(paused, Ignore) and "available" in paused.reason


def test_base64_past_the_limit_is_dropped_and_the_rest_of_the_media_kept(caplog: pytest.LogCaptureFixture) -> None:
    body = fixture("evolution/2.3.6/voice")
    body["data"]["message"]["base64"] = base64.b64encode(b"OggS" + b"\x01" * 70_000).decode()
    with caplog.at_level(logging.WARNING, logger="datafy.sources.evolution"):
        action = only(body, max_bytes=64 * 1024)
    assert "base64" not in action.message and action.message["url"].startswith("https://mmg.whatsapp.net/")
    assert action.message["mimetype"] == "audio/ogg; codecs=opus" and action.message["ptt"] is True
    assert action.item_fields["dropped"][-1] == "message.base64" and "data" in action.item_fields
    assert stored(action) <= 64 * 1024
    [line] = [r.getMessage() for r in caplog.records]
    assert "base64 dropped" in line and BRUNO in line and body["data"]["key"]["id"] in line
    assert only(body, max_bytes=1024 * 1024).message["base64"] == body["data"]["message"]["base64"]  # a higher limit


def test_a_message_still_too_large_loses_the_data_copy_before_the_core_refuses_it() -> None:
    body = fixture("evolution/2.3.6/contact")
    cards = [{"displayName": f"Contato {n}", "vcard": "BEGIN:VCARD\nFN:x\n" + "N:" * 300 + "\nEND:VCARD"}
             for n in range(60)]  # fmt: skip
    body["data"]["message"] = {"contactsArrayMessage": {"displayName": "60 contatos", "contacts": cards}}
    action = only(body, max_bytes=64 * 1024)
    assert action.message["type"] == "contacts" and len(action.message["contacts"]) == 60
    assert "data" not in action.item_fields and action.item_fields["dropped"] == ["data"]
    assert stored(action) <= 64 * 1024


def test_extended_text_from_evolution_before_2_2_is_plain_text() -> None:
    body = fixture("evolution/text")
    body["data"]["message"] = {"extendedTextMessage": {"text": "queria saber o preço"}}  # 2.1.x and earlier
    assert only(body).message == "queria saber o preço"


def test_reaction_is_an_object_message() -> None:
    reaction = only(fixture("evolution/reaction")).message
    assert reaction == {"type": "reaction", "emoji": "👍", "message_id": "3EB0B7C1D2E3F4A5B6C7D8"}


def test_groups_are_ignored_by_default_and_buffered_per_group_with_chat() -> None:
    body = fixture("evolution/group")
    assert isinstance(only(body), Ignore) and "group" in only(body).reason
    action = only(body, groups="chat")
    assert action.user == "evolution:loja:120363025246125486@g.us"
    assert "number" not in action.metadata and "lid" not in action.metadata
    assert action.item_fields["participant"] == "5511977776666@s.whatsapp.net"  # participantAlt: the phone


def test_from_me_is_ignored_or_discards_the_pending_batch() -> None:
    body = fixture("evolution/from_me")
    assert isinstance(only(body), Ignore) and "fromMe" in only(body).reason
    assert only(body, from_me="discard") == Discard(ANA)


def test_other_events_and_types_and_broadcasts_are_ignored() -> None:
    for name in ("connection_update", "call"):
        assert isinstance(only(fixture(f"evolution/{name}")), Ignore)
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
    assert isinstance(only(body), Append)


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
