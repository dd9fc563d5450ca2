"""Redis options (datafy/config/redis.py): Sentinel, TLS, replicated acknowledgements and partitions, and one line
naming the variable when one is wrong."""

from __future__ import annotations

import pytest

from datafy.config import Settings
from datafy.errors import ConfigurationError


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
