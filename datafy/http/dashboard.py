"""The web dashboard: static files at /admin (no key needed to load them); its data comes from the admin JSON routes.

The page is one HTML file, three scripts (text, charts, logic) and a stylesheet, read once from package data. The HTML
names its assets with a content hash (?v=...), so browsers may keep them for a year and still get a new release at
once; the HTML itself is revalidated on every load (ETag). A strict Content-Security-Policy allows only our own
scripts and style, calls to this origin, and no framing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from flask import Blueprint, Response, request

from datafy.errors import ApiError

bp = Blueprint("dashboard", __name__)

STATIC = "static/dashboard"
ASSET_TYPES = {
    "i18n.js": "text/javascript",
    "charts.js": "text/javascript",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
REVALIDATE = "no-cache"  # keep a copy, but ask (ETag) before each use
FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    """One file of the page, with its mimetype and content hash."""

    body: bytes
    mimetype: str
    digest: str


def _read(name: str) -> bytes:
    return resources.files("datafy.http").joinpath(STATIC, name).read_bytes()


def _asset(name: str, mimetype: str) -> Asset:
    body = _read(name)
    return Asset(body, mimetype, hashlib.sha256(body).hexdigest()[:16])


ASSETS = {name: _asset(name, mimetype) for name, mimetype in ASSET_TYPES.items()}
_html = _read("index.html").decode()
for _name, _file in ASSETS.items():
    _html = _html.replace(f"{{{{{_name}}}}}", f"/admin/static/{_name}?v={_file.digest}")
PAGE = Asset(_html.encode(), "text/html", hashlib.sha256(_html.encode()).hexdigest()[:16])


@bp.get("/admin")
@bp.get("/admin/")
def page() -> Response:
    """The dashboard's HTML, with its login form."""
    return _send(PAGE, REVALIDATE)


@bp.get("/admin/static/<name>")
def asset(name: str) -> Response:
    """A script or stylesheet of the page; cached for good when asked for by its current hash."""
    found = ASSETS.get(name)
    if found is None:
        raise ApiError(404, "not_found", f"no dashboard file {name}", "name")
    return _send(found, FOREVER if request.args.get("v") == found.digest else REVALIDATE)


def _send(asset: Asset, cache_control: str) -> Response:
    response = Response(asset.body, mimetype=asset.mimetype)
    response.set_etag(asset.digest)
    response.headers["Cache-Control"] = cache_control
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response.make_conditional(request)
