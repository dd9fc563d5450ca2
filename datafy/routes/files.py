"""Routes to and from a YAML file (`python -m datafy routes import|export`), keys and secrets as ${ENV_VAR}.

The file is `routes:`, a list of route documents with the fields the admin API takes. Redis keeps only a hash of
each key, so an export cannot write keys back: it names environment variables instead, and lists them in its header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from datafy.config import Settings
from datafy.errors import ApiError, DatafyError
from datafy.routes.route import FIELDS, INGEST, Route, check_environment_keys, parse_route
from datafy.store.routes import Routes

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
CREATED, UPDATED = "created", "updated"


class RouteFileError(DatafyError):
    """A routes file that cannot be imported; the message is the one line an operator reads."""


@dataclass(frozen=True)
class PlannedRoute:
    """A validated route of the file, and whether writing it creates the route or replaces a live one."""

    route: Route
    create: bool


def variable_name(route: str, field: str) -> str:
    """The environment variable an export names for a route's keys or secret: ROUTE_<NAME>_<FIELD>."""
    return f"ROUTE_{route.upper().replace('-', '_')}_{field.upper()}"


def read_routes(text: str, source: str, environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """The route documents of a file's text, every ${VAR} expanded from `environ`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        raise RouteFileError(f"{source}: not valid YAML: {problem}{where}") from None
    if data is None:
        return []  # an empty file: nothing to import
    if not isinstance(data, dict) or set(data) != {"routes"} or not isinstance(data["routes"], list):
        raise RouteFileError(f"{source}: the file must hold one key, `routes:`, with a list of routes")
    docs = []
    for position, doc in enumerate(data["routes"], start=1):
        if not isinstance(doc, dict):
            raise RouteFileError(f"{source}: route #{position}: a route must be a mapping of {', '.join(FIELDS)}")
        # The name first, so that an error in any other field names the route as the operator knows it.
        name = doc.get("name")
        expanded = _expand(name, source, f"route #{position}", "name", environ) if isinstance(name, str) else None
        label = f"route {expanded!r}" if expanded else f"route #{position}"
        docs.append({field: _expand(value, source, label, field, environ) for field, value in doc.items()})
    return docs


def plan_import(
    docs: list[dict[str, Any]], source: str, routes: Routes, base: Settings, now_ms: int
) -> list[PlannedRoute]:
    """Validate every document before anything is written: one bad route and the file writes nothing."""
    planned: list[PlannedRoute] = []
    names: set[str] = set()
    keys: dict[str, str] = {}  # key hash -> the route of the file that holds it
    matches: dict[str, str] = {}
    for position, doc in enumerate(docs, start=1):
        label = f"route {doc['name']!r}" if isinstance(doc.get("name"), str) else f"route #{position}"
        try:
            name = doc.get("name")
            stored = routes.get(name) if isinstance(name, str) else None
            current = stored if stored is not None and stored.deleted_ms == 0 else None
            route = parse_route(doc, base, current=current, now_ms=now_ms)
            check_environment_keys(route, base)
        except ApiError as exc:
            raise _error(source, label, exc) from None
        # Two routes of one file that clash would fail halfway through the writes: refuse them here instead.
        if route.name in names:
            raise RouteFileError(f"{source}: {label}: the file lists this route twice (name)")
        names.add(route.name)
        for hashed, kind in route.key_entries():
            if hashed in keys:
                field = "api_keys" if kind == INGEST else "admin_keys"
                raise RouteFileError(f"{source}: {label}: a key is also one of route {keys[hashed]!r} ({field})")
            keys[hashed] = route.name
        for entry in route.matches():
            if entry in matches:
                raise RouteFileError(f"{source}: {label}: route {matches[entry]!r} also matches {entry} (match)")
            matches[entry] = route.name
        planned.append(PlannedRoute(route, create=current is None))
    return planned


def write_route(planned: PlannedRoute, source: str, routes: Routes) -> str:
    """Create or replace one planned route; returns 'created' or 'updated'."""
    try:
        routes.put(planned.route, create=planned.create)
    except ApiError as exc:  # a key or match of a route outside the file, or a change made since the plan
        raise _error(source, f"route {planned.route.name!r}", exc) from None
    return CREATED if planned.create else UPDATED


def export_routes(routes: Routes) -> str:
    """Every live route as YAML that import accepts back, keys and secrets as ${ROUTE_<NAME>_...} references."""
    _, loaded = routes.load()
    live = sorted((r for r in loaded.values() if not r.deleted_ms), key=lambda r: r.name)
    needed: list[tuple[str, str]] = []
    docs = []
    for route in live:
        doc: dict[str, Any] = {"name": route.name, "webhook_url": route.webhook_url}
        held = (
            ("api_keys", [f"…{k.last4}" for k in route.api_keys], "ingest keys", "commas or spaces"),
            ("admin_keys", [f"…{k.last4}" for k in route.admin_keys], "admin keys", "commas or spaces"),
            ("webhook_secret", [f"…{s[-4:]}" for s in route.webhook_secrets], "webhook secrets", "spaces"),
        )
        for field, ends, what, between in held:
            if ends:
                variable = variable_name(route.name, field)
                doc[field] = f"${{{variable}}}"
                needed.append((variable, f"{route.name}'s {what} {', '.join(ends)} (separated by {between})"))
        # Written even when empty: importing into a deployment that has the route then leaves nothing of the old.
        doc["defaults"] = route.defaults
        doc["limits"] = route.limits
        doc["match"] = {kind: list(values) for kind, values in route.match.items()}
        docs.append(doc)
    body = yaml.safe_dump({"routes": docs}, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return _header(needed) + body


def _header(needed: list[tuple[str, str]]) -> str:
    lines = ["# redis-datafy routes: python -m datafy routes import <this file>"]
    if needed:
        # Redis holds only a hash of each key, so the keys themselves must come from wherever they are kept.
        lines.append("# Set these environment variables before importing (keys and secrets are not in this file):")
        width = max(len(variable) for variable, _ in needed)
        lines += [f"#   {variable:<{width}}  {what}" for variable, what in needed]
    else:
        lines.append("# No route has keys or secrets: no environment variable is needed to import.")
    return "\n".join(lines) + "\n"


def _expand(value: Any, source: str, label: str, field: str, environ: Mapping[str, str]) -> Any:
    """`value` with every ${VAR} in its strings replaced from `environ`; an unset VAR is an error."""
    if isinstance(value, str):

        def replace(found: re.Match[str]) -> str:
            variable = found.group(1)
            if variable not in environ:
                raise RouteFileError(f"{source}: {label}: environment variable {variable} is not set ({field})")
            return environ[variable]

        return REFERENCE.sub(replace, value)
    if isinstance(value, list):
        return [_expand(item, source, label, field, environ) for item in value]
    if isinstance(value, dict):
        return {key: _expand(item, source, label, f"{field}.{key}", environ) for key, item in value.items()}
    return value


def _error(source: str, label: str, exc: ApiError) -> RouteFileError:
    where = f" ({exc.field})" if exc.field else ""
    return RouteFileError(f"{source}: {label}: {exc.message}{where}")
