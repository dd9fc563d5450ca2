"""The routes API: add, change, list and delete client routes. An environment admin key manages every route; a
route's admin key may read its own route, nothing more. Keys and secrets are never shown back."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, jsonify, request

from datafy.errors import ApiError
from datafy.http import context
from datafy.http.auth import EVERY_ROUTE, admin_access
from datafy.http.validation import read_json_object
from datafy.log import redact_url
from datafy.routes.chats import DEFAULT_ROUTE
from datafy.routes.route import Route, check_environment_keys, parse_route

log = logging.getLogger(__name__)

bp = Blueprint("routes", __name__)


@bp.before_request
def _check_admin_key() -> None:
    g.access = admin_access(context.settings(), context.routes())


@bp.get("/api/routes")
def list_routes() -> Response:
    """Every route the key may see; an environment admin key also sees `default` (the environment's settings)."""
    table = context.routes()
    table.refresh(force=True)
    routes = [route.public() for route in table.live() if g.access.sees_route(route.name)]
    if g.access.route is EVERY_ROUTE:
        routes.insert(0, _default_view())
    return jsonify({"success": True, "routes": routes})


@bp.post("/api/routes")
def create_route() -> Response:
    """Add a route; 201 with the route as stored (keys and secrets as their last 4 characters)."""
    _require_every_route()
    route = parse_route(read_json_object(request), context.settings(), now_ms=_now_ms())
    check_environment_keys(route, context.settings())
    store = context.store()
    if store.routes.get(route.name) and store.routes.has_work(route.name):  # a deleted route's batches are going out
        raise ApiError(409, "route_busy", f"a deleted route named {route.name!r} still has pending or dead-lettered "
                       "batches; they would go to the new route's webhook: pick another name", "name")  # fmt: skip
    version = store.routes.put(route, create=True)
    context.routes().refresh(force=True)
    log.info("route created name=%s version=%d", route.name, version)
    return jsonify({"success": True, "route": route.public()}), 201  # type: ignore[return-value]


@bp.get("/api/routes/<name>")
def get_route(name: str) -> Response:
    """One route."""
    return jsonify({"success": True, "route": _live(name).public()})


@bp.put("/api/routes/<name>")
def replace_route(name: str) -> Response:
    """Change a route: the fields given replace the stored ones; keys and secrets left out stay as they are."""
    _require_every_route()
    current = _live(name)
    route = parse_route(read_json_object(request), context.settings(), name, current, _now_ms())
    check_environment_keys(route, context.settings())
    version = context.store().routes.put(route, create=False)
    context.routes().refresh(force=True)
    log.info("route changed name=%s version=%d", name, version)
    return jsonify({"success": True, "route": route.public()})


@bp.delete("/api/routes/<name>")
def delete_route(name: str) -> Response:
    """Delete a route. With batches pending or dead-lettered: 409, unless ?force=true; then they are still
    delivered (or stay listed as dead letters) with the route's last settings."""
    _require_every_route()
    route = _live(name)
    force = request.args.get("force", "").strip().lower() in ("true", "1", "yes")
    store = context.store()
    if not force and store.routes.has_work(name):
        raise ApiError(409, "route_busy", f"route {name!r} has pending or dead-lettered batches: deliver, replay or "
                       "delete them first, or add ?force=true (they are still delivered)", "name")  # fmt: skip
    version = store.routes.delete(route, _now_ms())
    context.routes().refresh(force=True)
    log.info("route deleted name=%s version=%d forced=%s", name, version, force)
    return jsonify({"success": True, "name": name, "deleted": True})


def _live(name: str) -> Route:
    """The live route `name` as the key may see it, else 404 (the same answer as for a route that does not exist)."""
    route = context.routes().get(name)
    if route is None or route.deleted_ms or not g.access.sees_route(name):
        raise ApiError(404, "not_found", f"no route named {name!r}", "name")
    return route


def _require_every_route() -> None:
    if g.access.route is not EVERY_ROUTE:
        raise ApiError(403, "forbidden", "only an environment admin key (ADMIN_API_KEY) may change routes")


def _default_view() -> dict[str, object]:
    settings = context.settings()
    return {"name": DEFAULT_ROUTE, "webhook_url": redact_url(settings.webhook_url),
            "api_keys": [f"…{key[-4:]}" for key in settings.api_keys],
            "admin_keys": [f"…{key[-4:]}" for key in settings.admin_api_keys],
            "webhook_secret": [f"…{secret[-4:]}" for secret in settings.webhook_secrets],
            "defaults": {"ttl": settings.default_ttl, "max_wait": settings.max_wait,
                         "max_messages": settings.max_messages, "await_answer": settings.await_answer},
            "limits": {"rate_limit_per_user": settings.rate_limit_per_user,
                       "max_pending_chats": settings.max_pending_chats},
            "match": {}, "environment": True}  # fmt: skip


def _now_ms() -> int:
    return context.store().connection.now_ms()
