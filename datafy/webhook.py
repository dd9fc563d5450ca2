"""One webhook POST and its result. Never raises: every outcome is a DeliveryResult.

The monitor POSTs from an asyncio event loop over one pooled aiohttp session: per POST it costs about a
fifth of the CPU of `requests` on a thread pool, which is what lets one monitor container keep up with
the API (docs/PERFORMANCE.md, "Delivery throughput").
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from datafy import __version__
from datafy.retry import is_retryable_status, parse_retry_after
from datafy.signing import Signer

CONNECT_TIMEOUT_SECONDS = 5.0
MAX_REPLY_BYTES = 64 * 1024  # we only need the status line; a larger reply is cut off with its connection


@dataclass(frozen=True)
class DeliveryResult:
    """How one POST went."""

    delivered: bool
    status: int | None  # HTTP status, None when no reply came
    error: str  # short reason for a failure, '' on success
    retryable: bool
    retry_after: float | None  # seconds the receiver asked us to wait
    duration_ms: float


class WebhookClient:
    """POSTs batches over one pooled session: a bound on the whole POST, no redirects followed.

    Create, use and close it inside one running event loop.
    """

    def __init__(self, url: str, timeout: float, pool_size: int, signer: Signer | None = None) -> None:
        self.url = url
        self.signer = signer
        # `total` bounds the whole POST, trickled replies included, so a lease always outlives its attempt.
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(CONNECT_TIMEOUT_SECONDS, timeout))
        # Proxy settings are read from the environment once per URL, not on every POST.
        self.proxies: dict[str, str | None] = {url: _proxy_for(url)}
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size, keepalive_timeout=30),
            headers={"User-Agent": f"redis-datafy/{__version__}", "Content-Type": "application/json"},
            trust_env=False,
        )

    async def send_batch(
        self, body: bytes, batch_id: str, within: float | None = None, to: tuple[str, Signer | None] | None = None
    ) -> DeliveryResult:
        """POST one batch; the batch id doubles as an idempotency key for receivers that dedupe. `within`
        (seconds) shortens the bound on this POST below WEBHOOK_TIMEOUT: what is left of its lease. `to`: the
        (URL, signer) of a route other than the one this client was made for."""
        url, signer = to or (self.url, self.signer)
        if url not in self.proxies:
            self.proxies[url] = _proxy_for(url)
        started = time.perf_counter()
        timeout = self.timeout
        if within is not None and timeout.total is not None and within < timeout.total:
            timeout = aiohttp.ClientTimeout(total=within, sock_connect=min(CONNECT_TIMEOUT_SECONDS, within))
        headers = {"X-Batch-Id": batch_id, "Idempotency-Key": batch_id}
        if signer is not None:  # signed per attempt: same webhook-id, this attempt's timestamp
            headers.update(signer.headers(batch_id, body))
        try:
            async with self.session.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False, proxy=self.proxies[url]
            ) as response:
                status, retry_after = response.status, response.headers.get("Retry-After")
                await _discard_reply(response)
        except TimeoutError:
            return DeliveryResult(False, None, "timeout", True, None, _ms_since(started))
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error = f"connection error: {type(exc).__name__}"
            return DeliveryResult(False, None, error, True, None, _ms_since(started))
        elapsed = _ms_since(started)
        if 200 <= status < 300:
            return DeliveryResult(True, status, "", False, None, elapsed)
        wait = parse_retry_after(retry_after)
        return DeliveryResult(False, status, f"HTTP {status}", is_retryable_status(status), wait, elapsed)

    async def close(self) -> None:
        """Release pooled connections."""
        await self.session.close()


async def _discard_reply(response: aiohttp.ClientResponse) -> None:
    """Read the reply body so the connection can be reused, up to MAX_REPLY_BYTES."""
    read = 0
    while chunk := await response.content.readany():
        read += len(chunk)
        if read > MAX_REPLY_BYTES:
            response.close()
            return


def _proxy_for(url: str) -> str | None:
    """The proxy that HTTP_PROXY / HTTPS_PROXY / NO_PROXY give for `url`, as requests and curl would pick it."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return proxies.get(parts.scheme)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
