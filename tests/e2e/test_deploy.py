"""The deploy files: run the exact commands the Docker images run (no Docker engine needed), check compose and .env."""

from __future__ import annotations

import json
import os
import re
import runpy
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests
from dotenv import dotenv_values
from flask.testing import FlaskClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from datafy.config import Settings
from devtools.oracle import datafy_keys
from devtools.processes import Proc, free_port, process_env, running, start, wait_http, wait_log
from devtools.receiver import Receiver
from devtools.redis_server import PROJECT_ROOT, REDIS_CONF, find_server_binary

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERFILE_MONITOR = PROJECT_ROOT / "Dockerfile.monitor"
DOCKERFILE_REDIS = PROJECT_ROOT / "Dockerfile.redis"
COMPOSE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
GUNICORN_CONF = PROJECT_ROOT / "gunicorn.conf.py"
VENV_BIN = Path(sys.executable).parent
PASSWORD = "s3cret"
# The images run with no PYTHONPATH: imports must work from the workdir alone, as they do in /app.
IMAGE_ENV = {"PYTHONPATH": ""}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) for each instruction of a Dockerfile, line continuations joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [(kw.upper(), rest.strip()) for kw, _, rest in (ln.partition(" ") for ln in lines if ln and ln[0] != "#")]


def exec_form(arguments: str) -> list[str]:
    """A JSON exec-form command (`["prog", "arg"]`); shell form is refused, it would not get signals as PID 1."""
    argv = json.loads(arguments)
    assert isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv), arguments
    return argv


def final_cmd(dockerfile: Path) -> list[str]:
    """The command the image runs: its last CMD."""
    cmds = [rest for kw, rest in instructions(dockerfile) if kw == "CMD"]
    assert cmds, f"{dockerfile.name} has no CMD"
    return exec_form(cmds[-1])


def healthcheck_cmd(dockerfile: Path) -> list[str]:
    """The command of the image's last HEALTHCHECK."""
    checks = [rest for kw, rest in instructions(dockerfile) if kw == "HEALTHCHECK"]
    assert checks, f"{dockerfile.name} has no HEALTHCHECK"
    match = re.search(r"(?:^|\s)CMD\s+(\[.*\])\s*$", checks[-1])
    assert match, checks[-1]
    return exec_form(match.group(1))


def local_argv(argv: list[str]) -> list[str]:
    """The image's command with its program from this virtualenv (python3 -> sys.executable, gunicorn -> its script)."""
    if argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    program = VENV_BIN / argv[0]
    assert program.exists(), f"{argv[0]} is not installed in {VENV_BIN}"
    return [str(program), *argv[1:]]


def gunicorn_settings() -> dict[str, object]:
    """The values gunicorn.conf.py computes from the current environment (with ingest open: its refusal to start
    without API_KEY is tested with a real gunicorn in test_servers.py)."""
    saved = dict(os.environ)  # reading the file also points PROMETHEUS_MULTIPROC_DIR at a new directory
    os.environ["INGEST_AUTH"] = "off"
    try:
        values = runpy.run_path(str(GUNICORN_CONF))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if values["_metrics_path_made"]:
        shutil.rmtree(values["_metrics_path"], ignore_errors=True)
    return values


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


def compose_services(text: str) -> dict[str, str]:
    """Each service of docker-compose.yml and its block of text (two-space indentation, no YAML parser)."""
    section = re.search(r"^services:\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    assert section, "no top-level services:"
    parts = re.split(r"^  ([\w-]+):[ \t]*\n", section.group(1), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def variables_read(path: Path) -> set[str]:
    """The environment variables a Python file reads: `.get("NAME"`, `_env("NAME"`, `environ["NAME"]`, `getenv(`."""
    source = path.read_text()
    pattern = r"""(?:\.get|getenv|_env)\(\s*["']([A-Z][A-Z0-9_]*)["']|environ\[\s*["']([A-Z][A-Z0-9_]*)["']\]"""
    return {a or b for a, b in re.findall(pattern, source)}


def example_variables() -> list[str]:
    """The variables .env.example names, commented-out ones included."""
    return re.findall(r"^#?[ \t]*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M)


def test_compose_runs_the_three_images_behind_a_healthy_private_redis() -> None:
    text = COMPOSE.read_text()
    assert "\t" not in text
    services = {name: block for name, block in compose_services(text).items() if "profiles:" not in block}
    assert list(services) == ["redis", "api", "monitor"], "the stack without profiles"
    dockerfiles = {name: re.search(r"dockerfile: (\S+)", block).group(1) for name, block in services.items()}
    assert dockerfiles == {"redis": "Dockerfile.redis", "api": "Dockerfile", "monitor": "Dockerfile.monitor"}
    known = variables_read(PROJECT_ROOT / "datafy" / "config.py") | variables_read(GUNICORN_CONF)
    for name, block in services.items():
        assert "restart: unless-stopped" in block, name
        assert "REDIS_PASSWORD: ${REDIS_PASSWORD:-}" in block, name
        healthcheck_cmd(PROJECT_ROOT / dockerfiles[name])  # the images' own HEALTHCHECKs
        if name != "redis":
            assert re.search(r"depends_on:\n\s+redis:\n\s+condition: service_healthy", block), name
            assert "REDIS_HOST: redis" in block, name
        environment = set(re.findall(r"^ {6}([A-Z][A-Z0-9_]*):", block, re.M))
        assert environment <= known, f"{name} sets variables nothing reads: {environment - known}"
    assert "ports:" not in services["redis"], "redis must not be published"
    assert "redis-data:/data" in services["redis"] and re.search(r"^volumes:\n  redis-data:", text, re.M)
    assert re.search(r"""- ["']?\$\{PORT:-5000\}:5000["']?$""", services["api"], re.M)
    assert "WEBHOOK_URL: ${WEBHOOK_URL:?" in services["monitor"]
    assert "stop_grace_period: 30s" in services["monitor"]


def test_env_example_lists_exactly_the_variables_the_code_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    names = example_variables()
    assert len(names) == len(set(names)), "a variable is listed twice"
    config_vars = variables_read(PROJECT_ROOT / "datafy" / "config" / "__init__.py") | variables_read(
        PROJECT_ROOT / "datafy" / "config" / "redis.py"
    )
    gunicorn_vars = variables_read(GUNICORN_CONF)
    assert {"REDIS_URL", "WEBHOOK_URL", "SHUTDOWN_GRACE"} <= config_vars and {"PORT", "HOST"} <= gunicorn_vars
    assert set(names) - config_vars - gunicorn_vars == set(), "listed but never read"
    assert config_vars - set(names) == set(), "read by config.py but missing from .env.example"
    assert gunicorn_vars - set(names) == set(), "read by gunicorn.conf.py but missing from .env.example"

    # Every value shown is the default: copying the file unchanged changes nothing.
    values = {k: v for k, v in dotenv_values(ENV_EXAMPLE).items() if v is not None}
    assert "REDIS_URL" not in values, "REDIS_URL must stay commented out: it wins over REDIS_HOST"
    assert Settings.from_env(values) == Settings.from_env({})
    for name in gunicorn_vars:
        monkeypatch.delenv(name, raising=False)
    defaults = gunicorn_settings()
    for name in gunicorn_vars & set(values):
        monkeypatch.setenv(name, values[name])
    from_example = gunicorn_settings()
    for setting in ("bind", "workers", "threads", "accesslog", "graceful_timeout"):
        assert from_example[setting] == defaults[setting], setting
