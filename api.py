"""The HTTP API, served by Gunicorn: `gunicorn api:app`."""

from datafy.launch import api_app

app = api_app()
