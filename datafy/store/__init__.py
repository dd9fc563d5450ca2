"""The only package that talks to Redis: one small class per noun over one shared connection.

store.connection     the client, the scripts, health and server facts
store.buffer         open batches: append, typing, flush, discard, peek, the due index
store.aliases        other ids a chat is known by (a customer's LID beside their phone)
store.answers        a batch after it left: the answer guard, answered and unanswered (the carry-over)
store.outbox         sealed batches: lease, acknowledge, retry, bury
store.dead_letters   batches that could not be delivered: list, replay, delete, trim
store.breaker        the receiver's circuit breaker, shared by every monitor, and the catch-up after it
store.monitors       the monitor processes alive, which share the partitions among them
store.routes         the route table: one row per client route, its keys and matches, and a version
store.views          cheap counts of the whole system (status, dashboard, metrics)
store.stats          per-minute delivery figures: deliveries, retries, dead letters, arrival-lag histogram
store.expiry         expired-key events of the timers, from every primary
store.topology       the client for the chosen mode: one server, Sentinel or Cluster, over TLS or not
"""

from __future__ import annotations

import redis

from datafy.config import Settings
from datafy.keys import KeySpace
from datafy.store.aliases import Aliases
from datafy.store.answers import Answers
from datafy.store.breaker import Breaker
from datafy.store.buffer import Buffer, ChatSnapshot, new_batch_id
from datafy.store.connection import Connection
from datafy.store.dead_letters import DeadLetter, DeadLetters, is_batch_id
from datafy.store.expiry import ExpirySubscription
from datafy.store.monitors import Monitors
from datafy.store.outbox import Outbox
from datafy.store.routes import Routes
from datafy.store.stats import Stats
from datafy.store.views import Counts, Views

__all__ = ["ChatSnapshot", "Counts", "DeadLetter", "ExpirySubscription", "Store", "is_batch_id", "new_batch_id"]


class Store:
    """Everything redis-datafy keeps in Redis. Thread-safe: one instance serves every thread of a process."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.connection = Connection(settings, client)
        self.buffer = Buffer(self.connection)
        self.aliases = Aliases(self.connection)
        self.answers = Answers(self.connection)
        self.dead_letters = DeadLetters(self.connection)
        self.outbox = Outbox(self.connection, self.dead_letters)
        self.breaker = Breaker(self.connection, settings.webhook_url, settings.webhook_timeout)
        self.monitors = Monitors(self.connection)
        self.routes = Routes(self.connection)
        self.views = Views(self.connection)
        self.stats = Stats(self.connection)

    @property
    def settings(self) -> Settings:
        return self.connection.settings

    @property
    def keys(self) -> KeySpace:
        return self.connection.keys

    @property
    def client(self) -> redis.Redis:
        """The raw client, for tests and tools; the application goes through the nouns above."""
        return self.connection.client

    def close(self) -> None:
        """Release the connections (a parent process does this before it forks its children)."""
        self.connection.close()

    def expiry_subscription(self) -> ExpirySubscription:
        """A subscription to this database's expired events, yielding the users whose timer expired."""
        return ExpirySubscription(self.connection)
