"""A fast webhook receiver for benchmarks: asyncio, keep-alive, records (arrival time, batch) and answers 200.

Run as a separate process so the benchmark's own work does not slow it: `python bench/fast_receiver.py PORT OUT`.
On SIGTERM it writes one JSON line per batch to OUT: {"at": epoch seconds, "batch": {...}}.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


async def main(port: int, out_path: str) -> None:
    records: list[tuple[float, bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                records.append((time.time(), body))
                writer.write(RESPONSE)
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()
    with open(out_path, "w") as out:
        for at, body in records:
            out.write(json.dumps({"at": at, "batch": json.loads(body)}) + "\n")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
