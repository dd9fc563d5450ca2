"""Logs: one line per event, whatever a client puts in the values."""

from __future__ import annotations

import io
import json
import logging

from datafy.log import SECRET_FILTER, TEXT_FORMAT, JsonFormatter, TextFormatter, redact_query, redact_secrets


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
    forged = "5511\n2026-11-26 10:00:00,000 ERROR   datafy.monitor.recorder: dead-lettered user=victim\u2028\x1b[2J"
    text = emit(TextFormatter(TEXT_FORMAT), forged, "b1")
    assert text.count("\n") == 1 and "\\n2026-11-26" in text and "\\u2028" in text and "\\x1b" in text


def test_json_logs_stay_json() -> None:
    line = emit(JsonFormatter(), "a\nb", "b1")
    assert json.loads(line)["message"] == "dead-lettered user=a\nb batch=b1"


def test_api_keys_are_masked_wherever_gunicorn_quotes_a_request() -> None:
    """The URI of a request whose exception escaped the app, in text and JSON logs, its traceback included."""
    for formatter in (TextFormatter(TEXT_FORMAT), JsonFormatter()):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger = logging.getLogger("datafy.test-log.gunicorn-error")
        logger.addHandler(handler)
        logger.addFilter(SECRET_FILTER)
        logger.propagate = False
        try:
            try:
                raise ValueError("bad request /x?a=1&key=s3cret")
            except ValueError:
                logger.exception("Error handling request %s %s", "GET", "/x?a=1&KEY=s3cret&hub.verify_token=t0ken")
        finally:
            logger.removeHandler(handler)
            logger.removeFilter(SECRET_FILTER)
        text = stream.getvalue()
        assert "/x?a=1&KEY=***&hub.verify_token=***" in text and "/x?a=1&key=***" in text
        assert "s3cret" not in text and "t0ken" not in text


def test_only_secret_parameters_are_masked() -> None:
    assert redact_query("POST /api/sources/evolution?ttl=5&%6Bey=k#f HTTP/1.1") == (
        "POST /api/sources/evolution?ttl=5&%6Bey=***#f HTTP/1.1")  # fmt: skip
    assert (
        redact_query("/w?hub%2Everify_token=t&hub.challenge=c&monkey=m")
        == "/w?hub%2Everify_token=***&hub.challenge=c&monkey=m"
    )
    assert (
        redact_secrets("Invalid HTTP Header: 'Authorization Bearer abc'") == "Invalid HTTP Header: 'Authorization ***'"
    )
