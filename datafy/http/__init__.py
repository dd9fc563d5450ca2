"""The HTTP layer: the Flask application that ingests messages and serves the admin routes."""

from datafy.http.app import create_app

__all__ = ["create_app"]
