"""The images' commands, run for real: the exact commands the Dockerfiles run, and their healthchecks (no Docker
engine needed; the files alone are checked in tests/test_deploy_files.py)."""

from __future__ import annotations

import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests
from flask.testing import FlaskClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from datafy.config import Settings
from devtools.oracle import datafy_keys
from devtools.processes import Proc, free_port, process_env, running, start, wait_http, wait_log
from devtools.receiver import Receiver
from devtools.redis_server import REDIS_CONF, find_server_binary
from tests.support.deploy import (
    DOCKERFILE,
    DOCKERFILE_MONITOR,
    DOCKERFILE_REDIS,
    final_cmd,
    gunicorn_settings,
    healthcheck_cmd,
)

VENV_BIN = Path(sys.executable).parent
PASSWORD = "s3cret"
# The images run with no PYTHONPATH: imports must work from the workdir alone, as they do in /app.
IMAGE_ENV = {"PYTHONPATH": ""}


def local_argv(argv: list[str]) -> list[str]:
    """The image's command with its program from this virtualenv (python3 -> sys.executable, gunicorn -> its script)."""
    if argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    program = VENV_BIN / argv[0]
    assert program.exists(), f"{argv[0]} is not installed in {VENV_BIN}"
    return [str(program), *argv[1:]]


def wait_redis(proc: Proc, client: redis.Redis, timeout: float = 10.0) -> None:
    """Wait until `client` gets PONG (or fail with the server's log)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
            if proc.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{proc.name} did not answer PING:\n{proc.log()}") from None
            time.sleep(0.05)


def raw_ping(port: int) -> bytes:
    """PING over a bare socket, no AUTH: the server's first reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(1024)


def test_api_image_command_serves_messages_and_stops_gracefully(
    env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    cmd = final_cmd(DOCKERFILE)
    assert cmd == ["gunicorn", "api:app"]
    port = free_port()
    env.update(IMAGE_ENV, PORT=str(port), HOST="127.0.0.1", WEB_CONCURRENCY="2")
    url = f"http://127.0.0.1:{port}"
    api = start("api-image", local_argv(cmd), env, tmp_path)
    with running(api):
        wait_http(api, f"{url}/health")
        health = requests.get(f"{url}/health", timeout=5)
        assert health.status_code == 200 and health.headers["Content-Type"] == "application/json"
        assert health.json()["status"] == "ok"

        reply = requests.post(
            f"{url}/api/message", json={"user": "5511999999999", "message": "oi", "ttl": 60}, timeout=5
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["success"] is True and reply.json()["buffered"] == 1
        assert datafy_keys(redis_client), "the message did not reach the REDIS_URL given to the process"

        healthcheck = local_argv(healthcheck_cmd(DOCKERFILE))
        check = subprocess.run(healthcheck, env=process_env({"PORT": str(port)}), capture_output=True, timeout=10)
        assert check.returncode == 0, check.stderr.decode()

        api.signal(signal.SIGTERM)
        assert api.process.wait(timeout=float(gunicorn_settings()["graceful_timeout"])) == 0, api.log()

    check = subprocess.run(healthcheck, env=process_env({"PORT": str(port)}), capture_output=True, timeout=10)
    assert check.returncode != 0, "the healthcheck passes with the API down"


def test_monitor_image_command_delivers_and_stops_on_sigterm(
    env: dict[str, str], receiver: Receiver, client: FlaskClient, tmp_path: Path
) -> None:
    cmd = final_cmd(DOCKERFILE_MONITOR)
    assert cmd == ["python3", "monitor.py"]
    env.update(IMAGE_ENV, WEBHOOK_URL=receiver.url)
    monitor = start("monitor-image", local_argv(cmd), env, tmp_path)
    with running(monitor):
        wait_log(monitor, "subscribed to")
        reply = client.post("/api/message", json={"user": "5511888888888", "message": "oi", "ttl": 0.2})
        assert reply.status_code == 200, reply.get_data(as_text=True)
        assert receiver.wait_for(lambda r: len(r.delivered) >= 1, timeout=15), monitor.log()
        assert receiver.delivered[0]["messages"] == ["oi"]

        healthcheck = local_argv(healthcheck_cmd(DOCKERFILE_MONITOR))
        check = subprocess.run(healthcheck, env=process_env(IMAGE_ENV), capture_output=True, timeout=10)
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()

        monitor.signal(signal.SIGTERM)
        assert monitor.process.wait(timeout=Settings().shutdown_grace + 5) == 0, monitor.log()

    check = subprocess.run(healthcheck, env=process_env(IMAGE_ENV), capture_output=True, timeout=10)
    assert check.returncode != 0, "the healthcheck passes with the monitor stopped"


def test_redis_image_command_requires_the_password_and_applies_redis_conf(tmp_path: Path) -> None:
    cmd = final_cmd(DOCKERFILE_REDIS)
    assert cmd[:2] == ["sh", "-c"] and len(cmd) == 3
    script = cmd[2]
    assert script.startswith("exec redis-server /usr/local/etc/redis/redis.conf "), script
    assert "--dir /data" in script and "--protected-mode no" in script
    binary = find_server_binary()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    script = script.replace("/usr/local/etc/redis/redis.conf", shlex.quote(str(REDIS_CONF)))
    script = script.replace("--dir /data", f"--dir {shlex.quote(str(data_dir))}")
    script = script.replace("exec redis-server", f"exec {shlex.quote(binary)}", 1)
    script += f" --port {port} --bind 127.0.0.1"
    server = start("redis-image", ["sh", "-c", script], {"REDIS_PASSWORD": PASSWORD}, tmp_path)
    with running(server):
        authed = redis.Redis(port=port, password=PASSWORD, decode_responses=True, socket_timeout=5)
        anonymous = redis.Redis(port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0))  # fail at once
        try:
            wait_redis(server, authed)
            assert raw_ping(port).startswith(b"-NOAUTH"), "the server answers without the password"
            with pytest.raises(redis.AuthenticationError):
                anonymous.ping()
            assert set("Ex") <= set(authed.config_get("notify-keyspace-events")["notify-keyspace-events"])
            assert authed.config_get("appendonly")["appendonly"] == "yes"
            assert authed.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
            assert authed.config_get("protected-mode")["protected-mode"] == "no"
            assert Path(authed.config_get("dir")["dir"]).resolve() == data_dir.resolve()
            authed.set("deploy-test", "kept")
        finally:
            authed.close()
            anonymous.close()

        cli = Path(binary).with_name(Path(binary).name.replace("-server", "-cli"))
        check = healthcheck_cmd(DOCKERFILE_REDIS)
        assert check[:2] == ["sh", "-c"] and "redis-cli" in check[2]
        check[2] = check[2].replace("redis-cli", f"{shlex.quote(str(cli))} -p {port}")
        for password, healthy in ((PASSWORD, True), ("wrong", False)):
            result = subprocess.run(
                check, env=process_env({"REDIS_PASSWORD": password}), capture_output=True, timeout=10
            )
            assert (result.returncode == 0) is healthy, (password, result.stdout, result.stderr)

        # `exec` made the server the process itself: SIGTERM by PID reaches it and it exits cleanly.
        assert server.stop() == 0, server.log()
    assert any((data_dir / "appendonlydir").iterdir()), "no append-only file in the --dir"
