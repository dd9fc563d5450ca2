"""Chat ids (datafy/routes/chats.py): what every key of a chat is named by, per route."""

from __future__ import annotations

from datafy.routes.chats import DEFAULT_ROUTE, MARK, chat_id, chat_prefix, route_of, split_chat, user_of


def test_a_chat_id_gives_back_its_route_and_user() -> None:
    for route, user in (("loja-a", "5511999990000"), ("b", "x"), ("loja-a", "grupo@g.us"), (DEFAULT_ROUTE, "5511")):
        chat = chat_id(route, user)
        assert split_chat(chat) == (route, user)
        assert (route_of(chat), user_of(chat)) == (route, user)


def test_the_default_route_keeps_the_bare_user_id() -> None:
    assert chat_id(DEFAULT_ROUTE, "5511") == "5511"
    assert split_chat("5511") == (DEFAULT_ROUTE, "5511")
    assert chat_prefix(DEFAULT_ROUTE) == ""


def test_the_same_user_under_two_routes_is_two_chats() -> None:
    assert len({chat_id("loja-a", "5511"), chat_id("loja-b", "5511"), chat_id(DEFAULT_ROUTE, "5511")}) == 3


def test_a_user_id_holding_the_separator_later_on_keeps_it() -> None:
    user = f"a{MARK}b{MARK}c"
    assert split_chat(chat_id("loja-a", user)) == ("loja-a", user)
    assert split_chat(user) == (DEFAULT_ROUTE, user)  # only a leading separator marks a route


def test_a_routes_prefix_never_matches_the_chats_of_a_longer_route_name() -> None:
    assert chat_id("loja-a", "5511").startswith(chat_prefix("loja-a"))
    assert not chat_id("loja-ab", "5511").startswith(chat_prefix("loja-a"))
