"""Helpers shared by the benchmarks: machine facts, a Redis server, gunicorn with the production config."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from devtools.processes import child_pids, start, wait_http
from devtools.redis_server import RedisServer, free_port


def machine_facts(server: RedisServer | None = None) -> str:
    """One line about the machine, for the results."""
    cores = len(os.sched_getaffinity(0))
    facts = f"machine: {cores} cores, Python {platform.python_version()}, {platform.machine()}"
    if server is not None:
        info = redis.Redis.from_url(server.url).info("server")
        facts += (
            f", {'valkey ' + info['valkey_version'] if 'valkey_version' in info else 'redis ' + info['redis_version']}"
        )
    return facts


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A fresh Redis/Valkey with the project's redis.conf."""
    server = RedisServer().start()
    print(machine_facts(server), flush=True)
    try:
        yield server
    finally:
        server.cleanup()


@contextmanager
def start_gunicorn(target: str, env: dict[str, str], tmp: Path) -> Iterator[str]:
    """`gunicorn <target>` with gunicorn.conf.py as in production (workers sized to the cores)."""
    port = free_port()
    proc = start(f"gunicorn-{port}", [sys.executable, "-m", "gunicorn", target, "--bind", f"127.0.0.1:{port}"],
                 {"INGEST_AUTH": "off", **env, "LOG_LEVEL": "WARNING"}, tmp)  # fmt: skip  # a private bench
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(proc, f"{url}/health" if target == "api:app" else url, timeout=30, ok_statuses=(200, 404, 405))
        yield url
    finally:
        proc.stop()


@contextmanager
def fast_receiver(tmp: Path) -> Iterator[tuple[str, list[dict]]]:
    """bench/fast_receiver.py in its own process; yields (url, records) where records fill in on exit."""
    port = free_port()
    out = tmp / f"received-{port}.jsonl"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fast_receiver.py")), str(port), str(out)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    records: list[dict] = []
    try:
        yield f"http://127.0.0.1:{port}/webhook", records
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        records.extend(json.loads(line) for line in out.read_text().splitlines())


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of `values` (seconds in, milliseconds out)."""
    if not values:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": pick(0.50) * 1000, "p99": pick(0.99) * 1000, "max": ordered[-1] * 1000}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children that exited, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its live descendants (a monitor container's processes, say)."""
    return cpu_seconds(pid) + sum(tree_cpu_seconds(child) for child in child_pids(pid))


def gunicorn_pids(url: str) -> list[int]:
    """The master and workers of the gunicorn serving `url` (started by start_gunicorn)."""
    port = url.rsplit(":", 1)[1]
    found = subprocess.run(["pgrep", "-f", f"gunicorn api:app --bind 127.0.0.1:{port}"], capture_output=True,
                           text=True).stdout.split()  # fmt: skip
    return [int(pid) for pid in found]
