"""The monitor processes alive, as each says itself: who shares the partitions, and what /api/status shows."""

from __future__ import annotations

from typing import Any

from datafy.store.connection import Connection
from datafy.store.errors import redis_errors

BEAT_TTL_SECONDS = 5.0  # a monitor that has not beaten for this long is gone; its partitions go to the others


class Monitors:
    """The registry of live monitor processes, shared by every container."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.keys = connection.keys

    def beat(self, monitor_id: str, record: dict[str, Any]) -> list[str]:
        """Say `monitor_id` is alive (with its record); returns the ids of every live monitor, in order."""
        fields = [str(item) for pair in record.items() for item in pair]
        args = [monitor_id, int(BEAT_TTL_SECONDS * 1000), *fields]
        with redis_errors():
            return sorted(
                self.connection.scripts.run("beat", [self.keys.monitors(), self.keys.monitor(monitor_id)], args)
            )

    def leave(self, monitor_id: str) -> None:
        """A clean stop: the others take its partitions at once."""
        with redis_errors():
            pipe = self.connection.client.pipeline(transaction=False)
            pipe.zrem(self.keys.monitors(), monitor_id).delete(self.keys.monitor(monitor_id))
            pipe.execute()

    def alive(self) -> list[dict[str, str]]:
        """The record of every live monitor process, in id order."""
        with redis_errors():
            now = self.connection.now_ms()
            since = now - int(BEAT_TTL_SECONDS * 1000)
            ids = sorted(self.connection.client.zrangebyscore(self.keys.monitors(), since, "+inf"))
            pipe = self.connection.client.pipeline(transaction=False)
            for monitor_id in ids:
                pipe.hgetall(self.keys.monitor(monitor_id))
            records = pipe.execute()
        return [{"id": monitor_id, **record} for monitor_id, record in zip(ids, records, strict=True) if record]
