"""Every receiver one monitor delivers to, each behind its own shared breaker (datafy/monitor/gate.py).

A receiver that is down holds back only the routes that deliver to it: their ready batches are parked (set
aside in their route's `retrying` index) instead of leased, one probe at a time tests it, and when it answers
again the catch-up makes its parked batches due. Every other route's batches go on as usual.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from datafy.config import Settings
from datafy.monitor.gate import SYNC_EVERY_SECONDS, ReceiverGate
from datafy.monitor.sender import Sent
from datafy.routes.chats import DEFAULT_ROUTE, route_of
from datafy.routes.table import RouteTable
from datafy.store import Store
from datafy.store.breaker import Breaker
from datafy.store.outbox import CLAIM, PARK, SKIP


class Admission:
    """One round's decisions: which ready batches to lease, park or skip, and the probe turns it may use."""

    def __init__(self, url_of: Callable[[str], str | None], open_urls: set[str], probes: dict[str, ReceiverGate]):
        self.url_of = url_of
        self.open_urls = open_urls
        self.turns = dict(probes)  # url -> its gate, while its probe turn is unused

    def decide(self, chat: str) -> str:
        """Lease it, unless its receiver is down: then it is the probe (once per turn) or parked."""
        url = self.url_of(chat)
        if url is None or url not in self.open_urls:
            return CLAIM  # a route not loaded yet: the sender hands it back at once
        return CLAIM if self.turns.pop(url, None) else PARK

    def probe_only(self, chat: str) -> str:
        """For the probe round over every partition: only a batch that uses a probe turn; nothing else moves."""
        url = self.url_of(chat)
        return CLAIM if url is not None and self.turns.pop(url, None) else SKIP

    def release_unused(self) -> None:
        """A probe turn that found nothing to send goes back (the next probe comes at the usual pace)."""
        for gate in self.turns.values():
            gate.unused_probe()
        self.turns = {}


class Gates:
    """One ReceiverGate per webhook URL in use; WEBHOOK_URL's always exists (it is the route `default`'s)."""

    def __init__(self, store: Store, settings: Settings, routes: RouteTable) -> None:
        self.store = store
        self.settings = settings
        self.routes = routes
        self.default = ReceiverGate(store.breaker, lambda: self._routes_to(settings.webhook_url))
        self._gates = {settings.webhook_url: self.default}

    def url_of(self, chat: str) -> str | None:
        """The webhook URL a chat's batches go to; None for a route this process has not loaded yet."""
        route = route_of(chat)
        if route == DEFAULT_ROUTE:
            return self.settings.webhook_url
        cached = self.routes.cached(route)
        return cached.webhook_url if cached else None

    def settle(self, finished: list[Sent], claiming: bool) -> None:
        """Feed each receiver's outcomes to its breaker; gates with nothing to tell and nothing to wait for stay
        quiet, so a hundred idle routes cost no Redis calls."""
        groups: dict[str, list[Sent]] = {}
        for sent in finished:
            url = self.url_of(sent.claim.user)
            if url is not None:
                groups.setdefault(url, []).append(sent)
        now = time.monotonic()
        busy = {url for url, gate in self._gates.items() if gate.state.troubled or gate.release >= 0
                or (gate.unreported and now - gate.synced >= SYNC_EVERY_SECONDS)}  # fmt: skip
        for url in {self.settings.webhook_url, *groups, *busy}:
            self._gate(url).settle(groups.get(url, []), claiming)

    def counts_attempts(self, sent: Sent) -> bool:
        """Whether a failed attempt brings its batch nearer the dead letter (not while its receiver is down)."""
        url = self.url_of(sent.claim.user)
        gate = self._gates.get(url) if url is not None else None
        return gate.state.counts_attempts if gate else True

    def admission(self) -> Admission:
        """This round's admission, with the probe turns granted to this process."""
        open_urls = {url for url, gate in self._gates.items() if gate.state.open}
        probes = {url: self._gates[url] for url in open_urls if self._gates[url].allowance(1)[1]}
        return Admission(self.url_of, open_urls, probes)

    def _gate(self, url: str) -> ReceiverGate:
        gate = self._gates.get(url)
        if gate is None:
            breaker = Breaker(self.store.connection, url, self.settings.webhook_timeout)
            gate = self._gates[url] = ReceiverGate(breaker, lambda: self._routes_to(url))
        return gate

    def _routes_to(self, url: str) -> list[str]:
        """The routes whose batches go to `url` (deleted ones too: their accepted batches still go out)."""
        names = [DEFAULT_ROUTE] if url == self.settings.webhook_url else []
        return names + self.routes.names_to(url)
