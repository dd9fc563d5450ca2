"""A batch after it left: where it is, whether the chat said more since it was sealed (the answer guard), and the
workflow's verdict on it, answered or unanswered (the carry-over). Delivered batches stay readable for
ANSWER_WINDOW."""

from __future__ import annotations

import json
from dataclasses import dataclass

from datafy.model import compact_json
from datafy.routes.chats import user_of
from datafy.store.buffer import new_batch_id
from datafy.store.connection import Connection
from datafy.store.errors import redis_errors


@dataclass(frozen=True)
class BatchState:
    """One batch as the answer guard reports it."""

    user: str
    batch_id: str
    sequence: int
    state: str  # pending | delivering | delivered | answered | unanswered | dead_letter
    newer_messages: int  # messages the API acknowledged in this chat after the batch was sealed


@dataclass(frozen=True)
class Verdict:
    """What an answered/unanswered call did: `outcome` is answered, carried, same (said before), conflict (the
    batch is not delivered, or got the other verdict) or unknown; `state` the batch's state after it."""

    outcome: str
    state: str = ""
    carried: int = 0  # messages put back in front of the chat's buffer
    flush_at_ms: int = 0  # when the chat's open batch is due (0: nothing open)
    released: bool = False  # the chat was waiting for this verdict (await_answer): its next batch goes now
    sealed: str = ""  # the batch that waited and was sealed now ('' none)


class Answers:
    """The answer window's reads and writes, each on the chat's own slot."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.keys = connection.keys

    def state(self, user: str, batch_id: str) -> BatchState | None:
        """Where `batch_id` of `user` is, in one round trip; None when unknown (or older than the window)."""
        k, part = self.keys.user(user), self.keys.indexes_of(user)
        keys = [self.keys.answer(user, batch_id), k.batches, k.outbox, part.ready, part.dead_data, k.sealed, k.meta]
        with redis_errors():
            reply = self.connection.scripts.run("answer_state", keys, [batch_id, user])
        if not reply:
            return None
        state, numbers, sealed, open_count, body, dead_info = reply
        if dead_info and json.loads(dead_info).get("user") != user:
            return None  # another chat's dead letter: unknown to this chat
        if numbers:
            sequence, through = (int(part) for part in numbers.split(":"))
        else:  # a batch sealed before the guard existed, or a dead letter: read it from its body
            record = json.loads(body)
            sequence, through = int(record["sequence"]), int(record.get("through", 0))
        newer = max(0, int(sealed) - through + int(open_count)) if through else 0
        return BatchState(user, batch_id, sequence, state, newer)

    def answered(self, user: str, batch_id: str) -> Verdict:
        """The workflow answered this delivered batch."""
        return self._verdict(user, batch_id, "answered", [0, 0, 0])

    def unanswered(self, user: str, batch_id: str) -> Verdict:
        """The workflow did not answer it: its messages go back to the front of the chat's buffer, items intact,
        and the next batch carries them (its `carried_over` names this batch)."""
        with redis_errors():
            body = self.connection.client.hget(self.keys.answer(user, batch_id), "body")
        if body is None:
            return Verdict("unknown")
        record = json.loads(body)
        # compact_json gives back the exact text append stored: "[received_ms,{item}]".
        items = [compact_json(entry) for entry in record["items"]]
        metadata = [text for name, value in record["metadata"].items() for text in (compact_json(name),
                    compact_json(value))]  # fmt: skip
        ttl_ms = int(record.get("ttl_ms") or self.connection.settings.default_ttl * 1000)
        return self._verdict(user, batch_id, "unanswered", [ttl_ms, record["first_ms"], len(items), *items, *metadata])

    def _verdict(self, user: str, batch_id: str, verdict: str, rest: list[str | int]) -> Verdict:
        k, part = self.keys.user(user), self.keys.indexes_of(user)
        keys = [k.buffer, k.meta, k.timer, k.sequence, k.outbox, k.batches, part.due, part.ready, k.sealed, k.hold,
                k.pause, self.keys.answer(user, batch_id), part.held]  # fmt: skip
        args = [user, compact_json(user_of(user)), batch_id, verdict, new_batch_id(),
                int(self.connection.settings.sequence_ttl), *rest]  # fmt: skip
        with redis_errors():
            reply = self.connection.scripts.run("answer", keys, args)
        outcome = reply[0]
        if outcome in ("same", "conflict"):
            return Verdict(outcome, reply[1])
        if outcome == "unknown":
            return Verdict("unknown")
        return Verdict(outcome, verdict, int(reply[1]), int(reply[2]), released=bool(reply[3]), sealed=reply[4])

    def pause(self, user: str, seconds: float) -> int:
        """A person took the chat over for `seconds`: its batches still go out, marked paused. Returns until (ms)."""
        until = self.connection.now_ms() + int(seconds * 1000)  # the Redis clock, as every deadline
        keys = [self.keys.user(user).pause, self.keys.indexes_of(user).paused]
        with redis_errors():
            self.connection.scripts.run("pause", keys, [user, until])
        return until

    def resume(self, user: str) -> bool:
        """The person handed the chat back to the AI; False when it was not paused."""
        keys = [self.keys.user(user).pause, self.keys.indexes_of(user).paused]
        with redis_errors():
            return bool(self.connection.scripts.run("pause", keys, [user, 0]))
