"""The Lua scripts (datafy/scripts/*.lua), registered once per process and run by name: one call, one call
with WAIT for replicas, or many pipelined (one round trip per server, per primary on a Cluster)."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

import hiredis
import redis

from datafy.errors import StoreUnavailableError
from datafy.store.errors import REDIRECTED, as_unavailable

if TYPE_CHECKING:
    from datafy.store.connection import Connection

log = logging.getLogger(__name__)

REPORT_EVERY_SECONDS = 60  # a user whose script keeps failing is logged at most this often
SCRIPTS = (
    "append", "flush", "typing", "discard", "claim", "ack", "retry", "bury", "replay", "due_members", "breaker",
    "catch_up", "beat", "answer_state", "answer", "pause", "route_put", "route_delete", "park",
)  # fmt: skip

ScriptCall = tuple[str, list[str], list[Any]]  # (script name, keys, args)


class Scripts:
    """Every script's source (the shared _lib.lua prepended) and SHA, run on the connection's client."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._reported: dict[str, float] = {}  # user -> when its failing script was last logged
        library = _read_script("_lib")
        self.sources = {name: library + "\n" + _read_script(name) for name in SCRIPTS}
        self.shas = {name: hashlib.sha1(source.encode()).hexdigest() for name, source in self.sources.items()}

    def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run one script; the caller maps Redis errors. A Cluster client follows MOVED, ASK and TRYAGAIN."""
        client = self.connection.client
        call = _evalsha if self.connection.cluster is None else _cluster_evalsha
        try:
            return call(client, self.shas[name], keys, args)
        except redis.exceptions.NoScriptError:
            client.script_load(self.sources[name])  # a Cluster client loads it on every primary
            return call(client, self.shas[name], keys, args)

    def run_replicated(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """run(), then, with REDIS_WAIT_REPLICAS, WAIT on the same connection until that many replicas hold the
        write; StoreUnavailableError when they do not within REDIS_WAIT_TIMEOUT_MS (the write may be there)."""
        options = self.connection.settings.redis
        wanted, timeout_ms = options.wait_replicas, options.wait_timeout_ms
        if not wanted:
            return self.run(name, keys, args)
        for attempt in range(2):
            server = self._server_of(keys[0])
            replies = self._pipelined(server, [(name, keys, args)], ("WAIT", wanted, timeout_ms))
            reply, replicas = replies
            if isinstance(reply, redis.exceptions.AskError) and attempt == 0:  # the slot moved: ask again
                self.connection.refresh_topology()
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

    def due_calls(self, indexes: list[tuple[str, int]], limit: int, timed: bool = False) -> list[ScriptCall]:
        """The due_members calls that read `indexes` ((index key, overdue_ms)), up to `limit` members each: one
        call on one server, one per index on a Cluster (the partitions live in different slots). Each call's reply
        is (a list of pages, one per index it read; in how many ms the next member comes due, -1: none or not
        `timed`)."""
        if not indexes:
            return []
        groups = [indexes] if self.connection.cluster is None else [[index] for index in indexes]
        return [("due_members", [key for key, _ in group], [limit, int(timed), *(overdue for _, overdue in group)])
                for group in groups]  # fmt: skip

    def run_many(self, calls: list[ScriptCall]) -> list[Any]:
        """Run every (script, keys, args) pipelined, one round trip per server; a failed call's reply is its error.

        EVALSHA straight into the pipeline: redis-py's own script pipelining asks SCRIPT EXISTS first, a
        round trip more for every pipeline. On a Cluster (whose pipelines refuse scripts) the calls go in one
        plain pipeline per primary; a call whose slot moved meanwhile is run again on its own.
        """
        cluster = self.connection.cluster
        if cluster is None:
            return self._pipelined(self.connection.client, calls)
        replies: list[Any] = [None] * len(calls)
        by_server: dict[str, list[int]] = {}
        for i, (_, keys, _) in enumerate(calls):
            by_server.setdefault(cluster.get_node_from_key(keys[0]).name, []).append(i)
        for node_name, indexes in by_server.items():
            server = cluster.get_redis_connection(cluster.get_node(node_name=node_name))
            for i, reply in zip(indexes, self._pipelined(server, [calls[i] for i in indexes]), strict=True):
                replies[i] = reply
        for i, reply in enumerate(replies):
            if isinstance(reply, REDIRECTED):  # moved or moving: the Cluster client follows the redirection
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
            commands = [
                ("EVALSHA", self.shas[name], len(keys), *keys, *args)
                for name, keys, args in map(calls.__getitem__, todo)
            ]
            try:
                results = _pipeline(server, [*commands, then] if then else commands)
            except (redis.ConnectionError, redis.TimeoutError):
                self.connection.refresh_topology()
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
        cluster = self.connection.cluster
        if cluster is None:
            return self.connection.client
        return cluster.get_redis_connection(cluster.get_node_from_key(key))

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


def _evalsha(client: redis.Redis, sha: str, keys: list[str], args: list[Any]) -> Any:
    """EVALSHA on one server (plain or Sentinel's primary), as a pipeline of one; its error is raised."""
    reply = _pipeline(client, [("EVALSHA", sha, len(keys), *keys, *args)])[0]
    if not isinstance(reply, Exception):
        return reply
    try:
        raise reply
    finally:
        del reply  # its traceback holds this frame: no reference cycle through the client


def _pipeline(client: redis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
    """The commands in one round trip on a pooled connection of one server, each reply or its error in order.

    A plain pipeline without redis-py's per-command layers (retry wrapper, observability, event dispatch, the
    Pipeline object), packed by hiredis directly as redis-py would but without its per-argument pass: half the
    client's CPU per script, and the API and the monitor run one per message and several per batch. The client
    has no retries to honour (topology.py: Retry 0)."""
    if not commands:
        return []
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([b"".join([hiredis.pack_command(command) for command in commands])])
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redis.ResponseError as exc:  # kept without its traceback, which would hold this connection
                replies.append(exc.with_traceback(None))
        return replies
    except BaseException:
        conn.disconnect()  # replies may be left unread
        raise
    finally:
        pool.release(conn)


def _cluster_evalsha(client: Any, sha: str, keys: list[str], args: list[Any]) -> Any:
    return client.evalsha(sha, len(keys), *keys, *args)


def _read_script(name: str) -> str:
    return resources.files("datafy").joinpath("scripts", f"{name}.lua").read_text(encoding="utf-8")
