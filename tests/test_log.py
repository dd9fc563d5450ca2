"""Logs: one line per event, whatever a client puts in the values."""

from __future__ import annotations

import io
import json
import logging

from datafy.log import TEXT_FORMAT, JsonFormatter, TextFormatter


def emit(formatter: logging.Formatter, *args: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("datafy.test-log")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("dead-lettered user=%s batch=%s", *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_user_id_cannot_forge_a_log_line() -> None:
    """Regression: a user id holding a newline printed a convincing fake ERROR line."""
    forged = "5511\n2026-11-26 10:00:00,000 ERROR   datafy.monitor.delivery: dead-lettered user=victim\u2028\x1b[2J"
    text = emit(TextFormatter(TEXT_FORMAT), forged, "b1")
    assert text.count("\n") == 1 and "\\n2026-11-26" in text and "\\u2028" in text and "\\x1b" in text


def test_json_logs_stay_json() -> None:
    line = emit(JsonFormatter(), "a\nb", "b1")
    assert json.loads(line)["message"] == "dead-lettered user=a\nb batch=b1"
