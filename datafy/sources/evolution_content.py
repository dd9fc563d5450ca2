"""What a customer sent, from Evolution's data.message (decoded by evolution_payload): the message we buffer, its
share of the batch's text, and the message it quotes."""

from __future__ import annotations

from typing import Any

from datafy.sources import optional_text, without_none

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

Content = tuple[str | dict[str, Any], str | None]


def content_of(message: dict[str, Any]) -> Content | None:
    """(message, its text for the batch) from Evolution's data.message; None for a type we do not buffer."""
    conversation = optional_text(message.get("conversation"))
    if conversation:  # since Evolution 2.2.0 this also holds extendedTextMessage.text
        return conversation, None
    extended = message.get("extendedTextMessage")  # Evolution before 2.2.0
    if isinstance(extended, dict) and optional_text(extended.get("text")):
        return extended["text"], None
    message = {**message, **_unwrapped(message)}
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


def quote_of(data: dict[str, Any]) -> dict[str, Any] | None:
    """The message a reply quotes: {message_id, participant, text}. Evolution 2.3.x puts the content's contextInfo
    in data.contextInfo (for a text reply, the only copy); 2.4.0-rc2 puts messageContextInfo there instead, so a
    quote is found only inside a media or other non-text content, and a text reply's quote is not sent at all."""
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    contexts = [data.get("contextInfo")]
    contexts += [part.get("contextInfo") for part in message.values() if isinstance(part, dict)]
    for context in contexts:
        if isinstance(context, dict) and optional_text(context.get("stanzaId")):
            quoted = context.get("quotedMessage") if isinstance(context.get("quotedMessage"), dict) else {}
            return without_none(
                {
                    "message_id": context["stanzaId"],
                    "participant": optional_text(context.get("participant")),
                    "text": _text_of(quoted),
                }
            )
    return None


def _unwrapped(message: dict[str, Any]) -> dict[str, Any]:
    """The inner message of a wrapper older Evolution left in place (a captioned document, one level deeper)."""
    wrapped = message.get("documentWithCaptionMessage")
    if isinstance(wrapped, dict) and isinstance(wrapped.get("message"), dict):
        return wrapped["message"]
    return {}


def _text_of(message: dict[str, Any]) -> str | None:
    """The words of a quoted message: its text, or a media's caption."""
    found = content_of(message) if message else None
    if found is None:
        return None
    value, text = found
    return value if isinstance(value, str) else text


def _media(kind: str, content: dict[str, Any], message: dict[str, Any]) -> Content:
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


def _reply(message: dict[str, Any]) -> Content | None:
    for name, (id_field, title_field) in REPLY_TYPES.items():
        if isinstance(found := message.get(name), dict):
            title = optional_text(found.get(title_field))
            return without_none({"type": "reply", "id": found.get(id_field), "title": title}), title
    if isinstance(found := message.get("listResponseMessage"), dict):
        single = found.get("singleSelectReply") if isinstance(found.get("singleSelectReply"), dict) else {}
        title = optional_text(found.get("title"))
        return without_none({"type": "reply", "id": single.get("selectedRowId"), "title": title}), title
    return None
