"""The lean door to the desk actions: a pure ASGI layer in front of FastAPI's routing.

Most of a busy hall's requests are ``POST /api/halls/{hall}/workstations/{vn}/<action>`` for
the one-word actions of :data:`.api.DESK_ACTIONS` (call-next, start, complete …). Through
FastAPI each would pay for matching routes, solving its dependencies, validating the returned
model and serializing it: several times the engine's own work. Here such a POST has its path
split, its body (these routes take none) read and dropped, its token checked by the function
the ``acting_for`` dependency calls (:func:`.deps.acting_as`), the action done by the function
the route calls (:func:`.api.desk_action`), and the answer serialized as FastAPI serializes a
return-annotated model (``TypeAdapter.dump_json``, by alias), with the same headers.
call-next's one query parameter, ``finish`` (the ticket 下一位 finishes), is read here when
it is one plain id; any other form of it is left to the route, which refuses it with a 422.

The path parameters are segments of ``scope["path"]`` as the server decoded it: Starlette's
routing matches the same string and decodes a ``str`` parameter no further. Everything else
passes through untouched: other methods and paths (so 404 and 405 stay FastAPI's), unknown
actions, extra segments, and the workstation routes that take a body (sign-in, pause,
transfer …). Errors are answered by the app's own exception handlers, as on the voice
webhooks' lean door (:mod:`.lean_door`); a body over :data:`MAX_BODY` is a 413 in the app's
error shape.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from pydantic import TypeAdapter
from starlette.types import ASGIApp, Receive, Scope, Send

from .api import DESK_ACTIONS, desk_action
from .deps import AppContext, acting_as, bearer_token, hall_of
from .lean_door import answer_error, first_headers, read_body, route_path
from .schemas import WorkstationOut

_ID = re.compile(r"[1-9][0-9]{0,18}")
MAX_ID = 2**62  # as the route's Query(le=...)
MAX_BODY = 64 * 1024  # the routes take no body; a client may still send an empty JSON one
_PREFIX = "/api/halls/"
_HEADERS = (b"authorization", b"content-length")
_JSON = b"application/json"


class DeskFastPath:
    """ASGI middleware answering the desk actions without FastAPI's routing.

    Installed with ``app.add_middleware(DeskFastPath)``, so it runs inside the app's
    ServerErrorMiddleware and reaches the app (``scope["app"]``) for its context and handlers.
    """

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body
        self.verbs = {path: verb for path, verb, _, _ in DESK_ACTIONS}
        self.dump_json = TypeAdapter(WorkstationOut).dump_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._target(scope) if scope["type"] == "http" else None
        if target is None:
            await self.app(scope, receive, send)
            return
        hall, vn, verb, finish = target
        found = first_headers(scope, _HEADERS)
        try:
            if await read_body(receive, found.get(b"content-length", b""), self.max_body) is None:
                return  # the client went away
            ctx: AppContext = scope["app"].state.ctx
            authorization = found.get(b"authorization", b"").decode("latin-1")
            acting_as(ctx, hall, vn, bearer_token(authorization, scope["query_string"]))
            out = await desk_action(hall_of(ctx, hall), vn, verb, finish)
        except Exception as exc:
            await answer_error(scope, receive, send, exc)
            return
        body = self.dump_json(out, by_alias=True)
        headers = [(b"content-length", b"%d" % len(body)), (b"content-type", _JSON)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _target(self, scope: Scope) -> tuple[str, str, str, int | None] | None:
        """The hall, work number, engine verb and ticket to finish a desk action's POST is
        for; None for anything the app's own routes are to answer."""
        if scope["method"] != "POST":
            return None
        path = route_path(scope)
        if not path.startswith(_PREFIX):
            return None
        parts = path[len(_PREFIX) :].split("/")
        if len(parts) != 4 or parts[1] != "workstations" or not parts[0] or not parts[2]:
            return None
        verb = self.verbs.get(parts[3])
        if verb is None:
            return None
        finish = None
        if verb == "call_next" and scope["query_string"]:
            named = [
                v
                for k, v in parse_qsl(
                    scope["query_string"].decode("latin-1"), keep_blank_values=True
                )
                if k == "finish"
            ]
            if named:
                # One plain id is ours; anything else (repeated, signed, out of range) the
                # route validates, with its own 422.
                if len(named) > 1 or not _ID.fullmatch(named[0]) or int(named[0]) > MAX_ID:
                    return None
                finish = int(named[0])
        return parts[0], parts[2], verb, finish
