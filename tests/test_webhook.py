"""send_batch against a real local HTTP server: every outcome is a result, never an exception."""

from __future__ import annotations

import asyncio

from datafy.webhook import DeliveryResult, WebhookClient
from devtools.receiver import Receiver, Reply
from devtools.redis_server import free_port


def post(url: str, timeout: float, *batches: tuple[bytes, str]) -> list[DeliveryResult]:
    """POST each (body, batch_id) in turn from one client, in an event loop of its own."""

    async def run() -> list[DeliveryResult]:
        client = WebhookClient(url, timeout, 4)
        try:
            return [await client.send_batch(body, batch_id) for body, batch_id in batches]
        finally:
            await client.close()

    return asyncio.run(run())


def test_2xx_is_delivered_with_idempotency_headers(receiver: Receiver) -> None:
    [result] = post(receiver.url, 2, (b'{"batch_id": "b1"}', "b1"))
    assert result.delivered and result.status == 200 and not result.error
    [got] = receiver.received
    assert got.headers["X-Batch-Id"] == got.headers["Idempotency-Key"] == "b1"
    assert got.headers["Content-Type"] == "application/json"


def test_failures_are_classified(receiver: Receiver) -> None:
    cases = {
        "500": (Reply(status=500), True, 500),
        "429": (Reply(status=429, headers={"Retry-After": "7"}), True, 429),
        "410": (Reply(status=410), False, 410),
        "302": (Reply(status=302, headers={"Location": "http://127.0.0.1:9/"}), False, 302),
        "slow": (Reply(delay=1.5), True, None),
    }
    receiver.behaviour = lambda batch, nth: cases[batch["batch_id"]][0]
    results = post(receiver.url, 0.5, *((f'{{"batch_id": "{batch_id}"}}'.encode(), batch_id) for batch_id in cases))
    for (batch_id, (_, retryable, status)), result in zip(cases.items(), results, strict=True):
        assert not result.delivered and result.retryable is retryable and result.status == status, batch_id
    assert results[1].retry_after == 7
    assert len([r for r in receiver.received if r.body["batch_id"] == "302"]) == 1  # redirect not followed


def test_connection_refused_is_retryable() -> None:
    [result] = post(f"http://127.0.0.1:{free_port()}/hook", 1, (b"{}", "b"))
    assert not result.delivered and result.retryable and result.status is None and "connection" in result.error
