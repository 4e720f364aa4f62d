"""What the lean ASGI doors share: :mod:`.hotline.fastpath` and :mod:`.desk_fastpath`.

Each door answers a few hot routes with the raw ASGI ``send``, in front of FastAPI's routing.
These are the parts that must behave as Starlette does for those routes: the path the routes
match, the first value of a header, a bounded body read, and an error answered by the app's
own exception handler, looked up as Starlette's ExceptionMiddleware looks it up.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send


def route_path(scope: Scope) -> str:
    """The path the app's routes match: ``root_path`` taken off as Starlette's routing does."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


def first_headers(scope: Scope, names: Collection[bytes]) -> dict[bytes, bytes]:
    """The first value of each header in ``names`` (lower case), as Starlette's ``Headers.get``."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in names and name not in found:
            found[name] = value
    return found


async def read_body(receive: Receive, length: bytes, limit: int) -> bytes | None:
    """The whole request body; HTTPException(413) past ``limit`` bytes, whether declared in
    ``length`` (the Content-Length) or streamed; None if the client went away."""
    if length.isdigit() and int(length) > limit:
        raise too_large(limit)
    message = await receive()
    if message["type"] != "http.request":
        return None
    body = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: one message
        if len(body) > limit:
            raise too_large(limit)
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> HTTPException:
    """The 413 for a body over ``limit`` bytes."""
    return HTTPException(413, f"request body over {limit // 1024} KiB")


async def answer_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer ``exc`` with the app's exception handler for it, or let it propagate."""
    handler = exception_handler(getattr(scope.get("app"), "exception_handlers", {}), exc)
    if handler is not None:
        response = handler(Request(scope, receive), exc)
        if inspect.isawaitable(response):
            response = await response
    elif isinstance(exc, HTTPException):  # what Starlette answers when the app has no handler
        response = PlainTextResponse(exc.detail, exc.status_code, exc.headers)
    else:
        raise exc
    await response(scope, receive, send)


def exception_handler(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The handler Starlette's ExceptionMiddleware would pick: by status for an HTTP error,
    else by the nearest class in the exception's MRO. Handlers for 500 and Exception belong
    to the ServerErrorMiddleware outside, as in FastAPI's own stack."""
    if isinstance(exc, HTTPException) and exc.status_code != 500 and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls is Exception:
            break
        if cls in handlers:
            return handlers[cls]
    return None
