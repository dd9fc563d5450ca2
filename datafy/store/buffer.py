"""The open batches: appending messages, moving deadlines, sealing due batches into the outbox."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datafy.config import Settings
from datafy.model import REFUSED, AppendResult, FlushedBatch, IncomingMessage, SealedBatch, compact_json, random_id
from datafy.routes.chats import user_of
from datafy.store.connection import Connection
from datafy.store.errors import checked, redis_errors


def new_batch_id() -> str:
    """A unique batch id; it names the batch for its whole life, retries and replays included."""
    return random_id()


@dataclass(frozen=True)
class ChatSnapshot:
    """A pending (open) batch as the admin API shows it."""

    user: str
    items: list[tuple[int, dict[str, Any]]]
    flush_at_ms: int
    first_ms: int


class Buffer:
    """Each user's open batch, its deadline in the due index, and sealing it."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.keys = connection.keys
        self.settings = connection.settings

    def append(
        self, msg: IncomingMessage, key_id: str = "", settings: Settings | None = None, route_cap: int = 0
    ) -> AppendResult:
        """Append one message, reset the user's timer and seal the batch if a flush condition is met. `key_id`
        names the API key it came with (a hash), for RATE_LIMIT_PER_KEY; `settings` are its route's (limits);
        `route_cap` is the route's own max_pending_chats (0: only the global one)."""
        s = settings or self.settings
        partitions = self.keys.partitions
        chat = msg.chat
        item = msg.item_json()
        meta_args: list[str] = []
        for name, value in msg.metadata.items():
            meta_args += [compact_json(name), compact_json(value)]
        args = [
            chat,
            compact_json(msg.user),
            item,
            len(item.encode()),
            msg.ttl_ms,
            msg.max_wait_ms,
            msg.max_messages,
            s.max_batch_messages,
            s.max_batch_bytes,
            msg.flush_reason,
            msg.message_id or "",
            int(s.dedupe_window * 1000),
            new_batch_id(),
            int(s.sequence_ttl),
            new_batch_id(),
            len(compact_json(msg.metadata).encode()) if msg.metadata else 0,
            math.ceil(s.max_pending_chats / partitions) if s.max_pending_chats else 0,  # a share each
            s.rate_limit_per_user,
            math.ceil(s.rate_limit_per_key / partitions) if s.rate_limit_per_key else 0,
            msg.await_ms,
            math.ceil(route_cap / partitions) if route_cap else 0,
            *meta_args,
        ]
        with redis_errors():
            k = self.keys.user(chat)
            keys = [*self._user_keys(chat), k.dedupe, k.rate, self.keys.key_rate(chat, key_id),
                    self.keys.routed(chat, msg.route)]  # fmt: skip
            reply = self.connection.scripts.run_replicated("append", keys, args)
        status = reply[0]
        if status in REFUSED:
            return AppendResult(status, 0, retry_after_ms=int(reply[1]))
        if status == "flushed":
            reason = reply[5] if len(reply) > 5 else ""
            return AppendResult("flushed", int(reply[1]), int(reply[4]), batch_id=reply[2], sequence=int(reply[3]),
                                reason=reason)  # fmt: skip
        if len(reply) > 3:  # the byte cap sealed the open batch before this message started the next one
            sealed = SealedBatch(reply[3], int(reply[4]), int(reply[5]), "max_bytes")
            return AppendResult(status, int(reply[1]), flush_at_ms=int(reply[2]), sealed=sealed)
        return AppendResult(status, int(reply[1]), flush_at_ms=int(reply[2]))

    def extend(self, user: str, ttl_ms: int) -> int | None:
        """Push an open batch's deadline to now + ttl (never past max_wait); None when nothing is open."""
        k = self.keys.user(user)
        with redis_errors():
            args = [user, ttl_ms, int(self.settings.max_typing_extension * 1000)]
            found, deadline = self.connection.scripts.run("typing", [k.meta, k.timer, self._due(user)], args)
        return int(deadline) if found else None

    def flush(self, user: str, reason: str = "manual") -> FlushedBatch | None:
        """Seal a user's open batch now, whatever its deadline; None when nothing is open."""
        with redis_errors():
            reply = self.connection.scripts.run("flush", self._user_keys(user), self._flush_args(user, reason))
        return FlushedBatch(user, int(reply[1]), int(reply[2]), reason) if reply[0] == 1 else None

    def discard(self, user: str) -> list[tuple[int, dict[str, Any]]]:
        """Drop a user's open batch; returns the dropped entries (received ms, stored item)."""
        k = self.keys.user(user)
        with redis_errors():
            entries = self.connection.scripts.run("discard", [k.buffer, k.meta, k.timer, self._due(user)], [user])
        return [_decode_entry(entry) for entry in entries]

    def peek(self, user: str) -> ChatSnapshot | None:
        """The user's open batch, or None."""
        k = self.keys.user(user)
        with redis_errors():
            pipe = self.connection.client.pipeline(transaction=True)
            pipe.lrange(k.buffer, 0, -1).hmget(k.meta, "first_ms").zscore(self._due(user), user)
            entries, (first_ms,), deadline = pipe.execute()
        if not entries or deadline is None:
            return None
        return ChatSnapshot(user, [_decode_entry(e) for e in entries], int(deadline), int(first_ms or 0))

    def pending(self, offset: int, limit: int) -> tuple[int, list[tuple[str, int]]]:
        """(total, page) of open batches as (user, flush_at_ms), soonest first."""
        with redis_errors():
            pipe = self.connection.client.pipeline(transaction=False)
            for part in self.keys.all_partitions():
                pipe.zcard(part.due)
                pipe.zrange(part.due, 0, offset + limit - 1, withscores=True)
            replies = pipe.execute()
        total = sum(replies[0::2])
        merged = sorted(((user, int(score)) for page in replies[1::2] for user, score in page), key=lambda p: p[1])
        return total, merged[offset : offset + limit]

    def pending_of(self, prefix: str, offset: int, limit: int) -> tuple[int, list[tuple[str, int]]]:
        """pending() of the chats whose ids start with `prefix` (one route's): a scan, for the admin pages only."""
        pattern = prefix + "*"  # a route's name has no glob characters ([a-z0-9-])
        with redis_errors():
            client = self.connection.client
            found = [(chat, int(score)) for part in self.keys.all_partitions()
                     for chat, score in client.zscan_iter(part.due, match=pattern, count=1000)]  # fmt: skip
        found.sort(key=lambda p: p[1])
        return len(found), found[offset : offset + limit]

    def flush_due(self, limit: int, partitions: Mapping[int, int] | None = None) -> list[FlushedBatch]:
        """Seal every open batch whose deadline has passed (up to `limit` per partition), in two round trips.
        `partitions` maps each partition to poll to how overdue its batches must be (ms); None: all, on time."""
        return self.flush_due_timed(limit, partitions)[0]

    def flush_due_timed(
        self, limit: int, partitions: Mapping[int, int] | None = None
    ) -> tuple[list[FlushedBatch], float | None]:
        """flush_due(), and in how many seconds the next open batch of those partitions comes due (None: none
        is open), so that a flusher can wake for it rather than at its next poll."""
        parts = self.keys.polled(partitions)
        random.shuffle(parts)  # several monitors polling at once mostly seal different users first
        calls = self.connection.scripts.due_calls([(part.due, overdue_ms) for part, overdue_ms in parts], limit, True)
        if not calls:
            return [], None
        with redis_errors():
            replies = checked(self.connection.scripts.run_many(calls))
            waits = [wait_ms for _, wait_ms in replies if wait_ms >= 0]
            wait = min(waits) / 1000 if waits else None
            candidates = [user for pages, _ in replies for page in pages for user in page]
            if not candidates:
                return [], wait
            calls = [("flush", self._user_keys(user), self._flush_args(user, "")) for user in candidates]
            replies = self.connection.scripts.per_user(candidates, self.connection.scripts.run_many(calls), "flush")
        flushed = [
            FlushedBatch(u, int(r[1]), int(r[2]), r[3])
            for u, r in zip(candidates, replies, strict=True)
            if r and r[0] == 1
        ]
        return flushed, wait

    def _due(self, user: str) -> str:
        return self.keys.indexes_of(user).due

    def _user_keys(self, user: str) -> list[str]:
        k = self.keys.user(user)
        part = self.keys.indexes_of(user)
        return [k.buffer, k.meta, k.timer, k.sequence, k.outbox, k.batches, part.due, part.ready, k.sealed, k.hold,
                k.pause]  # fmt: skip

    def _flush_args(self, user: str, reason: str) -> list[str | int]:
        return [user, compact_json(user_of(user)), reason, new_batch_id(), int(self.settings.sequence_ttl)]


def _decode_entry(entry: str) -> tuple[int, dict[str, Any]]:
    received_ms, item = json.loads(entry)
    return int(received_ms), item
