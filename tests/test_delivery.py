"""One delivery attempt, through a real receiver and Redis: every outcome is written back before it returns."""

from __future__ import annotations

from dataclasses import replace

from datafy.config import Settings
from datafy.dev.receiver import Receiver, Reply
from datafy.model import IncomingMessage
from datafy.monitor.delivery import Deliverer
from datafy.store import Store
from datafy.webhook import WebhookClient


def deliverer(settings: Settings, store: Store, receiver: Receiver) -> Deliverer:
    return Deliverer(settings, store, WebhookClient(receiver.url, settings.webhook_timeout, 4))


def sealed_claim(store: Store, user: str = "u1"):
    store.append(IncomingMessage(user=user, message="oi", ttl_ms=1000, flush_reason="request"))
    [claim] = store.claim_ready(1, 10)
    return claim


def test_delivered_then_acknowledged(settings: Settings, store: Store, receiver: Receiver) -> None:
    deliverer(settings, store, receiver).deliver(sealed_claim(store))
    assert receiver.delivered[0]["messages"] == ["oi"]
    assert store.claim_ready(10, 10) == []


def test_a_failure_is_rescheduled_then_dead_lettered(settings: Settings, store: Store, receiver: Receiver) -> None:
    settings = replace(settings, webhook_retry_schedule=(0.0,))
    receiver.behaviour = lambda batch, nth: Reply(status=503)
    worker = deliverer(settings, store, receiver)
    worker.deliver(sealed_claim(store))
    [again] = store.claim_ready(1, 10)  # rescheduled, not lost
    worker.deliver(again)
    total, [letter] = store.dead_letters(0, 10)
    assert total == 1 and letter.info["attempts"] == 2 and letter.info["last_status"] == 503


def test_a_bug_still_records_an_outcome(settings: Settings, store: Store, receiver: Receiver) -> None:
    """A batch the monitor cannot even build follows the retry schedule to the dead letters; no endless leases."""
    settings = replace(settings, webhook_retry_schedule=(0.0,))
    worker = deliverer(settings, store, receiver)
    worker.deliver(replace(sealed_claim(store), body="{not json"))
    [again] = store.claim_ready(1, 10)
    assert again.attempt == 2
    worker.deliver(replace(again, body="{not json"))
    total, [letter] = store.dead_letters(0, 10)
    assert total == 1 and letter.info["last_error"] == "internal error: JSONDecodeError"
    assert receiver.received == []
