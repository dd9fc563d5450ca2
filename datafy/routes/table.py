"""Every route, as one process sees it: loaded from Redis, cached, and reloaded when the table's version changes
(looked at most once a second, so a change reaches every worker and monitor within about a second)."""

from __future__ import annotations

import logging
import threading
import time

from datafy.config import Settings
from datafy.errors import StoreUnavailableError
from datafy.routes.chats import DEFAULT_ROUTE
from datafy.routes.route import Route, key_hash
from datafy.store.routes import Routes

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 1.0


class RouteTable:
    """Routes by name, by key hash and by match, with each route's settings; thread-safe."""

    def __init__(self, routes: Routes, base: Settings) -> None:
        self.routes = routes
        self.base = base
        self.version = -1
        self.checked = -CHECK_EVERY_SECONDS
        self._lock = threading.Lock()
        self._by_name: dict[str, Route] = {}
        self._by_key: dict[str, tuple[str, str]] = {}  # key hash -> (kind, route name)
        self._by_match: dict[str, str] = {}
        self._settings: dict[str, Settings] = {}

    def refresh(self, max_age: float = CHECK_EVERY_SECONDS, force: bool = False) -> None:
        """Make the table no older than `max_age` seconds: reload when the version changed (`force`: reload in any
        case). Without `force`, a look that began after this call did counts, so a crowd of callers shares one
        Redis read. A Redis that cannot answer leaves the last table in place: requests then fail on their own
        Redis call, not here."""
        asked = time.monotonic()
        if not force and self.checked > asked - max_age:
            return
        with self._lock:
            if not force and self.checked >= asked - max_age:
                return
            self.checked = time.monotonic()
            try:
                if self.routes.version() == self.version and not force:
                    return
                version, routes = self.routes.load()
            except StoreUnavailableError as exc:
                log.debug("routes not reloaded: %s", exc)
                return
            self._install(version, routes)

    def _install(self, version: int, routes: dict[str, Route]) -> None:
        by_key, by_match = {}, {}
        for route in routes.values():
            if route.deleted_ms:
                continue
            for hashed, kind in route.key_entries():
                by_key[hashed] = (kind, route.name)
            for entry in route.matches():
                by_match[entry] = route.name
        self._by_name, self._by_key, self._by_match = routes, by_key, by_match
        self._settings = {}
        if version != self.version:
            log.info("routes loaded version=%d routes=%d", version, sum(1 for r in routes.values() if not r.deleted_ms))
        self.version = version

    def by_key(self, key: str) -> tuple[str, str] | None:
        """(kind, route name) of the route key `key` ('ingest' or 'admin'), or None."""
        if not key:
            return None
        self.refresh()
        hashed = key_hash(key)
        found = self._by_key.get(hashed)
        if found is None:
            # Maybe a key created a moment ago through another worker: look at the version as of now. Wrong keys
            # then cost one version read each, shared by every request that missed meanwhile.
            self.refresh(max_age=0)
            found = self._by_key.get(hashed)
        return found  # looked up by the key's hash: the lookup's timing tells nothing of the key

    def by_match(self, kind: str, value: str) -> str | None:
        """The route that matches `kind` (evolution_instance, whatsapp_phone_number_id) = `value`, or None."""
        self.refresh()
        return self._by_match.get(f"{kind}:{value}")

    def get(self, name: str) -> Route | None:
        """A route by name, deleted ones included (their batches still go out), or None."""
        self.refresh()
        route = self._by_name.get(name)
        if route is None and name != DEFAULT_ROUTE:
            self.refresh(force=True)  # a route created a moment ago, before this process looked
            route = self._by_name.get(name)
        return route

    def cached(self, name: str) -> Route | None:
        """A route by name from this process's cache, never asking Redis (for an event loop that must not wait)."""
        return self._by_name.get(name)

    def names_to(self, url: str) -> list[str]:
        """The routes (deleted ones too) whose batches go to `url`, from this process's cache."""
        return [route.name for route in self._by_name.values() if route.webhook_url == url]

    def live(self) -> list[Route]:
        """Every route not deleted, by name."""
        self.refresh()
        return sorted((r for r in self._by_name.values() if not r.deleted_ms), key=lambda r: r.name)

    def settings(self, name: str | None) -> Settings | None:
        """The settings of `name`'s requests and deliveries: the environment's for `default`; None for a route this
        table does not know (never another route's webhook for its batches)."""
        if name is None or name == DEFAULT_ROUTE:
            return self.base
        cached = self._settings.get(name)
        if cached is None:
            route = self.get(name)
            if route is None:
                return None
            cached = self._settings[name] = route.settings(self.base)
        return cached

    def pending_cap(self, name: str | None) -> int:
        """The route's own max_pending_chats (0: only the global MAX_PENDING_CHATS applies)."""
        route = self.get(name) if name and name != DEFAULT_ROUTE else None
        return route.limits.get("max_pending_chats", 0) if route else 0
