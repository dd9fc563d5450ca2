"""The route table (datafy/routes/table.py): what one process sees of the routes, and how soon (real Redis)."""

from __future__ import annotations

import time
from dataclasses import replace

from datafy.config import Settings
from datafy.routes.route import KeyRef, Route
from datafy.routes.table import CHECK_EVERY_SECONDS, RouteTable
from datafy.store import Store

KEY_A, ADMIN_A = "key-of-loja-a-0001", "admin-of-loja-a-0003"


def loja_a(**changes: object) -> Route:
    route = Route("loja-a", "http://127.0.0.1:9/a", api_keys=(KeyRef.of(KEY_A),), admin_keys=(KeyRef.of(ADMIN_A),),
                  defaults={"ttl": 5.0}, match={"evolution_instance": ("loja",)})  # fmt: skip
    return replace(route, **changes)  # type: ignore[arg-type]


def test_a_key_created_through_another_process_works_at_once(settings: Settings, store: Store) -> None:
    """Even right after this process looked: a key it does not know makes it read the version again (the
    admin's next request may reach another worker within milliseconds of the create)."""
    other = Store(settings)  # another process: its own connection, its own table
    table = RouteTable(other.routes, settings)
    assert table.by_key(KEY_A) is None
    store.routes.put(loja_a(), create=True)
    assert table.by_key(KEY_A) == ("ingest", "loja-a")
    other.close()


def test_a_changed_route_is_seen_within_a_second(settings: Settings, store: Store) -> None:
    store.routes.put(loja_a(), create=True)
    table = RouteTable(store.routes, settings)
    assert table.settings("loja-a").default_ttl == 5.0  # type: ignore[union-attr]
    store.routes.put(loja_a(defaults={"ttl": 7.0}), create=False)
    started = time.monotonic()
    while table.settings("loja-a").default_ttl == 5.0 and time.monotonic() - started < 3:  # type: ignore[union-attr]
        time.sleep(0.02)
        table.by_match("evolution_instance", "loja")  # any lookup looks at the version once a second
    assert table.settings("loja-a").default_ttl == 7.0  # type: ignore[union-attr]
    assert time.monotonic() - started < CHECK_EVERY_SECONDS + 0.3


def test_a_route_is_found_by_its_ingest_key_its_admin_key_and_its_match(settings: Settings, store: Store) -> None:
    store.routes.put(loja_a(), create=True)
    table = RouteTable(store.routes, settings)
    assert table.by_key(KEY_A) == ("ingest", "loja-a")
    assert table.by_key(ADMIN_A) == ("admin", "loja-a")
    assert table.by_key("key-of-nobody-00000") is None and table.by_key("") is None
    assert table.by_match("evolution_instance", "loja") == "loja-a"
    assert table.by_match("evolution_instance", "other") is None
    assert table.settings("loja-a").default_ttl == 5.0  # type: ignore[union-attr]
    assert table.settings("default") is settings and table.settings("nobody") is None


def test_a_deleted_routes_keys_stop_working_but_its_batches_keep_its_settings(settings: Settings, store: Store) -> None:
    store.routes.put(loja_a(), create=True)
    table = RouteTable(store.routes, settings)
    assert [r.name for r in table.live()] == ["loja-a"]
    store.routes.delete(loja_a(), now_ms=store.connection.now_ms())
    table.refresh(force=True)
    assert table.by_key(KEY_A) is None and table.by_key(ADMIN_A) is None
    assert table.by_match("evolution_instance", "loja") is None
    assert table.live() == []
    tombstone = table.get("loja-a")
    assert tombstone is not None and tombstone.deleted_ms > 0
    assert table.settings("loja-a").webhook_url == "http://127.0.0.1:9/a"  # type: ignore[union-attr]


def test_a_route_created_a_moment_ago_is_found_by_name_at_once(settings: Settings, store: Store) -> None:
    table = RouteTable(store.routes, settings)
    assert table.get("loja-a") is None
    store.routes.put(loja_a(limits={"max_pending_chats": 3}), create=True)
    assert table.get("loja-a") is not None  # no wait for the next check: a miss asks Redis again
    assert table.pending_cap("loja-a") == 3 and table.pending_cap("default") == 0
