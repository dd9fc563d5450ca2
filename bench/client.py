"""The benchmarks' HTTP client: asyncio keep-alive connections POSTing to /api/message, cheap enough to
leave the CPU to the servers it measures. The same client measures ingest and drives end-to-end runs."""

from __future__ import annotations

import asyncio
import json
import time

CONNECTIONS = 32

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def post(conn: Connection, host: str, body: bytes) -> tuple[int, dict]:
    """One keep-alive POST /api/message; returns (status, reply JSON)."""
    reader, writer = conn
    writer.write(
        b"POST /api/message HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line[15:]) for line in lines if line[:15].lower() == b"content-length:")
    return status, json.loads(await reader.readexactly(length))


async def open_pool(url: str, connections: int = CONNECTIONS) -> tuple[str, asyncio.Queue[Connection]]:
    """(host:port, a queue of open keep-alive connections to `url`)."""
    host, port = url.removeprefix("http://").split(":")
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, int(port)))
    return f"{host}:{port}", pool


async def send_all(
    url: str, bodies: list[dict], connections: int = CONNECTIONS, rate: float = 0.0
) -> tuple[float, list[tuple[int, dict]]]:
    """POST every body as fast as the API takes them, or at most `rate` a second; returns (messages/s, (status,
    reply) in order)."""
    host, pool = await open_pool(url, connections)
    encoded = [json.dumps(body).encode() for body in bodies]
    replies: list[tuple[int, dict]] = [(0, {})] * len(encoded)
    cursor = iter(range(len(encoded)))

    async def worker() -> None:
        conn = await pool.get()
        for i in cursor:
            if rate and (early := started + i / rate - time.perf_counter()) > 0:
                await asyncio.sleep(early)
            replies[i] = await post(conn, host, encoded[i])
        conn[1].close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(encoded) / (time.perf_counter() - started), replies
