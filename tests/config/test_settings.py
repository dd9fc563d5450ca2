"""Settings (datafy/config/__init__.py): defaults, conversions, and one clear line naming the variable when a value
is wrong (the real entry points refusing to start: e2e/test_servers.py)."""

from __future__ import annotations

import time

import pytest
import redis

from datafy.config import Settings, normalize_keyword, parse_duration
from datafy.errors import ConfigurationError
from datafy.model import IncomingMessage
from datafy.store import Store
from datafy.store.servers import enable_expiry_events
from devtools.redis_server import RedisServer
from tests.support.env import TEST_ENV


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.redis_url == "redis://localhost:6379/0" and s.redis_prefix == "datafy"
    assert (s.default_ttl, s.max_ttl, s.webhook_concurrency, s.webhook_timeout) == (15, 86400, 32, 15)
    assert s.webhook_retry_schedule[:4] == (1, 2, 5, 10) and s.webhook_retry_schedule[-1] == 12 * 3600
    assert (s.max_batch_messages, s.dead_letter_max, s.flush_poll_interval) == (1000, 10000, 0.1)
    assert s.api_keys == s.admin_api_keys == () and s.ingest_auth


def test_host_port_password_build_the_url_and_redis_url_wins() -> None:
    s = Settings.from_env({"REDIS_HOST": "redis", "REDIS_PORT": "6380", "REDIS_PASSWORD": "p@ss:w/rd", "REDIS_DB": "2"})
    assert s.redis_url == "redis://:p%40ss%3Aw%2Frd@redis:6380/2" and s.redis_db == 2
    assert "p%40ss" not in s.redis_url_redacted and "***" in s.redis_url_redacted
    s = Settings.from_env({"REDIS_HOST": "ignored", "REDIS_URL": "redis://other:1/3"})
    assert s.redis_url == "redis://other:1/3" and s.redis_db == 3


def test_keys_are_comma_separated_and_admin_keys_never_fall_back() -> None:
    s = Settings.from_env({"API_KEY": " a, b ,", "INGEST_AUTH": "on"})
    assert s.api_keys == ("a", "b") and s.admin_api_keys == ()
    assert not Settings.from_env({"INGEST_AUTH": "off"}).ingest_auth


def test_durations_schedules_and_keywords() -> None:
    assert parse_duration("250ms") == 0.25 and parse_duration("5m") == 300 and parse_duration("2") == 2
    assert Settings.from_env({"WEBHOOK_RETRY_SCHEDULE": "1s, 2m,3h"}).webhook_retry_schedule == (1, 120, 10800)
    assert Settings.from_env({"DEDUPE_WINDOW": "10m"}).dedupe_window == 600
    assert Settings.from_env({"FLUSH_KEYWORDS": "Pronto, É isso ,"}).flush_keywords == {"pronto", "e isso"}
    assert normalize_keyword("  ÓTIMO ") == "otimo"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DEFAULT_TTL": "abc"}, "DEFAULT_TTL"),
        ({"DEFAULT_TTL": "0"}, "DEFAULT_TTL"),
        ({"MAX_TTL": "nan"}, "MAX_TTL"),
        ({"REDIS_PORT": "http"}, "REDIS_PORT"),
        ({"WEBHOOK_CONCURRENCY": "0"}, "WEBHOOK_CONCURRENCY"),
        ({"WEBHOOK_URL": "ftp://x"}, "WEBHOOK_URL"),
        ({"WEBHOOK_URL": "http://host:99999/hook"}, "WEBHOOK_URL"),
        ({"WEBHOOK_URL": "https:///no-host"}, "WEBHOOK_URL"),
        ({"MAX_TTL": "1e12"}, "MAX_TTL"),
        ({"FLUSH_POLL_INTERVAL": "60"}, "FLUSH_POLL_INTERVAL"),
        ({"REDIS_URL": "mysql://x"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://x/abc"}, "REDIS_URL"),
        ({"REDIS_PREFIX": "a{b}"}, "REDIS_PREFIX"),
        ({"WEBHOOK_RETRY_SCHEDULE": "5s,soon"}, "WEBHOOK_RETRY_SCHEDULE"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"DEFAULT_TTL": "100", "MAX_TTL": "50"}, "DEFAULT_TTL"),
        ({"DELIVERY_VISIBILITY_TIMEOUT": "10", "WEBHOOK_TIMEOUT": "15"}, "DELIVERY_VISIBILITY_TIMEOUT"),
        ({"METRICS_PORT": "prometheus"}, "METRICS_PORT"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT"),
        ({"PROMETHEUS_MULTIPROC_DIR": "/proc/self/no-such-dir"}, "PROMETHEUS_MULTIPROC_DIR"),
        # Regression: these were accepted, and the monitor died on them with a traceback (or ran on a wrong value).
        ({"REDIS_PORT": "70000"}, "REDIS_PORT"),
        ({"REDIS_URL": "redis://localhost:abc/0"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://localhost:0/0"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://localhost:6379/0?db=3"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://localhost:6379?db=-1"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://localhost:6379/0?socket_timeout=soon"}, "REDIS_URL"),
        ({"REDIS_HOST": "redis:6379"}, "REDIS_HOST"),
        ({"API_KEY": "ingest", "ADMIN_API_KEY": "ingest"}, "ADMIN_API_KEY"),
        ({"API_KEY": "old,new", "ADMIN_API_KEY": "admin, new"}, "ADMIN_API_KEY"),
        ({"MAX_MESSAGE_BYTES": "5000", "MAX_BATCH_BYTES": "4096"}, "MAX_MESSAGE_BYTES"),
        ({"MAX_MESSAGE_BYTES": "8000000"}, "MAX_MESSAGE_BYTES"),
        ({"WEBHOOK_RETRY_SCHEDULE": "0s"}, "WEBHOOK_RETRY_SCHEDULE"),
        ({"WEBHOOK_RETRY_SCHEDULE": "1s,0,5s"}, "WEBHOOK_RETRY_SCHEDULE"),
        ({"WEBHOOK_RETRY_SCHEDULE": " , "}, "WEBHOOK_RETRY_SCHEDULE"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        Settings.from_env(env)
    assert variable in str(error.value) and "\n" not in str(error.value)


def test_unix_socket_urls_and_db_in_the_query() -> None:
    """Regression: a unix:// socket path was read as a database number; ?db= was ignored."""
    assert Settings.from_env({"REDIS_URL": "unix:///var/run/redis/redis.sock"}).redis_db == 0
    assert Settings.from_env({"REDIS_URL": "unix:///var/run/redis/redis.sock?db=3"}).redis_db == 3
    assert Settings.from_env({"REDIS_URL": "redis://h:6379?db=3"}).redis_db == 3
    assert Settings.from_env({"REDIS_URL": "redis://h:6379/2"}).redis_db == 2
    with pytest.raises(ConfigurationError, match="REDIS_URL names a database 'x'"):
        Settings.from_env({"REDIS_URL": "redis://h:6379?db=x"})


def test_a_key_shared_by_ingest_and_admin_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigurationError, match="ADMIN_API_KEY shares a key with API_KEY") as caught:
        Settings.from_env({"API_KEY": "k-ingest-1,k-shared-2", "ADMIN_API_KEY": "k-shared-2"})
    assert "k-shared-2" not in str(caught.value) and "k-ingest-1" not in str(caught.value)
    assert Settings.from_env({"API_KEY": "a,b", "ADMIN_API_KEY": "c"}).admin_api_keys == ("c",)


def test_the_message_cap_follows_a_smaller_batch_cap() -> None:
    """One message may fill a batch, never overflow it: unset, MAX_MESSAGE_BYTES is 64 KiB or MAX_BATCH_BYTES."""
    assert Settings.from_env({}).max_message_bytes == 64 * 1024
    assert Settings.from_env({"MAX_BATCH_BYTES": "2048"}).max_message_bytes == 2048
    both = Settings.from_env({"MAX_BATCH_BYTES": "4096", "MAX_MESSAGE_BYTES": "4096"})
    assert (both.max_message_bytes, both.max_batch_bytes) == (4096, 4096)


def test_a_retry_schedule_waits_before_every_retry() -> None:
    """Regression: WEBHOOK_RETRY_SCHEDULE=0s was accepted: a failing receiver would be retried at once, in a loop."""
    with pytest.raises(ConfigurationError, match="WEBHOOK_RETRY_SCHEDULE='0s' must list waits of at least 1ms"):
        Settings.from_env({"WEBHOOK_RETRY_SCHEDULE": "0s"})
    assert Settings.from_env({"WEBHOOK_RETRY_SCHEDULE": "1ms,2s,"}).webhook_retry_schedule == (0.001, 2)


def test_every_client_and_the_expired_events_use_the_database_the_url_names(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """Regression: redis://h/0?db=3 was read as database 0 by datafy (its expired-event channel) and as 3 by
    redis-py (the data), so the monitor listened for timers on a database where none expire."""
    base = redis_server.url.removesuffix("/0")
    with pytest.raises(ConfigurationError, match=r"REDIS_URL names database 0 in its path and 3 in \?db="):
        Settings.from_env({**TEST_ENV, "REDIS_URL": f"{base}/0?db=3"})
    for url in (f"{base}?db=3", f"{base}/3?db=3", f"{base}/3"):
        store = Store(Settings.from_env({**TEST_ENV, "REDIS_URL": url}))
        assert all(enable_expiry_events(server) for server in store.connection.primaries())
        subscription = store.expiry_subscription()
        try:
            store.buffer.append(IncomingMessage(user="alice", message="oi", ttl_ms=50))
            assert redis.Redis.from_url(f"{base}/3").exists(store.keys.user("alice").buffer)  # the data is in db 3
            deadline, users = time.monotonic() + 3, []
            while time.monotonic() < deadline and "alice" not in users:
                users.append(subscription.next_user(timeout=0.2))
            assert "alice" in users, url  # and so is the channel that hears its timer expire
        finally:
            subscription.close()
            store.close()
        redis_client.flushall()


def test_a_lease_must_outlive_the_whole_post() -> None:
    """Regression: 16 vs 15 was accepted, yet a lease must cover connect + WEBHOOK_TIMEOUT + the time to start."""
    with pytest.raises(ConfigurationError, match=r"at least WEBHOOK_TIMEOUT \(15\) \+ 3"):
        Settings.from_env({"DELIVERY_VISIBILITY_TIMEOUT": "16", "WEBHOOK_TIMEOUT": "15"})
    assert Settings.from_env({"DELIVERY_VISIBILITY_TIMEOUT": "18", "WEBHOOK_TIMEOUT": "15"})


def test_source_settings_default_off_and_bad_values_name_the_variable() -> None:
    settings = Settings.from_env({})
    assert (settings.evolution_from_me, settings.group_messages) == ("ignore", "ignore")
    assert settings.whatsapp_app_secret == settings.whatsapp_verify_token == settings.evolution_jwt_secret == ""
    chosen = Settings.from_env({"EVOLUTION_FROM_ME": "Discard", "GROUP_MESSAGES": " chat "})
    assert (chosen.evolution_from_me, chosen.group_messages) == ("discard", "chat")
    assert Settings.from_env({"EVOLUTION_GROUPS": "chat"}).group_messages == "chat"  # the old name still works
    assert Settings.from_env({"EVOLUTION_GROUPS": "chat", "GROUP_MESSAGES": "ignore"}).group_messages == "ignore"
    for name in ("EVOLUTION_FROM_ME", "GROUP_MESSAGES", "EVOLUTION_GROUPS"):
        with pytest.raises(ConfigurationError, match=f"^{name}="):
            Settings.from_env({name: "drop"})
    with pytest.raises(ConfigurationError, match="EVOLUTION_JWT_SECRET must be at least 32") as caught:
        Settings.from_env({"EVOLUTION_JWT_SECRET": "short-secret"})
    assert "short-secret" not in str(caught.value)  # a secret is never repeated in an error
    assert Settings.from_env({"EVOLUTION_JWT_SECRET": "x" * 32}).evolution_jwt_secret == "x" * 32


def test_metrics_settings(tmp_path) -> None:
    default = Settings.from_env({})
    assert (default.metrics_port, default.metrics_host, default.metrics_tokens, default.metrics_dir) == (
        9464, "0.0.0.0", (), "")  # fmt: skip
    directory = tmp_path / "made" / "here"
    settings = Settings.from_env({"METRICS_PORT": "0", "HOST": "127.0.0.1", "METRICS_TOKEN": "a, b",
                                  "PROMETHEUS_MULTIPROC_DIR": str(directory)})  # fmt: skip
    assert (settings.metrics_port, settings.metrics_host, settings.metrics_tokens) == (0, "127.0.0.1", ("a", "b"))
    assert settings.metrics_dir == str(directory) and directory.is_dir()
