"""What a chat leaves behind in Redis, and how long typing can hold it back (real Redis)."""

from __future__ import annotations

from dataclasses import replace

import redis

from datafy.model import IncomingMessage
from datafy.store import Store


def test_a_delivered_chat_leaves_its_numbering_for_sequence_ttl_and_the_batch_for_answer_window(
    store: Store, redis_client: redis.Redis
) -> None:
    store.buffer.append(IncomingMessage(user="5511", message="oi", ttl_ms=1000, flush_reason="request"))
    [claim] = store.outbox.claim(1, 60)
    store.outbox.ack(claim)
    k = store.keys.user("5511")
    answer = store.keys.answer("5511", claim.batch_id)
    assert sorted(redis_client.keys("*5511*")) == sorted([k.sequence, k.sealed, answer])
    for key in (k.sequence, k.sealed):
        assert 0 < redis_client.ttl(key) <= store.settings.sequence_ttl == 86400
        assert redis_client.memory_usage(key) <= 128  # what each user id costs for a day (docs/SECURITY.md)
    assert 0 < redis_client.ttl(answer) <= store.settings.answer_window == 600


def test_typing_holds_a_batch_at_most_max_typing_extension_past_its_last_message(store: Store) -> None:
    result = store.buffer.append(IncomingMessage(user="5511", message="oi", ttl_ms=2000))
    deadline = store.buffer.extend("5511", 86400 * 1000)
    assert deadline is not None and deadline <= result.flush_at_ms - 2000 + 60_000 + 50  # last message + 60 s


def test_typing_is_unbounded_when_max_typing_extension_is_0(store: Store) -> None:
    store.buffer.settings = replace(store.settings, max_typing_extension=0)
    result = store.buffer.append(IncomingMessage(user="5511", message="oi", ttl_ms=2000))
    deadline = store.buffer.extend("5511", 3600 * 1000)
    assert deadline is not None and deadline >= result.flush_at_ms + 3000_000
