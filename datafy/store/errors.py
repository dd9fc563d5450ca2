"""Which Redis errors mean 'unavailable now' (the API answers 503, the monitor waits and retries) and which are
bugs (they propagate): the one mapping every part of the store uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis.exceptions import AskError, ClusterDownError, ClusterError, RedisClusterException, TryAgainError

from datafy.errors import StoreUnavailableError

# Error replies that mean "not now" (memory, persistence, loading, failover, a busy script), not "wrong".
_UNAVAILABLE_REPLIES = ("OOM", "MISCONF", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "BUSY")

# A Cluster slot that moved or is moving, or a Cluster without a primary for it: "not now", never "wrong".
REDIRECTED = (AskError, TryAgainError, ClusterDownError)
# ... and the Cluster client giving up after following redirections for too long ("TTL exhausted").


def as_unavailable(exc: Exception) -> StoreUnavailableError | None:
    """StoreUnavailableError when `exc` means 'Redis cannot take this now', else None (a bug: it propagates)."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError, RedisClusterException)):
        return StoreUnavailableError(f"redis unavailable: {type(exc).__name__}: {exc}")
    if isinstance(exc, (*REDIRECTED, ClusterError)):
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
