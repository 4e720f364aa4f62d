"""A minimal HTTP/1.1 keep-alive client for the benches: no client library's cost in the
figures. One request in flight per connection; responses carry Content-Length."""

from __future__ import annotations

import asyncio
import json
from typing import Any


class Http(asyncio.Protocol):
    """One keep-alive connection."""

    def __init__(self) -> None:
        self.buf, self.closed = bytearray(), False
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if (end := self.buf.find(b"\r\n\r\n")) < 0:
            return
        head = bytes(self.buf[:end]).lower() + b"\r\n"
        at = head.index(b"content-length:") + 15
        total = end + 4 + int(head[at : head.index(b"\r\n", at)])
        if len(self.buf) >= total and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((int(self.buf[9:12]), bytes(self.buf[end + 4 : total])))
            del self.buf[:total]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True  # uvicorn closes a keep-alive connection idle for 5 s
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("server closed the connection"))

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Write one raw request; its (status, body)."""
        if self.transport is None or self.closed:
            raise ConnectionError("the connection is closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter

    async def ok(self, raw: bytes) -> dict[str, Any]:
        """The JSON body of a 2xx answer; RuntimeError on any other status."""
        status, body = await self.send(raw)
        if status >= 300:
            raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
        out: dict[str, Any] = json.loads(body)
        return out


async def connect(port: int) -> Http:
    """A connection to 127.0.0.1:``port``."""
    _, proto = await asyncio.get_running_loop().create_connection(Http, "127.0.0.1", port)
    return proto
