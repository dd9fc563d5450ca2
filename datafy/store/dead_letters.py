"""Batches that could not be delivered: kept with their payload and last error, listed, replayed or deleted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from datafy.keys import PartitionKeys
from datafy.store.connection import Connection
from datafy.store.errors import redis_errors

TRIM_LOCK_SECONDS = 5.0


def is_batch_id(text: str) -> bool:
    """Whether `text` has the shape of a batch id (32 lowercase hex digits)."""
    return len(text) == 32 and all(ch in "0123456789abcdef" for ch in text)


@dataclass(frozen=True)
class DeadLetter:
    """A batch that could not be delivered."""

    batch_id: str
    body: str
    info: dict[str, Any]


class DeadLetters:
    """The dead letters of every partition, capped overall at DEAD_LETTER_MAX."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.keys = connection.keys
        self.settings = connection.settings

    def trim(self) -> int:
        """Drop the oldest dead letters beyond DEAD_LETTER_MAX, over all partitions; returns how many went."""
        # One trimmer at a time: two counting at once would both drop "the oldest" and drop too many.
        # A monitor that finds the lock taken leaves the excess to the next bury. redis-py's lock releases
        # only its own token: a trim slower than the lock's life cannot free another monitor's turn.
        lock = self.connection.client.lock(self.keys.dead_trim_lock(), timeout=TRIM_LOCK_SECONDS, blocking=False,
                                           thread_local=False, raise_on_release_error=False)  # fmt: skip
        with redis_errors():
            if not lock.acquire():
                return 0
            try:
                return self._trim(self.keys.all_partitions())
            finally:
                lock.release()

    def _trim(self, parts: list[PartitionKeys]) -> int:
        """The trim itself; the caller holds the lock and maps Redis errors."""
        pipe = self.connection.client.pipeline(transaction=False)
        for part in parts:
            pipe.zcard(part.dead)
        excess = sum(pipe.execute()) - self.settings.dead_letter_max
        if excess <= 0:
            return 0
        for part in parts:
            pipe.zrange(part.dead, 0, excess - 1, withscores=True)
        candidates = [
            (score, bid, part) for part, page in zip(parts, pipe.execute(), strict=True) for bid, score in page
        ]
        for _, batch_id, part in sorted(candidates, key=lambda entry: entry[0])[:excess]:
            pipe.zrem(part.dead, batch_id)
            pipe.hdel(part.dead_data, batch_id, f"i:{batch_id}")
        return sum(pipe.execute()[0::2])

    def page(self, offset: int, limit: int) -> tuple[int, list[DeadLetter]]:
        """(total, page) of dead letters, newest first."""
        parts = self.keys.all_partitions()
        with redis_errors():
            pipe = self.connection.client.pipeline(transaction=False)
            for part in parts:
                pipe.zcard(part.dead)
                pipe.zrevrange(part.dead, 0, offset + limit - 1, withscores=True)
            replies = pipe.execute()
            total = sum(replies[0::2])
            located = [
                (batch_id, score, part)
                for part, page in zip(parts, replies[1::2], strict=True)
                for batch_id, score in page
            ]
            located.sort(key=lambda entry: entry[1], reverse=True)
            page = located[offset : offset + limit]
            pipe = self.connection.client.pipeline(transaction=False)
            for batch_id, _, part in page:
                pipe.hmget(part.dead_data, batch_id, f"i:{batch_id}")
            records = pipe.execute()
        letters = [
            DeadLetter(bid, body, json.loads(info))
            for (bid, _, _), (body, info) in zip(page, records, strict=True)
            if body
        ]
        return total, letters

    def get(self, batch_id: str) -> DeadLetter | None:
        """One dead letter by batch id, or None."""
        if not is_batch_id(batch_id):  # e.g. "i:<id>", the name of a letter's info field
            return None
        with redis_errors():
            pipe = self.connection.client.pipeline(transaction=False)
            for part in self.keys.all_partitions():
                pipe.hmget(part.dead_data, batch_id, f"i:{batch_id}")
            for body, info in pipe.execute():
                if body:
                    return DeadLetter(batch_id, body, json.loads(info))
        return None

    def replay(self, batch_id: str) -> bool:
        """Queue a dead letter for delivery again, under the same batch_id."""
        letter = self.get(batch_id)
        if letter is None:
            return False
        user = letter.info["user"]
        k = self.keys.user(user)
        part = self.keys.indexes_of(user)
        keys = [part.ready, k.outbox, k.batches, part.dead, part.dead_data]
        with redis_errors():
            return bool(self.connection.scripts.run("replay", keys, [user, batch_id]))

    def delete(self, batch_id: str) -> bool:
        """Forget a dead letter for good."""
        if not is_batch_id(batch_id):
            return False
        with redis_errors():
            pipe = self.connection.client.pipeline(transaction=False)
            for part in self.keys.all_partitions():
                pipe.zrem(part.dead, batch_id)
                pipe.hdel(part.dead_data, batch_id, f"i:{batch_id}")
            return any(pipe.execute()[0::2])
