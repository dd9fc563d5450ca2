"""Messages into the store and batches out of it, as the API and a monitor with a perfect webhook would."""

from __future__ import annotations

from datafy.model import IncomingMessage
from datafy.payload import webhook_body
from datafy.store import Store


def msg(user: str, text: object, ttl_ms: int = 50, **kwargs: object) -> IncomingMessage:
    """A message for `user`, due `ttl_ms` after it arrives."""
    return IncomingMessage(user=user, message=text, ttl_ms=ttl_ms, **kwargs)  # type: ignore[arg-type]


def deliver_all(store: Store) -> list[dict]:
    """Claim and acknowledge every ready batch, as a monitor with a perfect webhook would."""
    bodies = []
    while claims := store.outbox.claim(100, 10):
        for claim in claims:
            bodies.append(webhook_body(claim.body))
            assert store.outbox.ack(claim)
    return bodies
