"""What a request handler reads from the running app: the settings and the store. Blueprints import this,
never the app factory, so the HTTP layer has no import cycle (flask's current_app, as in its tutorial's db.py)."""

from __future__ import annotations

from flask import current_app

from datafy.config import Settings
from datafy.routes.table import RouteTable
from datafy.store import Store


def settings() -> Settings:
    """The settings of the running app."""
    return current_app.extensions["datafy.settings"]


def store() -> Store:
    """The store of the running app."""
    return current_app.extensions["datafy.store"]


def routes() -> RouteTable:
    """The route table of the running app (this process's cache)."""
    return current_app.extensions["datafy.routes"]
