"""WhatsApp Cloud API (Meta) webhooks as actions, plus the two checks Meta's webhooks need: the verification
handshake and the X-Hub-Signature-256 HMAC of the raw body.

One body may hold several entries, changes and messages. Meta sends no typing events; statuses (sent,
delivered, read) and the business's own echoes (field smb_message_echoes) are not customer messages.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from datafy.sources import (
    Action,
    Append,
    Ignore,
    MalformedError,
    Pause,
    expect_list,
    expect_object,
    expect_text,
    iso_from_unix,
    optional_text,
    without_none,
)

SOURCE = "whatsapp"
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
ECHOES_FIELD = "smb_message_echoes"  # what the business sent from the WhatsApp Business app (coexistence)
REPLY_TYPES = ("button_reply", "list_reply", "nfm_reply")  # interactive replies: a tap, or a flow's answers
SIGNATURE_PREFIX = "sha256="


def user_id(phone_number_id: str, sender: str) -> str:
    """The chat id: `whatsapp:<phone_number_id>:<from>` (the phone, or the business-scoped user id without one)."""
    return f"{SOURCE}:{phone_number_id}:{sender}"


def group_user_id(phone_number_id: str, group_id: str) -> str:
    """The chat id of a group: `whatsapp:<phone_number_id>:group:<group_id>`."""
    return f"{SOURCE}:{phone_number_id}:group:{group_id}"


def phone_number_id(body: dict[str, Any]) -> str | None:
    """The business number the event was sent to (the first change's), for a route's match; None when absent."""
    try:
        value = body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"]
    except (KeyError, IndexError, TypeError):
        return None
    return value if isinstance(value, str) else None


def handshake_challenge(query: Mapping[str, str], verify_token: str) -> str | None:
    """hub.challenge when the GET is Meta's subscription check with our token, else None (answer 403)."""
    token = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not verify_token:
        return None
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        return None
    return query.get("hub.challenge")


def signature_matches(raw_body: bytes, header: str | None, app_secret: str) -> bool:
    """Whether X-Hub-Signature-256 is `sha256=<hex HMAC-SHA256 of the raw body keyed with the app secret>`."""
    if not header or not header.startswith(SIGNATURE_PREFIX) or not app_secret:
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len(SIGNATURE_PREFIX) :].strip().lower().encode(), expected.encode())


def parse_whatsapp(body: dict[str, Any], groups: str = "ignore", from_me: str = "ignore") -> list[Action]:
    """The actions one Cloud API webhook body asks for, in order; MalformedError names the field that is wrong.
    With `from_me` "pause" (EVOLUTION_FROM_ME), the echoes of what the business sent from the WhatsApp Business
    app (field smb_message_echoes, coexistence numbers) pause their chats: a person answered."""
    kind = body.get("object")
    if kind != "whatsapp_business_account":
        return [Ignore(f"object {kind!r} is not whatsapp_business_account")]
    actions: list[Action] = []
    for i, entry in enumerate(expect_list(body.get("entry"), "entry")):
        entry = expect_object(entry, f"entry[{i}]")
        for j, change in enumerate(expect_list(entry.get("changes"), f"entry[{i}].changes")):
            path = f"entry[{i}].changes[{j}]"
            change = expect_object(change, path)
            if change.get("field") == ECHOES_FIELD and from_me == "pause":
                actions.extend(_echoes(expect_object(change.get("value"), f"{path}.value"), f"{path}.value"))
                continue
            if change.get("field") != "messages":
                actions.append(Ignore(f"field {change.get('field')} is not used"))
                continue
            actions.extend(_value(expect_object(change.get("value"), f"{path}.value"), f"{path}.value", groups))
    return actions or [Ignore("no messages in this body")]


def _value(value: dict[str, Any], path: str, groups: str) -> list[Action]:
    actions: list[Action] = []
    if value.get("statuses") is not None:
        actions.append(Ignore("status update"))
    if value.get("messages") is None:
        return actions or [Ignore("no messages in this change")]
    messages = expect_list(value.get("messages"), f"{path}.messages")
    meta = expect_object(value.get("metadata"), f"{path}.metadata")
    phone_number_id = expect_text(meta.get("phone_number_id"), f"{path}.metadata.phone_number_id")
    contacts = value.get("contacts") or []
    if not isinstance(contacts, list):
        raise MalformedError(f"{path}.contacts", "must be a list")
    for k, message in enumerate(messages):
        at = f"{path}.messages[{k}]"
        message = expect_object(message, at)
        actions.append(_message(message, at, phone_number_id, meta, contacts, groups))
    return actions


def _echoes(value: dict[str, Any], path: str) -> list[Action]:
    """The business wrote to these customers from its own app: pause each chat (a person took over)."""
    meta = expect_object(value.get("metadata"), f"{path}.metadata")
    phone_number_id = expect_text(meta.get("phone_number_id"), f"{path}.metadata.phone_number_id")
    actions: list[Action] = []
    for k, echo in enumerate(expect_list(value.get("message_echoes"), f"{path}.message_echoes")):
        echo = expect_object(echo, f"{path}.message_echoes[{k}]")
        actions.append(Pause(user_id(phone_number_id, expect_text(echo.get("to"), f"{path}.message_echoes[{k}].to"))))
    return actions or [Ignore("no echoes in this change")]


def _message(
    message: dict[str, Any], at: str, phone_number_id: str, meta: dict[str, Any], contacts: list[Any], groups: str
) -> Action:
    message_id = expect_text(message.get("id"), f"{at}.id")
    kind = expect_text(message.get("type"), f"{at}.type")
    phone = optional_text(message.get("from"))
    contact = _contact(contacts, phone, optional_text(message.get("from_user_id")))
    profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
    bsuid = optional_text(message.get("from_user_id")) or optional_text(contact.get("user_id"))
    sender = phone or bsuid
    if sender is None:  # during the usernames rollout the phone may be absent; the user id never is
        raise MalformedError(f"{at}.from", "is missing and no business-scoped user_id was given")
    group_id = optional_text(message.get("group_id"))
    user = group_user_id(phone_number_id, group_id) if group_id else user_id(phone_number_id, sender)
    if group_id and groups != "chat":
        return Ignore("group message (GROUP_MESSAGES=ignore)", user)
    content = _content(message, kind)
    if content is None:
        return Ignore(f"message type {kind} is not buffered", user)
    value, text = content
    metadata = without_none(
        {
            "source": SOURCE,
            "phone_number_id": phone_number_id,
            "display_phone_number": optional_text(meta.get("display_phone_number")),
            "number": phone,
            "wa_user_id": bsuid,  # `user_id` is the batch's own chat id: Meta's BSUID gets another name
            "username": optional_text(profile.get("username")),
            "pushName": optional_text(profile.get("name")),
            "group_id": group_id,
        }
    )
    item_fields = without_none({"data": message, "sent_at": iso_from_unix(message.get("timestamp"))})
    return Append(user, value, message_id, metadata, item_fields, text)


def _contact(contacts: list[Any], phone: str | None, bsuid: str | None) -> dict[str, Any]:
    """The contacts[] entry of the sender (by wa_id or user_id); the only one when there is just one."""
    found = [c for c in contacts if isinstance(c, dict)]
    for contact in found:
        if (phone and contact.get("wa_id") == phone) or (bsuid and contact.get("user_id") == bsuid):
            return contact
    return found[0] if len(found) == 1 else {}


def _content(message: dict[str, Any], kind: str) -> tuple[str | dict[str, Any], str | None] | None:
    """(message, its text for the batch) for one Cloud API message; None for a type we do not buffer."""
    body = message.get(kind) if isinstance(message.get(kind), dict) else {}
    if kind == "text":
        text = optional_text(body.get("body"))
        return (text, None) if text else None
    if kind in MEDIA_TYPES:
        caption = optional_text(body.get("caption"))
        media = {
            "type": kind,
            "caption": caption,
            "mimetype": optional_text(body.get("mime_type")),
            **without_none(
                {
                    "mediaId": optional_text(body.get("id")),  # fetch it with GET /<mediaId> on the Graph API
                    "url": optional_text(body.get("url")),
                    "sha256": optional_text(body.get("sha256")),
                    "fileName": optional_text(body.get("filename")),
                    "voice": body.get("voice"),
                }
            ),
        }
        return media, caption
    if kind == "location":
        location = {"type": "location", "latitude": body.get("latitude"), "longitude": body.get("longitude"),
                    "name": body.get("name"), "address": body.get("address")}  # fmt: skip
        return without_none(location), None
    if kind == "contacts":
        return {"type": "contacts", "contacts": message.get("contacts") or []}, None
    if kind == "reaction":
        return {"type": "reaction", "emoji": body.get("emoji") or "", "message_id": body.get("message_id")}, None
    if kind == "button":  # a quick-reply button of a template
        title = optional_text(body.get("text"))
        return without_none({"type": "reply", "id": body.get("payload"), "title": title}), title
    if kind == "interactive":
        return _interactive(body)
    if kind == "order":  # a cart sent from the catalog, with the words the customer added
        text = optional_text(body.get("text"))
        order = {"type": "order", "catalog_id": body.get("catalog_id"), "text": text,
                 "product_items": body.get("product_items")}  # fmt: skip
        return without_none(order), text
    return None  # system, unsupported, request_welcome, ...: nothing a customer typed


def _interactive(body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A reply to a button, list or flow as a `reply`; any other interactive type (call_permission_reply, a type
    Meta adds later) keeps its raw object, so nothing the customer did becomes an empty reply."""
    reply_type = optional_text(body.get("type"))
    reply = body.get(reply_type) if reply_type else None
    if reply_type not in REPLY_TYPES or not isinstance(reply, dict):
        return without_none({"type": "interactive", "interactive_type": reply_type, "interactive": body}), None
    title = optional_text(reply.get("title")) or optional_text(reply.get("body"))
    fields = {"type": "reply", "reply_type": reply_type, "id": reply.get("id"), "title": title,
              "description": reply.get("description"), "response_json": reply.get("response_json")}  # fmt: skip
    return without_none(fields), title
