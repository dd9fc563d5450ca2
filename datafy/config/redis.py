"""How to reach Redis beyond its URL: Sentinel, TLS files, replicated acknowledgements and the partition count.

Cluster needs no setting: the store asks the server whether it is one (see datafy/store/topology.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datafy.config.env import EnvReader, parse_switch, readable_file
from datafy.errors import ConfigurationError

DEFAULT_PARTITIONS = 16
MAX_PARTITIONS = 1024


@dataclass(frozen=True)
class RedisOptions:
    """The Redis settings that are not part of REDIS_URL."""

    sentinels: tuple[tuple[str, int], ...] = ()  # set: ask these Sentinels where the primary is
    sentinel_master: str = "mymaster"
    sentinel_password: str = ""
    tls_ca_file: str = ""
    tls_cert_file: str = ""  # with tls_key_file: mutual TLS
    tls_key_file: str = ""
    tls_insecure: bool = False  # only by an explicit REDIS_TLS_INSECURE=true
    wait_replicas: int = 0  # > 0: an append is acknowledged only once this many replicas hold it
    wait_timeout_ms: int = 1000
    partitions: int = DEFAULT_PARTITIONS

    @property
    def wants_tls(self) -> bool:
        """True when a TLS variable is set (a URL built from REDIS_HOST then uses rediss://)."""
        return bool(self.tls_ca_file or self.tls_cert_file or self.tls_insecure)

    def tls_arguments(self) -> dict[str, Any]:
        """redis-py's ssl_* arguments for a rediss:// connection: verified against the CA unless insecure."""
        arguments: dict[str, Any] = {"ssl_cert_reqs": "none" if self.tls_insecure else "required"}
        arguments["ssl_check_hostname"] = not self.tls_insecure
        if self.tls_ca_file:
            arguments["ssl_ca_certs"] = self.tls_ca_file
        if self.tls_cert_file:
            arguments["ssl_certfile"] = self.tls_cert_file
            arguments["ssl_keyfile"] = self.tls_key_file
        return arguments

    @classmethod
    def from_env(cls, env: Mapping[str, str], reader: EnvReader) -> RedisOptions:
        """Read and check the REDIS_SENTINEL*, REDIS_TLS_*, REDIS_WAIT_* and REDIS_PARTITIONS variables."""
        options = cls(
            sentinels=_parse_sentinels(env.get("REDIS_SENTINELS", "")),
            sentinel_master=env.get("REDIS_SENTINEL_MASTER", "").strip() or "mymaster",
            sentinel_password=env.get("REDIS_SENTINEL_PASSWORD", ""),
            tls_ca_file=reader.get("REDIS_TLS_CA_FILE", readable_file, ""),
            tls_cert_file=reader.get("REDIS_TLS_CERT_FILE", readable_file, ""),
            tls_key_file=reader.get("REDIS_TLS_KEY_FILE", readable_file, ""),
            tls_insecure=reader.get("REDIS_TLS_INSECURE", parse_switch, False),
            wait_replicas=reader.get("REDIS_WAIT_REPLICAS", int, 0, minimum=0, maximum=100),
            wait_timeout_ms=reader.get("REDIS_WAIT_TIMEOUT_MS", int, 1000, minimum=1, maximum=60_000),
            partitions=reader.get("REDIS_PARTITIONS", int, DEFAULT_PARTITIONS, minimum=1, maximum=MAX_PARTITIONS),
        )
        if bool(options.tls_cert_file) != bool(options.tls_key_file):
            raise ConfigurationError("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together (mutual TLS needs both)")
        return options


def _parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    """'host:port,host:port' into (host, port) pairs."""
    sentinels = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(f"REDIS_SENTINELS: {item!r} is not host:port (e.g. sentinel-1:26379)")
        sentinels.append((host.strip("[]"), int(port)))
    return tuple(sentinels)
