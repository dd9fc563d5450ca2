"""Cheap figures of the whole system, for /api/status, the dashboard and the Prometheus gauges: a few
counting commands per partition in one pipelined round trip (per primary on a Cluster), never a scan."""

from __future__ import annotations

from dataclasses import dataclass

from datafy.store.connection import Connection
from datafy.store.errors import redis_errors

SOON_MS = 60_000


@dataclass(frozen=True)
class Counts:
    """How much is where, right now."""

    pending_chats: int  # open batches (chats still typing)
    due_next_minute: int  # of those, due within a minute
    ready: int  # chats whose next sealed batch may be sent now
    retrying: int  # chats whose next batch waits for a retry
    scheduled: int  # chats whose next batch is leased (in flight) or waits for a retry
    dead_letters: int
    held: int = 0  # chats waiting for the workflow's verdict on their last batch (await_answer)
    paused: int = 0  # chats a person took over


class Views:
    """Read-only counts over every partition."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.keys = connection.keys

    def counts(self) -> Counts:
        """The counts of every partition, added up."""
        with redis_errors():
            now = self.connection.now_ms()
            pipe = self.connection.client.pipeline(transaction=False)
            for part in self.keys.all_partitions():
                pipe.zcard(part.due).zcount(part.due, "-inf", now + SOON_MS)
                pipe.zcard(part.ready).zcount(part.ready, "-inf", now)
                pipe.zcard(part.retrying).zcard(part.dead)
                pipe.zcount(part.held, now, "+inf").zcount(part.paused, now, "+inf")
            replies = pipe.execute()
        sums = [sum(replies[i::8]) for i in range(8)]
        pending, soon, ready_all, ready_now, retrying, dead, held, paused = sums
        return Counts(pending, soon, ready_now, retrying, ready_all - ready_now, dead, held, paused)
