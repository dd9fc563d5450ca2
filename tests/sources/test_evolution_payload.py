"""Evolution's wire encodings decoded and the unread fields dropped (datafy/sources/evolution_payload.py)."""

from __future__ import annotations

import base64
import json

from datafy.model import compact_json
from datafy.sources.evolution_payload import stored_size, trimmed


def uint8(data: bytes) -> dict[str, int]:
    """A Uint8Array as JSON.stringify writes it."""
    return {str(n): b for n, b in enumerate(data)}


def test_bytes_in_any_of_evolutions_encodings_become_base64() -> None:
    key = bytes(range(200, 232))
    data = {"a": uint8(key), "b": {"type": "Buffer", "data": list(key)}, "c": base64.b64encode(key).decode()}
    kept, dropped = trimmed(data)
    assert kept == {"a": base64.b64encode(key).decode(), "b": kept["c"], "c": kept["c"]} and dropped == []


def test_longs_become_numbers_with_their_sign() -> None:
    data = {
        "fileLength": {"low": 184213, "high": 0, "unsigned": True},
        "stickerSentTs": {"low": -1031145139, "high": 410, "unsigned": False},  # 1764200413517 ms
        "big": {"low": -1, "high": -1, "unsigned": True},
        "negative": {"low": -5, "high": -1, "unsigned": False},
    }
    kept, _ = trimmed(data)
    assert kept == {"fileLength": 184213, "stickerSentTs": 1764200413517, "big": 2**64 - 1, "negative": -5}


def test_look_alikes_are_left_as_they_are() -> None:
    data = {
        "presences": {"0": {"lastKnownPresence": "composing"}},  # digit keys, object values
        "gap": {"0": 1, "2": 3},  # not 0..n-1
        "big": {"0": 256},  # not a byte
        "flags": {"0": True},  # a boolean is not a byte
        "long": {"low": 1, "high": 0, "unsigned": "yes"},
        "empty": {},
    }
    assert trimmed(data) == (data, [])


def test_unread_fields_are_dropped_at_any_depth_and_named() -> None:
    data = {
        "message": {
            "imageMessage": {"url": "u", "jpegThumbnail": uint8(b"\xff\xd8" * 6000), "mediaKey": uint8(b"k" * 32)},
            "messageContextInfo": {"messageSecret": uint8(b"s" * 32)},
        },
        "contextInfo": {"quotedMessage": {"videoMessage": {"jpegThumbnail": "base64-from-2.3.2"}}, "stanzaId": "X"},
        "list": [{"waveform": uint8(b"w" * 64)}],
    }
    kept, dropped = trimmed(data)
    assert dropped == [
        "data.message.imageMessage.jpegThumbnail",
        "data.message.messageContextInfo",
        "data.contextInfo.quotedMessage.videoMessage.jpegThumbnail",
        "data.list[0].waveform",
    ]
    assert kept == {
        "message": {"imageMessage": {"url": "u", "mediaKey": base64.b64encode(b"k" * 32).decode()}},
        "contextInfo": {"quotedMessage": {"videoMessage": {}}, "stanzaId": "X"},
        "list": [{}],
    }
    assert len(json.dumps(kept)) < 200 < len(json.dumps(data)) // 100


def test_stored_size_counts_as_max_message_bytes_does() -> None:
    fields = {"source": "evolution", "data": {"key": {"id": "X"}}, "text": "ç"}
    expected = len("oi") + sum(len(compact_json({k: v}).encode()) for k, v in fields.items())
    assert stored_size("oi", fields) == expected
    assert stored_size({"type": "image"}, {}) == len(b'{"type":"image"}')
