"""One route: a client of the deployment, with its own keys, webhook, secrets, defaults, limits and matches.

A route's document arrives from the admin API or a YAML file with keys in clear; what is stored keeps only a
hash of each API key (and its last 4 characters, to tell keys apart). The webhook secrets are kept: the
monitor signs with them. Nothing a route shows back holds a key or a secret.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from typing import Any

from datafy.config import Settings, normalize_keyword
from datafy.config.values import is_http_url
from datafy.errors import ApiError
from datafy.routes.chats import DEFAULT_ROUTE
from datafy.signing import check_secret

NAME = re.compile(r"[a-z0-9-]{1,40}")
MIN_KEY_CHARS = 16  # a route's key is a credential: as long as a short random token at least
DEFAULTS = ("ttl", "max_wait", "max_messages", "flush_keywords", "await_answer", "answer_timeout")
LIMITS = ("rate_limit_per_user", "max_pending_chats")
MATCHES = ("evolution_instance", "whatsapp_phone_number_id")
FIELDS = ("name", "webhook_url", "api_keys", "admin_keys", "webhook_secret", "defaults", "limits", "match")
INGEST, ADMIN = "ingest", "admin"


def key_hash(key: str) -> str:
    """How a key is stored and looked up: its SHA-256 (a key is a random token, so no salt is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRef:
    """A stored key: its hash, and its last 4 characters to tell it apart in listings."""

    hash: str
    last4: str

    @classmethod
    def of(cls, key: str) -> KeyRef:
        return cls(key_hash(key), key[-4:])


@dataclass(frozen=True)
class Route:
    """A route as stored. `deleted_ms` > 0: deleted, kept so that its accepted batches still go out."""

    name: str
    webhook_url: str
    api_keys: tuple[KeyRef, ...] = ()
    admin_keys: tuple[KeyRef, ...] = ()
    webhook_secrets: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    match: dict[str, tuple[str, ...]] = field(default_factory=dict)
    created_ms: int = 0
    updated_ms: int = 0
    deleted_ms: int = 0

    def key_entries(self) -> list[tuple[str, str]]:
        """(hash, kind) of every key of this route."""
        return [(k.hash, INGEST) for k in self.api_keys] + [(k.hash, ADMIN) for k in self.admin_keys]

    def matches(self) -> list[str]:
        """This route's match entries, as stored in the match index ('<kind>:<value>')."""
        return [f"{kind}:{value}" for kind, values in self.match.items() for value in values]

    def to_row(self) -> dict[str, Any]:
        """The stored form (JSON-ready)."""
        return {"name": self.name, "webhook_url": self.webhook_url,
                "api_keys": [[k.hash, k.last4] for k in self.api_keys],
                "admin_keys": [[k.hash, k.last4] for k in self.admin_keys],
                "webhook_secrets": list(self.webhook_secrets), "defaults": self.defaults, "limits": self.limits,
                "match": {kind: list(values) for kind, values in self.match.items()},
                "created_ms": self.created_ms, "updated_ms": self.updated_ms,
                "deleted_ms": self.deleted_ms}  # fmt: skip

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Route:
        """A route from its stored form."""
        return cls(
            name=row["name"], webhook_url=row["webhook_url"],
            api_keys=tuple(KeyRef(h, last4) for h, last4 in row.get("api_keys", [])),
            admin_keys=tuple(KeyRef(h, last4) for h, last4 in row.get("admin_keys", [])),
            webhook_secrets=tuple(row.get("webhook_secrets", [])), defaults=dict(row.get("defaults", {})),
            limits=dict(row.get("limits", {})),
            match={kind: tuple(values) for kind, values in row.get("match", {}).items()},
            created_ms=int(row.get("created_ms", 0)), updated_ms=int(row.get("updated_ms", 0)),
            deleted_ms=int(row.get("deleted_ms", 0)),
        )  # fmt: skip

    def public(self) -> dict[str, Any]:
        """What the admin API and the dashboard show: keys and secrets as their last 4 characters only."""
        return {"name": self.name, "webhook_url": self.webhook_url,
                "api_keys": [f"…{k.last4}" for k in self.api_keys],
                "admin_keys": [f"…{k.last4}" for k in self.admin_keys],
                "webhook_secret": [f"…{s[-4:]}" for s in self.webhook_secrets],
                "defaults": self.defaults, "limits": self.limits,
                "match": {kind: list(values) for kind, values in self.match.items()}}  # fmt: skip

    def settings(self, base: Settings) -> Settings:
        """The settings a request or a delivery of this route runs with: the environment's, overridden by the
        route's webhook, secrets, defaults and limits."""
        d, changes = self.defaults, {}
        names = {"ttl": "default_ttl", "max_wait": "max_wait", "max_messages": "max_messages",
                 "await_answer": "await_answer", "answer_timeout": "answer_timeout"}  # fmt: skip
        for name, setting in names.items():
            if name in d:
                changes[setting] = d[name]
        if "flush_keywords" in d:
            changes["flush_keywords"] = frozenset(normalize_keyword(w) for w in d["flush_keywords"])
        if "rate_limit_per_user" in self.limits:
            changes["rate_limit_per_user"] = self.limits["rate_limit_per_user"]
        return replace(base, webhook_url=self.webhook_url, webhook_secrets=self.webhook_secrets, **changes)


def parse_route(doc: Any, base: Settings, name: str | None = None, current: Route | None = None,
                now_ms: int = 0) -> Route:  # fmt: skip
    """Validate a route document (400 naming the field). `name`: from the URL (PUT); `current`: the stored route
    a PUT replaces, whose keys and secrets stay when the document leaves them out."""
    if not isinstance(doc, dict):
        raise _bad("body", "the body must be a JSON object")
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise _bad(unknown[0], f"unknown field {unknown[0]!r}; a route has: {', '.join(FIELDS)}")
    name = _name(doc.get("name", name) if name is None else name)
    if name is not None and doc.get("name", name) != name:
        raise _bad("name", "name must match the route in the URL")
    if "webhook_url" not in doc and current is None:
        raise ApiError(400, "missing_field", "webhook_url is required", "webhook_url")
    url = doc.get("webhook_url", current.webhook_url if current else "")
    if not isinstance(url, str) or not is_http_url(url.strip()):
        raise _bad("webhook_url", "webhook_url must be an http:// or https:// URL with a host")
    kept = current or Route(name, url)
    route = Route(
        name=name,
        webhook_url=url.strip(),
        api_keys=_keys(doc, "api_keys") if "api_keys" in doc else kept.api_keys,
        admin_keys=_keys(doc, "admin_keys") if "admin_keys" in doc else kept.admin_keys,
        webhook_secrets=_secrets(doc["webhook_secret"]) if "webhook_secret" in doc else kept.webhook_secrets,
        defaults=_defaults(doc["defaults"], base) if "defaults" in doc else kept.defaults,
        limits=_limits(doc["limits"]) if "limits" in doc else kept.limits,
        match=_match(doc["match"]) if "match" in doc else kept.match,
        created_ms=current.created_ms if current else now_ms,
        updated_ms=now_ms,
    )
    if {k.hash for k in route.api_keys} & {k.hash for k in route.admin_keys}:
        raise _bad("admin_keys", "admin_keys must differ from api_keys: every integration holds the ingest key")
    return route


def check_environment_keys(route: Route, base: Settings) -> None:
    """Refuse a route key that is also a key of the environment (409): it would open two scopes at once."""
    taken = {key_hash(key) for key in base.api_keys + base.admin_api_keys}
    if any(hashed in taken for hashed, _ in route.key_entries()):
        raise ApiError(409, "key_taken", "one of the keys is an environment key (API_KEY or ADMIN_API_KEY)", "api_keys")


def _name(value: Any) -> str:
    if value is None:
        raise ApiError(400, "missing_field", "name is required", "name")
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise _bad("name", "name must be 1 to 40 characters of a-z, 0-9 and -")
    if value == DEFAULT_ROUTE:
        raise _bad("name", "the route 'default' is the environment's settings (WEBHOOK_URL, API_KEY, ...)")
    return value


def _keys(doc: dict[str, Any], name: str) -> tuple[KeyRef, ...]:
    keys = doc[name]
    if isinstance(keys, str):
        keys = [k for k in keys.replace(",", " ").split() if k]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise _bad(name, f"{name} must be a list of strings")
    for key in keys:
        if len(key) < MIN_KEY_CHARS or key != key.strip():
            raise _bad(name, f"each of {name} must be at least {MIN_KEY_CHARS} characters, without spaces")
    if len(set(keys)) != len(keys):
        raise _bad(name, f"{name} lists one key twice")
    return tuple(KeyRef.of(k) for k in keys)


def _secrets(value: Any) -> tuple[str, ...]:
    secrets = value.split() if isinstance(value, str) else value
    if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
        raise _bad("webhook_secret", "webhook_secret must be whsec_ secrets separated by spaces")
    for position, secret in enumerate(secrets, start=1):
        try:
            check_secret(secret)
        except ValueError as exc:
            raise _bad("webhook_secret", f"secret {position} is {exc}: each must be whsec_ followed by the base64 "
                       "of 24 to 64 random bytes") from None  # fmt: skip
    return tuple(secrets)


def _defaults(value: Any, base: Settings) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad("defaults", "defaults must be an object")
    out: dict[str, Any] = {}
    for name, given in value.items():
        where = f"defaults.{name}"
        if name not in DEFAULTS:
            raise _bad(where, f"unknown default {name!r}; a route may set: {', '.join(DEFAULTS)}")
        if name in ("ttl", "answer_timeout", "max_wait"):
            low = 0 if name == "max_wait" else 0.001
            if isinstance(given, bool) or not isinstance(given, (int, float)) or not low <= given <= base.max_ttl:
                raise _bad(where, f"{where} must be a number of seconds between {low:g} and {base.max_ttl:g}")
            out[name] = float(given)
        elif name == "max_messages":
            if isinstance(given, bool) or not isinstance(given, int) or not 0 <= given <= base.max_batch_messages:
                raise _bad(where, f"{where} must be a whole number between 0 and {base.max_batch_messages}")
            out[name] = given
        elif name == "flush_keywords":
            if not isinstance(given, list) or not all(isinstance(w, str) and w.strip() for w in given):
                raise _bad(where, f"{where} must be a list of words")
            out[name] = [w.strip() for w in given]
        else:  # await_answer
            if not isinstance(given, bool):
                raise _bad(where, f"{where} must be true or false")
            out[name] = given
    return out


def _limits(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise _bad("limits", "limits must be an object")
    for name, given in value.items():
        if name not in LIMITS:
            raise _bad(f"limits.{name}", f"unknown limit {name!r}; a route may set: {', '.join(LIMITS)}")
        if isinstance(given, bool) or not isinstance(given, int) or given < 0:
            raise _bad(f"limits.{name}", f"limits.{name} must be a whole number (0: no limit)")
    return dict(value)


def _match(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise _bad("match", "match must be an object")
    out = {}
    for kind, values in value.items():
        if kind not in MATCHES:
            raise _bad(f"match.{kind}", f"unknown match {kind!r}; a route may match: {', '.join(MATCHES)}")
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            raise _bad(f"match.{kind}", f"match.{kind} must be a list of names")
        out[kind] = tuple(v.strip() for v in values)
    return out


def _bad(field_name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_field", message, field_name)
