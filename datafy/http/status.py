"""GET /api/status: the system's state in one JSON (admin key)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from datafy import report
from datafy.http import context
from datafy.http.auth import EVERY_ROUTE, admin_access

bp = Blueprint("status", __name__)


@bp.get("/api/status")
def get_status() -> Response:
    """Counts, monitors, the receiver and the delivery figures; see docs/monitoring.md. A route's admin key gets
    its own route's."""
    access = admin_access(context.settings(), context.routes())
    if access.route is EVERY_ROUTE:
        return jsonify(report.gather(context.store(), context.settings().webhook_url))
    route = context.routes().get(access.route)
    url = route.webhook_url if route else context.settings().webhook_url
    return jsonify(report.gather_route(context.store(), access.route, url))
