"""The Flask application factory."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.routing import PathConverter

from datafy.config import Settings
from datafy.http import admin, answers, dashboard, errors, ingest, metrics, openapi, routes, sources, status
from datafy.http.fastpath import FastPath
from datafy.metrics import instruments
from datafy.routes.table import RouteTable
from datafy.store import Store

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, store: Store | None = None) -> Flask:
    """Build the API; settings default to the environment, the store to a client of settings.redis_url."""
    settings = settings or Settings.from_env()
    settings.check_api()
    app = Flask("datafy", static_folder=None)  # no /static/<path> route: there are no files, it could only say 404
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep replies in documented field order
    app.url_map.merge_slashes = False  # "/api/chats//x" names user "/x", it is not a redirect to user "x"
    app.url_map.converters["chat"] = ChatIdConverter
    app.extensions["datafy.settings"] = settings
    store = app.extensions["datafy.store"] = store or Store(settings)
    table = app.extensions["datafy.routes"] = RouteTable(store.routes, settings)
    app.register_blueprint(ingest.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(answers.bp)
    app.register_blueprint(sources.bp)
    app.register_blueprint(routes.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(metrics.bp)
    errors.register(app)
    app.after_request(_count_refused_message)
    instruments.init_api()
    app.wsgi_app = FastPath(app.wsgi_app, settings, store, table)  # type: ignore[method-assign]
    return app


MESSAGE_ENDPOINTS = frozenset({"ingest.append_message", "sources.evolution", "sources.whatsapp"})


def _count_refused_message(response: Response) -> Response:
    """A message route that answered 4xx or 5xx: the message was rejected (or could not be stored)."""
    if response.status_code >= 400 and request.endpoint in MESSAGE_ENDPOINTS and request.method == "POST":
        instruments.count_rejected(response.status_code)
    return response


class ChatIdConverter(PathConverter):
    """A user id in a URL path: any characters, "/" included, even first (percent-encode it as %2F)."""

    regex = ".+?"
    part_isolating = False  # Werkzeug would infer True from a regex without "/"
