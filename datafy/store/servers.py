"""Facts and settings of one Redis server (each primary of a Cluster is asked on its own)."""

from __future__ import annotations

import redis

from datafy.store.errors import redis_errors


def server_name(server: redis.Redis) -> str:
    """host:port (or the socket path) of one server, for logs."""
    kwargs = server.connection_pool.connection_kwargs
    return str(kwargs["path"]) if "path" in kwargs else f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


def config_get(server: redis.Redis, name: str) -> str | None:
    """A CONFIG GET value, or None when CONFIG is not allowed (managed Redis)."""
    try:
        with redis_errors():
            return server.config_get(name).get(name)
    except redis.ResponseError:
        return None


def enable_expiry_events(server: redis.Redis) -> bool:
    """Ask one server to publish expired events; False when CONFIG SET is not allowed."""
    current = config_get(server, "notify-keyspace-events")
    if current is not None and "E" in current and ("x" in current or "A" in current):
        return True
    try:
        with redis_errors():
            server.config_set("notify-keyspace-events", (current or "") + "Ex")
        return True
    except redis.ResponseError:
        return False


def server_version(server: redis.Redis) -> str:
    """The server's name and version, e.g. 'valkey 8.1.8'."""
    with redis_errors():
        info = server.info("server")
    if "valkey_version" in info:
        return f"valkey {info['valkey_version']}"
    return f"redis {info.get('redis_version', '?')}"
