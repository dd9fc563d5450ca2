"""Evolution's `data` as an item keeps it: its wire encodings decoded, the fields no workflow reads left out.

Evolution sends Baileys' protobuf objects as JSON, and how depends on the version: up to 2.3.2 a bytes field is a
base64 string and a 64-bit number a string of digits; from 2.3.3 every object is rebuilt key by key, so a bytes
field arrives as {"0":255,"1":216,...} (about ten bytes of JSON per byte), and from 2.3.6 a 64-bit number as
{"low":..,"high":..,"unsigned":..}. Here every bytes field becomes base64 and every 64-bit number a number, in
any version, and the previews, streaming sidecars, waveform and encryption context are dropped by name. What is
dropped is named by its path in the item (`data.message.imageMessage.jpegThumbnail`), so a workflow can tell a
field Evolution never sent from one we left out.
"""

from __future__ import annotations

import base64
from typing import Any

from datafy.model import compact_json

# Fields (Baileys' proto names) no workflow needs, at any depth: the media itself is at url, mediaUrl or base64,
# and mediaKey, fileSha256, fileEncSha256 and directPath (kept) are what downloading and decrypting it takes.
DROPPED_FIELDS = frozenset(
    {
        "jpegThumbnail",  # previews (the largest: a photo's is often 5-20 kB)
        "pngThumbnail",
        "thumbnail",
        "thumbnailSha256",
        "thumbnailEncSha256",
        "streamingSidecar",  # progressive-download internals
        "firstFrameSidecar",
        "firstScanSidecar",
        "scansSidecar",
        "midQualityFileSha256",
        "midQualityFileEncSha256",
        "waveform",  # the bars a voice note draws
        "messageContextInfo",  # encryption context: device list hashes, the message secret
        "deviceListMetadata",  # 2.4.0-rc2 sends messageContextInfo as data.contextInfo
        "messageSecret",
        "paddingBytes",
        "botMessageSecret",
    }
)
LONG_FIELDS = frozenset({"low", "high", "unsigned"})


def trimmed(data: dict[str, Any], path: str = "data") -> tuple[dict[str, Any], list[str]]:
    """`data` decoded and without DROPPED_FIELDS, and the paths of the fields dropped (under `path`)."""
    dropped: list[str] = []
    kept = _walk(data, path, dropped)
    return kept, dropped


def stored_size(message: str | dict[str, Any], fields: dict[str, Any]) -> int:
    """The bytes MAX_MESSAGE_BYTES counts for one message: the message plus each extra field, as stored."""
    size = len(message.encode()) if isinstance(message, str) else len(compact_json(message).encode())
    return size + sum(len(compact_json({name: value}).encode()) for name, value in fields.items())


def _walk(value: Any, path: str, dropped: list[str]) -> Any:
    if isinstance(value, dict):
        as_bytes = _bytes_of(value)
        if as_bytes is not None:
            return base64.b64encode(as_bytes).decode()
        if _is_long(value):
            return _long_value(value)
        kept = {}
        for name, item in value.items():
            if name in DROPPED_FIELDS:
                dropped.append(f"{path}.{name}")
            else:
                kept[name] = _walk(item, f"{path}.{name}", dropped)
        return kept
    if isinstance(value, list):
        return [_walk(item, f"{path}[{n}]", dropped) for n, item in enumerate(value)]
    return value


def _bytes_of(value: Any) -> bytes | None:
    """The bytes a JSON-encoded Uint8Array ({"0":..}) or Node Buffer ({"type":"Buffer","data":[..]}) holds."""
    if not isinstance(value, dict) or not value:
        return None
    if value.keys() == {"type", "data"} and value["type"] == "Buffer" and isinstance(value["data"], list):
        items = value["data"]
    elif value.keys() == {str(n) for n in range(len(value))}:
        items = [value[str(n)] for n in range(len(value))]
    else:
        return None
    if all(type(item) is int and 0 <= item <= 255 for item in items):
        return bytes(items)
    return None


def _is_long(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.keys() == LONG_FIELDS
        and type(value["low"]) is int
        and type(value["high"]) is int
        and isinstance(value["unsigned"], bool)
    )


def _long_value(value: dict[str, Any]) -> int:
    """A protobufjs Long's number: two signed 32-bit halves, read as signed 64 bits unless `unsigned`."""
    bits = ((value["high"] & 0xFFFFFFFF) << 32) | (value["low"] & 0xFFFFFFFF)
    return bits - (1 << 64) if not value["unsigned"] and bits >= 1 << 63 else bits
