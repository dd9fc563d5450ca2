"""Outage and recovery: the receiver answers 503 for 60 s while 200 chats come due, then 200 again.

Prints how many requests the receiver saw during the outage (the first attempts before the breaker
opened, then one probe every 2 s), how long after its return every chat had arrived, and how many were
dead-lettered. Real API, one monitor container, Redis and a receiver.

    ./dev bench outage [--chats 200] [--outage 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import redis  # noqa: E402
import requests  # noqa: E402

from bench.common import machine_facts  # noqa: E402
from devtools.oracle import Ledger, all_acked_delivered, assert_all_delivered  # noqa: E402
from devtools.processes import system  # noqa: E402
from devtools.receiver import Receiver, Reply  # noqa: E402
from devtools.redis_server import RedisServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--outage", type=float, default=60)
    args = parser.parse_args()
    server = RedisServer().start()
    print(machine_facts(server), flush=True)
    down = threading.Event()
    down.set()
    receiver = Receiver(behaviour=lambda batch, nth: Reply(status=503) if down.is_set() else Reply()).start()
    env = {"REDIS_URL": server.url, "WEBHOOK_URL": receiver.url, "ADMIN_API_KEY": "bench", "INGEST_AUTH": "off"}
    try:
        with system(env, Path(tempfile.mkdtemp(prefix="datafy-bench-"))) as (api, _monitor):
            ledger, session = Ledger(), requests.Session()
            for i in range(args.chats):
                ledger.send(session, api.extra["url"], f"5511{i:09d}", "oi, alguém aí?", ttl=0.5)
            time.sleep(args.outage)
            during = len(receiver.received)
            down.clear()
            back = time.time()
            assert receiver.wait_for(all_acked_delivered(ledger), timeout=120), "not every chat arrived"
            recovered = max(r.at for r in receiver.received) - back
            dead = requests.get(f"{api.extra['url']}/api/dead-letters", headers={"Authorization": "Bearer bench"},
                                timeout=5).json()["total"]  # fmt: skip
            assert_all_delivered(ledger, receiver, redis.Redis.from_url(server.url, decode_responses=True))
    finally:
        receiver.stop()
        server.cleanup()
    print(f"  {args.chats} chats due during a {args.outage:.0f} s outage: the receiver saw {during} requests "
          f"during it; all {args.chats} arrived {recovered:.1f} s after it answered again; {dead} dead-lettered",
          flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
