"""The connection every part of the store shares: the client for the mode Redis is in (made at first use),
the partition count check, and the server's health and clock. Scripts run through `connection.scripts`."""

from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import suppress

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from datafy.config import Settings
from datafy.errors import ConfigurationError, StoreUnavailableError
from datafy.keys import KeySpace
from datafy.store.errors import redis_errors
from datafy.store.scripts import Scripts
from datafy.store.topology import SINGLE, Client, open_client, primaries

log = logging.getLogger(__name__)

MEMORY_TIGHT = 0.9  # of maxmemory: past it, delivered batches are not kept for the answer window
MEMORY_CHECK_SECONDS = 1.0


class Connection:
    """One Redis client, for the mode the server is in, and the scripts registered on it. Thread-safe: one
    instance serves a whole process. The client is made at first use, so a process may start before Redis."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.keys = KeySpace(settings.redis_prefix, settings.redis.partitions)
        self._client: Client | None = client
        self.mode = SINGLE
        self._lock = threading.Lock()
        self.scripts = Scripts(self)
        self._memory_checked, self._memory_tight = -math.inf, False
        if client is not None:
            self._check_partitions(client)

    @property
    def client(self) -> Client:
        """The client; the first use asks the server which mode it is in and checks the partition count."""
        if self._client is None:
            with self._lock, redis_errors():
                if self._client is None:
                    client, mode = open_client(self.settings)
                    self._check_partitions(client)
                    self.mode = mode
                    self._client = client
                    log.info("redis mode=%s partitions=%d url=%s", mode, self.keys.partitions,
                             self.settings.redis_url_redacted)  # fmt: skip
        return self._client

    def close(self) -> None:
        """Release the client's connections; the next use makes a new client."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with suppress(redis.RedisError, RedisClusterException):
                client.close()

    @property
    def cluster(self) -> RedisCluster | None:
        """The Cluster client, or None when Redis is one server (alone or under Sentinel)."""
        client = self.client
        return client if isinstance(client, RedisCluster) else None

    def refresh_topology(self) -> None:
        """After a failover or a reshard: learn the Cluster's slots again (a no-op outside a Cluster)."""
        if isinstance(self._client, RedisCluster):
            with suppress(redis.RedisError, RedisClusterException):
                self._client.nodes_manager.initialize()

    def _check_partitions(self, client: Client) -> None:
        """The partition count is fixed at first start: another count would lose track of the stored keys."""
        key, wanted = self.keys.partition_count(), self.keys.partitions
        stored = client.get(key)
        if stored is None:
            try:
                client.set(key, wanted, nx=True)
                stored = client.get(key)
            except redis.exceptions.OutOfMemoryError:  # a full Redis must still drain: kept at the next start
                log.warning("could not store REDIS_PARTITIONS in Redis (out of memory); it is stored at a later start")
        stored = int(stored or wanted)
        if stored != wanted:
            raise ConfigurationError(
                f"REDIS_PARTITIONS={wanted} but this Redis holds {stored} partitions (key {key}): set "
                f"REDIS_PARTITIONS={stored} (the count can change only on an empty Redis: docs/SCALING.md)"
            )

    # ---- health and server facts ----

    def ping(self) -> None:
        """Raise StoreUnavailableError unless Redis answers (on a Cluster: every primary)."""
        with redis_errors():
            cluster = self.cluster
            if cluster is None:
                self.client.ping()
            else:
                cluster.ping(target_nodes=RedisCluster.PRIMARIES)

    def now_ms(self) -> int:
        """Redis server time, the clock every deadline is measured on."""
        with redis_errors():
            seconds, micros = self.client.time()
        return seconds * 1000 + micros // 1000

    def memory_tight(self) -> bool:
        """Whether a Redis server is within 10% of its maxmemory (asked at most once a second): then nothing
        optional is kept (delivered batches for the answer window), so memory drains as it did without them."""
        now = time.monotonic()
        if now - self._memory_checked >= MEMORY_CHECK_SECONDS:
            self._memory_checked = now
            try:
                with redis_errors():
                    infos = [server.info("memory") for server in self.primaries()]
            except StoreUnavailableError:
                return self._memory_tight  # the caller's own call will say what is wrong
            self._memory_tight = any(
                info.get("maxmemory") and info["used_memory"] >= MEMORY_TIGHT * info["maxmemory"] for info in infos
            )
        return self._memory_tight

    def primaries(self) -> list[redis.Redis]:
        """A plain client for each primary (one outside a Cluster), for per-server checks and settings."""
        with redis_errors():
            self.refresh_topology()
            return primaries(self.client)
