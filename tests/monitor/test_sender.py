"""The sender (datafy/monitor/sender.py) through a real receiver and Redis: POSTs within their lease, a claim
with too little lease left handed back unposted, a bug turned into a failed attempt."""

from __future__ import annotations

import time
from dataclasses import replace

from datafy.config import Settings
from datafy.monitor.sender import LEASE_MARGIN_SECONDS, MIN_POST_SECONDS, Sender
from datafy.store import Store
from devtools.receiver import Receiver, Reply
from tests.support.delivery import attempt, sealed_claims


def test_delivered_then_acknowledged_in_one_round(
    settings: Settings, store: Store, sender: Sender, receiver: Receiver
) -> None:
    attempt(settings, store, sender, *sealed_claims(store, "u1", "u2", "u3"))
    # The receiver counts a batch delivered once its 200 is written: the sender may read it a moment before.
    assert receiver.wait_for(lambda r: len(r.delivered) == 3, timeout=5)
    assert sorted(batch["messages"][0] for batch in receiver.delivered) == ["oi u1", "oi u2", "oi u3"]
    assert store.outbox.claim(10, 10) == []


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
    assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=5)
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
