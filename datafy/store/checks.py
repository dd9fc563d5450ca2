"""Start-up checks of the Redis server: warn loudly about settings that can lose messages."""

from __future__ import annotations

import logging

import redis

from datafy.errors import StoreUnavailableError
from datafy.store import Store
from datafy.store.servers import config_get, server_name, server_version

log = logging.getLogger(__name__)


def check_redis(store: Store) -> None:
    """Log the server(s) and warn about eviction or missing persistence, once per primary; never raises."""
    try:
        servers = store.connection.primaries()
        for server in servers:
            _check_server(server, f" on {server_name(server)}" if len(servers) > 1 else "")
    except StoreUnavailableError as exc:
        log.warning("redis not reachable yet (%s); will keep retrying", exc)


def _check_server(server: redis.Redis, where: str) -> None:
    version = server_version(server)
    policy = config_get(server, "maxmemory-policy")
    appendonly = config_get(server, "appendonly")
    log.info("redis%s is %s (maxmemory-policy=%s appendonly=%s)", where, version, policy or "?", appendonly or "?")
    if policy is not None and policy != "noeviction":
        log.warning(
            "REDIS MAY EVICT BUFFERED MESSAGES%s: maxmemory-policy is %s; set it to noeviction (see redis.conf)",
            where, policy,
        )  # fmt: skip
    if appendonly == "no":
        log.warning("redis appendonly is off%s: a Redis restart loses buffered messages; set appendonly yes", where)
