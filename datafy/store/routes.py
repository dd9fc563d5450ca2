"""The route table in Redis: one row per route, an index from a key's hash to its route, one from a match
(an Evolution instance, a WhatsApp number) to its route, and a version every change bumps. All on one slot."""

from __future__ import annotations

import json
from dataclasses import replace

from datafy.errors import ApiError
from datafy.routes.chats import chat_prefix
from datafy.routes.route import Route
from datafy.store.connection import Connection
from datafy.store.errors import redis_errors

SCAN_COUNT = 1000


class Routes:
    """Create, replace, delete and read routes; every change is one script."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.keys = connection.keys.routes()

    def version(self) -> int:
        """The table's version: any change to any route bumps it."""
        with redis_errors():
            return int(self.connection.client.get(self.keys.version) or 0)

    def load(self) -> tuple[int, dict[str, Route]]:
        """(version, every route by name, deleted ones included), read together."""
        with redis_errors():
            pipe = self.connection.client.pipeline(transaction=True)
            pipe.get(self.keys.version).hgetall(self.keys.rows)
            version, rows = pipe.execute()
        routes = {name: Route.from_row(json.loads(row)) for name, row in rows.items()}
        return int(version or 0), routes

    def get(self, name: str) -> Route | None:
        """One route (deleted ones included), or None."""
        with redis_errors():
            row = self.connection.client.hget(self.keys.rows, name)
        return Route.from_row(json.loads(row)) if row else None

    def put(self, route: Route, create: bool) -> int:
        """Store `route` (`create`: a new name; else it replaces a live route); returns the new version.
        409 when a key or a match belongs to another route, or the name is taken (create)."""
        args: list[object] = [route.name, json.dumps(route.to_row()), "create" if create else "replace"]
        pairs = route.key_entries()
        args.append(len(pairs))
        for key_hash, kind in pairs:
            args += [key_hash, kind]
        args += route.matches()
        k = self.keys
        with redis_errors():
            reply = self.connection.scripts.run("route_put", [k.rows, k.keys, k.match, k.version], args)
        if reply[0] == "exists":
            raise ApiError(409, "route_exists", f"a route named {route.name!r} exists: PUT /api/routes/{route.name} "
                           "changes it", "name")  # fmt: skip
        if reply[0] == "missing":
            raise ApiError(404, "not_found", f"no route named {route.name!r}")
        if reply[0] == "key_taken":
            raise ApiError(409, "key_taken", "one of the keys belongs to another route", "api_keys")
        if reply[0] == "match_taken":
            raise ApiError(409, "match_taken", f"another route already matches {reply[1]}", "match")
        return int(reply[1])

    def delete(self, route: Route, now_ms: int) -> int:
        """Mark `route` deleted: its keys and matches stop working; its row stays for its accepted batches."""
        row = json.dumps(replace(route, deleted_ms=now_ms, updated_ms=now_ms).to_row())
        k = self.keys
        with redis_errors():
            reply = self.connection.scripts.run("route_delete", [k.rows, k.keys, k.match, k.version], [route.name, row])
        if reply[0] == "missing":
            raise ApiError(404, "not_found", f"no route named {route.name!r}")
        return int(reply[1])

    def has_work(self, name: str) -> bool:
        """Whether any chat of the route has a pending or undelivered batch, or a dead letter (a scan: for the
        rare delete, never for a request's hot path)."""
        prefix = chat_prefix(name)  # no glob characters: a route's name is [a-z0-9-]
        client = self.connection.client
        with redis_errors():
            for part in self.connection.keys.all_partitions():
                for index in (part.due, part.ready):
                    for _ in client.zscan_iter(index, match=prefix + "*", count=SCAN_COUNT):
                        return True
                for _, info in client.hscan_iter(part.dead_data, match="i:*", count=SCAN_COUNT):
                    if json.loads(info)["user"].startswith(prefix):
                        return True
        return False
