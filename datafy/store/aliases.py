"""Other ids a chat is known by: a gateway that addresses one customer two ways (WhatsApp's LID beside the
phone number) names the chat by one, and its presence events by the other. Typing under the alias then
reaches the chat. A mapping lives as long as a chat's sequence (SEQUENCE_TTL), refreshed by each message."""

from __future__ import annotations

from datafy.store.connection import Connection
from datafy.store.errors import redis_errors


class Aliases:
    """alias -> chat, one string key each, in the alias's own partition."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.keys = connection.keys

    def remember(self, alias: str, user: str) -> None:
        """`alias` names the chat `user` from now on (for SEQUENCE_TTL)."""
        with redis_errors():
            self.connection.client.set(self.keys.alias(alias), user, ex=int(self.connection.settings.sequence_ttl))

    def resolve(self, user: str) -> str:
        """The chat `user` is an alias of, or `user` itself."""
        with redis_errors():
            return self.connection.client.get(self.keys.alias(user)) or user
