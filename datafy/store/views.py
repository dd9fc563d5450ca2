"""Cheap figures of the whole system, for /api/status, the dashboard and the Prometheus gauges: a few
counting commands per partition in one pipelined round trip (per primary on a Cluster), never a scan. One route's
own figures (its admin key's status) are the exception: they scan for its chat ids."""

from __future__ import annotations

import json
from dataclasses import dataclass

from datafy.routes.chats import chat_prefix
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
        """The counts of every partition, added up (every route's batches waiting for a retry included)."""
        with redis_errors():
            now = self.connection.now_ms()
            routes = self.connection.client.hkeys(self.keys.routes().rows)
            pipe = self.connection.client.pipeline(transaction=False)
            for part in self.keys.all_partitions():
                pipe.zcard(part.due).zcount(part.due, "-inf", now + SOON_MS)
                pipe.zcard(part.ready).zcount(part.ready, "-inf", now)
                pipe.zcard(part.retrying).zcard(part.dead)
                pipe.zcount(part.held, now, "+inf").zcount(part.paused, now, "+inf")
            for route in routes:
                for p in range(self.keys.partitions):
                    pipe.zcard(self.keys.route_retrying(p, route))
            replies = pipe.execute()
        fixed = 8 * self.keys.partitions
        sums = [sum(replies[i:fixed:8]) for i in range(8)]
        sums[4] += sum(replies[fixed:])
        pending, soon, ready_all, ready_now, retrying, dead, held, paused = sums
        return Counts(pending, soon, ready_now, retrying, ready_all - ready_now, dead, held, paused)

    def route_counts(self, route: str) -> Counts:
        """The counts of one route's chats: a scan of the indexes for its chat ids (for a route's own status,
        asked by its admin key; never on a hot path)."""
        prefix = chat_prefix(route) + "*"  # a route's name has no glob characters ([a-z0-9-])
        client = self.connection.client
        with redis_errors():
            now = self.connection.now_ms()
            scores = {name: [] for name in ("due", "ready", "held", "paused")}
            retrying = 0
            for p, part in enumerate(self.keys.all_partitions()):
                for name in scores:
                    index = getattr(part, name)
                    scores[name] += [score for _, score in client.zscan_iter(index, match=prefix, count=1000)]
                retrying += client.zcard(self.keys.route_retrying(p, route))
            dead = sum(1 for p in self.keys.all_partitions() for _, info in client.hscan_iter(p.dead_data, match="i:*")
                       if json.loads(info)["user"].startswith(chat_prefix(route)))  # fmt: skip
        due, ready = scores["due"], scores["ready"]
        return Counts(
            pending_chats=len(due),
            due_next_minute=sum(1 for score in due if score <= now + SOON_MS),
            ready=sum(1 for score in ready if score <= now),
            retrying=retrying,
            scheduled=sum(1 for score in ready if score > now),
            dead_letters=dead,
            held=sum(1 for score in scores["held"] if score >= now),
            paused=sum(1 for score in scores["paused"] if score >= now),
        )
