"""One route (datafy/routes/route.py): its document validated field by field, what it shows, the settings it gives."""

from __future__ import annotations

import json

import pytest

from datafy.config import Settings
from datafy.errors import ApiError
from datafy.routes.route import Route, check_environment_keys, key_hash, parse_route
from tests.support.env import TEST_ENV

KEY_A, KEY_B, ADMIN_A = "key-of-loja-a-0001", "key-of-loja-a-0002", "admin-of-loja-a-0003"
SECRET = "whsec_" + "A" * 40


@pytest.fixture
def base() -> Settings:
    return Settings.from_env(TEST_ENV)


def field_of(doc: object, base: Settings) -> str | None:
    with pytest.raises(ApiError) as caught:
        parse_route(doc, base)
    return caught.value.field


def test_a_bad_route_document_names_the_field_at_fault(base: Settings) -> None:
    url = "http://127.0.0.1:9/a"
    cases = [
        ([1], "body"),
        ({"webhook_url": url}, "name"),
        ({"name": "Loja A", "webhook_url": url}, "name"),
        ({"name": "default", "webhook_url": url}, "name"),
        ({"name": "a"}, "webhook_url"),
        ({"name": "a", "webhook_url": "ftp://x"}, "webhook_url"),
        ({"name": "a", "webhook_url": url, "colour": 1}, "colour"),
        ({"name": "a", "webhook_url": url, "api_keys": ["short"]}, "api_keys"),
        ({"name": "a", "webhook_url": url, "admin_keys": [ADMIN_A, ADMIN_A]}, "admin_keys"),
        ({"name": "a", "webhook_url": url, "webhook_secret": "whsec_short"}, "webhook_secret"),
        ({"name": "a", "webhook_url": url, "defaults": {"ttl": 0}}, "defaults.ttl"),
        ({"name": "a", "webhook_url": url, "defaults": {"max_messages": True}}, "defaults.max_messages"),
        ({"name": "a", "webhook_url": url, "defaults": {"await_answer": "yes"}}, "defaults.await_answer"),
        ({"name": "a", "webhook_url": url, "limits": {"max_pending_chats": -1}}, "limits.max_pending_chats"),
        ({"name": "a", "webhook_url": url, "match": {"telegram": ["x"]}}, "match.telegram"),
    ]
    for doc, field in cases:
        assert field_of(doc, base) == field, doc


def test_keys_may_be_one_string_separated_by_commas_or_spaces(base: Settings) -> None:
    route = parse_route({"name": "a", "webhook_url": "http://x", "api_keys": f"{KEY_A}, {KEY_B}"}, base)
    assert [k.hash for k in route.api_keys] == [key_hash(KEY_A), key_hash(KEY_B)]
    route = parse_route({"name": "a", "webhook_url": "http://x", "api_keys": f" {KEY_A}  {KEY_B} "}, base)
    assert [k.last4 for k in route.api_keys] == ["0001", "0002"]


def test_a_route_never_shows_or_stores_its_keys_and_never_shows_its_secrets(base: Settings) -> None:
    doc = {"name": "a", "webhook_url": "http://x", "api_keys": [KEY_A], "admin_keys": [ADMIN_A],
           "webhook_secret": SECRET}  # fmt: skip
    route = parse_route(doc, base)
    shown = json.dumps(route.public(), ensure_ascii=False)
    assert KEY_A not in shown and ADMIN_A not in shown and SECRET not in shown
    assert route.public()["api_keys"] == ["…0001"] and route.public()["webhook_secret"] == ["…AAAA"]
    stored = json.dumps(route.to_row())
    assert KEY_A not in stored and ADMIN_A not in stored  # the monitor signs with the secret: that one is kept
    assert Route.from_row(json.loads(stored)) == route


def test_a_replacement_keeps_the_keys_and_secrets_it_leaves_out(base: Settings) -> None:
    doc = {"name": "a", "webhook_url": "http://x", "api_keys": [KEY_A], "webhook_secret": SECRET}
    current = parse_route(doc, base, now_ms=1000)
    route = parse_route({"webhook_url": "http://y"}, base, "a", current, now_ms=2000)
    assert (route.webhook_url, route.api_keys, route.webhook_secrets) == ("http://y", current.api_keys, (SECRET,))
    assert (route.created_ms, route.updated_ms) == (1000, 2000)
    with pytest.raises(ApiError) as caught:
        parse_route({"name": "b"}, base, "a", current)
    assert caught.value.field == "name"


def test_a_routes_settings_overlay_its_defaults_on_the_environments(base: Settings) -> None:
    doc = {"name": "a", "webhook_url": "http://127.0.0.1:9/a", "webhook_secret": SECRET,
           "defaults": {"ttl": 5, "max_messages": 3, "flush_keywords": ["Pronto"], "await_answer": True},
           "limits": {"rate_limit_per_user": 7}}  # fmt: skip
    settings = parse_route(doc, base).settings(base)
    assert (settings.webhook_url, settings.webhook_secrets) == ("http://127.0.0.1:9/a", (SECRET,))
    assert (settings.default_ttl, settings.max_messages, settings.await_answer) == (5.0, 3, True)
    assert settings.flush_keywords == frozenset({"pronto"})
    assert settings.rate_limit_per_user == 7
    assert (settings.max_ttl, settings.max_wait, settings.redis_url) == (base.max_ttl, base.max_wait, base.redis_url)
    plain = parse_route({"name": "b", "webhook_url": "http://127.0.0.1:9/b"}, base).settings(base)
    assert (plain.default_ttl, plain.rate_limit_per_user) == (base.default_ttl, base.rate_limit_per_user)


def test_a_route_may_not_reuse_an_environment_key() -> None:
    base = Settings.from_env({**TEST_ENV, "ADMIN_API_KEY": ADMIN_A})
    route = parse_route({"name": "a", "webhook_url": "http://x", "api_keys": [ADMIN_A]}, base)
    with pytest.raises(ApiError) as caught:
        check_environment_keys(route, base)
    assert (caught.value.status, caught.value.code) == (409, "key_taken")
    check_environment_keys(parse_route({"name": "a", "webhook_url": "http://x", "api_keys": [KEY_A]}, base), base)
