"""Converters for the settings' values: each takes the text of one variable and returns the value, or raises
ValueError or ConfigurationError with a one-line message (never repeating a secret)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from redis.connection import parse_url

from datafy.config.env import EnvReader, parse_duration
from datafy.errors import ConfigurationError
from datafy.signing import check_secret

MIN_RETRY_STEP_SECONDS = 0.001  # WEBHOOK_RETRY_SCHEDULE: a zero step would retry at once, in a loop


def public_url(text: str) -> str:
    """The API's public address, without a trailing slash: an http(s) URL with a host, nothing after the path."""
    url = text.rstrip("/")
    if not is_http_url(url) or urlsplit(url).query or urlsplit(url).fragment:
        raise ValueError("must be an http:// or https:// URL with a host, like https://datafy.example.com")
    return url


def is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def parse_schedule(text: str) -> tuple[float, ...]:
    """Comma-separated waits, each above zero: a zero step would retry a failing receiver at once, in a loop."""
    steps = tuple(parse_duration(step) for step in text.split(",") if step.strip())
    if not steps or min(steps) < MIN_RETRY_STEP_SECONDS:
        raise ConfigurationError(
            f"WEBHOOK_RETRY_SCHEDULE={text!r} must list waits of at least 1ms, separated by commas (like 1s,5s,1m)"
        )
    return steps


def parse_secrets(text: str) -> tuple[str, ...]:
    """Space-separated Standard Webhooks secrets; the error never repeats a secret."""
    secrets = tuple(text.split())
    for position, secret in enumerate(secrets, start=1):
        try:
            check_secret(secret)
        except ValueError as exc:
            raise ConfigurationError(
                f"WEBHOOK_SECRET: secret {position} is {exc}; each must be whsec_ followed by the base64 of 24 to "
                f"64 random bytes (several are separated by spaces)"
            ) from None
    return secrets


def parse_keys(text: str) -> tuple[str, ...]:
    """Comma-separated keys (several at once while rotating)."""
    return tuple(key.strip() for key in text.split(",") if key.strip())


def parse_level(text: str) -> str:
    level = text.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(text)
    return level


def parse_format(text: str) -> str:
    if text.lower() not in ("text", "json"):
        raise ValueError(text)
    return text.lower()


def url_from_parts(reader: EnvReader, db: int, tls: bool) -> str:
    host = reader.env.get("REDIS_HOST", "").strip() or "localhost"
    port = reader.get("REDIS_PORT", int, 6379, minimum=1, maximum=65535)
    password = reader.env.get("REDIS_PASSWORD", "")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"{'rediss' if tls else 'redis'}://{auth}{host}:{port}/{db}"


def check_redis_url(url: str, variable: str) -> int:
    """The database a Redis URL names: its path (redis://h/3) or ?db= (the only way for unix:///x.sock?db=3).

    redis-py reads the same URL for every client, the expired-event channel is named after this number, and a
    Sentinel client is given it: a URL the two would read differently (a port that is not one, /0?db=3) is
    refused, so that every client and the subscription use one database."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(f"{variable} must start with redis://, rediss:// or unix://")
    if parts.scheme != "unix":
        try:
            port = parts.port  # None: redis-py's default, 6379
        except ValueError:
            port = 0
        if port == 0:
            raise ConfigurationError(f"{variable} names a port that is not a number between 1 and 65535")
    path = "" if parts.scheme == "unix" else parts.path.strip("/")
    query = parse_qs(parts.query).get("db", [""])[0]
    for raw in (path, query):
        if raw and not (raw.isascii() and raw.isdigit()):
            raise ConfigurationError(f"{variable} names a database {raw!r} that is not a number (0, 1, 2...)")
    if path and query and int(path) != int(query):
        raise ConfigurationError(
            f"{variable} names database {int(path)} in its path and {int(query)} in ?db=: name one (the path or ?db=)"
        )
    db = int(path or query or "0")
    try:
        read_by_redis = parse_url(url).get("db", 0)
    except ValueError as exc:
        raise ConfigurationError(f"{variable} is not a URL redis-py can read: {exc}") from None
    if read_by_redis != db:  # a safety net for any other reading: one database for every client
        raise ConfigurationError(f"{variable} names database {db}, but redis-py would read {read_by_redis}")
    return db


def writable_dir(text: str) -> str:
    """A directory this process may write to (made when missing), for prometheus-client's files."""
    path = Path(text)
    try:
        path.mkdir(parents=True, exist_ok=True)
        writable = os.access(path, os.W_OK | os.X_OK)
    except OSError:
        writable = False
    if not writable:
        raise ConfigurationError(f"PROMETHEUS_MULTIPROC_DIR={text!r} is not a directory this process can write to")
    return str(path)


def choice(name: str, *allowed: str) -> Callable[[str], str]:
    """A converter that accepts one of `allowed` (any case); the error names the variable and the choices."""

    def convert(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise ConfigurationError(f"{name}={text!r} must be one of: {', '.join(allowed)}")
        return value

    return convert


def jwt_secret(secret: str) -> str:
    """An HS256 key shorter than its hash (32 bytes) is guessable offline (RFC 7518 3.2); the error never repeats it."""
    if secret and len(secret.encode()) < 32:
        raise ConfigurationError(
            "EVOLUTION_JWT_SECRET must be at least 32 characters (for example `openssl rand -hex 32`); set the same "
            "value as jwt_key in the headers of the Evolution webhook"
        )
    return secret
