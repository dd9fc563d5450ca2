"""The HTTP API, served by Gunicorn: `gunicorn api:app`."""

from datafy.cli import api_app

app = api_app()
