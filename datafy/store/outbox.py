"""Sealed batches on their way to the webhook: leases, acknowledgements, retries, and burial."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping

from datafy.errors import StoreUnavailableError
from datafy.model import Claim, compact_json, random_id
from datafy.store.connection import Connection
from datafy.store.dead_letters import DeadLetters
from datafy.store.errors import checked, redis_errors
from datafy.store.scripts import ScriptCall

log = logging.getLogger(__name__)

CLAIM, PARK, SKIP = "claim", "park", "skip"  # what ack_and_claim does with a ready batch (see its `admit`)
ACKED, ACKED_LATE = 1, 2  # see ack_and_claim
PARK_MS = 60_000  # a parked batch is looked at again after this long at the latest (the catch-up is sooner)


class Outbox:
    """Each user's sealed batches, oldest first, and the ready index that says when each head may be tried."""

    def __init__(self, connection: Connection, dead_letters: DeadLetters) -> None:
        self.connection = connection
        self.keys = connection.keys
        self.dead_letters = dead_letters

    def claim(self, limit: int, lease_seconds: float) -> list[Claim]:
        """Lease up to `limit` batches that are ready for a delivery attempt, oldest first per user."""
        return self.ack_and_claim([], limit, lease_seconds)[1]

    def ack(self, claim: Claim) -> bool:
        """The batch was delivered: remove it and free the user's next batch; False if already acknowledged."""
        return bool(self.ack_and_claim([claim], 0, 0)[0][0])

    def ack_and_claim(
        self,
        delivered: list[Claim],
        limit: int,
        lease_seconds: float,
        partitions: Mapping[int, int] | None = None,
        admit: Callable[[str], str] | None = None,
    ) -> tuple[list[int], list[Claim]]:
        """Acknowledge `delivered` and lease up to `limit` ready batches, in two round trips in all: the
        acknowledgements travel with the read of the ready indexes, the leases follow. `partitions` maps each
        partition to poll to how overdue its batches must be (ms); None: all, on time. `admit` says of each ready
        user whether to CLAIM it, PARK it (its receiver is down) or SKIP it; None: claim every one. Each
        acknowledgement's reply is ACKED, ACKED_LATE (another process leased the batch after this one's lease ran
        out: the receiver may get it again) or 0 (already acknowledged)."""
        parts = self.keys.polled(partitions) if limit > 0 else []
        random.shuffle(parts)  # no partition always goes first when there is more work than slots
        # Near maxmemory nothing optional is kept, so that delivering frees memory and the API recovers by itself.
        kept = delivered and not self.connection.memory_tight()
        window_ms = int(self.connection.settings.answer_window * 1000) if kept else 0
        calls: list[ScriptCall] = [
            (
                "ack",
                [
                    *self._keys(c.user),
                    self.keys.answer(c.user, c.batch_id),
                    self.keys.user(c.user).hold,
                    self.keys.indexes_of(c.user).held,
                ],
                [c.user, c.batch_id, window_ms, c.token],
            )
            for c in delivered
        ]
        calls += self.connection.scripts.due_calls([(part.ready, overdue_ms) for part, overdue_ms in parts], limit)
        if not calls:
            return [], []
        with redis_errors():
            replies = self.connection.scripts.run_many(calls)
            users = [c.user for c in delivered]
            # None: that user's script failed (0, as if already acknowledged: the lease runs out and it is sent again)
            acks = [int(a or 0) for a in self.connection.scripts.per_user(users, replies[: len(delivered)], "ack")]
            ready = [user for pages, _ in checked(replies[len(delivered) :]) for page in pages for user in page]
            decisions = [admit(user) for user in ready] if admit else [CLAIM] * len(ready)
            candidates = [user for user, decision in zip(ready, decisions, strict=True) if decision == CLAIM][:limit]
            parked = [user for user, decision in zip(ready, decisions, strict=True) if decision == PARK]
            if not candidates and not parked:
                return acks, []
            tokens = [random_id() for _ in candidates]
            lease_ms = int(lease_seconds * 1000)
            leased_until = time.monotonic() + lease_seconds  # before the request: Redis's lease ends later
            leases: list[ScriptCall] = [
                ("claim", self._keys(user), [user, lease_ms, token])
                for user, token in zip(candidates, tokens, strict=True)
            ]
            k = self.keys
            leases += [("park", [k.indexes_of(u).ready, k.retrying_of(u)], [u, PARK_MS]) for u in parked]
            replies = self.connection.scripts.run_many(leases)[: len(candidates)]
            replies = self.connection.scripts.per_user(candidates, replies, "claim")
        claims = [
            Claim(user, r[0], r[1], int(r[2]), token, replayed=r[3] == 1, leased_until=leased_until)
            for user, token, r in zip(candidates, tokens, replies, strict=True)
            if r  # None: another monitor took it first, it was not ready after all, or its script failed
        ]
        return acks, claims

    def retry(self, claim: Claim, delay_seconds: float, status: int | None, error: str, counted: bool = True) -> bool:
        """Record a failed attempt and schedule the next one; False if our lease was lost meanwhile. An attempt
        that is not `counted` (the receiver's breaker was open) does not bring the batch nearer its dead letter."""
        args = [claim.user, claim.batch_id, claim.token, int(delay_seconds * 1000), status or 0, error, int(counted)]
        with redis_errors():
            return bool(self.connection.scripts.run("retry", self._keys(claim.user), args))

    def bury(self, claim: Claim, status: int | None, error: str, reason: str) -> tuple[bool, int]:
        """Move the batch to the dead letters, saying why (`reason`: not_retryable, retries_exhausted or expired);
        returns (moved, how many old dead letters were trimmed)."""
        k = self.keys.user(claim.user)
        part = self.keys.indexes_of(claim.user)
        args = [claim.user, compact_json(claim.user), claim.batch_id, claim.token, json.dumps(status),
                compact_json(error), reason]  # fmt: skip
        with redis_errors():
            moved = bool(
                self.connection.scripts.run("bury", [part.ready, k.outbox, k.batches, part.dead, part.dead_data], args)
            )
        if not moved:
            return False, 0
        try:
            return True, self.dead_letters.trim()
        except StoreUnavailableError as exc:  # the batch is buried; the next bury trims
            log.warning("could not trim dead letters: %s", exc)
            return True, 0

    def _keys(self, user: str) -> list[str]:
        k, part = self.keys.user(user), self.keys.indexes_of(user)
        return [part.ready, k.outbox, k.batches, self.keys.retrying_of(user)]
