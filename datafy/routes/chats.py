"""A chat's id: what every key, index and script of a chat is named by.

The route `default` keeps the bare user id, so a deployment without routes stores exactly what it always did.
Any other route's chats are `<US><route><US><user>`: the same user id under two routes is two chats. US is the
ASCII unit separator, which no gateway puts in an id; a default user id may not start with it (the API says so).
"""

from __future__ import annotations

DEFAULT_ROUTE = "default"
MARK = "\x1f"


def chat_id(route: str, user: str) -> str:
    """The chat of `user` under `route`."""
    return user if route == DEFAULT_ROUTE else f"{MARK}{route}{MARK}{user}"


def split_chat(chat: str) -> tuple[str, str]:
    """(route, user) of a chat id."""
    if chat.startswith(MARK):
        route, found, user = chat[1:].partition(MARK)
        if found:
            return route, user
    return DEFAULT_ROUTE, chat


def user_of(chat: str) -> str:
    """The user id of a chat id, as the client and the webhook know it."""
    return split_chat(chat)[1]


def route_of(chat: str) -> str:
    """The route a chat id belongs to."""
    return split_chat(chat)[0]


def chat_prefix(route: str) -> str:
    """What every chat id of `route` starts with ('' for the default route, whose ids have no prefix)."""
    return "" if route == DEFAULT_ROUTE else f"{MARK}{route}{MARK}"
