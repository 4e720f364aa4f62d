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
up as Starlette's ExceptionMiddleware looks them up (:mod:`callcenter.lean_door`, which the
desk actions' lean door shares): a bad signature is the same 403, a
``QueueError`` the same JSON, a body over :data:`MAX_BODY` a 413 in the app's error shape.
An exception no handler takes propagates to the ServerErrorMiddleware outside this layer,
which logs it and answers 500 as it does for any route.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from sms.views import forbidden_exception

from ..lean_door import answer_error, first_headers, read_body, route_path
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
            body = await read_body(receive, length, self.max_body)
            if body is None:
                return  # the client went away
            form = SignedForm(_parse(body))
            if not self.hotline.signature.valid(scope, form, signature):
                raise forbidden_exception()
            query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
            status, text = await webhook(self.hotline, query, form)
        except Exception as exc:
            await answer_error(scope, receive, send, exc)
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
        webhook = self.webhooks.get(route_path(scope))
        if webhook is None:
            return None
        found = first_headers(scope, _HEADERS)
        if found.get(b"content-type", b"").partition(b";")[0].strip().lower() != _FORM:
            return None  # the route parses it as it always has
        signature = found.get(b"x-twilio-signature", b"").decode("latin-1")
        return webhook, found.get(b"content-length", b""), signature


def _parse(body: bytes) -> list[tuple[str, str]]:
    """The form's fields, as Starlette's form parser reads them (bytes as Latin-1, %-escapes as
    UTF-8), at most MAX_FIELDS of them (HTTPException(400) beyond, as Starlette's)."""
    try:
        return parse_qsl(body.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise HTTPException(
            400, f"Too many fields. Maximum number of fields is {MAX_FIELDS}."
        ) from None
