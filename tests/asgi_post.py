"""A raw ASGI POST for tests of the lean doors: the body in chunks, or a client that leaves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.types import ASGIApp


async def asgi_post(
    app: ASGIApp,
    path: str,
    chunks: list[bytes | None],
    headers: dict[str, str],
    *,
    scheme: str = "http",
    server: tuple[str, int] = ("test", 80),
) -> list[dict[str, Any]]:
    """POST ``path`` to ``app``, its body arriving in ``chunks`` (None: the client
    disconnects there); returns the messages the app sent."""
    target, _, query = path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": scheme, "path": target, "raw_path": target.encode(), "root_path": "",
             "query_string": query.encode("latin-1"), "server": server,
             "client": ("127.0.0.1", 40000), "state": {},
             "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]}  # fmt: skip
    messages: Iterator[dict[str, Any]] = iter(
        {"type": "http.disconnect"} if chunk is None
        else {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    )  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent
