"""Fault injection: crashes, restarts, lost events and webhook outages never lose an acknowledged message."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from devtools.oracle import Ledger, all_acked_delivered, assert_all_delivered, wait_until_drained
from devtools.processes import running, start_api, start_monitor, system, wait_log
from devtools.receiver import Receiver, Reply
from devtools.redis_server import RedisServer
from tests.support.env import TEST_ENV
from tests.support.load import send_many
from tests.support.persistence import wait_for_aof_written

ADMIN = {"Authorization": f"Bearer {TEST_ENV['ADMIN_API_KEY']}"}


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, free to be killed, frozen and restarted."""
    server = RedisServer().start()
    yield server
    server.cleanup()


def failing(receiver: Receiver, failure: Reply) -> threading.Event:
    """Make the receiver answer `failure` until the returned event is cleared."""
    active = threading.Event()
    active.set()
    receiver.behaviour = lambda batch, nth: failure if active.is_set() else Reply()
    return active


def test_monitor_killed_while_1000_timers_expire_then_restarted(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env["WEBHOOK_URL"] = receiver.url
    ledger = Ledger()
    api = start_api(env, tmp_path)
    with running(api):
        monitor = start_monitor(env, tmp_path)
        send_many(ledger, api.extra["url"], users=1000, ttl=1)
        assert ledger.acked_count == 1000
        assert receiver.wait_for(lambda r: len(r.delivered) >= 50, timeout=10)  # mid-flush
        monitor.kill()
        assert len(receiver.delivered) < 1000
        restarted = start_monitor(env, tmp_path, name="monitor-2")
        with running(restarted):
            assert receiver.wait_for(all_acked_delivered(ledger), timeout=30)
            assert_all_delivered(ledger, receiver, redis_client)


def test_subscriber_connection_killed_repeatedly(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env["WEBHOOK_URL"] = receiver.url
    ledger = Ledger()
    with system(env, tmp_path) as (api, monitor):
        for round_ in range(6):
            send_many(ledger, api.extra["url"], users=20, ttl=0.3, prefix=f"r{round_}-")
            killed = redis_client.client_kill_filter(_type="pubsub")
            assert killed >= 1
            time.sleep(0.4)
        assert receiver.wait_for(all_acked_delivered(ledger), timeout=20)
        assert monitor.log().count("subscribed to") >= 3  # it resubscribed by itself
    assert_all_delivered(ledger, receiver, redis_client)


def test_monitor_killed_during_a_stalled_post_redelivers_same_batch_id(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env.update(WEBHOOK_URL=receiver.url, WEBHOOK_TIMEOUT="10", DELIVERY_VISIBILITY_TIMEOUT="13")
    receiver.behaviour = lambda batch, nth: Reply(delay=30 if nth == 1 else 0)
    ledger = Ledger()
    api = start_api(env, tmp_path)
    with running(api):
        monitor = start_monitor(env, tmp_path)
        ledger.send(requests.Session(), api.extra["url"], "stall", "oi", ttl=0.2)
        assert receiver.wait_for(lambda r: len(r.received) == 1, timeout=5)
        monitor.kill()
        with running(start_monitor(env, tmp_path, name="monitor-2")):
            assert receiver.wait_for(lambda r: len(r.delivered) >= 1, timeout=20)
    first, second = receiver.received[0], receiver.received[1]
    assert first.body["batch_id"] == second.body["batch_id"]
    assert second.at - first.at >= 12  # after the lease ran out, not before
    assert_all_delivered(ledger, receiver, redis_client)


@pytest.mark.parametrize(
    ("failure", "min_gap"),
    [
        (Reply(status=500), 0.0),
        (Reply(status=429, headers={"Retry-After": "2"}), 2.0),
        (Reply(status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), 0.0),  # a date in the past
        (Reply(delay=3), 0.0),  # longer than WEBHOOK_TIMEOUT: a timeout
    ],
    ids=["500-then-200", "429-retry-after", "503-http-date", "timeout"],
)
def test_failed_post_is_retried_with_the_same_batch_id(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path, failure: Reply, min_gap: float
) -> None:
    env["WEBHOOK_URL"] = receiver.url
    receiver.behaviour = lambda batch, nth: failure if nth == 1 else Reply()
    ledger = Ledger()
    with system(env, tmp_path) as (api, monitor):
        ledger.send(requests.Session(), api.extra["url"], "flaky", "oi", ttl=0.2)
        assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=15)
        wait_log(monitor, "delivered user=flaky")
        assert "delivery failed, retrying user=flaky" in monitor.log()
    first, second = receiver.received[0], receiver.received[1]
    assert first.body["batch_id"] == second.body["batch_id"] == receiver.delivered[0]["batch_id"]
    assert second.at - first.at >= min_gap
    assert_all_delivered(ledger, receiver, redis_client)


def test_410_goes_to_dead_letters_and_replay_keeps_the_batch_id(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env["WEBHOOK_URL"] = receiver.url
    gone = failing(receiver, Reply(status=410))
    ledger = Ledger()
    with system(env, tmp_path) as (api, monitor):
        url = api.extra["url"]
        ledger.send(requests.Session(), url, "gone", "oi", ttl=0.2)
        wait_log(monitor, "dead-lettered user=gone")
        assert len(receiver.received) == 1  # not retried
        listing = requests.get(f"{url}/api/dead-letters", headers=ADMIN, timeout=5).json()
        [letter] = listing["dead_letters"]
        assert listing["total"] == 1 and letter["last_status"] == 410 and letter["attempts"] == 1
        assert letter["payload"]["messages"] == ["oi"]
        gone.clear()
        replay = requests.post(f"{url}/api/dead-letters/{letter['batch_id']}/replay", headers=ADMIN, timeout=5)
        assert replay.status_code == 200
        assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=10)
        assert requests.get(f"{url}/api/dead-letters", headers=ADMIN, timeout=5).json()["total"] == 0
        missing = requests.post(f"{url}/api/dead-letters/{letter['batch_id']}/replay", headers=ADMIN, timeout=5)
        assert missing.status_code == 404
    assert receiver.delivered[0]["batch_id"] == letter["batch_id"]
    assert_all_delivered(ledger, receiver, redis_client)


def test_exhausted_retries_dead_letter_and_can_be_deleted(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env.update(WEBHOOK_URL=receiver.url, WEBHOOK_RETRY_SCHEDULE="0.1s,0.1s")
    receiver.behaviour = lambda batch, nth: Reply(status=502)
    with system(env, tmp_path) as (api, monitor):
        url = api.extra["url"]
        requests.post(f"{url}/api/message", json={"user": "down", "message": "oi", "ttl": 0.2}, timeout=5)
        wait_log(monitor, "dead-lettered user=down")
        [letter] = requests.get(f"{url}/api/dead-letters", headers=ADMIN, timeout=5).json()["dead_letters"]
        assert letter["attempts"] == 3 and letter["last_status"] == 502 and letter["last_error"] == "HTTP 502"
        deleted = requests.delete(f"{url}/api/dead-letters/{letter['batch_id']}", headers=ADMIN, timeout=5)
        assert deleted.status_code == 200
    assert len(receiver.received) == 3
    assert redis_client.keys("datafy:*dead*") == []


def test_redis_killed_and_restarted_on_its_aof_longer_than_the_ttl(
    env: dict[str, str], receiver: Receiver, own_redis: RedisServer, tmp_path: Path
) -> None:
    env.update(WEBHOOK_URL=receiver.url, REDIS_URL=own_redis.url, WEBHOOK_RETRY_SCHEDULE=",".join(["1s"] * 30))
    outage = failing(receiver, Reply(status=503))
    ledger = Ledger()
    with system(env, tmp_path) as (api, monitor):
        url = api.extra["url"]
        send_many(ledger, url, users=30, ttl=0.3, prefix="queued-")  # sealed, deliveries failing
        client = redis.Redis.from_url(own_redis.url, decode_responses=True)
        # Sealed and tried: retrying, or waiting behind the receiver's breaker (open after 5 failures).
        assert receiver.wait_for(lambda r: len(r.received) >= 5 and not any(client.scan_iter("datafy:*:due")), 10)
        send_many(ledger, url, users=30, ttl=2, prefix="buffered-")  # still buffered
        wait_for_aof_written(client)
        own_redis.stop(signal.SIGKILL)
        assert requests.post(f"{url}/api/message", json={"user": "x", "message": "y"}, timeout=15).status_code == 503
        time.sleep(4)  # longer than the ttl: those timers will never fire an expired event
        outage.clear()
        own_redis.start()
        assert receiver.wait_for(all_acked_delivered(ledger), timeout=30)
        send_many(ledger, url, users=5, ttl=0.2, prefix="after-")  # the API recovered by itself
        assert receiver.wait_for(all_acked_delivered(ledger), timeout=10)
        assert "redis unavailable" in monitor.log()
        assert_all_delivered(ledger, receiver, redis.Redis.from_url(own_redis.url, decode_responses=True))


def test_redis_frozen_under_load(
    env: dict[str, str], receiver: Receiver, own_redis: RedisServer, tmp_path: Path
) -> None:
    env.update(WEBHOOK_URL=receiver.url, REDIS_URL=own_redis.url)
    ledger = Ledger()
    stop = threading.Event()
    with system(env, tmp_path) as (api, _monitor):
        url = api.extra["url"]

        def load(worker: int) -> None:
            session, i = requests.Session(), 0
            while not stop.is_set():
                ledger.send(session, url, f"load{worker}-{i % 5}", f"w{worker}-{i}", ttl=0.5)
                i += 1

        threads = [threading.Thread(target=load, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        own_redis.freeze()
        time.sleep(4)
        own_redis.thaw()
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join()
        assert ledger.acked_count > 20
        assert receiver.wait_for(all_acked_delivered(ledger), timeout=30)
        assert_all_delivered(ledger, receiver, redis.Redis.from_url(own_redis.url, decode_responses=True))
    assert set(ledger.statuses) <= {200, 503}, ledger.statuses  # never a 500


def test_two_monitors_never_post_a_batch_twice_at_once(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env["WEBHOOK_URL"] = receiver.url
    receiver.behaviour = lambda batch, nth: Reply(delay=0.01)
    ledger = Ledger()
    api = start_api(env, tmp_path)
    first = start_monitor(env, tmp_path, name="monitor-a")
    second = start_monitor(env, tmp_path, name="monitor-b")
    with running(first, second, api):
        send_many(ledger, api.extra["url"], users=400, per_user=2, ttl=4)  # a round of 400 POSTs must not outlast it
        assert receiver.wait_for(all_acked_delivered(ledger), timeout=30)
        time.sleep(0.5)
        logs = [proc.log() for proc in (first, second)]
    batch_ids = [r.body["batch_id"] for r in receiver.received]
    assert len(set(batch_ids)) == 400
    assert all(log.count("delivered user=") > 0 for log in logs)  # they shared the work
    # A batch is POSTed again only after an attempt that timed out, or an acknowledgement that came after the
    # lease had passed on (a process stalled: a loaded CI machine), never while another POST of it is open.
    gave_up = batches_named(logs, "delivery failed")
    explained = gave_up | batches_named(logs, "lease ran short", "after its lease had passed")
    assert {b for b in batch_ids if batch_ids.count(b) > 1} <= explained
    assert set(receiver.overlapping) <= gave_up  # the receiver still held the POST the monitor had given up on
    assert_all_delivered(ledger, receiver, redis_client)


def test_sigterm_with_a_full_pool_finishes_in_flight_and_exits_0(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env.update(WEBHOOK_URL=receiver.url, WEBHOOK_CONCURRENCY="4", SHUTDOWN_GRACE="10")
    receiver.behaviour = lambda batch, nth: Reply(delay=1.5)
    ledger = Ledger()
    api = start_api(env, tmp_path)
    with running(api):
        monitor = start_monitor(env, tmp_path)
        send_many(ledger, api.extra["url"], users=20, ttl=0.2)
        assert receiver.wait_for(lambda r: len(r.received) >= 4, timeout=10)
        monitor.signal(signal.SIGTERM)
        started = time.monotonic()
        assert monitor.process.wait(15) == 0
        assert time.monotonic() - started < 10
        assert "monitor stopped cleanly" in monitor.log()
        assert 4 <= len(receiver.delivered) < 20  # in-flight work finished, the rest left in Redis
        receiver.behaviour = lambda batch, nth: Reply()
        with running(start_monitor(env, tmp_path, name="monitor-2")):
            assert receiver.wait_for(all_acked_delivered(ledger), timeout=20)
            assert_all_delivered(ledger, receiver, redis_client)


def test_out_of_memory_answers_503_and_keeps_what_was_stored(
    env: dict[str, str], receiver: Receiver, own_redis: RedisServer, tmp_path: Path
) -> None:
    env.update(WEBHOOK_URL=receiver.url, REDIS_URL=own_redis.url)
    client = redis.Redis.from_url(own_redis.url, decode_responses=True)
    ledger = Ledger()
    api = start_api(env, tmp_path)
    with running(api):
        url = api.extra["url"]
        session = requests.Session()
        ledger.send(session, url, "warm-up", "connections open", ttl=1)
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", used + 1_000_000)
        for i in range(5000):
            if ledger.send(session, url, f"oom{i % 50}", f"{i}-" + "x" * 500, ttl=1) == 503:
                break
        assert ledger.statuses[503] == 1 and ledger.acked_count > 100
        # Still at maxmemory: the monitor drains anyway (sealing and delivering free memory) ...
        with running(start_monitor(env, tmp_path)):
            assert receiver.wait_for(all_acked_delivered(ledger), timeout=20)
            assert wait_until_drained(client, timeout=20)  # acknowledged: their memory is free
            # ... and then the API takes messages again, by itself.
            assert ledger.send(session, url, "after", "memory is free again", ttl=0.2) == 200
            assert receiver.wait_for(all_acked_delivered(ledger), timeout=10)
        client.config_set("maxmemory", 0)
    assert set(ledger.statuses) == {200, 503}
    assert_all_delivered(ledger, receiver, client)


def batches_named(logs: list[str], *phrases: str) -> set[str]:
    """The batch ids of the log lines that contain one of `phrases`."""
    lines = [line for log in logs for line in log.splitlines() if any(p in line for p in phrases)]
    return {m.group(1) for line in lines if (m := re.search(r"batch=(\w+)", line))}
