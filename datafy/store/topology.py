"""Which Redis we talk to: one server, the primary that Sentinel names, or a Cluster; over TLS or not.

Cluster needs no setting: the server is asked (INFO cluster) and RedisCluster is used when it is one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from datafy.config import Settings
from datafy.errors import ConfigurationError

log = logging.getLogger(__name__)

SINGLE, SENTINEL, CLUSTER = "single", "sentinel", "cluster"

Client = redis.Redis | RedisCluster
T = TypeVar("T")


def open_client(settings: Settings) -> tuple[Client, str]:
    """A client for the Redis that settings name, and its mode; raises redis errors when it cannot be reached."""
    options = _client_options(settings)
    if settings.redis.sentinels:
        client = _sentinel_client(settings, options)
        _first_contact(client.ping, settings)
        return client, SENTINEL
    probe = redis.Redis.from_url(settings.redis_url, **options)
    no_database = ConfigurationError(
        f"REDIS_DB={settings.redis_db}: a Redis Cluster has only database 0; unset REDIS_DB (or the URL's /db)"
    )
    try:
        cluster_enabled = str(_first_contact(lambda: probe.info("cluster"), settings).get("cluster_enabled", 0)) == "1"
    except redis.ResponseError as exc:
        probe.close()
        if "SELECT is not allowed in cluster mode" in str(exc):  # the connection's SELECT <db> failed first
            raise no_database from None
        raise
    except BaseException:
        probe.close()
        raise
    if not cluster_enabled:
        return probe, SINGLE
    probe.close()
    if settings.redis_db:
        raise no_database
    if settings.redis_url.startswith("unix://"):
        raise ConfigurationError("REDIS_URL is a unix socket of a Cluster node: use redis://host:port of any node")
    retry = options.pop("retry")
    return RedisCluster.from_url(settings.redis_url, retry=retry, **options), CLUSTER


def _first_contact(call: Callable[[], T], settings: Settings) -> T:
    """`call()`, with a certificate Redis does not accept, or one we do not trust, or a database it does not
    have, as a ConfigurationError: waiting would not fix it."""
    try:
        return call()
    except redis.ResponseError as exc:  # the connection's SELECT <db> failed
        if "DB index is out of range" not in str(exc):
            raise
        raise ConfigurationError(
            f"REDIS_DB={settings.redis_db}: this Redis has fewer databases (its `databases` setting, 16 by default); "
            "use a lower REDIS_DB (or the URL's /db)"
        ) from None
    except redis.ConnectionError as exc:
        text = str(exc)
        if "certificate verify failed" in text or "CERTIFICATE_VERIFY_FAILED" in text:
            raise ConfigurationError(
                f"Redis's TLS certificate is not trusted ({text.rpartition('] ')[2] or text}): check "
                "REDIS_TLS_CA_FILE (the CA that signed the server's certificate) and the host name in REDIS_URL"
            ) from None
        if "alert certificate required" in text or "alert bad certificate" in text or "alert unknown ca" in text:
            raise ConfigurationError(
                "Redis refused our TLS client certificate (mutual TLS): set REDIS_TLS_CERT_FILE and "
                "REDIS_TLS_KEY_FILE to a certificate signed by a CA the server trusts"
            ) from None
        raise


def _client_options(settings: Settings) -> dict[str, Any]:
    """What every connection shares: timeouts, no silent re-sends, TLS when the URL is rediss://."""
    options: dict[str, Any] = dict(
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=10,
        health_check_interval=30,
        max_connections=settings.webhook_concurrency + 16,
        # No silent re-sends: an append re-sent after a timeout could store a message twice. Callers
        # decide instead (the API answers 503 and the client retries; the monitor backs off).
        retry=Retry(NoBackoff(), 0),
    )
    if settings.redis_url.startswith("rediss://"):
        options.update(settings.redis.tls_arguments())
        if settings.redis.tls_insecure:
            log.warning("REDIS_TLS_INSECURE=true: the Redis server's certificate is NOT verified")
    return options


def _sentinel_client(settings: Settings, options: dict[str, Any]) -> redis.Redis:
    """The primary that the Sentinels name; its pool asks them again after a failover or a refused write."""
    url = urlsplit(settings.redis_url)
    tls = {key: value for key, value in options.items() if key.startswith("ssl")}
    sentinel_kwargs: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 2, **tls}
    if tls:
        sentinel_kwargs["ssl"] = True
    if settings.redis.sentinel_password:
        sentinel_kwargs["password"] = settings.redis.sentinel_password
    sentinel = Sentinel(
        list(settings.redis.sentinels),
        sentinel_kwargs=sentinel_kwargs,
        password=unquote(url.password) if url.password else None,
        username=unquote(url.username) if url.username else None,
        db=settings.redis_db,
        ssl=bool(tls),
        **options,
    )
    return sentinel.master_for(settings.redis.sentinel_master)


def primaries(client: Client) -> list[redis.Redis]:
    """A plain client for each primary: for checks and settings that are per server."""
    if isinstance(client, RedisCluster):
        return [client.get_redis_connection(node) for node in client.get_primaries()]
    return [client]
