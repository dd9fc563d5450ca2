"""`python -m datafy status [--json]`: the system's state for an operator on a shell, read from Redis directly."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from datafy.errors import StoreUnavailableError
from datafy.launch import load_settings


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m datafy", description="redis-datafy operator commands")
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="pending chats, batches, dead letters, monitors, receiver, lag")
    status.add_argument("--json", action="store_true", help="print the JSON of GET /api/status")
    args = parser.parse_args(argv)
    return show_status(as_json=args.json)


def show_status(as_json: bool) -> int:
    """Print the status (settings from .env and the environment); 1 when Redis cannot be reached."""
    from datafy.report import gather, render_text
    from datafy.store import Store

    settings = load_settings()
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    for handler in root.handlers:  # stdout is the status (and --json must stay JSON): log lines go to stderr
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
