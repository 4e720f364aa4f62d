"""The desk actions' two doors: the lean ASGI path (callcenter/desk_fastpath.py) and the FastAPI
routes. The same hall runs twice, once as create_app builds it and once without the lean door,
and every request goes to both: the answers must be the same to the byte, and the lean one must
refuse what the route refuses, never with a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cc_support import ADMIN, HALL, KIOSK, START, SUPERVISOR, Api, bearer, make_settings, running
from fastapi import FastAPI
from fastapi.routing import APIRouter

from callcenter import api as api_module
from callcenter.app import create_app
from callcenter.auth import Principal
from callcenter.desk_fastpath import MAX_BODY, DeskFastPath
from queue_engine import FakeClock, TicketState
from queue_engine.errors import UnknownServiceError
from tests.asgi_post import asgi_post

DESK = f"/api/halls/{HALL}/workstations"
ACTIONS = [path for path, *_ in api_module.DESK_ACTIONS]


@dataclass
class Pair:
    """One request's answers through both doors, and whether FastAPI's routing saw each."""

    lean: httpx.Response
    route: httpx.Response
    routed: tuple[bool, bool]

    def same(self) -> Pair:
        """Status, headers (names, values, order) and body identical; returns self."""
        lean, route = self.lean, self.route
        assert lean.status_code == route.status_code, (lean.text, route.text)
        assert lean.headers.raw == route.headers.raw
        assert lean.content == route.content
        return self

    def by_lean_door(self) -> Pair:
        """The same answer, the lean app's without FastAPI's routing."""
        assert self.routed == (False, True)
        return self.same()

    def by_routes(self) -> Pair:
        """The same answer, both apps' through FastAPI's routing."""
        assert self.routed == (True, True)
        return self.same()

    def error(self) -> dict[str, Any]:
        """The error object, checked for the app's one shape."""
        assert self.lean.headers["content-type"] == "application/json"
        err = self.lean.json()["error"]
        assert set(err) == {"code", "message_zh", "message_en", "details"}
        return dict(err)


@dataclass
class Doors:
    """The hall twice: ``lean`` as create_app builds it, ``route`` without the lean door."""

    lean: Api
    route: Api
    seen: list[str]

    async def send(self, method: str, path: str, **kw: Any) -> Pair:
        """``method path`` to both apps, each settled first so their views are alike."""
        answers, routed = [], []
        for api in (self.lean, self.route):
            await api.settle()
            self.seen.clear()
            answers.append(await api.client.request(method, path, **kw))
            routed.append(bool(self.seen))
        return Pair(answers[0], answers[1], (routed[0], routed[1]))

    async def act(self, vn: str, action: str, headers: dict[str, str], **kw: Any) -> Pair:
        """A desk action (or any workstation POST) for ``vn``."""
        return await self.send("POST", f"{DESK}/{vn}/{action}", headers=headers, **kw)

    def each(self) -> Iterator[Api]:
        yield self.lean
        yield self.route

    def token(self, who: As) -> str:
        """A token for ``who``, good on both apps (they share the secret)."""
        return token(self.lean, who)

    def bearer(self, who: As) -> dict[str, str]:
        """An Authorization header for ``who``."""
        return bearer(self.token(who))


@dataclass(frozen=True)
class As:
    """Whom a session token names."""

    vn: str
    role: str = "staff"
    hall: str = HALL


STAFF, AGENT = As("W0001"), As("W0101", "agent")


def token(api: Api, who: As) -> str:
    """A session token for ``who``, signed as a login signs it (without a login's scrypt)."""
    return api.ctx.authority.sign(Principal(who.vn, who.role, who.hall, START + 3600))


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths that reached FastAPI's routing: the lean door answers without it."""
    paths: list[str] = []
    original = APIRouter.__call__

    async def spy(self: APIRouter, scope: Any, receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(APIRouter, "__call__", spy)
    return paths


def without_lean_door(app: FastAPI) -> FastAPI:
    """The app as FastAPI alone would answer it (before its middleware stack is built)."""
    assert [m for m in app.user_middleware if m.cls is DeskFastPath]
    app.user_middleware = [m for m in app.user_middleware if m.cls is not DeskFastPath]
    return app


@pytest.fixture
async def doors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seen: list[str]
) -> AsyncIterator[Doors]:
    monkeypatch.delenv("CALLCENTER_SECRET", raising=False)
    apis = []
    async with AsyncExitStack() as stack:
        for name in ("lean", "route"):
            (tmp_path / name).mkdir()
            clock = FakeClock(START)
            app = create_app(make_settings(tmp_path / name), clock=clock, tick_s=3600)
            if name == "route":
                without_lean_door(app)
            await stack.enter_async_context(running(app))
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            client = httpx.AsyncClient(transport=transport, base_url="http://test")
            await stack.enter_async_context(client)
            apis.append(Api(app, client, clock))
        yield Doors(apis[0], apis[1], seen)


# --- the same answers through both doors ----------------------------------------------------


async def test_every_action_answers_byte_for_byte_as_the_route(doors: Doors) -> None:
    staff, agent = doors.bearer(STAFF), doors.bearer(AGENT)
    done: list[str] = []

    async def act(vn: str, action: str, headers: dict[str, str]) -> dict[str, Any]:
        pair = (await doors.act(vn, action, headers)).by_lean_door()
        assert pair.lean.status_code == 200, pair.lean.text
        assert pair.lean.headers.raw == [
            (b"content-length", str(len(pair.lean.content)).encode()),
            (b"content-type", b"application/json"),
        ]
        done.append(action)
        return dict(pair.lean.json())

    (await doors.act("W0001", "sign-in", staff, json={"window": "1"})).by_routes()
    assert (await act("W0001", "call-next", staff))["ticket"] is None  # nobody waits
    for api in doors.each():
        await api.issue("social_insurance")
        await api.issue("social_insurance")
    assert (await act("W0001", "call-next", staff))["ticket"]["number"] == "C001"
    assert (await act("W0001", "recall", staff))["ticket"]["state"] == "called"
    assert (await act("W0001", "start", staff))["ticket"]["state"] == "serving"
    desk = await act("W0001", "hold", staff)
    assert desk["ticket"] is None and [t["number"] for t in desk["held"]] == ["C001"]
    assert (await act("W0001", "call-next", staff))["ticket"]["number"] == "C002"
    assert (await act("W0001", "no-show", staff))["ticket"] is None
    ticket_id = desk["held"][0]["id"]
    (await doors.act("W0001", "resume-ticket", staff, json={"ticket_id": ticket_id})).by_routes()
    assert (await act("W0001", "complete", staff))["ticket"] is None

    (await doors.act("W0101", "sign-in", agent, json={"window": "H01"})).by_routes()
    for step in ("reject", "accept"):
        for api in doors.each():
            await api.runtime.engine.take_ticket("hotline_consult", channel="phone")
            assert len(await api.runtime.engine.dispatch()) == 1
        desk = await act("W0101", step, agent)
        assert desk["state"] == {"reject": "available", "accept": "serving"}[step]
    assert sorted(set(done)) == sorted(ACTIONS)


async def test_next_naming_the_ticket_it_finishes_through_both_doors(doors: Doors) -> None:
    """The demo hall's 下一位 finishes the ticket in hand; ?finish= names it."""
    staff = doors.bearer(STAFF)
    (await doors.act("W0001", "sign-in", staff, json={"window": "1"})).by_routes()
    for api in doors.each():
        for _ in range(3):
            await api.issue("social_insurance")
    first = (await doors.act("W0001", "call-next", staff)).by_lean_door().lean.json()["ticket"]
    twice = (await doors.act("W0001", "call-next", staff)).by_lean_door()  # a double press
    assert twice.lean.status_code == 409 and twice.error()["code"] == "just_called"
    named = f"call-next?finish={first['id']}"
    second = (await doors.act("W0001", named, staff)).by_lean_door().lean.json()["ticket"]
    assert second["number"] == "C002"
    again = (await doors.act("W0001", named, staff)).by_lean_door()  # the same press again
    assert again.lean.status_code == 409 and again.error()["code"] == "ticket_changed"
    # Anything but one plain id is the route's to refuse, with its own 422.
    for bad in ("0", "-1", "abc", "", "01", f"{2**62 + 1}", "1.0"):
        pair = (await doors.act("W0001", f"call-next?finish={bad}", staff)).by_routes()
        if bad in ("01", "1.0"):  # the route reads them as 1: not the ticket in hand
            assert pair.error()["code"] == "ticket_changed"
        else:
            assert pair.lean.status_code == 422, (bad, pair.lean.text)
            assert pair.error()["code"] == "invalid_request"
    repeated = f"call-next?finish={first['id']}&finish={second['id']}"  # the route takes the last
    pair = (await doors.act("W0001", repeated, staff)).by_routes()
    assert pair.lean.json()["ticket"]["number"] == "C003"


async def test_the_token_may_come_in_the_query_and_a_supervisor_acts_for_anyone(
    doors: Doors,
) -> None:
    supervisor = doors.bearer(As(SUPERVISOR, "supervisor"))
    (await doors.act("W0001", "sign-in", supervisor, json={"window": "1"})).by_routes()
    plain = doors.token(STAFF)
    pair = (await doors.send("POST", f"{DESK}/W0001/call-next?token={plain}")).by_lean_door()
    assert pair.lean.status_code == 200 and pair.lean.json()["virtual_number"] == "W0001"
    pair = (await doors.act("W0001", "call-next", supervisor)).by_lean_door()
    assert pair.lean.status_code == 200
    # The header wins over the query, as in the dependency.
    wrong = f"{DESK}/W0001/call-next?token={plain}"
    pair = (await doors.send("POST", wrong, headers=doors.bearer(As("W0002")))).by_lean_door()
    assert pair.lean.status_code == 403


async def test_a_small_body_is_read_and_ignored_as_by_the_route(doors: Doors) -> None:
    staff = doors.bearer(STAFF)
    (await doors.act("W0001", "sign-in", staff, json={"window": "1"})).by_routes()
    pair = (await doors.act("W0001", "call-next", staff, json={"anything": 1})).by_lean_door()
    assert pair.lean.status_code == 200


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        pytest.param(f"{DESK}/W0001/call-next", {}, 401, "unauthorized", id="no-token"),
        pytest.param(f"{DESK}/W0001/complete", {"Authorization": "Bearer nonsense"}, 401,
                     "unauthorized", id="bad-token"),
        pytest.param(f"{DESK}/W0001/complete", {"Authorization": "Basic abc"}, 401,
                     "unauthorized", id="not-bearer"),
        pytest.param("/api/halls/nowhere/workstations/W0001/start", {}, 404, "unknown_hall",
                     id="unknown-hall"),  # before the token is looked at, as by the route
        pytest.param(f"{DESK}/W0001/start", As("W0001", hall="elsewhere"), 403, "forbidden",
                     id="other-hall"),
        pytest.param(f"{DESK}/W0001/start", bearer(KIOSK), 403, "forbidden", id="device"),
        pytest.param(f"{DESK}/W0001/hold", As("W0002"), 403, "forbidden", id="other-vn"),
        pytest.param(f"{DESK}/W0001/recall", STAFF, 409, "not_signed_in", id="not-signed-in"),
        pytest.param(f"{DESK}/W0001/accept", As(SUPERVISOR, "supervisor"), 409, "not_signed_in",
                     id="supervisor-for-another"),
    ],
)  # fmt: skip
async def test_refusals_are_the_routes_to_the_byte(
    doors: Doors, path: str, headers: As | dict[str, str], status: int, code: str
) -> None:
    if isinstance(headers, As):
        headers = doors.bearer(headers)
    pair = (await doors.send("POST", path, headers=headers)).by_lean_door()
    assert (pair.lean.status_code, pair.error()["code"]) == (status, code), pair.lean.text


async def test_a_domain_conflict_is_the_routes_409(doors: Doors) -> None:
    agent, staff = doors.bearer(AGENT), doors.bearer(STAFF)
    (await doors.act("W0101", "sign-in", agent, json={"window": "H01"})).by_routes()
    (await doors.act("W0001", "sign-in", staff, json={"window": "1"})).by_routes()
    pair = (await doors.act("W0101", "call-next", agent)).by_lean_door()
    assert (pair.lean.status_code, pair.error()["code"]) == (409, "wrong_seat_kind")
    pair = (await doors.act("W0001", "complete", staff)).by_lean_door()
    assert (pair.lean.status_code, pair.error()["code"]) == (409, "no_ticket")
    assert "W0001" in pair.error()["message_en"]


@pytest.mark.parametrize(
    ("vn", "named"),
    [("W%E4%B8%AD01", "W中01"), ("W%2541", "W%41"), ("W%200001", "W 0001"), ("W0001+", "W0001+")],
)
async def test_escaped_work_numbers_are_decoded_as_starlette_decodes_them(
    doors: Doors, vn: str, named: str
) -> None:
    """The server decodes the path once; Starlette's routing decodes a parameter no further."""
    pair = (await doors.act(vn, "start", doors.bearer(STAFF))).by_lean_door()
    assert pair.lean.status_code == 403
    assert pair.error()["message_en"] == f"Not allowed: you are signed in as W0001, not {named}."


async def test_an_escaped_slash_is_an_extra_segment_for_fastapi(doors: Doors) -> None:
    pair = (await doors.act("W%2F0001", "start", doors.bearer(As(ADMIN, "admin")))).by_routes()
    assert (pair.lean.status_code, pair.error()["code"]) == (404, "http_404")


async def test_a_body_over_the_limit_is_413_and_nothing_is_done(api: Api) -> None:
    """The lean door's own limit: the routes never read the body these actions take none of."""
    staff = bearer(token(api, STAFF))
    await api.act("W0001", "sign-in", staff, {"window": "1"})
    await api.issue("social_insurance")
    r = await api.client.post(
        f"{DESK}/W0001/call-next", headers=staff, content=b"x" * (MAX_BODY + 1)
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "http_413"
    assert "64 KiB" in r.json()["error"]["message_en"]
    # Streamed without a Content-Length: refused once the chunks pass the limit.
    chunk = b"x" * (MAX_BODY // 2)
    sent = await asgi_post(api.app, f"{DESK}/W0001/call-next", [chunk, chunk, chunk], staff)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "http_413"
    assert [t.state for t in await api.runtime.engine.waiting()] == [TicketState.WAITING]
    # At the limit, served.
    r = await api.client.post(f"{DESK}/W0001/call-next", headers=staff, content=b"x" * MAX_BODY)
    assert r.status_code == 200 and r.json()["ticket"]["number"] == "C001"


async def test_a_client_that_leaves_mid_body_gets_no_answer_and_nothing_is_done(
    api: Api,
) -> None:
    staff = bearer(token(api, STAFF))
    await api.act("W0001", "sign-in", staff, {"window": "1"})
    await api.issue("social_insurance")
    sent = await asgi_post(api.app, f"{DESK}/W0001/call-next", [b"{", None], staff)
    assert sent == []
    assert len(await api.runtime.engine.waiting()) == 1


# --- what the lean door leaves to FastAPI ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", f"{DESK}/W0001/call-next", 405, "http_405"),
        ("PUT", f"{DESK}/W0001/complete", 405, "http_405"),
        ("HEAD", f"{DESK}/W0001/complete", 405, None),
        ("POST", f"{DESK}/W0001/dance", 404, "http_404"),
        ("POST", f"{DESK}/W0001/call-next/again", 404, "http_404"),
        ("POST", f"{DESK}/W0001/call-next/", 307, None),  # Starlette's redirect to no slash
        ("POST", f"{DESK}//call-next", 404, "http_404"),
        ("POST", "/api/halls//workstations/W0001/call-next", 404, "http_404"),
        ("POST", f"/api/halls/{HALL}/windows/W0001/call-next", 404, "http_404"),
        ("POST", f"/v2{DESK}/W0001/call-next", 404, "http_404"),
        ("POST", f"{DESK}/W0001/sign-out", 409, "not_signed_in"),  # no body, not a desk action
        ("POST", f"{DESK}/W0001/pause", 422, "invalid_request"),  # takes a body
    ],
)
async def test_other_paths_and_methods_fall_through_to_fastapi(
    doors: Doors, method: str, path: str, status: int, code: str | None
) -> None:
    pair = (await doors.send(method, path, headers=doors.bearer(STAFF))).by_routes()
    assert pair.lean.status_code == status, pair.lean.text
    if code is not None:
        assert pair.error()["code"] == code


async def test_a_root_path_is_taken_off_as_starlette_takes_it_off(doors: Doors) -> None:
    pairs = []
    for api in doors.each():
        transport = httpx.ASGITransport(app=api.app, root_path="/hall")
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            doors.seen.clear()
            r = await client.post(f"/hall{DESK}/W0001/start", headers=doors.bearer(As("W0002")))
            pairs.append((r, bool(doors.seen)))
    Pair(pairs[0][0], pairs[1][0], (pairs[0][1], pairs[1][1])).by_lean_door()
    assert pairs[0][0].status_code == 403


async def test_the_openapi_document_is_unchanged_by_the_lean_door(doors: Doors) -> None:
    pair = (await doors.send("GET", "/openapi.json")).by_routes()
    doc = pair.lean.json()
    for path, verb, tag, description in api_module.DESK_ACTIONS:
        op = doc["paths"][f"/api/halls/{{hall}}/workstations/{{vn}}/{path}"]["post"]
        assert (op["tags"], op["description"]) == ([tag], description)
        assert (
            op["operationId"]
            == f"{verb}_api_halls__hall__workstations__vn__{path.replace('-', '_')}_post"
        )
        assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/WorkstationOut"
        }
        assert "requestBody" not in op


# --- errors inside an action ------------------------------------------------------------------


async def test_a_queue_error_is_answered_as_the_app_answers_it(
    doors: Doors, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise UnknownServiceError(service="social_insurance")

    for api in doors.each():
        monkeypatch.setattr(api.runtime.engine, "at_desk", refuse)
    pair = (await doors.act("W0001", "start", doors.bearer(STAFF))).by_lean_door()
    assert (pair.lean.status_code, pair.error()["code"]) == (404, "unknown_service")


async def test_an_unexpected_error_is_the_apps_500(
    doors: Doors, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    for api in doors.each():
        monkeypatch.setattr(api.runtime.engine, "at_desk", broken)
    pair = (await doors.act("W0001", "complete", doors.bearer(STAFF))).by_lean_door()
    assert pair.lean.status_code == 500 and pair.lean.text == "Internal Server Error"
