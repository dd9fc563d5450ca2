"""What only real servers show: refusing bad settings at start-up, chunked bodies, raw header bytes."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devtools.processes import PROJECT_ROOT, child_pids, process_env, running, start_api, system
from devtools.receiver import Receiver
from devtools.redis_server import RedisServer
from tests.support.env import TEST_ENV

CONFIG_ERROR_SECONDS = 20  # gunicorn would otherwise restart failing workers forever


def run_until_exit(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=PROJECT_ROOT, env=process_env(env), capture_output=True, text=True, timeout=CONFIG_ERROR_SECONDS
    )


def test_a_bad_setting_stops_the_api_with_one_line_naming_it(env: dict[str, str]) -> None:
    env["DEFAULT_TTL"] = "abc"
    result = run_until_exit([sys.executable, "-m", "gunicorn", "api:app", "--bind", "127.0.0.1:0"], env)
    assert result.returncode != 0
    assert "configuration error: DEFAULT_TTL='abc' is not a valid number" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_api_refuses_to_start_open_to_the_world(env: dict[str, str], tmp_path: Path) -> None:
    """Regression: ingest was open by default; anyone who found the URL could write to any chat."""
    del env["INGEST_AUTH"]
    result = run_until_exit([sys.executable, "-m", "gunicorn", "api:app", "--bind", "127.0.0.1:0"], env)
    assert result.returncode != 0
    [line] = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert "API_KEY is not set" in line and "INGEST_AUTH=off" in line
    env["API_KEY"] = "k1,k2"
    with running(api := start_api(env, tmp_path)):
        url = f"{api.extra['url']}/api/message"
        assert requests.post(url, json={"user": "u", "message": "oi"}, timeout=5).status_code == 401
        assert requests.post(url, json={"user": "u", "message": "oi"}, headers={"X-API-Key": "k2"}, timeout=5).ok


def test_a_bad_setting_stops_the_monitor_with_exit_code_2(env: dict[str, str]) -> None:
    env["WEBHOOK_URL"] = ""
    result = run_until_exit([sys.executable, "monitor.py"], env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: WEBHOOK_URL is required: the monitor has nowhere to deliver batches"
    ]
    env.update(WEBHOOK_URL="http://127.0.0.1:9/x", MAX_TTL="1e12")
    result = run_until_exit([sys.executable, "monitor.py"], env)
    assert result.returncode == 2 and "configuration error: MAX_TTL='1e12' must be a number between" in result.stderr


def test_another_partition_count_stops_api_and_monitor_with_one_line(env: dict[str, str], redis_client) -> None:
    redis_client.set("datafy:partitions", 16)  # as the first start left it
    env["REDIS_PARTITIONS"] = "32"
    for command in (["monitor.py"], ["-m", "gunicorn", "api:app", "--bind", "127.0.0.1:0"]):
        result = run_until_exit([sys.executable, *command], env)
        assert result.returncode != 0
        [line] = [line for line in result.stderr.splitlines() if "configuration error" in line]
        assert "REDIS_PARTITIONS=32 but this Redis holds 16 partitions" in line and "REDIS_PARTITIONS=16" in line
        assert "Traceback" not in result.stderr


ENTRY_POINTS = [["monitor.py"], ["-m", "gunicorn", "api:app", "--bind", "127.0.0.1:0"]]


@pytest.mark.parametrize("command", ENTRY_POINTS, ids=["monitor", "api"])
def test_a_redis_address_that_cannot_be_stops_start_up_with_one_line(command: list[str]) -> None:
    """Regression: REDIS_PORT=70000 and a port that is not a number crashed the monitor with a traceback."""
    env = {**TEST_ENV, "API_KEY": "ingest-key", "REDIS_PORT": "70000"}
    result = run_until_exit([sys.executable, *command], env)
    assert (result.returncode, result.stderr.splitlines()) == (
        2, ["configuration error: REDIS_PORT='70000' must be a number between 1 and 65535"])  # fmt: skip
    del env["REDIS_PORT"]
    result = run_until_exit([sys.executable, *command], {**env, "REDIS_URL": "redis://localhost:abc/0"})
    assert (result.returncode, result.stderr.splitlines()) == (
        2, ["configuration error: REDIS_URL names a port that is not a number between 1 and 65535"])  # fmt: skip


@pytest.mark.parametrize("command", ENTRY_POINTS, ids=["monitor", "api"])
def test_a_database_the_server_does_not_have_stops_start_up_with_one_line(
    command: list[str], redis_server: RedisServer
) -> None:
    """Regression: a database past the server's `databases` (16) crashed both with a traceback at first contact."""
    env = {**TEST_ENV, "API_KEY": "ingest-key", "REDIS_URL": redis_server.url.removesuffix("/0") + "/99"}
    result = run_until_exit([sys.executable, *command], env)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("configuration error: REDIS_DB=99: this Redis has fewer databases")


def chunks(data: bytes, size: int = 512) -> Iterator[bytes]:
    """A body requests sends with Transfer-Encoding: chunked (no Content-Length)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("nice", ["", "0", "15"])
def test_api_nice_lowers_the_workers_priority_only(env: dict[str, str], tmp_path: Path, nice: str) -> None:
    """API_NICE (default 19) applies to the workers; the master keeps its priority, to handle signals at once."""
    env["API_NICE"] = nice
    with running(api := start_api(env, tmp_path)):
        master = api.process.pid
        # The API answers once one worker is up; another may be just forked, before its post_fork hook ran.
        deadline = time.monotonic() + 10
        while {niceness(pid) for pid in child_pids(master)} != {int(nice or 19)} and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = child_pids(master)
        assert workers and {niceness(pid) for pid in workers} == {int(nice or 19)}
        assert niceness(master) == niceness(os.getpid())


def niceness(pid: int) -> int:
    """The nice value of a process, from /proc/<pid>/stat (its 19th field)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_chunked_bodies_are_held_to_max_body_bytes(env: dict[str, str], tmp_path: Path) -> None:
    env["MAX_BODY_BYTES"] = "2048"
    with running(api := start_api(env, tmp_path)):
        url, headers = f"{api.extra['url']}/api/message", {"Content-Type": "application/json"}
        small = b'{"user": "chunked", "message": "oi"}'
        assert requests.post(url, data=chunks(small, 8), headers=headers, timeout=5).status_code == 200
        big = b'{"user": "chunked", "message": "' + b"x" * 4096 + b'"}'
        reply = requests.post(url, data=chunks(big), headers=headers, timeout=5)
        assert reply.status_code == 413 and reply.json()["error"]["code"] == "body_too_large"


def test_a_non_ascii_admin_key_works_from_curl_and_from_python(env: dict[str, str], tmp_path: Path) -> None:
    env["ADMIN_API_KEY"] = "sécret"
    with running(api := start_api(env, tmp_path)):
        url = f"{api.extra['url']}/api/chats"
        assert requests.get(url, headers={"X-API-Key": "sécret".encode()}, timeout=5).status_code == 200  # as curl
        assert requests.get(url, headers={"X-API-Key": "sécret"}, timeout=5).status_code == 200  # latin-1 bytes
        assert requests.get(url, headers={"X-API-Key": "secret"}, timeout=5).status_code == 401


def test_an_oversized_body_gets_the_413_json_not_a_broken_pipe(env: dict[str, str], tmp_path: Path) -> None:
    """Regression: a 5 MB body from a client still writing got a broken pipe instead of the 413 reply."""
    with running(api := start_api(env, tmp_path)):
        host, port = api.extra["url"].removeprefix("http://").split(":")
        body = b'{"user": "big", "message": "' + b"x" * (5 * 1024 * 1024) + b'"}'
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("POST", "/api/message", body=body, headers={"Content-Type": "application/json"})
        reply = connection.getresponse()
        assert reply.status == 413
        assert json.loads(reply.read())["error"]["code"] == "body_too_large"
        connection.close()


def test_a_unix_socket_url_with_a_database_works_end_to_end(
    env: dict[str, str], redis_server: RedisServer, receiver: Receiver, tmp_path: Path
) -> None:
    """Regression: unix:// URLs always failed (the socket path read as a database number), and ?db= was ignored
    by the expiry subscription."""
    env.update(REDIS_URL=f"unix://{redis_server.socket_path}?db=3", WEBHOOK_URL=receiver.url)
    with system(env, tmp_path) as (api, monitor):
        assert "subscribed to __keyevent@3__:expired" in monitor.log()
        reply = requests.post(f"{api.extra['url']}/api/message", json={"user": "sock", "message": "oi", "ttl": 0.2},
                              timeout=5)  # fmt: skip
        assert reply.status_code == 200
        assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=10)
    assert receiver.delivered[0]["messages"] == ["oi"]
