"""A stop is a stop, however many copies of the signal arrive: every in-flight POST finishes within
SHUTDOWN_GRACE and no batch is POSTed twice, whichever processes of the container were signalled."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from datafy.config import Settings
from datafy.model import IncomingMessage
from datafy.monitor.stopping import EXIT_UNFINISHED
from datafy.store import Store
from devtools.processes import Proc, running, start_monitor
from devtools.receiver import Receiver, Reply

THINK = 2.0  # each POST takes this long at the receiver
IN_FLIGHT = 4


def parent_only(monitor: Proc) -> None:
    monitor.signal(signal.SIGTERM)


def parent_and_children(monitor: Proc) -> None:
    """systemd's KillMode=control-group, `docker kill --signal TERM`, `kill -- -PGID`: every process at once,
    and then the supervisor forwards its own copy."""
    for pid in monitor.children():
        os.kill(pid, signal.SIGTERM)
    monitor.signal(signal.SIGTERM)


def children_only(monitor: Proc) -> None:
    for pid in monitor.children():
        os.kill(pid, signal.SIGTERM)


def interrupt_then_terminate(monitor: Proc) -> None:
    """`./dev run`'s Ctrl-C: SIGINT from the terminal to the whole group, then SIGTERM from dev/run.py."""
    for pid in monitor.children():
        os.kill(pid, signal.SIGINT)
    monitor.signal(signal.SIGINT)
    time.sleep(0.05)
    monitor.signal(signal.SIGTERM)


def terminate_twice(monitor: Proc) -> None:
    monitor.signal(signal.SIGTERM)
    time.sleep(0.1)
    monitor.signal(signal.SIGTERM)


def start_with_work_in_flight(env: dict[str, str], receiver: Receiver, tmp_path: Path) -> tuple[Proc, Store]:
    """A monitor with IN_FLIGHT batches being POSTed (each takes THINK seconds)."""
    receiver.behaviour = lambda batch, nth: Reply(delay=THINK)
    monitor = start_monitor(env, tmp_path)
    store = Store(Settings.from_env(env))
    for i in range(IN_FLIGHT):
        store.buffer.append(IncomingMessage(user=f"5511{i:04d}", message="oi", ttl_ms=1000, flush_reason="request"))
    assert receiver.wait_for(lambda r: len(r.received) >= IN_FLIGHT, timeout=10)
    return monitor, store


def posted_once_after_the_leases(env: dict[str, str], receiver: Receiver, tmp_path: Path) -> Counter[str]:
    """Run a fresh monitor past every lease of the stopped one, and count the POSTs of each batch."""
    receiver.behaviour = lambda batch, nth: Reply()
    later = start_monitor(env, tmp_path, name="monitor-later")
    with running(later):
        time.sleep(float(env["DELIVERY_VISIBILITY_TIMEOUT"]) + 1)
    return Counter(post.body["batch_id"] for post in receiver.received)


@pytest.fixture
def slow_env(env: dict[str, str], receiver: Receiver) -> dict[str, str]:
    return {**env, "WEBHOOK_URL": receiver.url, "MONITOR_PROCESSES": "2", "WEBHOOK_TIMEOUT": str(THINK + 2),
            "DELIVERY_VISIBILITY_TIMEOUT": str(THINK + 5), "SHUTDOWN_GRACE": "20"}  # fmt: skip


@pytest.mark.parametrize(
    "send_stop",
    [parent_only, parent_and_children, children_only, interrupt_then_terminate, terminate_twice],
    ids=lambda f: f.__name__,
)
def test_in_flight_posts_finish_and_none_is_posted_twice(
    slow_env: dict[str, str], receiver: Receiver, tmp_path: Path, send_stop: Callable[[Proc], None]
) -> None:
    monitor, store = start_with_work_in_flight(slow_env, receiver, tmp_path)
    with running(monitor):
        stopped_at = time.monotonic()
        send_stop(monitor)
        assert monitor.process.wait(THINK + 15) == 0, monitor.log()
        took = time.monotonic() - stopped_at
    assert took >= THINK - 0.5, f"exited after {took:.1f}s, before its POSTs could finish"
    assert len(receiver.delivered) == IN_FLIGHT  # every POST was answered and recorded
    assert "unfinished" not in monitor.log()
    posts = posted_once_after_the_leases(slow_env, receiver, tmp_path)
    assert sorted(posts.values()) == [1] * IN_FLIGHT, posts
    assert store.outbox.claim(10, 1) == []


def test_one_process_without_a_supervisor_takes_copies_too(
    slow_env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    slow_env["MONITOR_PROCESSES"] = "1"
    monitor, _ = start_with_work_in_flight(slow_env, receiver, tmp_path)
    with running(monitor):
        terminate_twice(monitor)
        interrupt_then_terminate(monitor)  # a single Ctrl-C among them
        assert monitor.process.wait(THINK + 15) == 0, monitor.log()
    assert len(receiver.delivered) == IN_FLIGHT
    assert sorted(posted_once_after_the_leases(slow_env, receiver, tmp_path).values()) == [1] * IN_FLIGHT


def test_docker_stop_after_the_grace_period_says_so_and_the_batches_are_sent_again(
    slow_env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    """`docker stop`: SIGTERM, then SIGKILL once its timeout passes. With SHUTDOWN_GRACE shorter than the POSTs,
    the monitor says what it left unfinished and exits non-zero; those batches are POSTed again, same batch_id."""
    slow_env["SHUTDOWN_GRACE"] = "0.5"
    monitor, _ = start_with_work_in_flight(slow_env, receiver, tmp_path)
    with running(monitor):
        monitor.signal(signal.SIGTERM)
        try:
            code = monitor.process.wait(THINK + 10)
        finally:
            monitor.kill()  # docker's SIGKILL, if it was still running
    assert code == EXIT_UNFINISHED, monitor.log()
    assert "unfinished after SHUTDOWN_GRACE" in monitor.log()
    posts = posted_once_after_the_leases(slow_env, receiver, tmp_path)
    assert len(posts) == IN_FLIGHT and all(count >= 1 for count in posts.values())
    assert {body["batch_id"] for body in receiver.delivered} == set(posts)
