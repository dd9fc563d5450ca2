"""End to end: real gunicorn (2 workers), real monitor, real receiver, real Redis."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import redis
import requests

from devtools.oracle import leftover_keys
from devtools.processes import system
from devtools.receiver import Receiver


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def send(api_url: str, body: dict) -> dict:
    response = requests.post(f"{api_url}/api/message", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_interleaved_burst_gives_one_ordered_batch_per_user(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    users, per_user = 200, 10
    env["WEBHOOK_URL"] = receiver.url
    with system(env, tmp_path) as (api, _monitor):
        session = requests.Session()
        # Message i of every user goes out before message i+1 of any user; 16 threads send each round.
        with ThreadPoolExecutor(16) as pool:
            for i in range(per_user):
                bodies = [
                    {"user": f"55119{u:05d}", "message": f"msg {i}", "ttl": 5, "seq": i, "name": f"N{u}"}
                    for u in range(users)
                ]
                replies = list(pool.map(lambda b: session.post(f"{api.extra['url']}/api/message", json=b), bodies))
                assert all(r.status_code == 200 for r in replies)
        assert receiver.wait_for(lambda r: len(r.delivered) >= users, timeout=30)
        time.sleep(1)  # nothing more may arrive
    assert len(receiver.delivered) == users
    by_user = {b["user"]: b for b in receiver.delivered}
    assert len(by_user) == users
    for u in range(users):
        batch = by_user[f"55119{u:05d}"]
        assert batch["messages"] == [f"msg {i}" for i in range(per_user)]
        assert batch["message_count"] == per_user and batch["flush_reason"] == "ttl"
        assert batch["name"] == f"N{u}" and batch["seq"] == per_user - 1  # metadata: last value wins
        assert batch["user_id"] == batch["user"]
    assert leftover_keys(redis_client) == []


def test_short_gaps_make_one_batch_and_long_gaps_separate_batches(
    env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    env["WEBHOOK_URL"] = receiver.url
    with system(env, tmp_path) as (api, _monitor):
        url = api.extra["url"]
        for text in ["oi", "tudo bem?", "queria saber o preço"]:
            send(url, {"user": "short", "message": text, "ttl": 1})
            time.sleep(0.5)
        for text in ["one", "two"]:
            send(url, {"user": "long", "message": text, "ttl": 1})
            time.sleep(3)
        assert receiver.wait_for(lambda r: len(r.delivered) >= 3, timeout=10)
        time.sleep(1.5)
    short = [b["messages"] for b in receiver.delivered if b["user"] == "short"]
    long = [b["messages"] for b in receiver.delivered if b["user"] == "long"]
    assert short == [["oi", "tudo bem?", "queria saber o preço"]]
    assert long == [["one"], ["two"]]
    assert [b["sequence"] for b in receiver.delivered if b["user"] == "long"] == [1, 2]


def test_flush_arrives_soon_after_the_deadline(env: dict[str, str], receiver: Receiver, tmp_path: Path) -> None:
    env["WEBHOOK_URL"] = receiver.url
    env["FLUSH_POLL_INTERVAL"] = "0.1"  # the default
    with system(env, tmp_path) as (api, _monitor):
        deadlines = {}
        for i in range(20):
            reply = send(api.extra["url"], {"user": f"lag{i}", "message": "oi", "ttl": 1 + i / 20})
            deadlines[f"lag{i}"] = ts(reply["flush_at"])
        assert receiver.wait_for(lambda r: len(r.delivered) >= 20, timeout=10)
        arrivals = {r.body["user"]: r.at for r in receiver.received}
    lags = [arrivals[user] - deadline for user, deadline in deadlines.items()]
    assert max(lags) < 1.5, lags  # polled every 0.1 s; a stalled process is covered once 1 s overdue
    assert min(lags) > -0.05, lags  # never before the deadline (small allowance for clock reads)


def test_without_config_rights_batches_still_flush_on_time(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, redis_server, tmp_path: Path
) -> None:
    """Managed Redis often forbids CONFIG: one clear warning, and the due index keeps flushes on time."""
    redis_client.config_set("notify-keyspace-events", "")
    redis_client.acl_setuser("limited", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                             commands=["+@all", "-config"])  # fmt: skip
    try:
        env.update(WEBHOOK_URL=receiver.url, REDIS_URL=f"redis://limited:pw@127.0.0.1:{redis_server.port}/0")
        with system(env, tmp_path) as (api, monitor):
            reply = send(api.extra["url"], {"user": "managed", "message": "oi", "ttl": 0.5})
            assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=5)
            lag = receiver.received[0].at - ts(reply["flush_at"])
            redis_client.client_kill_filter(_type="pubsub")  # a resubscribe must not repeat the warning
            time.sleep(1)
            processes = monitor.log().count("monitor starting process=")
            assert monitor.log().count("cannot enable notify-keyspace-events") == processes  # once per process
        assert lag < 1.5  # as above
    finally:
        redis_client.acl_deluser("limited")
        redis_client.config_set("notify-keyspace-events", "Ex")
