"""Expired-key events of the users' timers: hints that wake the flusher early (the due index is the clock)."""

from __future__ import annotations

from contextlib import suppress

import redis

from datafy.store.connection import Connection, redis_errors


class ExpirySubscription:
    """Expired-key events of our timers; every method raises StoreUnavailableError when the link drops."""

    def __init__(self, connection: Connection) -> None:
        self.keys = connection.keys
        self.channel = f"__keyevent@{connection.settings.redis_db}__:expired"
        self.pubsub = connection.client.pubsub(ignore_subscribe_messages=True)
        with redis_errors():
            self.pubsub.subscribe(self.channel)

    def next_user(self, timeout: float) -> str | None:
        """The user of the next expired timer within `timeout` seconds, else None."""
        try:
            with redis_errors():
                message = self.pubsub.get_message(timeout=timeout)
        except UnicodeDecodeError:  # another app's key name that is not UTF-8: not one of our timers
            return None
        if not message or message.get("type") != "message":
            return None
        return self.keys.user_of_timer(message["data"])

    def close(self) -> None:
        """Unsubscribe and release the connection; never raises."""
        with suppress(redis.RedisError):
            self.pubsub.close()
