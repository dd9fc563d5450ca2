"""Gunicorn's error log never shows an API key: requests it refuses, and exceptions that escape the app.

Gateways put the ingest key in the URL (?key=); gunicorn's own `handle_error` logs the request line of a
request it cannot parse, and the URI of a request whose exception escaped the WSGI app."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import requests

from devtools.processes import Proc, running, start, start_api, wait_http
from devtools.redis_server import free_port

KEY = "error-log-key-0123456789"


def send_raw(url: str, raw: bytes) -> bytes:
    """One raw request on its own connection; the status line of the reply."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(raw)
        return sock.recv(4096).split(b"\r\n")[0]


def wait_for_log(proc: Proc, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in (log := proc.log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return log


def test_requests_gunicorn_refuses_never_log_the_key(env: dict[str, str], tmp_path: Path) -> None:
    """Regression: 'Invalid request from ip=...: Invalid HTTP request line: 'GET /x\\xff?key=<the key> ...''."""
    env.update(INGEST_AUTH="on", API_KEY=KEY, GUNICORN_ACCESS_LOG="-")
    with running(api := start_api(env, tmp_path, workers=1)):
        url = api.extra["url"]
        refused = [
            b"GET /api/sources/evolution\xff?key=" + KEY.encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n",
            b"OPTIONS *?ttl=1&key=" + KEY.encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /api/status HTTP/1.1\r\nHost: a\r\nX-API-Key " + KEY.encode() + b"\r\n\r\n",  # no colon
        ]
        for raw in refused:
            assert send_raw(url, raw).startswith(b"HTTP/1.1 400")
        # Werkzeug decodes a parameter's name, so %6Bey= is key= too: it opens the route, and is masked as well.
        body = b'{"event": "x"}'
        encoded = (b"POST /api/sources/evolution?%6Bey=" + KEY.encode() + b" HTTP/1.1\r\nHost: a\r\n"
                   b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
        assert send_raw(url, encoded) == b"HTTP/1.1 200 OK"
        log = wait_for_log(api, "%6Bey=")
    assert log.count("Invalid request from ip=") == len(refused)
    assert "OPTIONS *?ttl=1&key=***" in log and "X-API-Key ***" in log and "%6Bey=***" in log
    assert KEY not in log


def test_an_exception_that_escapes_the_app_never_logs_the_key(env: dict[str, str], tmp_path: Path) -> None:
    """Regression: gunicorn logged 'Error handling request GET /escape?key=<the key>' with the traceback."""
    env.update(INGEST_AUTH="on", API_KEY=KEY)
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "tests.e2e.escaping_app:app", "--bind", f"127.0.0.1:{port}",
            "--workers", "1"]  # fmt: skip
    with running(api := start("escaping-api", args, env, tmp_path)):
        wait_http(api, f"http://127.0.0.1:{port}/health")
        reply = requests.get(f"http://127.0.0.1:{port}/escape?ttl=1&key={KEY}", timeout=5)
        assert reply.status_code == 500
        log = wait_for_log(api, "RuntimeError: a middleware failed")
    assert "Error handling request GET /escape?ttl=1&key=***" in log and "RuntimeError: a middleware failed" in log
    assert KEY not in log
