"""The monitor's metrics endpoint under idle and slow connections, in a real `python3 monitor.py`."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from devtools.processes import Proc, free_port, running, start_monitor, wait_http
from devtools.receiver import Receiver

IDLE_CONNECTIONS = 1000


def threads_of(proc: Proc) -> int:
    """The threads of the monitor process (it runs in place with MONITOR_PROCESSES=1)."""
    return len(list(Path(f"/proc/{proc.process.pid}/task").iterdir()))


@pytest.fixture
def monitor(env: dict[str, str], receiver: Receiver, tmp_path: Path) -> Iterator[tuple[Proc, str]]:
    port = free_port()
    env.update(WEBHOOK_URL=receiver.url, MONITOR_PROCESSES="1", METRICS_PORT=str(port), HOST="127.0.0.1")
    with running(proc := start_monitor(env, tmp_path)):
        url = f"http://127.0.0.1:{port}/metrics"
        wait_http(proc, url)
        yield proc, url


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed this connection (EOF or reset)."""
    sock.settimeout(0)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def test_idle_connections_neither_hold_threads_nor_delay_a_scrape(monitor: tuple[Proc, str]) -> None:
    """Regression: every idle connection held a thread forever (no read timeout, no bound): 1,000 of them made
    1,000 threads in the monitor, until it ran out of memory or file descriptors."""
    proc, url = monitor
    before = threads_of(proc)
    port = int(url.split(":")[2].split("/")[0])
    with ExitStack() as stack:
        idle, connecting = [], time.monotonic()
        for _ in range(IDLE_CONNECTIONS):
            idle.append(stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5)))
            assert time.monotonic() - connecting < 30, f"{len(idle)} connections in 30 s: accepting lags"
        time.sleep(0.5)
        started = time.monotonic()
        scrape = requests.get(url, timeout=5)
        assert scrape.status_code == 200 and "datafy_delivery_attempts_total" in scrape.text
        assert time.monotonic() - started < 1.0
        assert threads_of(proc) <= before + 8, "a thread per idle connection"
        deadline = time.monotonic() + 8  # the read timeout (5 s) and some
        while time.monotonic() < deadline and not all(closed_by_server(sock) for sock in idle):
            time.sleep(0.2)
        assert all(closed_by_server(sock) for sock in idle), "idle connections are never closed"
    assert threads_of(proc) <= before + 8
    assert requests.get(url, timeout=5).status_code == 200


def test_a_slow_request_is_cut_off_and_a_scrape_goes_on(monitor: tuple[Proc, str]) -> None:
    """A client sending its request a byte at a time is closed after the read timeout, whatever it sends."""
    proc, url = monitor
    before = threads_of(proc)
    port = int(url.split(":")[2].split("/")[0])
    slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
    try:
        started, request = time.monotonic(), b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: y\r\n" * 1000
        closed_after = None
        for index in range(len(request)):
            if time.monotonic() - started > 10:
                break
            for sock in slow:
                try:
                    sock.sendall(request[index : index + 1])
                except OSError:
                    closed_after = time.monotonic() - started
            if closed_after is not None:
                break
            if index % 10 == 0:
                assert requests.get(url, timeout=5).status_code == 200
                assert threads_of(proc) <= before + 8
            time.sleep(0.05)
        assert closed_after is not None and closed_after < 8
    finally:
        for sock in slow:
            sock.close()
