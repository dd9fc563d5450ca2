"""One monitor container runs one process per CPU: real `python3 monitor.py` processes, killed and stopped by PID."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import redis

from datafy.config.cpus import available_cpus
from datafy.monitor.health import HEARTBEAT_DIR
from devtools.oracle import Ledger, all_acked_delivered, assert_all_delivered
from devtools.processes import process_env, running, start_api, start_monitor, wait_log
from devtools.receiver import Receiver, Reply
from tests.support.load import send_many


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead too


def wait_dead(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(alive(pid) for pid in pids)


def healthcheck() -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "datafy.monitor.health"], env=process_env({}), capture_output=True,
                          text=True, timeout=10)  # fmt: skip


def test_one_process_per_cpu_and_one_sigterm_stops_them_all(
    env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    env.update(WEBHOOK_URL=receiver.url)
    env.pop("MONITOR_PROCESSES", None)
    monitor = start_monitor(env, tmp_path)
    with running(monitor):
        wait_log(monitor, "subscribed to")
        children = monitor.children()
        assert len(children) == available_cpus()  # CPUs allowed by the cgroup quota and affinity, as gunicorn counts
        deadline = time.monotonic() + 10
        while len(list(HEARTBEAT_DIR.glob("*.alive"))) < len(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert healthcheck().returncode == 0
        monitor.signal(signal.SIGTERM)
        assert monitor.process.wait(15) == 0
        assert wait_dead(children, 5)
    assert monitor.log().count("monitor stopped cleanly") == len(children)
    check = healthcheck()
    assert check.returncode == 1 and "no monitor process has a heartbeat" in check.stdout


def test_a_killed_process_is_restarted_and_nothing_is_lost(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env.update(WEBHOOK_URL=receiver.url, MONITOR_PROCESSES="2")
    receiver.behaviour = lambda batch, nth: Reply(delay=0.02)
    ledger = Ledger()
    api = start_api(env, tmp_path)
    monitor = start_monitor(env, tmp_path)
    with running(monitor, api):
        victim, survivor = monitor.children()
        send_many(ledger, api.extra["url"], users=300, ttl=0.5)
        assert receiver.wait_for(lambda r: len(r.delivered) >= 20, timeout=10)
        os.kill(victim, signal.SIGKILL)  # mid-delivery
        wait_log(monitor, "monitor process 0 (pid")
        wait_log(monitor, "restarting in")
        assert receiver.wait_for(all_acked_delivered(ledger), timeout=30)
        assert_all_delivered(ledger, receiver, redis_client)
        # the survivor may have finished the work before the restart's delay (1 s after a young death) ran out
        deadline = time.monotonic() + 10
        while len(monitor.children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        children = monitor.children()
        assert len(children) == 2 and survivor in children and victim not in children


def test_killing_the_container_takes_every_process_along(
    env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    """kill -9 of the parent (a container killed) leaves no orphan delivering on its own."""
    env.update(WEBHOOK_URL=receiver.url, MONITOR_PROCESSES="3")
    monitor = start_monitor(env, tmp_path)
    children = monitor.children()
    assert len(children) == 3
    monitor.kill()
    assert wait_dead(children, 5)


def test_two_containers_of_two_processes_share_the_work_and_survive_a_kill(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """No batch is POSTed by two processes at once, every acknowledged message arrives in order, and a process
    killed mid-delivery costs nothing but a redelivery under the same batch_id."""
    env.update(WEBHOOK_URL=receiver.url, MONITOR_PROCESSES="2")
    hold = 0.05
    receiver.behaviour = lambda batch, nth: Reply(delay=hold)
    ledger = Ledger()
    api = start_api(env, tmp_path)
    first = start_monitor(env, tmp_path, name="monitor-a")
    second = start_monitor(env, tmp_path, name="monitor-b")
    with running(first, second, api):
        send_many(ledger, api.extra["url"], users=400, per_user=2, ttl=0.5)
        assert receiver.wait_for(lambda r: len(r.delivered) >= 50, timeout=10)
        os.kill(first.children()[0], signal.SIGKILL)
        assert receiver.wait_for(all_acked_delivered(ledger), timeout=40)
        assert_all_delivered(ledger, receiver, redis_client)
        logs = first.log() + second.log()
    served = [log.count("delivered user=") for log in (first.log(), second.log())]
    assert all(count > 0 for count in served), served  # both containers took part
    # An attempt that timed out (WEBHOOK_TIMEOUT) was over for the monitor, yet a starved receiver may read
    # it only later, just before the retry: no overlap of two attempts, so those batches are left out.
    timed_out = set(re.findall(r"batch=(\w+) .*error='timeout'", logs))
    arrivals: dict[str, list[float]] = {}
    for post in receiver.received:
        if post.body["batch_id"] not in timed_out:
            arrivals.setdefault(post.body["batch_id"], []).append(post.at)
    for batch_id, times in arrivals.items():
        gaps = [later - earlier for earlier, later in pairwise(times)]
        assert all(gap >= hold for gap in gaps), f"{batch_id} POSTed again while its first POST was open: {gaps}"
