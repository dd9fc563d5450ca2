"""API keys: clients send `Authorization: Bearer <key>` or `X-API-Key: <key>`."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import jwt
from flask import request
from werkzeug.datastructures import Headers

from datafy.config import Settings
from datafy.errors import ApiError
from datafy.http import context
from datafy.routes.chats import DEFAULT_ROUTE, chat_id, route_of
from datafy.routes.route import ADMIN, INGEST, NAME
from datafy.routes.table import RouteTable

EVERY_ROUTE = None  # an environment admin key's scope


@dataclass(frozen=True)
class Access:
    """Who is asking: the route its key opens (EVERY_ROUTE for an environment admin key), whether the key is an
    admin key, and the key's id (per-key limits)."""

    route: str | None
    admin: bool = False
    key_id: str = ""

    def chat(self, user: str) -> str:
        """The chat `user` names for this caller. An environment admin key picks a route with ?route=<name>
        (400 for a name no route could have, 404 for a route that does not exist)."""
        return chat_id(self.route or _route_asked(), user)

    def sees(self, chat: str) -> bool:
        """Whether this caller may see `chat` (a route's keys never see another route's chats)."""
        return self.sees_route(route_of(chat))

    def sees_route(self, name: str) -> bool:
        """Whether this caller may see the route `name`."""
        return self.route is EVERY_ROUTE or name == self.route


def _route_asked() -> str:
    name = request.args.get("route")
    if name is None or name == DEFAULT_ROUTE:
        return DEFAULT_ROUTE
    if not NAME.fullmatch(name):
        raise ApiError(400, "invalid_field", "route must be a route's name: 1 to 40 characters of a-z, 0-9 and -",
                       "route")  # fmt: skip
    if context.routes().get(name) is None:
        raise ApiError(404, "not_found", f"no route named {name!r}", "route")
    return name


def ingest_access(settings: Settings, table: RouteTable, headers: Headers | None = None) -> Access:
    """The ingest routes: an environment API key (route `default`) or a route's API key; 401 otherwise, unless
    INGEST_AUTH=off (then a request without a route key is the default route's). `headers`: the request's
    (default: Flask's request; the fast path has no request context)."""
    presented = presented_key(headers)
    if _matches_any(presented, settings.api_keys):
        return Access(DEFAULT_ROUTE, key_id=key_id(presented))
    found = table.by_key(presented)
    if found and found[0] == INGEST:
        return Access(found[1], key_id=key_id(presented))
    if not settings.ingest_auth:
        return Access(DEFAULT_ROUTE)
    raise ApiError(401, "unauthorized", "a valid API key is required (X-API-Key: <key>, or Authorization: Bearer)")


def admin_access(settings: Settings, table: RouteTable) -> Access:
    """The admin routes: an environment admin key sees every route, a route's admin key its own route only."""
    presented = presented_key()
    if settings.admin_api_keys and _matches_any(presented, settings.admin_api_keys):
        return Access(EVERY_ROUTE, admin=True, key_id=key_id(presented))
    found = table.by_key(presented)
    if found and found[0] == ADMIN:
        return Access(found[1], admin=True, key_id=key_id(presented))
    require_admin_key(settings.admin_api_keys)  # 403 while admin routes are off, else 401
    raise ApiError(401, "unauthorized", "a valid API key is required (X-API-Key: <key>, or Authorization: Bearer)")


def answer_access(settings: Settings, table: RouteTable) -> Access:
    """The answer routes: the ingest key the workflow holds, or an admin key."""
    presented = presented_key()
    if _matches_any(presented, settings.api_keys):
        return Access(DEFAULT_ROUTE, key_id=key_id(presented))
    if settings.admin_api_keys and _matches_any(presented, settings.admin_api_keys):
        return Access(EVERY_ROUTE, admin=True, key_id=key_id(presented))
    found = table.by_key(presented)
    if found:
        return Access(found[1], admin=found[0] == ADMIN, key_id=key_id(presented))
    if not settings.ingest_auth:
        return Access(DEFAULT_ROUTE)
    raise ApiError(401, "unauthorized", "a valid API key is required (X-API-Key: <key>, or Authorization: Bearer)")


def presented_key(headers: Headers | None = None) -> str:
    """The key the client sent (in `headers`, default the Flask request's), or ''."""
    headers = request.headers if headers is None else headers
    header = headers.get("Authorization", "")
    # Only spaces and tabs are trimmed: str.strip() would also eat latin-1 \xa0 and \x85, which end some
    # UTF-8 keys as WSGI hands them over ("à" arrives as "\xc3\xa0").
    if header[:7].lower() == "bearer ":
        return header[7:].strip(" \t")
    return headers.get("X-API-Key", "").strip(" \t")


def require_key(expected: tuple[str, ...]) -> str:
    """Raise 401 unless the client presented one of the `expected` keys; returns the key's id (key_id)."""
    presented = presented_key()
    if not _matches_any(presented, expected):
        raise ApiError(401, "unauthorized", "a valid API key is required (X-API-Key: <key>, or Authorization: Bearer)")
    return key_id(presented)


def key_id(key: str) -> str:
    """A short, stable name for an API key that reveals nothing of it (per-key limits are counted under it)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def require_admin_key(expected: tuple[str, ...]) -> None:
    """Admin routes exist only once ADMIN_API_KEY is configured, and then need it."""
    if not expected:
        raise ApiError(403, "admin_disabled", "admin routes are disabled: set ADMIN_API_KEY to enable them")
    require_key(expected)


def require_source_key(expected: tuple[str, ...], query_key: str, jwt_secret: str = "") -> str:
    """Gateway routes: the key as on other ingest routes, or as ?key= (a gateway that cannot set headers), or a
    Bearer HS256 JWT signed with `jwt_secret` and not expired (Evolution's jwt_key); returns the key's id."""
    found = source_key(expected, query_key)
    if found:
        return key_id(found)
    bearer = _bearer()
    if jwt_secret and bearer and _valid_jwt(bearer, jwt_secret):
        return "jwt"
    raise ApiError(401, "unauthorized", "a valid API key is required (X-API-Key: <key>, or ?key=<key> on this route)")


def source_access(settings: Settings, table: RouteTable, query_key: str) -> Access:
    """Gateway endpoints: an environment key leaves the route to the event's match (route None); a route's key
    (header, Bearer or ?key=) names its route. `admin`: only an admin key's events may discard a pending batch."""
    if settings.admin_api_keys and source_key(settings.admin_api_keys, query_key):
        return Access(None, admin=True, key_id="admin")
    for candidate in (request.headers.get("X-API-Key", "").strip(" \t"), _bearer(), query_key):
        found = table.by_key(candidate)
        if found:
            return Access(found[1], admin=found[0] == ADMIN, key_id=key_id(candidate))
    if not settings.ingest_auth:
        return Access(None)
    return Access(None, key_id=require_source_key(settings.api_keys, query_key, settings.evolution_jwt_secret))


def source_key(expected: tuple[str, ...], query_key: str) -> str:
    """The one of `expected` the gateway presented (header, Bearer or ?key=), or ''."""
    for candidate in (request.headers.get("X-API-Key", "").strip(" \t"), _bearer(), query_key):
        if _matches_any(candidate, expected):
            return candidate
    return ""


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip(" \t") if header[:7].lower() == "bearer " else ""


def _valid_jwt(token: str, secret: str) -> bool:
    """HS256 only (never "none" or a key confusion), and it must carry an expiry that has not passed."""
    try:
        jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp"]}, leeway=30)
    except jwt.PyJWTError:
        return False
    return True


def _matches_any(presented: str, expected: tuple[str, ...]) -> bool:
    """Constant time whichever key matches (every key is compared). WSGI decodes header bytes as latin-1: curl
    sends a non-ASCII key as UTF-8 bytes, Python's http.client as latin-1 bytes, so both readings count."""
    as_utf8, as_latin1 = presented.encode("latin-1", "replace"), presented.encode()
    found = False
    for key in expected:
        wanted = key.encode()
        found |= hmac.compare_digest(as_utf8, wanted) | hmac.compare_digest(as_latin1, wanted)
    return found and bool(presented)
