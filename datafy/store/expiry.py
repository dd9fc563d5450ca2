"""Expired-key events of the users' timers: hints that wake the flusher early (the due index is the clock).

Keyspace events are local to each server: on a Cluster, every primary is subscribed, and the list of
primaries is learned again now and then, so a failover or a reshard does not leave one unheard.
"""

from __future__ import annotations

import time
from contextlib import suppress

import redis
from redis.exceptions import RedisClusterException

from datafy.store.connection import Connection
from datafy.store.errors import redis_errors

REDISCOVER_SECONDS = 10.0


class ExpirySubscription:
    """Expired-key events of our timers; every method raises StoreUnavailableError when the link drops."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.keys = connection.keys
        self.channel = f"__keyevent@{connection.settings.redis_db}__:expired"
        self.discovered = time.monotonic()
        with redis_errors():
            cluster = connection.cluster
            if cluster is None:
                self.pubsub = connection.client.pubsub(ignore_subscribe_messages=True)
                self.pubsub.subscribe(self.channel)
                self.notifications = None
            else:
                self.notifications = cluster.keyspace_notifications()
                self.notifications.subscribe_keyevent("expired", db=0)

    def next_user(self, timeout: float) -> str | None:
        """The user of the next expired timer within `timeout` seconds, else None."""
        try:
            with redis_errors():
                key = self._next_key(timeout)
        except UnicodeDecodeError:  # another app's key name that is not UTF-8: not one of our timers
            return None
        return None if key is None else self.keys.user_of_timer(key)

    def _next_key(self, timeout: float) -> str | None:
        if self.notifications is None:
            message = self.pubsub.get_message(timeout=timeout)
            return message["data"] if message and message.get("type") == "message" else None
        if time.monotonic() - self.discovered > REDISCOVER_SECONDS:  # new primaries after a failover or reshard
            self.discovered = time.monotonic()
            self.connection.refresh_topology()
            self.notifications.refresh_subscriptions()
        notification = self.notifications.get_message(timeout=timeout)
        return None if notification is None else str(notification.key)

    def close(self) -> None:
        """Unsubscribe and release the connections; never raises."""
        with suppress(redis.RedisError, RedisClusterException):
            (self.notifications or self.pubsub).close()
