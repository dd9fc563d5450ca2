"""Delivery attempts through the real sender, a real receiver and Redis: every outcome is written back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from datafy.config import Settings
from datafy.model import Claim, IncomingMessage
from datafy.monitor.recorder import Recorder
from datafy.monitor.sender import LEASE_MARGIN_SECONDS, MIN_POST_SECONDS, Sender
from datafy.store import Store
from datafy.store.stats import Figures
from devtools.receiver import Receiver, Reply
from tests.conftest import TEST_ENV


@pytest.fixture
def sender(receiver: Receiver) -> Iterator[Sender]:
    settings = Settings.from_env({**TEST_ENV, "WEBHOOK_URL": receiver.url, "WEBHOOK_CONCURRENCY": "4"})
    sender = Sender(settings, on_finished=lambda: None)
    sender.start()
    yield sender
    sender.stop()


def attempt(settings: Settings, store: Store, sender: Sender, *claims: Claim) -> None:
    """Deliver `claims` and record their outcomes, as one round of the monitor's loop does."""
    done = threading.Event()
    sender.on_finished = done.set
    sender.submit(list(claims))
    finished = []
    while len(finished) < len(claims):
        assert done.wait(5)
        done.clear()
        finished += sender.take_finished()
    delivered = [sent for sent in finished if sent.result.delivered]
    assert all(store.outbox.ack_and_claim([sent.claim for sent in delivered], 0, 0)[0])
    Recorder(settings, store).failed([sent for sent in finished if not sent.result.delivered])


def sealed_claims(store: Store, *users: str) -> list[Claim]:
    for user in users:
        store.buffer.append(IncomingMessage(user=user, message=f"oi {user}", ttl_ms=1000, flush_reason="request"))
    return store.outbox.claim(len(users), 10)


def test_delivered_then_acknowledged_in_one_round(
    settings: Settings, store: Store, sender: Sender, receiver: Receiver
) -> None:
    attempt(settings, store, sender, *sealed_claims(store, "u1", "u2", "u3"))
    assert sorted(batch["messages"][0] for batch in receiver.delivered) == ["oi u1", "oi u2", "oi u3"]
    assert store.outbox.claim(10, 10) == []


def test_a_failure_is_rescheduled_then_dead_lettered(
    settings: Settings, store: Store, sender: Sender, receiver: Receiver
) -> None:
    settings = replace(settings, webhook_retry_schedule=(0.0,))
    receiver.behaviour = lambda batch, nth: Reply(status=503)
    attempt(settings, store, sender, *sealed_claims(store, "u1"))
    [again] = store.outbox.claim(1, 10)  # rescheduled, not lost
    attempt(settings, store, sender, again)
    total, [letter] = store.dead_letters.page(0, 10)
    assert total == 1 and letter.info["attempts"] == 2 and letter.info["last_status"] == 503


def test_a_bug_still_records_an_outcome(settings: Settings, store: Store, sender: Sender, receiver: Receiver) -> None:
    """A batch the monitor cannot even build follows the retry schedule to the dead letters; no endless leases."""
    settings = replace(settings, webhook_retry_schedule=(0.0,))
    [claim] = sealed_claims(store, "u1")
    attempt(settings, store, sender, replace(claim, body="{not json"))
    [again] = store.outbox.claim(1, 10)
    assert again.attempt == 2
    attempt(settings, store, sender, replace(again, body="{not json"))
    total, [letter] = store.dead_letters.page(0, 10)
    assert total == 1 and letter.info["last_error"] == "internal error: JSONDecodeError"
    assert receiver.received == []


def test_the_minute_figures_count_every_outcome_and_no_lag_for_a_replay(
    settings: Settings, store: Store, sender: Sender, receiver: Receiver
) -> None:
    settings = replace(settings, webhook_retry_schedule=(0.0,))
    recorder = Recorder(settings, store)
    receiver.behaviour = lambda batch, nth: Reply(status=503 if batch["user"] == "bad" else 200)

    def round_(*claims: Claim) -> None:
        done = threading.Event()
        sender.on_finished = done.set
        sender.submit(list(claims))
        finished: list = []
        while len(finished) < len(claims):
            assert done.wait(5)
            done.clear()
            finished += sender.take_finished()
        recorder.failed([sent for sent in finished if not sent.result.delivered])
        delivered = [sent for sent in finished if sent.result.delivered]
        assert all(store.outbox.ack_and_claim([sent.claim for sent in delivered], 0, 0)[0])
        recorder.delivered(delivered)

    round_(*sealed_claims(store, "good", "bad"))  # delivered, and a retry
    round_(*store.outbox.claim(1, 10))  # the retry fails again: dead letter
    [letter] = store.dead_letters.page(0, 10)[1]
    receiver.behaviour = lambda batch, nth: Reply()
    assert store.dead_letters.replay(letter.batch_id)
    round_(*store.outbox.claim(1, 10))  # the replay is delivered, hours late maybe, on an operator's word

    totals = Figures()
    for _, figures in store.stats.minutes(int(time.time()) // 60 * 60):
        totals.add(figures)
    assert (totals.delivered, totals.retry, totals.dead_letter) == (2, 1, 1)
    assert sum(totals.buckets) == 1 and totals.lag_ms(0.5) is not None  # the first delivery's lag only


def test_a_claim_with_too_little_lease_left_is_handed_back_unposted(
    settings: Settings, store: Store, sender: Sender, receiver: Receiver
) -> None:
    """A process stalled between lease and POST must not POST: the lease may already belong to another one."""
    [claim] = sealed_claims(store, "u1")
    stalled = replace(claim, leased_until=time.monotonic() + LEASE_MARGIN_SECONDS + MIN_POST_SECONDS / 2)
    attempt(settings, store, sender, stalled)
    assert receiver.received == []
    [again] = store.outbox.claim(1, 10)  # ready at once, and the attempt that did not happen is not counted
    assert again.batch_id == claim.batch_id and again.attempt == claim.attempt == 1
    attempt(settings, store, sender, again)
    assert [batch["batch_id"] for batch in receiver.delivered] == [claim.batch_id]


def test_a_post_ends_before_its_lease(settings: Settings, store: Store, sender: Sender, receiver: Receiver) -> None:
    """WEBHOOK_TIMEOUT is 2 s here; with 1.6 s of lease left the POST is given 1.1 s, not 2."""
    receiver.behaviour = lambda batch, nth: Reply(delay=3)
    [claim] = sealed_claims(store, "u1")
    started = time.monotonic()
    attempt(settings, store, sender, replace(claim, leased_until=started + LEASE_MARGIN_SECONDS + 1.1))
    assert time.monotonic() - started < 1.8
    time.sleep(0.3)  # the schedule's 0.2 s
    [again] = store.outbox.claim(1, 10)
    assert again.attempt == 2  # a timeout, counted: the POST was made
