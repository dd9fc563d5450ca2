"""Gateway webhooks as pure data: each module turns one gateway's JSON into the actions below, with no Flask and
no Redis. The routes (datafy/http/sources.py) carry them out with the same validation and store calls as
POST /api/message, so the core never learns a gateway's field names."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class MalformedError(ValueError):
    """The body does not have the gateway's shape; `path` names the field (like `data.key.remoteJid`)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path} {problem}")
        self.path = path


@dataclass(frozen=True)
class Append:
    """Buffer one message: the fields of a POST /api/message body, plus what stays on its item only."""

    user: str
    message: str | dict[str, Any]
    message_id: str
    metadata: dict[str, Any]  # merged into the batch (instance, remoteJid, number, pushName, source, ...)
    item_fields: dict[str, Any] = field(default_factory=dict)  # the gateway's own object, on the item only
    text: str | None = None  # what a media message adds to the batch's text: its caption
    alias: str | None = None  # another id the gateway names this chat by (a LID): typing under it reaches it


@dataclass(frozen=True)
class Typing:
    """The customer is typing or recording: push the pending batch's deadline back, like POST /api/typing."""

    user: str


@dataclass(frozen=True)
class Discard:
    """A person on the business side answered: drop the pending batch (EVOLUTION_FROM_ME=discard)."""

    user: str


@dataclass(frozen=True)
class Pause:
    """A person on the business side answered: pause the chat (HUMAN_PAUSE) so the workflow routes its batches to
    a person, not to the AI (EVOLUTION_FROM_ME=pause). Nothing is dropped."""

    user: str


@dataclass(frozen=True)
class Ignore:
    """Nothing to do; the gateway still gets 200 so it neither retries nor flags the webhook."""

    reason: str
    user: str | None = None


Action = Append | Typing | Discard | Pause | Ignore

GROUP_POLICIES = ("ignore", "chat")
FROM_ME_POLICIES = ("ignore", "discard", "pause")


def expect_object(value: Any, path: str) -> dict[str, Any]:
    """`value` if it is a JSON object, else MalformedError naming `path`."""
    if value is None:
        raise MalformedError(path, "is missing")
    if not isinstance(value, dict):
        raise MalformedError(path, "must be an object")
    return value


def expect_list(value: Any, path: str) -> list[Any]:
    """`value` if it is a JSON array, else MalformedError naming `path`."""
    if value is None:
        raise MalformedError(path, "is missing")
    if not isinstance(value, list):
        raise MalformedError(path, "must be a list")
    return value


def expect_text(value: Any, path: str) -> str:
    """`value` if it is a non-empty string, else MalformedError naming `path`."""
    if value is None:
        raise MalformedError(path, "is missing")
    if not isinstance(value, str) or not value:
        raise MalformedError(path, "must be a non-empty string")
    return value


def optional_text(value: Any) -> str | None:
    """A non-empty string, or None for anything else (optional fields are never worth a 400)."""
    return value if isinstance(value, str) and value else None


def iso_from_unix(value: Any) -> str | None:
    """Unix seconds (a number, or digits as Meta sends them) as ISO-8601 UTC; None when absent or odd."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e11:
        return None
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def without_none(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields that have a value: absent and null references are left out, not sent as null."""
    return {name: value for name, value in fields.items() if value is not None and value != ""}
