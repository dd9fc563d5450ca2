"""Settings: defaults, conversions, and one clear line naming the variable when a value is wrong."""

from __future__ import annotations

import pytest

from datafy.config import Settings, normalize_keyword, parse_duration
from datafy.errors import ConfigurationError


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


def test_a_lease_must_outlive_the_whole_post() -> None:
    """Regression: 16 vs 15 was accepted, yet a lease must cover connect + WEBHOOK_TIMEOUT + the time to start."""
    with pytest.raises(ConfigurationError, match=r"at least WEBHOOK_TIMEOUT \(15\) \+ 3"):
        Settings.from_env({"DELIVERY_VISIBILITY_TIMEOUT": "16", "WEBHOOK_TIMEOUT": "15"})
    assert Settings.from_env({"DELIVERY_VISIBILITY_TIMEOUT": "18", "WEBHOOK_TIMEOUT": "15"})


def test_sentinels_tls_replicated_acks_and_partitions(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    s = Settings.from_env({"REDIS_SENTINELS": "s1:26379, [::1]:26380", "REDIS_SENTINEL_MASTER": "bots"})
    assert s.redis.sentinels == (("s1", 26379), ("::1", 26380)) and s.redis.sentinel_master == "bots"
    s = Settings.from_env({"REDIS_HOST": "r", "REDIS_TLS_CA_FILE": str(ca), "REDIS_PARTITIONS": "64"})
    assert s.redis_url == "rediss://r:6379/0" and s.redis.partitions == 64
    assert s.redis.tls_arguments() == {"ssl_cert_reqs": "required", "ssl_check_hostname": True, "ssl_ca_certs": str(ca)}
    insecure = Settings.from_env({"REDIS_URL": "rediss://r:6379", "REDIS_TLS_INSECURE": "true"}).redis
    assert insecure.tls_arguments()["ssl_cert_reqs"] == "none"
    s = Settings.from_env({"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "250"})
    assert (s.redis.wait_replicas, s.redis.wait_timeout_ms) == (1, 250) and Settings().redis.partitions == 16


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REDIS_SENTINELS": "nohost"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "h:99999"}, "REDIS_SENTINELS"),
        ({"REDIS_TLS_CA_FILE": "/no/such/ca.pem"}, "REDIS_TLS_CA_FILE"),
        ({"REDIS_URL": "redis://r:6379", "REDIS_TLS_INSECURE": "true"}, "rediss://"),
        ({"REDIS_TLS_CERT_FILE": __file__, "REDIS_URL": "rediss://r"}, "REDIS_TLS_KEY_FILE"),
        ({"REDIS_PARTITIONS": "0"}, "REDIS_PARTITIONS"),
        ({"REDIS_WAIT_REPLICAS": "-1"}, "REDIS_WAIT_REPLICAS"),
    ],
)
def test_bad_redis_topology_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(env)


def test_source_settings_default_off_and_bad_values_name_the_variable() -> None:
    settings = Settings.from_env({})
    assert (settings.evolution_from_me, settings.evolution_groups) == ("ignore", "ignore")
    assert settings.whatsapp_app_secret == settings.whatsapp_verify_token == settings.evolution_jwt_secret == ""
    chosen = Settings.from_env({"EVOLUTION_FROM_ME": "Discard", "EVOLUTION_GROUPS": " chat "})
    assert (chosen.evolution_from_me, chosen.evolution_groups) == ("discard", "chat")
    for name in ("EVOLUTION_FROM_ME", "EVOLUTION_GROUPS"):
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
