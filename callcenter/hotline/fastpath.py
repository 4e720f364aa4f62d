"""The lean door to the voice webhooks: a pure ASGI layer in front of FastAPI's routing.

While calls hold, the provider posts ``/voice/hold`` for every caller every few seconds.
Through FastAPI each request would pay for the middleware stack, matching ~100 routes,
solving the signature dependency and python-multipart's form parser; here a signed,
form-encoded ``POST /voice/<webhook>`` is read, parsed with ``urllib.parse.parse_qsl``,
checked (:class:`.views.Signature`), answered by the same webhook function the FastAPI
route calls (:data:`.views.WEBHOOKS`) and sent with the raw ASGI ``send``.

Everything else passes through untouched: other paths and methods (so 404 and 405 stay
FastAPI's), and bodies that are not ``application/x-www-form-urlencoded`` (the route parses
those as it always has). Errors are answered by the app's own exception handlers, looked
up as Starlette's ExceptionMiddleware looks them up: a bad signature is the same 403, a
``QueueError`` the same JSON, a body over :data:`MAX_BODY` a 413 in the app's error shape.
An exception no handler takes propagates to the ServerErrorMiddleware outside this layer,
which logs it and answers 500 as it does for any route.
"""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from sms.views import forbidden_exception

from .views import TWIML, WEBHOOKS, Hotline, SignedForm, Webhook

MAX_BODY = 64 * 1024  # the provider's form for one call event is well under 2 KiB
MAX_FIELDS = 1000  # as Starlette's form parser allows
_HEADERS = (b"content-type", b"content-length", b"x-twilio-signature")
_FORM = b"application/x-www-form-urlencoded"
_TWIML_TYPE = TWIML.encode()


class VoiceFastPath:
    """ASGI middleware answering the signed voice webhooks without FastAPI's routing.

    Installed with ``app.add_middleware(VoiceFastPath, hotline=hotline)``, so it runs inside
    the app's ServerErrorMiddleware and reaches the app (``scope["app"]``) for its handlers.
    """

    def __init__(self, app: ASGIApp, hotline: Hotline, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.hotline = hotline
        self.max_body = max_body
        self.webhooks = {f"/voice/{path}": webhook for path, webhook in WEBHOOKS.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._target(scope) if scope["type"] == "http" else None
        if target is None:
            await self.app(scope, receive, send)
            return
        webhook, length, signature = target
        try:
            body = await self._body(receive, length)
            if body is None:
                return  # the client went away
            form = SignedForm(_parse(body))
            if not self.hotline.signature.valid(scope, form, signature):
                raise forbidden_exception()
            query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
            status, text = await webhook(self.hotline, query, form)
        except Exception as exc:
            await _answer_error(scope, receive, send, exc)
            return
        data = text.encode()
        headers = [(b"content-type", _TWIML_TYPE), (b"content-length", b"%d" % len(data))]
        await send(
            {"type": "http.response.start", "status": status, "headers": headers if data else []}
        )
        await send({"type": "http.response.body", "body": data})

    def _target(self, scope: Scope) -> tuple[Webhook, bytes, str] | None:
        """The webhook a form-encoded POST is for, its Content-Length and signature; None
        for anything the app's own routes are to answer."""
        if scope["method"] != "POST":
            return None
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        webhook = self.webhooks.get(path)
        if webhook is None:
            return None
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
            if name in _HEADERS and name not in found:
                found[name] = value
        if found.get(b"content-type", b"").partition(b";")[0].strip().lower() != _FORM:
            return None  # the route parses it as it always has
        signature = found.get(b"x-twilio-signature", b"").decode("latin-1")
        return webhook, found.get(b"content-length", b""), signature

    async def _body(self, receive: Receive, length: bytes) -> bytes | None:
        """The whole request body; HTTPException(413) past ``max_body``; None on disconnect."""
        if length.isdigit() and int(length) > self.max_body:
            raise _too_large(self.max_body)
        message = await receive()
        if message["type"] != "http.request":
            return None
        body = message.get("body", b"")
        if not message.get("more_body", False):  # the usual case: one message
            if len(body) > self.max_body:
                raise _too_large(self.max_body)
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _too_large(self.max_body)
            chunks.append(chunk)
        return b"".join(chunks)


def _parse(body: bytes) -> list[tuple[str, str]]:
    """The form's fields, as Starlette's form parser reads them (bytes as Latin-1, %-escapes as
    UTF-8), at most MAX_FIELDS of them (HTTPException(400) beyond, as Starlette's)."""
    try:
        return parse_qsl(body.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise HTTPException(
            400, f"Too many fields. Maximum number of fields is {MAX_FIELDS}."
        ) from None


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request body over {limit // 1024} KiB")


async def _answer_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer ``exc`` with the app's exception handler for it, or let it propagate."""
    handler = _handler(getattr(scope.get("app"), "exception_handlers", {}), exc)
    if handler is not None:
        response = handler(Request(scope, receive), exc)
        if inspect.isawaitable(response):
            response = await response
    elif isinstance(exc, HTTPException):  # what Starlette answers when the app has no handler
        response = PlainTextResponse(exc.detail, exc.status_code, exc.headers)
    else:
        raise exc
    await response(scope, receive, send)


def _handler(handlers: dict[Any, Any], exc: Exception) -> Any:
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
