"""The connection every part of the store shares: the client, the registered scripts, and the mapping of
Redis errors to 'unavailable' (503) versus bugs."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from datafy.config import Settings
from datafy.errors import StoreUnavailableError
from datafy.keys import KeySpace

log = logging.getLogger(__name__)

REPORT_EVERY_SECONDS = 60  # a user whose script keeps failing is logged at most this often
SCRIPTS = (
    "append", "flush", "typing", "discard", "claim", "ack", "retry", "bury", "replay", "due_members", "breaker",
    "catch_up",
)  # fmt: skip

# Error replies that mean "not now" (memory, persistence, loading, failover, a busy script), not "wrong".
_UNAVAILABLE_REPLIES = ("OOM", "MISCONF", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "BUSY")

ScriptCall = tuple[str, list[str], list[Any]]  # (script name, keys, args)


def as_unavailable(exc: Exception) -> StoreUnavailableError | None:
    """StoreUnavailableError when `exc` means 'Redis cannot take this now', else None (a bug: it propagates)."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError)):
        return StoreUnavailableError(f"redis unavailable: {type(exc).__name__}: {exc}")
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
    except redis.RedisError as exc:
        unavailable = as_unavailable(exc)
        if unavailable is not None:
            raise unavailable from exc
        raise


class Connection:
    """One Redis client and the scripts registered on it. Thread-safe: one instance serves a whole process."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.keys = KeySpace(settings.redis_prefix)
        self.client: redis.Redis = client or redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=10,
            health_check_interval=30,
            max_connections=settings.webhook_concurrency + 16,
            # No silent re-sends: an append re-sent after a timeout could store a message twice. Callers
            # decide instead (the API answers 503 and the client retries; the monitor backs off).
            retry=Retry(NoBackoff(), 0),
        )
        self._reported: dict[str, float] = {}  # user -> when its failing script was last logged
        library = _read_script("_lib")
        self.scripts: dict[str, Script] = {
            name: self.client.register_script(library + "\n" + _read_script(name)) for name in SCRIPTS
        }

    def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run one script (EVALSHA, loading it again if the server lost it); the caller maps Redis errors."""
        return self.scripts[name](keys=keys, args=args)

    def run_many(self, calls: list[ScriptCall]) -> list[Any]:
        """Run every (script, keys, args) in one pipelined round trip; a failed call's reply is its error.

        EVALSHA straight into the pipeline: redis-py's own script pipelining asks SCRIPT EXISTS first, a
        round trip more for every pipeline. A server that lost the scripts (restarted) answers NOSCRIPT for
        calls that did not run: their scripts are loaded and those calls run again.
        """
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            for i in todo:
                name, keys, args = calls[i]
                pipe.evalsha(self.scripts[name].sha, len(keys), *keys, *args)
            for i, reply in zip(todo, pipe.execute(raise_on_error=False), strict=True):
                replies[i] = reply
            todo = [i for i in todo if isinstance(replies[i], redis.exceptions.NoScriptError)]
            if not todo:
                break
            for name in {calls[i][0] for i in todo}:
                self.scripts[name].sha = self.client.script_load(self.scripts[name].script)
        return replies

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
        """Raise StoreUnavailableError unless Redis answers."""
        with redis_errors():
            self.client.ping()

    def now_ms(self) -> int:
        """Redis server time, the clock every deadline is measured on."""
        with redis_errors():
            seconds, micros = self.client.time()
        return seconds * 1000 + micros // 1000

    def config_get(self, name: str) -> str | None:
        """A CONFIG GET value, or None when CONFIG is not allowed (managed Redis)."""
        try:
            with redis_errors():
                return self.client.config_get(name).get(name)
        except redis.ResponseError:
            return None

    def enable_expiry_events(self) -> bool:
        """Ask Redis to publish expired events; False when CONFIG SET is not allowed."""
        current = self.config_get("notify-keyspace-events")
        if current is not None and "E" in current and ("x" in current or "A" in current):
            return True
        try:
            with redis_errors():
                self.client.config_set("notify-keyspace-events", (current or "") + "Ex")
            return True
        except redis.ResponseError:
            return False

    def server_version(self) -> str:
        """The server's name and version, e.g. 'valkey 8.1.8'."""
        with redis_errors():
            info = self.client.info("server")
        if "valkey_version" in info:
            return f"valkey {info['valkey_version']}"
        return f"redis {info.get('redis_version', '?')}"


def _read_script(name: str) -> str:
    return resources.files("datafy").joinpath("scripts", f"{name}.lua").read_text(encoding="utf-8")
