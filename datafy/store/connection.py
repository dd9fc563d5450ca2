"""The connection every part of the store shares: the client, the registered scripts, and the mapping of
Redis errors to 'unavailable' (503) versus bugs."""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib import resources
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import AskError, ClusterDownError, ClusterError, RedisClusterException, TryAgainError

from datafy.config import Settings
from datafy.errors import ConfigurationError, StoreUnavailableError
from datafy.keys import KeySpace
from datafy.store.topology import SINGLE, Client, open_client, primaries

log = logging.getLogger(__name__)

REPORT_EVERY_SECONDS = 60  # a user whose script keeps failing is logged at most this often
SCRIPTS = (
    "append", "flush", "typing", "discard", "claim", "ack", "retry", "bury", "replay", "due_members", "breaker",
    "catch_up", "beat",
)  # fmt: skip

# Error replies that mean "not now" (memory, persistence, loading, failover, a busy script), not "wrong".
_UNAVAILABLE_REPLIES = ("OOM", "MISCONF", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "BUSY")

ScriptCall = tuple[str, list[str], list[Any]]  # (script name, keys, args)
# A Cluster slot that moved or is moving, or a Cluster without a primary for it: "not now", never "wrong".
_REDIRECTED = (AskError, TryAgainError, ClusterDownError)
# ... and the Cluster client giving up after following redirections for too long ("TTL exhausted").


def as_unavailable(exc: Exception) -> StoreUnavailableError | None:
    """StoreUnavailableError when `exc` means 'Redis cannot take this now', else None (a bug: it propagates)."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError, RedisClusterException)):
        return StoreUnavailableError(f"redis unavailable: {type(exc).__name__}: {exc}")
    if isinstance(exc, (*_REDIRECTED, ClusterError)):
        return StoreUnavailableError(f"redis cluster is moving this slot or has no primary for it: {exc}")
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        # A script fails at its first allocating write, before it changed anything: nothing half-done.
        return StoreUnavailableError(f"redis is out of memory (maxmemory): {exc}")
    if isinstance(exc, redis.ResponseError):
        text = str(exc).rsplit(" of pipeline caused error: ", 1)[-1]  # a pipeline prefixes the reply
        if text.startswith(_UNAVAILABLE_REPLIES):
            return StoreUnavailableError(f"redis refused the write: {text}")
    return None


def checked(replies: list[Any]) -> list[Any]:
    """The pipeline replies, once none of them is an error (the first error is raised, mapped as above)."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise as_unavailable(reply) or reply
    return replies


@contextmanager
def redis_errors() -> Iterator[None]:
    """Raise StoreUnavailableError for 'Redis cannot take this now'; anything else propagates."""
    try:
        yield
    except (redis.RedisError, RedisClusterException) as exc:
        unavailable = as_unavailable(exc)
        if unavailable is not None:
            raise unavailable from exc
        raise


class Connection:
    """One Redis client, for the mode the server is in, and the scripts registered on it. Thread-safe: one
    instance serves a whole process. The client is made at first use, so a process may start before Redis."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.keys = KeySpace(settings.redis_prefix, settings.redis.partitions)
        self._client: Client | None = client
        self.mode = SINGLE
        self._lock = threading.Lock()
        self._reported: dict[str, float] = {}  # user -> when its failing script was last logged
        library = _read_script("_lib")
        self.sources = {name: library + "\n" + _read_script(name) for name in SCRIPTS}
        self.shas = {name: hashlib.sha1(source.encode()).hexdigest() for name, source in self.sources.items()}
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

    def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run one script; the caller maps Redis errors. A Cluster client follows MOVED, ASK and TRYAGAIN."""
        try:
            return self.client.evalsha(self.shas[name], len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.client.script_load(self.sources[name])  # a Cluster client loads it on every primary
            return self.client.evalsha(self.shas[name], len(keys), *keys, *args)

    def run_replicated(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """run(), then, with REDIS_WAIT_REPLICAS, WAIT on the same connection until that many replicas hold the
        write; StoreUnavailableError when they do not within REDIS_WAIT_TIMEOUT_MS (the write may be there)."""
        wanted, timeout_ms = self.settings.redis.wait_replicas, self.settings.redis.wait_timeout_ms
        if not wanted:
            return self.run(name, keys, args)
        for attempt in range(2):
            server = self._server_of(keys[0])
            replies = self._pipelined(server, [(name, keys, args)], ("WAIT", wanted, timeout_ms))
            reply, replicas = replies
            if isinstance(reply, redis.exceptions.AskError) and attempt == 0:  # the slot moved: ask again
                self.refresh_topology()
                continue
            if isinstance(reply, Exception):
                raise reply
            if isinstance(replicas, Exception):
                raise replicas
            if int(replicas) < wanted:
                raise StoreUnavailableError(
                    f"only {replicas} of {wanted} replica(s) confirmed the write within {timeout_ms} ms "
                    "(REDIS_WAIT_REPLICAS); it may be stored: retry with the same message_id"
                )
            return reply
        raise StoreUnavailableError("the slot kept moving (resharding); retry")

    def run_many(self, calls: list[ScriptCall]) -> list[Any]:
        """Run every (script, keys, args) pipelined, one round trip per server; a failed call's reply is its error.

        EVALSHA straight into the pipeline: redis-py's own script pipelining asks SCRIPT EXISTS first, a
        round trip more for every pipeline. On a Cluster (whose pipelines refuse scripts) the calls go in one
        plain pipeline per primary; a call whose slot moved meanwhile is run again on its own.
        """
        cluster = self.cluster
        if cluster is None:
            return self._pipelined(self.client, calls)
        replies: list[Any] = [None] * len(calls)
        by_server: dict[str, list[int]] = {}
        for i, (_, keys, _) in enumerate(calls):
            by_server.setdefault(cluster.get_node_from_key(keys[0]).name, []).append(i)
        for node_name, indexes in by_server.items():
            server = cluster.get_redis_connection(cluster.get_node(node_name=node_name))
            for i, reply in zip(indexes, self._pipelined(server, [calls[i] for i in indexes]), strict=True):
                replies[i] = reply
        for i, reply in enumerate(replies):
            if isinstance(reply, _REDIRECTED):  # moved or moving: the Cluster client follows the redirection
                try:
                    replies[i] = self.run(*calls[i])
                except redis.RedisError as exc:
                    replies[i] = exc
        return replies

    def _pipelined(self, server: redis.Redis, calls: list[ScriptCall], then: tuple[Any, ...] = ()) -> list[Any]:
        """The calls (and the command `then`, if given) in one pipeline on one server; scripts the server lost
        (restarted) are loaded and the calls that met NOSCRIPT run again."""
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(2):
            pipe = server.pipeline(transaction=False)
            for i in todo:
                name, keys, args = calls[i]
                pipe.evalsha(self.shas[name], len(keys), *keys, *args)
            if then:
                pipe.execute_command(*then)
            try:
                results = pipe.execute(raise_on_error=False)
            except (redis.ConnectionError, redis.TimeoutError):
                self.refresh_topology()
                raise
            for i, reply in zip(todo, results, strict=False):
                replies[i] = reply
            last = results[-1] if then else None
            todo = [i for i in todo if isinstance(replies[i], redis.exceptions.NoScriptError)]
            if not todo:
                return [*replies, last] if then else replies
            for name in {calls[i][0] for i in todo}:
                server.script_load(self.sources[name])
        return [*replies, last] if then else replies

    def _server_of(self, key: str) -> redis.Redis:
        """The plain client of the server that holds `key` (the one server outside a Cluster)."""
        cluster = self.cluster
        if cluster is None:
            return self.client
        return cluster.get_redis_connection(cluster.get_node_from_key(key))

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

    def per_user(self, users: list[str], replies: list[Any], operation: str) -> list[Any]:
        """The replies, one per user, with a failed script's reply as None, so that one user's failing script
        cannot stall every other user: an 'unavailable' reply raises, any other error is logged (once a minute
        per user) and skipped."""
        for user, reply in zip(users, replies, strict=True):
            if not isinstance(reply, Exception):
                continue
            unavailable = as_unavailable(reply)
            if unavailable is not None:
                raise unavailable from reply
            if time.monotonic() - self._reported.get(user, -math.inf) >= REPORT_EVERY_SECONDS:
                self._reported[user] = time.monotonic()
                log.error("%s failed for user=%s, skipping it; other users go on: %s", operation, user, reply)
        return [None if isinstance(reply, Exception) else reply for reply in replies]

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

    def primaries(self) -> list[redis.Redis]:
        """A plain client for each primary (one outside a Cluster), for per-server checks and settings."""
        with redis_errors():
            self.refresh_topology()
            return primaries(self.client)


def _read_script(name: str) -> str:
    return resources.files("datafy").joinpath("scripts", f"{name}.lua").read_text(encoding="utf-8")
