"""The webhook's wire format: what a sealed batch, as stored, becomes in the POST body. The original seed's
fields (user, messages, processed_at) come first and keep their meaning, so existing receivers work unchanged."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from datafy.model import iso_from_ms
from datafy.routes.chats import DEFAULT_ROUTE


def webhook_body(record_json: str, public_url: str = "", route: str = DEFAULT_ROUTE) -> dict[str, Any]:
    """The webhook payload of a sealed batch: the original format plus the added fields."""
    return webhook_body_of(json.loads(record_json), public_url, route)


def webhook_body_of(record: dict[str, Any], public_url: str = "", route: str = DEFAULT_ROUTE) -> dict[str, Any]:
    """The webhook payload of a sealed batch's decoded record; with `public_url` (PUBLIC_URL), the links a
    workflow calls to check and answer it. A batch of a route other than `default` carries its name."""
    items = [_item_out(received_ms, item) for received_ms, item in record["items"]]
    messages = [item["message"] for item in items]
    texts = [
        m if isinstance(m, str) else stored.get("t") for m, (_, stored) in zip(messages, record["items"], strict=True)
    ]
    user = record["user"]
    body = {
        **record["metadata"],
        "user": user,
        "user_id": user,
        "messages": messages,
        "processed_at": iso_from_ms(record["sealed_ms"]),
        "batch_id": record["batch_id"],
        "sequence": record["sequence"],
        "message_count": len(messages),
        "text": "\n".join(t for t in texts if t),
        "first_message_at": iso_from_ms(record["first_ms"]),
        "last_message_at": iso_from_ms(record["last_ms"]),
        "flush_reason": record["flush_reason"],
        **({"carried_over": record["carried_over"]} if "carried_over" in record else {}),
        "items": items,
    }
    if route != DEFAULT_ROUTE:
        body["route"] = route
    if "paused_until_ms" in record:
        body.update(paused=True, paused_until=iso_from_ms(record["paused_until_ms"]))
    if public_url:
        base = f"{public_url}/api/chats/{quote(user, safe='')}/batches/{record['batch_id']}"
        body["links"] = {"self": base, "answered": f"{base}/answered", "unanswered": f"{base}/unanswered"}
    return body


def _item_out(received_ms: int, item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict(item.get("x", {}))
    out["message"] = item["m"]
    if "id" in item:
        out["message_id"] = item["id"]
    out["received_at"] = iso_from_ms(received_ms)
    return out
