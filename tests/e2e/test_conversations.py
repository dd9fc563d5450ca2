"""Delivery paced for a person who is waiting: retries in seconds, the receiver's breaker, catch-up after an
outage, Retry-After pauses, MAX_BATCH_AGE and signed batches. Real API, monitor, Redis and receiver."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import redis
import requests
from standardwebhooks.webhooks import Webhook

from devtools.oracle import Ledger, all_acked_delivered, assert_all_delivered
from devtools.processes import running, start_api, start_monitor, system
from devtools.receiver import Receiver, Reply
from tests.support.env import TEST_ENV
from tests.support.load import send_many
from tests.support.signing import new_secret

ADMIN = {"Authorization": f"Bearer {TEST_ENV['ADMIN_API_KEY']}"}


def dead_letters(api_url: str) -> dict:
    return requests.get(f"{api_url}/api/dead-letters", headers=ADMIN, timeout=5).json()


def test_blips_cost_seconds_not_minutes(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """50 chats come due; every request fails for 3 s, then a random 30% of them for 20 s, then none."""
    env["WEBHOOK_URL"] = receiver.url
    del env["WEBHOOK_RETRY_SCHEDULE"]  # the default schedule, paced for a conversation
    rng, lock, started = random.Random(11), threading.Lock(), time.monotonic()

    def blips(batch: dict, nth: int) -> Reply:
        elapsed = time.monotonic() - started
        with lock:
            flaky = elapsed < 23 and rng.random() < 0.3
        return Reply(status=503) if elapsed < 3 or flaky else Reply()

    receiver.behaviour = blips
    ledger = Ledger()
    with system(env, tmp_path) as (api, _monitor):
        started = time.monotonic()
        send_many(ledger, api.extra["url"], users=50, ttl=0.3)
        assert receiver.wait_for(all_acked_delivered(ledger), timeout=60)  # each within a minute of its deadline
        assert dead_letters(api.extra["url"])["total"] == 0
    assert_all_delivered(ledger, receiver, redis_client)


def test_an_outage_longer_than_the_schedule_dead_letters_nothing_and_catches_up_at_once(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """The receiver answers 503 for 60 s while 200 chats come due (the retry schedule is 0.6 s in all): the
    monitors send one probe every few seconds, and within 10 s of the receiver's return all 200 arrive."""
    env["WEBHOOK_URL"] = receiver.url
    down = threading.Event()
    down.set()
    receiver.behaviour = lambda batch, nth: Reply(status=503) if down.is_set() else Reply()
    ledger = Ledger()
    with system(env, tmp_path) as (api, monitor):
        send_many(ledger, api.extra["url"], users=200, ttl=0.3)
        time.sleep(60)
        requests_during_outage = len(receiver.received)
        down.clear()
        back = time.time()
        assert receiver.wait_for(all_acked_delivered(ledger), timeout=10)
        recovered_in = max(r.at for r in receiver.received if r.body["user"]) - back
        assert dead_letters(api.extra["url"])["total"] == 0
        assert "receiver answers again after" in monitor.log()
    assert_all_delivered(ledger, receiver, redis_client)
    # Before the breaker opened each process sent at most its concurrency; then only probes, one every 2 s.
    assert requests_during_outage <= 2 * 32 + 60 / 2 + 5, requests_during_outage
    assert recovered_in < 10, recovered_in


def test_retry_after_pauses_the_whole_receiver(env: dict[str, str], receiver: Receiver, tmp_path: Path) -> None:
    env["WEBHOOK_URL"] = receiver.url
    receiver.behaviour = lambda batch, nth: (
        Reply(status=429, headers={"Retry-After": "3"}) if batch["user"] == "first" and nth == 1 else Reply()
    )
    with system(env, tmp_path) as (api, _monitor):
        url = f"{api.extra['url']}/api/message"
        requests.post(url, json={"user": "first", "message": "oi", "ttl": 0.2}, timeout=5)
        requests.post(url, json={"user": "second", "message": "oi", "ttl": 1.5}, timeout=5)
        assert receiver.wait_for(lambda r: len(r.delivered) == 2, timeout=15)
    paused_at = receiver.received[0].at
    assert receiver.received[0].body["user"] == "first"
    assert all(r.at - paused_at >= 3 for r in receiver.received[1:])  # no request at all within 3 s


def test_a_retry_after_of_one_second_during_a_30_s_outage_dead_letters_nothing(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Regression: a proxy answering 503 with Retry-After: 1 during a redeploy used up a batch's attempts in
    seconds."""
    env["WEBHOOK_URL"] = receiver.url
    until = time.monotonic() + 30
    receiver.behaviour = lambda batch, nth: (
        Reply(status=503, headers={"Retry-After": "1"}) if time.monotonic() < until else Reply()
    )
    ledger = Ledger()
    with system(env, tmp_path) as (api, _monitor):
        send_many(ledger, api.extra["url"], users=5, ttl=0.2)
        assert receiver.wait_for(all_acked_delivered(ledger), timeout=45)
        assert dead_letters(api.extra["url"])["total"] == 0
    assert_all_delivered(ledger, receiver, redis_client)


def test_max_batch_age_dead_letters_an_old_batch_as_expired_and_replay_delivers_it(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env.update(WEBHOOK_URL=receiver.url, MAX_BATCH_AGE="1s")
    api = start_api(env, tmp_path)
    with running(api):
        requests.post(f"{api.extra['url']}/api/message", json={"user": "late", "message": "oi", "ttl": 0.1}, timeout=5)
        time.sleep(1.5)  # no monitor ran: the customer waited too long
        with running(start_monitor(env, tmp_path)):
            deadline = time.monotonic() + 10
            while dead_letters(api.extra["url"])["total"] == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            [letter] = dead_letters(api.extra["url"])["dead_letters"]
            assert letter["reason"] == "expired" and letter["payload"]["messages"] == ["oi"]
            assert receiver.received == []  # never POSTed
            replay = requests.post(f"{api.extra['url']}/api/dead-letters/{letter['batch_id']}/replay", headers=ADMIN,
                                   timeout=5)  # fmt: skip
            assert replay.status_code == 200
            assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=10)
    assert receiver.delivered[0]["batch_id"] == letter["batch_id"]


def test_signatures_verify_for_first_attempts_retries_and_replays_and_across_rotation(
    env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    old, new = new_secret(), new_secret()
    env.update(WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=f"{old} {new}")
    receiver.behaviour = lambda batch, nth: (
        Reply(status=500) if batch["user"] == "retried" and nth == 1
        else Reply(status=410) if batch["user"] == "replayed" and nth == 1
        else Reply()
    )  # fmt: skip
    with system(env, tmp_path) as (api, _monitor):
        for user in ("first", "retried", "replayed"):
            requests.post(f"{api.extra['url']}/api/message", json={"user": user, "message": "oi", "ttl": 0.1},
                          timeout=5)  # fmt: skip
        assert receiver.wait_for(lambda r: len(r.received) == 4, timeout=10)
        deadline = time.monotonic() + 10  # the receiver counts a POST before the monitor reads its 410
        while dead_letters(api.extra["url"])["total"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        [letter] = dead_letters(api.extra["url"])["dead_letters"]
        requests.post(f"{api.extra['url']}/api/dead-letters/{letter['batch_id']}/replay", headers=ADMIN, timeout=5)
        assert receiver.wait_for(lambda r: len(r.delivered) == 3, timeout=10)
    only_new = Webhook(new)  # a receiver that already rotated to the new secret
    for post in receiver.received:
        assert only_new.verify(post.raw, post.headers)["batch_id"] == post.headers["webhook-id"]
    retried = [post for post in receiver.received if post.body["user"] == "retried"]
    assert len(retried) == 2 and retried[0].headers["webhook-id"] == retried[1].headers["webhook-id"]
