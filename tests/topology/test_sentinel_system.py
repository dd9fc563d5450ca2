"""The whole system under Sentinel: the primary is killed under load and API and monitor follow the new one."""

from __future__ import annotations

import time
from pathlib import Path

import redis
import requests

from devtools.oracle import all_acked_delivered, assert_all_delivered
from devtools.processes import system
from devtools.receiver import Receiver
from devtools.redis_server import wait_until
from devtools.sentinel import LocalSentinel
from tests.support.env import TEST_ENV
from tests.support.load import Load

PASSWORD = "sentinel-secret"  # the data nodes'
SENTINEL_PASSWORD = "sentinels-own-secret"  # the sentinels' own: REDIS_SENTINEL_PASSWORD


def test_primary_killed_under_load_api_and_monitor_follow_the_promoted_replica(
    receiver: Receiver, tmp_path: Path
) -> None:
    with LocalSentinel(replicas=1, sentinels=3, password=PASSWORD, sentinel_password=SENTINEL_PASSWORD) as setup:
        sentinels = ",".join(f"{host}:{port}" for host, port in setup.sentinels)
        env = {**TEST_ENV, "WEBHOOK_URL": receiver.url, "REDIS_SENTINELS": sentinels, "REDIS_PASSWORD": PASSWORD,
               "REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD, "REDIS_SENTINEL_MASTER": setup.master_name,
               "REDIS_WAIT_REPLICAS": "1"}  # fmt: skip
        with system(env, tmp_path) as (api, monitor):
            assert "redis mode=sentinel" in monitor.log()
            with Load(api.extra["url"], [f"chat{u}" for u in range(40)]) as load:
                time.sleep(1.5)
                killed = setup.kill_primary()
                promoted = setup.wait_for_new_primary(timeout=30)
                # The new primary has no replica left: with REDIS_WAIT_REPLICAS=1 nothing is acknowledged (503)
                # until the old primary is back, as the new one's replica.
                killed.start()
                client = redis.Redis(promoted.host, promoted.port, password=PASSWORD, decode_responses=True)
                wait_until(lambda: client.info("replication")["connected_slaves"] >= 1, 30, "the old primary to follow")
                failed_over = load.ledger.statuses[200]
                time.sleep(3)
            assert load.ledger.statuses[200] > failed_over  # the API follows the new primary by itself
            assert set(load.ledger.statuses) <= {200, 503}, load.ledger.statuses  # never a 500
            assert receiver.wait_for(all_acked_delivered(load.ledger), timeout=30), monitor.log()[-3000:]
            assert_all_delivered(load.ledger, receiver, client)
            # The monitor delivers what arrives after the failover: it reads the new primary.
            assert load.ledger.send(requests.Session(), api.extra["url"], "after", "oi", ttl=0.2) == 200
            assert receiver.wait_for(lambda r: any(b["user"] == "after" for b in r.delivered), timeout=15)
