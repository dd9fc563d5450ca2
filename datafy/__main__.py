"""Operator commands on a shell, against Redis directly: `python -m datafy status [--json]` (the system's state),
`python -m datafy routes import <file>` and `python -m datafy routes export [file]` (client routes as YAML)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from datafy.errors import StoreUnavailableError
from datafy.launch import load_settings


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m datafy", description="redis-datafy operator commands")
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="pending chats, batches, dead letters, monitors, receiver, lag")
    status.add_argument("--json", action="store_true", help="print the JSON of GET /api/status")
    routes = commands.add_parser("routes", help="client routes to and from a YAML file")
    actions = routes.add_subparsers(dest="action", required=True)
    load = actions.add_parser("import", help="create or replace the file's routes (keys and secrets as ${ENV_VAR})")
    load.add_argument("file", help="the YAML file: routes: [ {name, webhook_url, api_keys, ...}, ... ]")
    dump = actions.add_parser("export", help="every live route as YAML, keys and secrets as ${ENV_VAR}")
    dump.add_argument("file", nargs="?", help="where to write (stdout when left out)")
    args = parser.parse_args(argv)
    if args.command == "routes":
        return import_routes(args.file) if args.action == "import" else export_routes(args.file)
    return show_status(as_json=args.json)


def show_status(as_json: bool) -> int:
    """Print the status (settings from .env and the environment); 1 when Redis cannot be reached."""
    from datafy.report import gather, render_text
    from datafy.store import Store

    settings = load_settings()
    _log_to_stderr()  # stdout is the status (and --json must stay JSON)
    store = Store(settings)
    try:
        state = gather(store, settings.webhook_url)
    except StoreUnavailableError as exc:
        sys.stderr.write(f"redis at {settings.redis_url_redacted} is unavailable: {exc}\n")
        return 1
    finally:
        store.close()
    sys.stdout.write((json.dumps(state, indent=2) if as_json else render_text(state)) + "\n")
    return 0


def import_routes(path: str) -> int:
    """Validate every route of the file, then create or replace each (one line per route); 2 when the file is
    refused (nothing written if validation fails), 1 when Redis cannot be reached."""
    from datafy.routes.files import RouteFileError, plan_import, read_routes, write_route
    from datafy.store import Store

    settings = load_settings()
    _log_to_stderr()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        sys.stderr.write(f"{path}: cannot read: {exc.strerror or exc}\n")
        return 2
    store = Store(settings)
    try:
        docs = read_routes(text, path, os.environ)
        planned = plan_import(docs, path, store.routes, settings, store.connection.now_ms())
        for each in planned:
            sys.stdout.write(f"{write_route(each, path, store.routes)} {each.route.name}\n")
    except RouteFileError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    except StoreUnavailableError as exc:
        sys.stderr.write(f"redis at {settings.redis_url_redacted} is unavailable: {exc}\n")
        return 1
    finally:
        store.close()
    return 0


def export_routes(path: str | None) -> int:
    """Write every live route as YAML to `path` (stdout when None); 1 when Redis cannot be reached."""
    from datafy.routes import files
    from datafy.store import Store

    settings = load_settings()
    _log_to_stderr()  # the YAML may go to stdout
    store = Store(settings)
    try:
        text = files.export_routes(store.routes)
    except StoreUnavailableError as exc:
        sys.stderr.write(f"redis at {settings.redis_url_redacted} is unavailable: {exc}\n")
        return 1
    finally:
        store.close()
    if path is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        sys.stderr.write(f"{path}: cannot write: {exc.strerror or exc}\n")
        return 2
    return 0


def _log_to_stderr() -> None:
    """Warnings and worse only, on stderr: stdout carries the command's output."""
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
