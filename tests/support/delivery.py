"""Rounds of delivery as the monitor's loop runs them: sealed claims in, POSTs by the sender, outcomes recorded."""

from __future__ import annotations

import threading

from datafy.config import Settings
from datafy.model import Claim, IncomingMessage
from datafy.monitor.recorder import Recorder
from datafy.monitor.sender import Sender
from datafy.store import Store


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
    """One sealed batch for each of `users`, claimed."""
    for user in users:
        store.buffer.append(IncomingMessage(user=user, message=f"oi {user}", ttl_ms=1000, flush_reason="request"))
    return store.outbox.claim(len(users), 10)
