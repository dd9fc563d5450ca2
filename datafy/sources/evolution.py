"""Evolution API v2 webhooks (Baileys channel) as actions: messages.upsert and presence.update.

The envelope is {event, instance, data, destination, date_time, sender, server_url, apikey}. `sender` is the
instance's own number and `apikey` Evolution's instance token: neither is the customer nor our key, so both are
left alone. `date_time` is local time marked Z; the message's own time is data.messageTimestamp.
"""

from __future__ import annotations

from typing import Any

from datafy.sources import (
    Action,
    Buffer,
    Discard,
    Ignore,
    MalformedError,
    Typing,
    expect_object,
    expect_text,
    iso_from_unix,
    optional_text,
    without_none,
)

SOURCE = "evolution"
MESSAGES_UPSERT = "messages-upsert"
PRESENCE_UPDATE = "presence-update"
TYPING_PRESENCES = frozenset({"composing", "recording"})

# Message content keys (Baileys' proto names) and the media type we report; checked in this order, because a
# message also carries keys that are not content (messageContextInfo, senderKeyDistributionMessage).
MEDIA_TYPES = {
    "imageMessage": "image",
    "videoMessage": "video",
    "ptvMessage": "video",  # a round video note
    "audioMessage": "audio",
    "documentMessage": "document",
    "stickerMessage": "sticker",
}
REPLY_TYPES = {  # a tap on a button or list row: its title is what the customer "said"
    "buttonsResponseMessage": ("selectedButtonId", "selectedDisplayText"),
    "templateButtonReplyMessage": ("selectedId", "selectedDisplayText"),
}


def user_id(instance: str, jid: str) -> str:
    """The chat id of a jid on an instance: `evolution:<instance>:<jid>`, both exactly as Evolution sent them."""
    return f"{SOURCE}:{instance}:{jid}"


def event_slug(event: str) -> str:
    """Evolution's event name as its per-event URLs spell it: messages.upsert / MESSAGES_UPSERT -> messages-upsert."""
    return event.strip().lower().replace(".", "-").replace("_", "-")


def parse_evolution(body: dict[str, Any], from_me: str = "ignore", groups: str = "ignore") -> list[Action]:
    """The actions one Evolution webhook body asks for; MalformedError names the field that is wrong."""
    event = expect_text(body.get("event"), "event")
    slug = event_slug(event)
    if slug == MESSAGES_UPSERT:
        return [_message(body, from_me, groups)]
    if slug == PRESENCE_UPDATE:
        return [_presence(body, groups)]
    return [Ignore(f"event {event} is not used (enable only MESSAGES_UPSERT and PRESENCE_UPDATE)")]


def phone_number(key: dict[str, Any]) -> str | None:
    """The customer's phone digits: remoteJidAlt (Evolution 2.3.5+), senderPn (2.3.0-2.3.4), or the jid itself;
    None for an @lid chat whose phone WhatsApp did not share, and for groups."""
    for candidate in (key.get("remoteJidAlt"), key.get("senderPn"), key.get("remoteJid")):
        if isinstance(candidate, str) and candidate.endswith("@s.whatsapp.net"):
            return candidate.split("@", 1)[0].split(":", 1)[0]  # "5511...:12@" carries a device number
    return None


def _message(body: dict[str, Any], from_me: str, groups: str) -> Action:
    instance = expect_text(body.get("instance"), "instance")
    data = expect_object(body.get("data"), "data")
    key = expect_object(data.get("key"), "data.key")
    jid = expect_text(key.get("remoteJid"), "data.key.remoteJid")
    message_id = expect_text(key.get("id"), "data.key.id")
    mine = key.get("fromMe", False)
    if not isinstance(mine, bool):
        raise MalformedError("data.key.fromMe", "must be true or false")
    message = expect_object(data.get("message"), "data.message")
    user = user_id(instance, jid)
    if jid.endswith("@broadcast") or jid.endswith("@newsletter"):
        return Ignore("status broadcast or channel post", user)
    group = jid.endswith("@g.us")
    if group and groups != "chat":
        return Ignore("group message (EVOLUTION_GROUPS=ignore)", user)
    if mine:
        if from_me == "discard":
            return Discard(user)
        return Ignore("fromMe: the business's own message (EVOLUTION_FROM_ME=ignore)", user)
    content = _content(message)
    if content is None:
        return Ignore(f"message type {optional_text(data.get('messageType')) or 'unknown'} is not buffered", user)
    value, text = content
    metadata = without_none(
        {
            "source": SOURCE,
            "instance": instance,
            "remoteJid": jid,
            "number": None if group else phone_number(key),
            "pushName": optional_text(data.get("pushName")),
        }
    )
    raw = data
    if "base64" in message:  # the bytes travel once, in the media object, not twice
        raw = {**data, "message": {name: v for name, v in message.items() if name != "base64"}}
    item_fields = without_none({"data": raw, "sent_at": iso_from_unix(data.get("messageTimestamp"))})
    if group:
        item_fields["participant"] = optional_text(key.get("participantAlt")) or optional_text(key.get("participant"))
    return Buffer(user, value, message_id, metadata, item_fields, text)


def _content(message: dict[str, Any]) -> tuple[str | dict[str, Any], str | None] | None:
    """(message, its text for the batch) from Evolution's data.message; None for a type we do not buffer."""
    conversation = optional_text(message.get("conversation"))
    if conversation:  # since Evolution 2.2 this also holds extendedTextMessage.text
        return conversation, None
    extended = message.get("extendedTextMessage")
    if isinstance(extended, dict) and optional_text(extended.get("text")):
        return extended["text"], None
    wrapped = message.get("documentWithCaptionMessage")  # older Evolution: a captioned document, one level deeper
    if isinstance(wrapped, dict) and isinstance(wrapped.get("message"), dict):
        message = {**message, **wrapped["message"]}
    for name, kind in MEDIA_TYPES.items():
        if isinstance(message.get(name), dict):
            return _media(kind, message[name], message)
    for name in ("locationMessage", "liveLocationMessage"):
        if isinstance(found := message.get(name), dict):
            location = {"type": "location", "latitude": found.get("degreesLatitude"),
                        "longitude": found.get("degreesLongitude"), "name": found.get("name"),
                        "address": found.get("address")}  # fmt: skip
            return without_none(location), None
    if isinstance(found := message.get("contactMessage"), dict):
        return without_none(
            {"type": "contact", "displayName": found.get("displayName"), "vcard": found.get("vcard")}
        ), None
    if isinstance(found := message.get("contactsArrayMessage"), dict):
        return {"type": "contacts", "contacts": found.get("contacts") or []}, None
    if isinstance(found := message.get("reactionMessage"), dict):
        target = found.get("key") if isinstance(found.get("key"), dict) else {}
        reaction = {"type": "reaction", "emoji": found.get("text") or "", "message_id": target.get("id")}
        return without_none(reaction) | {"emoji": reaction["emoji"]}, None  # "" = the reaction was removed
    return _reply(message)


def _media(kind: str, content: dict[str, Any], message: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    caption = optional_text(content.get("caption"))
    transcript = optional_text(message.get("speechToText"))  # Evolution's own OpenAI transcription, when on
    media = {
        "type": kind,
        "caption": caption,
        "mimetype": optional_text(content.get("mimetype")),
        **without_none(
            {
                "url": optional_text(content.get("url")),  # WhatsApp's encrypted URL
                "mediaUrl": optional_text(message.get("mediaUrl")),  # Evolution's S3/MinIO copy, when enabled
                "base64": optional_text(message.get("base64")),  # the bytes, when the webhook's base64 is on
                "fileName": optional_text(content.get("fileName")),
                "seconds": content.get("seconds"),
                "ptt": content.get("ptt"),
                "transcript": transcript,
            }
        ),
    }
    return media, caption or transcript


def _reply(message: dict[str, Any]) -> tuple[dict[str, Any], str | None] | None:
    for name, (id_field, title_field) in REPLY_TYPES.items():
        if isinstance(found := message.get(name), dict):
            title = optional_text(found.get(title_field))
            return without_none({"type": "reply", "id": found.get(id_field), "title": title}), title
    if isinstance(found := message.get("listResponseMessage"), dict):
        single = found.get("singleSelectReply") if isinstance(found.get("singleSelectReply"), dict) else {}
        title = optional_text(found.get("title"))
        return without_none({"type": "reply", "id": single.get("selectedRowId"), "title": title}), title
    return None


def _presence(body: dict[str, Any], groups: str) -> Action:
    instance = expect_text(body.get("instance"), "instance")
    data = expect_object(body.get("data"), "data")
    jid = expect_text(data.get("id"), "data.id")
    presences = expect_object(data.get("presences"), "data.presences")
    user = user_id(instance, jid)
    if jid.endswith("@g.us") and groups != "chat":
        return Ignore("group presence (EVOLUTION_GROUPS=ignore)", user)
    states = {p.get("lastKnownPresence") for p in presences.values() if isinstance(p, dict)}
    if states & TYPING_PRESENCES:
        return Typing(user)
    shown = ", ".join(sorted(str(s) for s in states)) or "none"
    return Ignore(f"presence {shown} does not extend the timer", user)
