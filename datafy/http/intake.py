"""Taking in one message request: authenticate, validate, append, and the reply. The Flask view (ingest.py)
and the fast path (fastpath.py) both run this, so they cannot drift apart."""

from __future__ import annotations

import logging
from collections.abc import Callable

from werkzeug.datastructures import Headers

from datafy.config import Settings
from datafy.http.auth import ingest_access
from datafy.http.errors import limit_error
from datafy.http.validation import parse_json_object, parse_message
from datafy.metrics import instruments
from datafy.model import iso_from_ms
from datafy.routes.table import RouteTable
from datafy.store import Store

log = logging.getLogger(__name__)

RAISED = "datafy.raised"  # environ key: an error the fast path met, raised again inside Flask to be rendered


def accept_message(
    table: RouteTable, settings: Settings, store: Store, headers: Headers, read_body: Callable[[], bytes]
) -> dict[str, object]:
    """Authenticate, validate and append one message request (its headers; its raw JSON body, read only once the
    key is good); the reply's JSON. Raises ApiError or StoreUnavailableError. The Flask view and the fast path
    both run it."""
    access = ingest_access(settings, table, headers)
    route_settings = table.settings(access.route) or settings
    msg = parse_message(parse_json_object(read_body()), route_settings, route=access.route)
    result = store.buffer.append(msg, access.key_id, route_settings, table.pending_cap(access.route))
    if result.refused:
        raise limit_error(result.status, result.retry_after_ms)
    instruments.count_append(result, msg.route)
    # flush_at: when the batch is (or was, when flushed now) due; null for a duplicate with nothing pending.
    flush_at = iso_from_ms(result.flush_at_ms) if result.flush_at_ms else None
    reply: dict[str, object] = {"success": True, "user": msg.user, "buffered": result.buffered, "flush_at": flush_at}
    if result.status == "flushed":
        reply["flushed"] = True
        reply["batch_id"] = result.batch_id
        reply["message"] = f"batch of {result.buffered} message(s) flushed now ({msg.flush_reason or 'limit'})"
        log.info("flushed on append user=%s batch=%s count=%d", msg.user, result.batch_id, result.buffered)
    elif result.status == "duplicate":
        reply["duplicate"] = True
        reply["message"] = "duplicate message_id ignored"
    else:
        reply["message"] = f"message buffered; {result.buffered} waiting"
    if result.sealed is not None:  # the byte cap closed the open batch; this message starts the next one
        sealed = result.sealed
        reply["sealed"] = {"batch_id": sealed.batch_id, "sequence": sealed.sequence,
                           "message_count": sealed.count, "flush_reason": sealed.reason}  # fmt: skip
        reply["message"] = (
            f"the open batch of {sealed.count} message(s) was sent ({sealed.reason}); this message starts the next one"
        )
        log.info("flushed on append user=%s batch=%s count=%d reason=%s", msg.user, sealed.batch_id, sealed.count,
                 sealed.reason)  # fmt: skip
    return reply
