"""Start-up checks of the Redis server: warn loudly about settings that can lose messages."""

from __future__ import annotations

import logging

from datafy.errors import StoreUnavailableError
from datafy.store import Store

log = logging.getLogger(__name__)


def check_redis(store: Store) -> None:
    """Log the server and warn about eviction or missing persistence; never raises."""
    try:
        version = store.connection.server_version()
        policy = store.connection.config_get("maxmemory-policy")
        appendonly = store.connection.config_get("appendonly")
    except StoreUnavailableError as exc:
        log.warning("redis not reachable yet (%s); will keep retrying", exc)
        return
    log.info("redis is %s (maxmemory-policy=%s appendonly=%s)", version, policy or "?", appendonly or "?")
    if policy is not None and policy != "noeviction":
        log.warning(
            "REDIS MAY EVICT BUFFERED MESSAGES: maxmemory-policy is %s; set it to noeviction (see redis.conf)", policy
        )
    if appendonly == "no":
        log.warning("redis appendonly is off: a Redis restart loses buffered messages; set appendonly yes")
