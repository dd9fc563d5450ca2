"""Flush lag at scale: 100,000 pending chats, 10,000 falling due within the same second.

For each due batch: webhook arrival time minus its deadline (p50, p99, max, missing). Then, on the
same data, what flushing on expired events alone would give: event arrival minus deadline.

    ./dev bench flush_lag [--pending 100000] [--due 10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import fast_receiver, percentiles, running_redis  # noqa: E402
from datafy.config import Settings  # noqa: E402
from datafy.model import IncomingMessage  # noqa: E402
from datafy.store import Store  # noqa: E402
from devtools.processes import start_monitor  # noqa: E402


def populate(store: Store, users: list[str], deadline_of: Callable[[str], float]) -> dict[str, int]:
    """Append one message per user; returns each user's deadline (Redis time, ms)."""
    deadlines: dict[str, int] = {}

    def send(user: str) -> None:
        ttl_ms = max(1, int(deadline_of(user) - time.time() * 1000))
        deadlines[user] = store.buffer.append(
            IncomingMessage(user=user, message="oi, tudo bem?", ttl_ms=ttl_ms)
        ).flush_at_ms

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, users))
    return deadlines


def build(server_url: str, pending: int, due: int) -> Store:
    store = Store(Settings.from_env({"REDIS_URL": server_url}))
    started = time.time()
    populate(store, [f"idle-{i}" for i in range(pending - due)], lambda user: time.time() * 1000 + 3_600_000)
    print(f"  {pending - due} idle chats pending in {time.time() - started:.1f}s", flush=True)
    return store


def fill_due(store: Store, due: int, lead_seconds: float) -> dict[str, int]:
    window_start = (time.time() + lead_seconds) * 1000
    users = [f"due-{i}" for i in range(due)]
    return populate(store, users, lambda user: window_start + (int(user[4:]) % 1000))


def with_monitor(pending: int, due: int, monitors: int) -> None:
    print(f"\n[datafy: due index + events, {monitors} monitor(s)]", flush=True)
    with running_redis() as server:
        store = build(server.url, pending, due)
        tmp = Path(tempfile.mkdtemp(prefix="datafy-bench-"))
        with fast_receiver(tmp) as (url, records):
            env = {"REDIS_URL": server.url, "WEBHOOK_URL": url}
            procs = [start_monitor(env, tmp, name=f"monitor-{i}") for i in range(monitors)]
            started = time.time()
            deadlines = fill_due(store, due, lead_seconds=15)
            print(f"  {due} due chats added in {time.time() - started:.1f}s; waiting for their deadlines", flush=True)
            wait_until = max(deadlines.values()) / 1000 + 60
            while time.time() < wait_until and (store.buffer.pending(0, 1)[0] > pending - due or _deliveries(store)):
                time.sleep(0.2)
            for proc in procs:
                proc.stop()
        due_batches = [r for r in records if r["batch"]["user"].startswith("due-")]
    sealed = {r["batch"]["user"]: _epoch(r["batch"]["processed_at"]) for r in due_batches}
    report("sealed (processed_at) - deadline", deadlines, sealed)
    report("webhook arrival - deadline", deadlines, {r["batch"]["user"]: r["at"] for r in due_batches})


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _deliveries(store: Store) -> int:
    return sum(store.client.zcard(part.ready) for part in store.keys.all_partitions())


def with_events_only(pending: int, due: int, patience: float) -> None:
    print("\n[expired events alone, as in the original design]", flush=True)
    with running_redis() as server:
        store = build(server.url, pending, due)
        arrivals: dict[str, float] = {}
        subscription = store.expiry_subscription()
        stop = threading.Event()

        def listen() -> None:
            while not stop.is_set():
                user = subscription.next_user(timeout=0.5)
                if user is not None and user.startswith("due-"):
                    arrivals[user] = time.time()

        listener = threading.Thread(target=listen)
        listener.start()
        deadlines = fill_due(store, due, lead_seconds=15)
        give_up = max(deadlines.values()) / 1000 + patience
        while time.time() < give_up and len(arrivals) < due:
            time.sleep(0.5)
        stop.set()
        listener.join()
        subscription.close()
    report(f"expired event - deadline (waited up to {patience:.0f}s)", deadlines, arrivals)


def report(label: str, deadlines: dict[str, int], arrivals: dict[str, float]) -> None:
    lags = [arrivals[user] - deadlines[user] / 1000 for user in deadlines if user in arrivals]
    stats = percentiles(lags)
    missing = len(deadlines) - len(lags)
    print(f"  {label}: n={len(lags)} p50={stats['p50']:.0f}ms p99={stats['p99']:.0f}ms max={stats['max']:.0f}ms "
          f"missing={missing}", flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--patience", type=float, default=180, help="seconds to wait for expired events")
    parser.add_argument("--skip-events", action="store_true")
    parser.add_argument("--monitors", default="1", help="monitor containers to measure, e.g. 1,2")
    args = parser.parse_args()
    for monitors in args.monitors.split(","):
        with_monitor(args.pending, args.due, int(monitors))
    if not args.skip_events:
        with_events_only(args.pending, args.due, args.patience)
    return 0


if __name__ == "__main__":
    sys.exit(main())
