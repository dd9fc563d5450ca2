"""The whole system over TLS: rediss:// with our CA, mutual TLS, and one clear line for a CA we do not trust."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from devtools.cluster import LocalCluster
from devtools.processes import PROJECT_ROOT, process_env, system
from devtools.receiver import Receiver
from devtools.tls import TlsFiles, TlsRedisServer, make_certificates
from tests.support.env import TEST_ENV


@contextmanager
def tls_server(certs: TlsFiles, auth_clients: str = "optional") -> Iterator[TlsRedisServer]:
    server = TlsRedisServer(certs, auth_clients=auth_clients).start()
    try:
        yield server
    finally:
        server.cleanup()


def deliver_one(env: dict[str, str], receiver: Receiver, tmp_path: Path, user: str) -> None:
    with system(env, tmp_path) as (api, _monitor):
        reply = requests.post(f"{api.extra['url']}/api/message", json={"user": user, "message": "oi", "ttl": 0.2})
        assert reply.status_code == 200, reply.text
        assert receiver.wait_for(lambda r: any(b["user"] == user for b in r.delivered), timeout=15)


def test_the_system_runs_over_tls_and_mutual_tls(receiver: Receiver, tmp_path: Path) -> None:
    certs = make_certificates(str(tmp_path / "certs"))
    with tls_server(certs) as server:
        env = {**TEST_ENV, "WEBHOOK_URL": receiver.url, "REDIS_URL": server.url, "REDIS_TLS_CA_FILE": certs.ca_cert}
        deliver_one(env, receiver, tmp_path, "tls")
    with tls_server(certs, auth_clients="yes") as server:
        env.update(REDIS_URL=server.url, REDIS_TLS_CERT_FILE=certs.client_cert, REDIS_TLS_KEY_FILE=certs.client_key)
        deliver_one(env, receiver, tmp_path, "mutual-tls")


def test_the_system_runs_on_a_cluster_over_tls(receiver: Receiver, tmp_path: Path) -> None:
    """Clients, the cluster bus and replication all over TLS; the cluster client follows rediss:// to every node."""
    certs = make_certificates(str(tmp_path / "certs"))
    with LocalCluster(primaries=3, certs=certs) as cluster:
        env = {**TEST_ENV, "WEBHOOK_URL": receiver.url, "REDIS_URL": cluster.url, "REDIS_TLS_CA_FILE": certs.ca_cert}
        with system(env, tmp_path) as (api, monitor):
            for user in range(12):  # spread over the partitions, and so over the primaries
                reply = requests.post(f"{api.extra['url']}/api/message", json={"user": f"c{user}", "message": "oi",
                                                                               "ttl": 0.2}, timeout=10)  # fmt: skip
                assert reply.status_code == 200, reply.text
            assert receiver.wait_for(lambda r: len({b["user"] for b in r.delivered}) == 12, timeout=20)
            assert "redis mode=cluster" in monitor.log() and "redis mode=cluster" in api.log()


@pytest.mark.parametrize("command", [["monitor.py"], ["-m", "gunicorn", "api:app", "--bind", "127.0.0.1:0"]])
def test_a_ca_we_do_not_trust_stops_start_up_with_one_line(tmp_path: Path, command: list[str]) -> None:
    certs, stranger = make_certificates(str(tmp_path / "certs")), make_certificates(str(tmp_path / "other"))
    with tls_server(certs) as server:
        env = {**TEST_ENV, "REDIS_URL": server.url, "REDIS_TLS_CA_FILE": stranger.ca_cert}
        done = subprocess.run([sys.executable, *command], cwd=PROJECT_ROOT, env=process_env(env),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if "certificate is not trusted" in line]
    assert len(lines) == 1 and "REDIS_TLS_CA_FILE" in lines[0], done.stderr[-2000:]
