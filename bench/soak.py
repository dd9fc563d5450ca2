"""Soak test (not run in CI): load with random faults for N minutes, then check the delivery oracle.

    ./dev bench soak --minutes 10

Runs its own Redis, API (2 workers), two monitor containers of two processes each and a receiver that
sometimes fails, stalls or answers 429. Every few seconds it injects a fault: kill -9 a monitor container
and restart it, kill -9 one process of a container (its supervisor restarts it), SIGTERM every process of
a container at once (as systemd or `docker kill` do) and restart it once it has stopped, kill the
subscriber connections, restart Redis on its AOF, freeze Redis for a few seconds, or a receiver outage of
5-20 s. At the end it waits for every acknowledged message to arrive and checks that each arrived, in
order, in exactly one distinct batch (duplicates only under the same batch_id), that no keys were left
behind, and that every container stopped by SIGTERM exited 0 (no delivery left unfinished).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
import requests

from devtools.oracle import Ledger, all_acked_delivered, assert_all_delivered, wait_until_drained
from devtools.processes import Proc, start_api, start_monitor
from devtools.receiver import Receiver, Reply
from devtools.redis_server import RedisServer

OUTAGE = threading.Event()
FAULTS = ("kill-monitor", "kill-process", "sigterm-container", "kill-subscriber", "restart-redis", "freeze-redis",
          "receiver-outage")  # fmt: skip


def flaky(batch: dict, nth: int) -> Reply:
    if OUTAGE.is_set():
        return Reply(status=503)
    roll = random.random()
    if roll < 0.05:
        return Reply(status=500)
    if roll < 0.07:
        return Reply(status=429, headers={"Retry-After": "1"})
    if roll < 0.08:
        return Reply(delay=3)  # longer than WEBHOOK_TIMEOUT below
    return Reply()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--rate", type=float, default=200, help="messages per second")
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="datafy-soak-"))
    server = RedisServer().start()
    receiver = Receiver(behaviour=flaky).start()
    env = {
        "REDIS_URL": server.url,
        "WEBHOOK_URL": receiver.url,
        "WEBHOOK_TIMEOUT": "2",
        "DELIVERY_VISIBILITY_TIMEOUT": "5",
        "WEBHOOK_RETRY_SCHEDULE": ",".join(["2s"] * 20),
        "INGEST_AUTH": "off",  # loopback only
        "MONITOR_PROCESSES": "2",
    }
    ledger, stop = Ledger(), threading.Event()
    faults: dict[str, int] = {}
    stop_codes: list[int] = []
    monitors: list[Proc] = []
    api = start_api(env, tmp)
    try:
        monitors.extend(start_monitor(env, tmp, name=f"monitor-{i}") for i in range(2))

        def load(worker: int) -> None:
            session, n, interval = requests.Session(), 0, 8 / args.rate
            while not stop.is_set():
                # Each user belongs to one sender, so "the order we sent" is well defined for the oracle.
                user = f"soak-{worker}-{random.randrange(args.users // 8)}"
                ledger.send(session, api.extra["url"], user, f"w{worker}-{n}", ttl=random.uniform(0.5, 3))
                n += 1
                time.sleep(interval)

        workers = [threading.Thread(target=load, args=(w,), daemon=True) for w in range(8)]
        for worker in workers:
            worker.start()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() < end:
            time.sleep(random.uniform(3, 8))
            fault = random.choice(FAULTS)
            faults[fault] = faults.get(fault, 0) + 1
            print(f"{time.strftime('%H:%M:%S')} fault: {fault}  acked so far: {ledger.acked_count}", flush=True)
            if fault == "kill-monitor":
                victim = random.randrange(len(monitors))
                monitors[victim].kill()
                monitors[victim] = start_monitor(env, tmp, name=f"monitor-{victim}-{faults[fault]}")
            elif fault == "kill-process":
                with contextlib.suppress(ProcessLookupError, IndexError):
                    os.kill(random.choice(random.choice(monitors).children()), signal.SIGKILL)
            elif fault == "sigterm-container":
                victim = random.randrange(len(monitors))
                for pid in monitors[victim].children():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                monitors[victim].signal(signal.SIGTERM)
                stop_codes.append(monitors[victim].process.wait(40))
                monitors[victim] = start_monitor(env, tmp, name=f"monitor-{victim}-{faults[fault]}")
            elif fault == "receiver-outage":
                OUTAGE.set()
                time.sleep(random.uniform(5, 20))
                OUTAGE.clear()
            elif fault == "kill-subscriber":
                with contextlib.suppress(redis.RedisError):
                    client.client_kill_filter(_type="pubsub")
            elif fault == "restart-redis":
                server.stop(signal.SIGKILL)
                time.sleep(random.uniform(0.5, 4))
                server.start()
            else:
                server.freeze()
                time.sleep(random.uniform(1, 4))
                server.thaw()
        stop.set()
        for worker in workers:
            worker.join()
        print(f"load done: {ledger.acked_count} acknowledged, statuses {dict(ledger.statuses)}; waiting for delivery")
        ok = receiver.wait_for(all_acked_delivered(ledger), timeout=120) and wait_until_drained(client, 60)
        assert ok, "not every acknowledged message arrived within 120 s"
        assert_all_delivered(ledger, receiver, client)
        assert all(code == 0 for code in stop_codes), f"a container stopped by SIGTERM left work: {stop_codes}"
        batch_ids = [r.body["batch_id"] for r in receiver.received]
        print(
            f"OK: {ledger.acked_count} acknowledged messages all delivered; {len(set(batch_ids))} batches, "
            f"{len(batch_ids) - len(set(batch_ids))} redeliveries (same batch_id); faults {faults}; "
            f"containers stopped by SIGTERM exited {stop_codes}"
        )
        return 0
    finally:
        stop.set()
        for proc in [*monitors, api]:
            proc.stop()
        receiver.stop()
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
