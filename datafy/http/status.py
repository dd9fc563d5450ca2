"""GET /api/status: the system's state in one JSON (admin key)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from datafy import report
from datafy.http import context
from datafy.http.auth import require_admin_key

bp = Blueprint("status", __name__)


@bp.get("/api/status")
def get_status() -> Response:
    """Counts, monitors, the receiver and the delivery figures; see docs/monitoring.md."""
    require_admin_key(context.settings().admin_api_keys)
    return jsonify(report.gather(context.store(), context.settings().webhook_url))
