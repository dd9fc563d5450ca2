"""Real processes for end-to-end tests, benchmarks and the soak: gunicorn and the monitor, stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devtools.redis_server import PROJECT_ROOT, free_port


def process_env(env: dict[str, str]) -> dict[str, str]:
    """The parent's environment (PATH, the venv) plus the test's settings; never a developer's .env."""
    return {**os.environ, "LOG_LEVEL": "INFO", **env}


@dataclass
class Proc:
    """A child process with its output captured to a file, for assertions and failure reports."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` by PID."""
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self, timeout: float = 25.0) -> int:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def children(self) -> list[int]:
        """The PIDs of the process's live children (a monitor's supervised processes)."""
        return child_pids(self.process.pid)

    def kill(self) -> None:
        """SIGKILL: a crash."""
        with suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()


def child_pids(pid: int) -> list[int]:
    """The live children of `pid`, from /proc (Linux)."""
    try:
        return [int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in
                (task / "children").read_text().split()]  # fmt: skip
    except FileNotFoundError:  # the process is gone
        return []


def start(name: str, args: list[str], env: dict[str, str], tmp_path: Path) -> Proc:
    """Start `args` in the project root with `env`; output goes to tmp_path/name.log."""
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, cwd=PROJECT_ROOT, env=process_env(env), stdout=log, stderr=subprocess.STDOUT)
    return Proc(name, process, log_path)


def start_api(env: dict[str, str], tmp_path: Path, workers: int = 2, port: int | None = None) -> Proc:
    """`gunicorn api:app` with the project's gunicorn.conf.py, on a free loopback port; waits for /health."""
    port = port or free_port()
    args = [sys.executable, "-m", "gunicorn", "api:app", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    proc = start(f"api-{port}", args, env, tmp_path)
    proc.extra["url"] = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{proc.extra['url']}/health")
    return proc


def start_monitor(env: dict[str, str], tmp_path: Path, name: str = "monitor") -> Proc:
    """`python3 monitor.py`; waits until it has subscribed to expired events."""
    proc = start(name, [sys.executable, "monitor.py"], env, tmp_path)
    wait_log(proc, "subscribed to")
    return proc


def wait_http(proc: Proc, url: str, timeout: float = 20.0, ok_statuses: tuple[int, ...] = (200,)) -> None:
    """Wait until `url` answers one of `ok_statuses` (or fail with the process's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise AssertionError(f"{proc.name} exited early:\n{proc.log()}")
        with suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code in ok_statuses:
                return
        time.sleep(0.05)
    raise AssertionError(f"{proc.name} not ready at {url}:\n{proc.log()}")


def wait_log(proc: Proc, text: str, timeout: float = 20.0) -> None:
    """Wait until the process has logged `text`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in proc.log():
            return
        if proc.process.poll() is not None:
            raise AssertionError(f"{proc.name} exited early:\n{proc.log()}")
        time.sleep(0.05)
    raise AssertionError(f"{proc.name} never logged {text!r}:\n{proc.log()}")


@contextmanager
def running(*procs: Proc) -> Iterator[None]:
    """Always stop the processes, whatever the test does."""
    try:
        yield
    finally:
        for proc in procs:
            proc.stop()


@contextmanager
def system(env: dict[str, str], tmp_path: Path, workers: int = 2) -> Iterator[tuple[Proc, Proc]]:
    """The API and one monitor, stopped at the end."""
    api = start_api(env, tmp_path, workers)
    try:
        monitor = start_monitor(env, tmp_path)
    except BaseException:
        api.stop()
        raise
    with running(monitor, api):
        yield api, monitor
