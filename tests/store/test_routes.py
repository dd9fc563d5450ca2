"""The route table in Redis (datafy/store/routes.py): conflicts, deletes and what a route still has to deliver."""

from __future__ import annotations

import pytest

from datafy.errors import ApiError
from datafy.routes.chats import chat_id
from datafy.routes.route import KeyRef, Route
from datafy.store import Store
from tests.support.messages import msg

KEY_A, KEY_B = "key-of-loja-a-0001", "key-of-loja-b-0002"


def route(name: str, *keys: str, match: tuple[str, ...] = ()) -> Route:
    return Route(name, f"http://127.0.0.1:9/{name}", api_keys=tuple(KeyRef.of(k) for k in keys),
                 match={"evolution_instance": match} if match else {})  # fmt: skip


def refused(store: Store, given: Route, create: bool) -> ApiError:
    with pytest.raises(ApiError) as caught:
        store.routes.put(given, create=create)
    return caught.value


def test_a_key_a_match_or_a_name_already_taken_is_a_conflict(store: Store) -> None:
    store.routes.put(route("loja-a", KEY_A, match=("loja",)), create=True)
    error = refused(store, route("loja-b", KEY_A), create=True)
    assert (error.status, error.code, error.field) == (409, "key_taken", "api_keys")
    error = refused(store, route("loja-b", KEY_B, match=("loja",)), create=True)
    assert (error.status, error.code, error.field) == (409, "match_taken", "match")
    error = refused(store, route("loja-a", KEY_B), create=True)
    assert (error.status, error.code) == (409, "route_exists")
    error = refused(store, route("loja-c", KEY_B), create=False)
    assert (error.status, error.code) == (404, "not_found")
    assert set(store.routes.load()[1]) == {"loja-a"}  # nothing refused was written


def test_a_replacement_may_keep_its_own_keys_and_drop_the_others(store: Store) -> None:
    store.routes.put(route("loja-a", KEY_A, KEY_B), create=True)
    store.routes.put(route("loja-a", KEY_A), create=False)
    store.routes.put(route("loja-b", KEY_B), create=True)  # KEY_B was given up by loja-a
    assert [k.last4 for k in store.routes.get("loja-a").api_keys] == ["0001"]  # type: ignore[union-attr]


def test_a_deleted_routes_keys_and_matches_are_free_and_its_name_reusable(store: Store) -> None:
    first = route("loja-a", KEY_A, match=("loja",))
    before = store.routes.put(first, create=True)
    after = store.routes.delete(first, now_ms=store.connection.now_ms())
    assert after > before
    tombstone = store.routes.get("loja-a")
    assert tombstone is not None and tombstone.deleted_ms > 0
    keys = store.routes.keys
    assert store.client.hlen(keys.keys) == 0 and store.client.hlen(keys.match) == 0
    store.routes.put(route("loja-b", KEY_A, match=("loja",)), create=True)
    store.routes.put(route("loja-a", KEY_B), create=True)
    version, routes = store.routes.load()
    assert version == store.routes.version() and routes["loja-a"].deleted_ms == 0
    with pytest.raises(ApiError) as caught:
        store.routes.delete(route("loja-c"), now_ms=1)
    assert caught.value.status == 404


def test_a_route_with_a_pending_chat_has_work_and_its_neighbours_do_not(store: Store) -> None:
    store.routes.put(route("loja-a", KEY_A), create=True)
    store.routes.put(route("loja-ab", KEY_B), create=True)
    assert not store.routes.has_work("loja-a")
    store.buffer.append(msg(chat_id("loja-ab", "5511"), "oi", ttl_ms=60_000))
    assert store.routes.has_work("loja-ab")
    assert not store.routes.has_work("loja-a")  # loja-a's prefix is not loja-ab's
    store.buffer.append(msg(chat_id("loja-a", "5511"), "oi", ttl_ms=60_000))
    assert store.routes.has_work("loja-a")
