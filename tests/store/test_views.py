"""Cheap counts of the whole system (datafy/store/views.py): pending, ready, retrying, scheduled, dead."""

from __future__ import annotations

import time

from datafy.store import Store
from tests.support.messages import msg


def test_views_count_pending_ready_retrying_and_dead(store: Store) -> None:
    for user in ("a", "b", "c"):
        store.buffer.append(msg(user, "oi", ttl_ms=10))
    store.buffer.append(msg("later", "oi", ttl_ms=120_000))
    time.sleep(0.05)
    assert store.views.counts().pending_chats == 4 and store.views.counts().due_next_minute == 3
    store.buffer.flush_due(100)
    counts = store.views.counts()
    assert (counts.pending_chats, counts.ready, counts.scheduled, counts.dead_letters) == (1, 3, 0, 0)
    first, second, _in_flight = store.outbox.claim(10, 10)
    store.outbox.retry(first, 60, 500, "HTTP 500")
    store.outbox.bury(second, 410, "HTTP 410", "not_retryable")
    counts = store.views.counts()
    assert (counts.ready, counts.retrying, counts.scheduled, counts.dead_letters) == (0, 1, 2, 1)
