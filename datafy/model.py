"""The values that move between the API, the store and the monitor (the webhook body is payload.py)."""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from datafy.routes.chats import DEFAULT_ROUTE, chat_id

# Request fields with a meaning of their own: everything else a client sends is metadata.
CONTROL_FIELDS = frozenset(
    {"user", "message", "ttl", "max_wait", "max_messages", "flush", "message_id", "await_answer", "answer_timeout"}
)


def random_id() -> str:
    """32 random hex digits, the shape of uuid4().hex at a quarter of its cost: batch ids and lease tokens."""
    return os.urandom(16).hex()


def iso_from_ms(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC with a Z, e.g. 2026-11-25T03:10:00.123Z."""
    return f"{_iso_second(ms // 1000)}.{ms % 1000:03d}Z"


@functools.lru_cache(maxsize=256)
def _iso_second(second: int) -> str:
    # Four timestamps per batch, mostly of the same few seconds: cached, they cost the monitor 4% less CPU.
    return datetime.fromtimestamp(second, tz=UTC).replace(tzinfo=None).isoformat()


def epoch_of(iso: str) -> float:
    """Unix seconds of a timestamp iso_from_ms made."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def compact_json(value: Any) -> str:
    """JSON as stored in Redis: no spaces, UTF-8 kept as is, never NaN or Infinity (not JSON)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True)
class IncomingMessage:
    """One validated message, ready to append."""

    user: str
    message: str | dict[str, Any]
    ttl_ms: int
    metadata: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    max_wait_ms: int = 0
    max_messages: int = 0
    flush_reason: str = ""
    # Kept on this message's item only, never merged into the batch (a gateway's raw event, say).
    item_fields: dict[str, Any] = field(default_factory=dict)
    # What an object message adds to the batch's `text` (a media caption); strings always add themselves.
    text: str | None = None
    await_ms: int = 0  # await_answer: once delivered, the chat's next batch waits this long for the verdict
    route: str = DEFAULT_ROUTE  # the route whose key sent it: the same user under two routes is two chats

    @property
    def chat(self) -> str:
        """The chat this message belongs to (datafy/routes/chats.py)."""
        return chat_id(self.route, self.user)

    def item_json(self) -> str:
        """The stored form of this message: its text, its id and its own extra fields."""
        item: dict[str, Any] = {"m": self.message}
        if self.message_id is not None:
            item["id"] = self.message_id
        if self.metadata or self.item_fields:
            item["x"] = {**self.metadata, **self.item_fields}
        if self.text and not isinstance(self.message, str):
            item["t"] = self.text
        return compact_json(item)


@dataclass(frozen=True)
class SealedBatch:
    """A batch an append closed before buffering its message (the byte cap)."""

    batch_id: str
    sequence: int
    count: int
    reason: str


# What the append script answers when a limit refuses a message: nothing was stored.
REFUSED = frozenset({"rate_limited", "key_rate_limited", "full"})


@dataclass(frozen=True)
class AppendResult:
    """What happened to an appended message."""

    status: str  # "buffered", "flushed", "duplicate", or refused (REFUSED): nothing was stored
    buffered: int
    flush_at_ms: int = 0
    batch_id: str | None = None
    sequence: int | None = None
    sealed: SealedBatch | None = None  # the open batch the byte cap closed first, if any
    retry_after_ms: int = 0  # refused: when to try again
    reason: str = ""  # flushed: why (request, keyword, max_messages, max_wait)

    @property
    def refused(self) -> bool:
        """A limit refused the message (429): nothing was stored."""
        return self.status in REFUSED


@dataclass(frozen=True)
class Claim:
    """A batch leased to this monitor for one delivery attempt."""

    user: str
    batch_id: str
    body: str
    attempt: int
    token: str
    replayed: bool = False  # an operator replayed it from the dead letters: MAX_BATCH_AGE no longer applies
    # time.monotonic() by which the lease has surely ended: measured from before the lease was asked for
    leased_until: float = math.inf


@dataclass(frozen=True)
class FlushedBatch:
    """A batch the monitor sealed into the outbox."""

    user: str
    sequence: int
    count: int
    reason: str = ""  # ttl, max_wait or manual
