"""Evolution API v2 webhooks (Baileys channel) as actions: messages.upsert and presence.update.

The envelope is {event, instance, data, destination, date_time, sender, server_url, apikey}. `sender` is the
instance's own number and `apikey` Evolution's instance token: neither is the customer nor our key, so both are
left alone. `date_time` is local time marked Z; the message's own time is data.messageTimestamp.

A customer has two addresses, a phone JID (`<digits>@s.whatsapp.net`) and a LID (`<digits>@lid`), and each
Evolution version puts them in different key fields (docs/sources.md). The chat id uses the phone whenever the
message names it, and the LID only when it does not, so one customer stays one chat across versions.
"""

from __future__ import annotations

import logging
from typing import Any

from datafy.sources import (
    Action,
    Append,
    Discard,
    Ignore,
    MalformedError,
    Pause,
    Typing,
    expect_object,
    expect_text,
    iso_from_unix,
    optional_text,
    without_none,
)
from datafy.sources.evolution_content import content_of, quote_of
from datafy.sources.evolution_payload import stored_size, trimmed

log = logging.getLogger(__name__)

SOURCE = "evolution"
MESSAGES_UPSERT = "messages-upsert"
PRESENCE_UPDATE = "presence-update"
TYPING_PRESENCES = frozenset({"composing", "recording"})

PHONE_SERVER = "@s.whatsapp.net"
LID_SERVER = "@lid"
DEFAULT_MAX_BYTES = 64 * 1024  # MAX_MESSAGE_BYTES' default; the route passes the setting


def user_id(instance: str, jid: str) -> str:
    """The chat id of a jid on an instance: `evolution:<instance>:<jid>`."""
    return f"{SOURCE}:{instance}:{jid}"


def event_slug(event: str) -> str:
    """Evolution's event name as its per-event URLs spell it: messages.upsert / MESSAGES_UPSERT -> messages-upsert."""
    return event.strip().lower().replace(".", "-").replace("_", "-")


def parse_evolution(
    body: dict[str, Any], from_me: str = "ignore", groups: str = "ignore", max_bytes: int = DEFAULT_MAX_BYTES
) -> list[Action]:
    """The actions one Evolution webhook body asks for; MalformedError names the field that is wrong. `max_bytes`
    is MAX_MESSAGE_BYTES: a message whose media base64 would pass it is buffered without the base64."""
    event = expect_text(body.get("event"), "event")
    slug = event_slug(event)
    if slug == MESSAGES_UPSERT:
        return [_message(body, from_me, groups, max_bytes)]
    if slug == PRESENCE_UPDATE:
        return [_presence(body, groups)]
    return [Ignore(f"event {event} is not used (enable only MESSAGES_UPSERT and PRESENCE_UPDATE)")]


def addresses(key: dict[str, Any]) -> tuple[str | None, str | None]:
    """(phone JID, LID) of the customer a direct message's key names, whichever fields this version used:
    remoteJid/remoteJidAlt (2.3.5+), senderPn (2.3.0), previousRemoteJid (2.3.1-2.3.2 moved the LID there)."""
    phone = lid = None
    for name in ("remoteJid", "remoteJidAlt", "senderPn", "previousRemoteJid", "senderLid"):
        candidate = key.get(name)
        if not isinstance(candidate, str):
            continue
        if phone is None and candidate.endswith(PHONE_SERVER):
            phone = _without_device(candidate)
        elif lid is None and candidate.endswith(LID_SERVER):
            lid = _without_device(candidate)
    return phone, lid


def chat_jid(jid: str) -> str:
    """The chat id's jid for a presence or another event naming one address: the address, without a device."""
    return _without_device(jid) if jid.endswith((PHONE_SERVER, LID_SERVER)) else jid


def _without_device(jid: str) -> str:
    user, _, server = jid.partition("@")
    return f"{user.split(':', 1)[0]}@{server}"  # "5511...:12@s.whatsapp.net" names one of the user's devices


def _message(body: dict[str, Any], from_me: str, groups: str, max_bytes: int) -> Action:
    instance = expect_text(body.get("instance"), "instance")
    data = expect_object(body.get("data"), "data")
    key = expect_object(data.get("key"), "data.key")
    jid = expect_text(key.get("remoteJid"), "data.key.remoteJid")
    message_id = expect_text(key.get("id"), "data.key.id")
    mine = key.get("fromMe", False)
    if not isinstance(mine, bool):
        raise MalformedError("data.key.fromMe", "must be true or false")
    expect_object(data.get("message"), "data.message")
    if jid.endswith("@broadcast") or jid.endswith("@newsletter"):
        return Ignore("status broadcast or channel post", user_id(instance, jid))
    group = jid.endswith("@g.us")
    phone, lid = (None, None) if group else addresses(key)
    chat = jid if group else phone or lid or jid
    user = user_id(instance, chat)
    if group and groups != "chat":
        return Ignore("group message (GROUP_MESSAGES=ignore)", user)
    if mine:
        if from_me == "discard":
            return Discard(user)
        if from_me == "pause":
            return Pause(user)
        return Ignore("fromMe: the business's own message (EVOLUTION_FROM_ME=ignore)", user)
    kept, dropped = trimmed(data)
    content = content_of(kept["message"]) if isinstance(kept["message"], dict) else None
    if content is None:
        return Ignore(f"message type {optional_text(data.get('messageType')) or 'unknown'} is not buffered", user)
    value, text = content
    metadata = without_none(
        {
            "source": SOURCE,
            "instance": instance,
            "remoteJid": chat,
            "lid": lid,
            "number": phone.split("@", 1)[0] if phone else None,
            "pushName": optional_text(data.get("pushName")),
        }
    )
    if "base64" in kept["message"]:  # the bytes travel once, in the media object, not twice
        kept["message"] = {name: v for name, v in kept["message"].items() if name != "base64"}
    sent_at = iso_from_unix(data.get("messageTimestamp"))
    item_fields = without_none({"data": kept, "quote": quote_of(kept), "sent_at": sent_at})
    if group:
        item_fields["participant"] = _participant(key)
    if dropped:
        item_fields["dropped"] = dropped
    value, item_fields = _fit(value, metadata, item_fields, max_bytes, (user, message_id))
    alias = user_id(instance, lid) if phone and lid else None  # its presence names the LID (Baileys chats.ts)
    return Append(user, value, message_id, metadata, item_fields, text, alias)


def _participant(key: dict[str, Any]) -> str | None:
    """Who wrote in a group: the phone JID when the key names one (participantAlt in 2.3.5+), else the LID."""
    names = [key.get(n) for n in ("participant", "participantAlt", "participantPn", "participantLid")]
    found = [_without_device(n) for n in names if isinstance(n, str) and n]
    return next((n for n in found if n.endswith(PHONE_SERVER)), found[0] if found else None)


def _fit(
    value: str | dict[str, Any], metadata: dict[str, Any], fields: dict[str, Any], max_bytes: int, ids: tuple[str, str]
) -> tuple[str | dict[str, Any], dict[str, Any]]:
    """The message and item fields within `max_bytes`: first without the media's base64 (the rest of the message
    stays: caption, mimetype, url, mediaUrl), then without the copy of Evolution's data. Past that the message
    itself is too large, and the core refuses it as it refuses any other."""
    size = stored_size(value, {**metadata, **fields})
    if size > max_bytes and isinstance(value, dict) and "base64" in value:
        value = {name: v for name, v in value.items() if name != "base64"}
        fields = {**fields, "dropped": [*fields.get("dropped", []), "message.base64"]}
        log.warning("evolution media base64 dropped: %d bytes stored past MAX_MESSAGE_BYTES=%d user=%s message_id=%s",
                    size, max_bytes, *ids)  # fmt: skip
        size = stored_size(value, {**metadata, **fields})
    if size > max_bytes and "data" in fields:
        kept = [path for path in fields.get("dropped", []) if not path.startswith("data.")]
        fields = {**{name: v for name, v in fields.items() if name != "data"}, "dropped": [*kept, "data"]}
        log.warning("evolution data copy dropped: %d bytes stored past MAX_MESSAGE_BYTES=%d user=%s message_id=%s",
                    size, max_bytes, *ids)  # fmt: skip
    return value, fields


def _presence(body: dict[str, Any], groups: str) -> Action:
    instance = expect_text(body.get("instance"), "instance")
    data = expect_object(body.get("data"), "data")
    jid = expect_text(data.get("id"), "data.id")
    presences = expect_object(data.get("presences"), "data.presences")
    user = user_id(instance, chat_jid(jid))
    if jid.endswith("@g.us") and groups != "chat":
        return Ignore("group presence (GROUP_MESSAGES=ignore)", user)
    states = {p.get("lastKnownPresence") for p in presences.values() if isinstance(p, dict)}
    if states & TYPING_PRESENCES:
        return Typing(user)
    shown = ", ".join(sorted(str(s) for s in states)) or "none"
    return Ignore(f"presence {shown} does not extend the timer", user)
