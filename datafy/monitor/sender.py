"""POSTs leased batches concurrently from one asyncio event loop, in a thread of its own.

The monitor's loop hands claims over with submit(); each finished attempt lands in a queue that the loop
takes with take_finished() and records in Redis in one round trip. Nothing here talks to Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from datafy.config import Settings
from datafy.model import Claim, epoch_of
from datafy.payload import webhook_body_of
from datafy.routes.chats import DEFAULT_ROUTE, route_of
from datafy.routes.table import RouteTable
from datafy.signing import Signer
from datafy.webhook import DeliveryResult, WebhookClient

log = logging.getLogger(__name__)

EXPIRED = "expired"  # the error of a batch older than MAX_BATCH_AGE, dead-lettered without a POST
# The error of a batch whose route this process has not loaded yet (created a moment ago): tried again shortly.
UNKNOWN_ROUTE = "route not loaded yet"
# The error of a batch not POSTed because too little of its lease was left (this process was stalled): a
# POST must end before the lease can pass to another process, or two would be open at once.
LEASE_SHORT = "lease ran short before the POST"
NOT_POSTED = frozenset({EXPIRED, LEASE_SHORT, UNKNOWN_ROUTE})
MIN_POST_SECONDS = 1.0  # a POST gets at least this much of its lease, or is not started
LEASE_MARGIN_SECONDS = 0.5  # a POST ends this long before its lease: timers of a busy event loop fire late


@dataclass(frozen=True)
class Sent:
    """One finished delivery attempt: the claim, how the POST went, and the batch's facts for the log line."""

    claim: Claim
    result: DeliveryResult
    sequence: int = 0
    messages: int = 0
    reason: str = ""
    due_ms: int = 0  # the deadline the batch was sealed for (Redis's clock); 0: unknown
    finished_ms: int = field(default_factory=lambda: int(time.time() * 1000))  # when the POST ended
    await_ms: int = 0  # await_answer: once delivered, the chat's next batch waits this long for the verdict

    @property
    def lag_ms(self) -> float | None:
        """Arrival at the receiver minus the batch's deadline; None when unknown, or for a replayed dead letter
        (delivered when an operator asked, not late)."""
        return float(self.finished_ms - self.due_ms) if self.due_ms and not self.claim.replayed else None


class Sender:
    """Runs every POST of one monitor process on an event loop; thread-safe submit() and take_finished()."""

    def __init__(self, settings: Settings, on_finished: Callable[[], None], routes: RouteTable | None = None) -> None:
        self.settings = settings
        self.routes = routes  # read from its cache only: the monitor's loop refreshes it, never this event loop
        self._targets: dict[tuple[str, int], tuple[str, Signer | None]] = {}
        self.concurrency = settings.webhook_concurrency
        self.on_finished = on_finished
        # Wake the monitor's loop once this many attempts wait to be recorded (or none is left running), so
        # one round trip records several; the loop also looks at least every FLUSH_POLL_INTERVAL.
        self.wake_after = max(1, self.concurrency // 8)
        self.finished: deque[Sent] = deque()
        self.loop = asyncio.new_event_loop()
        self._running = 0  # attempts started and not yet finished; touched on the loop's thread only
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: WebhookClient | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="sender", daemon=True)

    def start(self) -> None:
        """Start the loop's thread and open the HTTP session."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self.loop).result()

    def submit(self, claims: list[Claim]) -> None:
        """Start delivering `claims` (from any thread)."""
        if claims:
            self.loop.call_soon_threadsafe(self._start, claims)

    def take_finished(self) -> list[Sent]:
        """Every attempt finished since the last call, oldest first (from any thread)."""
        taken = []
        while self.finished:
            taken.append(self.finished.popleft())
        return taken

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel what is still running (its leases hand the batches on), close the session, end the thread."""
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout)
        except (FutureTimeout, RuntimeError) as exc:
            log.warning("sender did not close cleanly: %r", exc)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()

    async def _open(self) -> None:
        s = self.settings
        signer = Signer(s.webhook_secrets) if s.webhook_secrets else None
        self._client = WebhookClient(s.webhook_url, s.webhook_timeout, s.webhook_concurrency, signer)

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()

    def _start(self, claims: list[Claim]) -> None:
        for claim in claims:
            task = self.loop.create_task(self._deliver(claim))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._running += len(claims)

    async def _deliver(self, claim: Claim) -> None:
        """One attempt; whatever happens, it ends in exactly one Sent, so no slot is ever lost."""
        assert self._client is not None
        try:
            record = json.loads(claim.body)
            route = route_of(claim.user)
            target = None if route == DEFAULT_ROUTE else self._target(route)  # None: this client's own
            body = webhook_body_of(record, self.settings.public_url, route)
            if route != DEFAULT_ROUTE and target is None:
                result = DeliveryResult(False, None, UNKNOWN_ROUTE, True, None, 0.0)
            elif not claim.replayed and self._expired(body):
                result = DeliveryResult(False, None, EXPIRED, False, None, 0.0)
            else:
                payload = json.dumps(body, ensure_ascii=False).encode()
                # Measured after encoding: a batch of megabytes on a starved CPU takes a while to encode.
                left = claim.leased_until - time.monotonic() - LEASE_MARGIN_SECONDS
                if left < MIN_POST_SECONDS:
                    result = DeliveryResult(False, None, LEASE_SHORT, True, None, 0.0)
                else:
                    result = await self._client.send_batch(payload, claim.batch_id, within=left, to=target)
            due_ms = int(record.get("due_ms") or record["sealed_ms"])  # batches sealed before 1.1 have no due_ms
            sent = Sent(
                claim,
                result,
                body["sequence"],
                body["message_count"],
                body["flush_reason"],
                due_ms,
                await_ms=int(record.get("await_ms", 0)),
            )
        except asyncio.CancelledError:  # stopping: the lease hands the batch on
            raise
        except Exception as exc:  # a stored batch we cannot read, or a bug: not the receiver's fault
            log.exception("delivery failed unexpectedly user=%s batch=%s", claim.user, claim.batch_id)
            sent = Sent(claim, DeliveryResult(False, None, f"internal error: {type(exc).__name__}", True, None, 0.0))
        self._finish(sent)

    def _target(self, route: str) -> tuple[str, Signer | None] | None:
        """Where a batch of `route` goes and how it is signed (a deleted route keeps its last settings); None
        while this process has not loaded the route."""
        cached = self.routes.cached(route) if self.routes else None
        if cached is None:
            return None
        key = (route, cached.updated_ms)
        if key not in self._targets:
            self._targets[key] = (
                cached.webhook_url,
                Signer(cached.webhook_secrets) if cached.webhook_secrets else None,
            )
        return self._targets[key]

    def _expired(self, body: dict[str, Any]) -> bool:
        """Whether MAX_BATCH_AGE is set and the batch's first message is older: not worth an answer any more."""
        max_age = self.settings.max_batch_age
        return bool(max_age) and time.time() - epoch_of(body["first_message_at"]) > max_age

    def _finish(self, sent: Sent) -> None:
        self.finished.append(sent)
        self._running -= 1
        if self._running == 0 or len(self.finished) >= self.wake_after:
            self.on_finished()
