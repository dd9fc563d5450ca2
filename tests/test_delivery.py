"""Delivery attempts through the real sender, a real receiver and Redis: every outcome is written back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from datafy.config import Settings
from datafy.dev.receiver import Receiver, Reply
from datafy.model import Claim, IncomingMessage
from datafy.monitor.delivery import Recorder
from datafy.monitor.sender import Sender
from datafy.store import Store
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
