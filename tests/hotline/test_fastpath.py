"""The voice webhooks' two doors: the lean ASGI path (callcenter/hotline/fastpath.py), which
signed form posts take, and the FastAPI routes, which everything else takes. Both must give
the same answers, and the lean one must refuse what it should without ever a 500."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.openapi.utils import get_openapi
from fastapi.routing import iter_route_contexts
from starlette.requests import Request

from callcenter.hotline import views
from callcenter.hotline.fastpath import MAX_BODY, MAX_FIELDS
from queue_engine import TicketState
from queue_engine.errors import UnknownServiceError
from tests.asgi_post import asgi_post

from .conftest import PUBLIC, Hot
from .test_webhooks import connector_of

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def parsed_by_route(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths whose form Starlette parsed: only the FastAPI routes' door does that."""
    seen: list[str] = []
    original = Request.form

    def form(self: Request, *args: Any, **kwargs: Any) -> Any:
        seen.append(self.url.path)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Request, "form", form)
    return seen


def multipart(params: dict[str, str]) -> tuple[bytes, str]:
    """The same fields as multipart/form-data: a body the lean door leaves to the route."""
    boundary = "hotline-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             for k, v in params.items()]  # fmt: skip
    return (
        "".join(parts) + f"--{boundary}--\r\n"
    ).encode(), f"multipart/form-data; boundary={boundary}"


async def by_route(
    hot: Hot, path: str, params: dict[str, str], signature: str | None = None
) -> Any:
    """POST ``params`` signed (or with ``signature``) as multipart: through the FastAPI route."""
    body, ctype = multipart(params)
    sig = hot.sign(PUBLIC + path, params) if signature is None else signature
    return await hot.client.post(path, content=body,
                                 headers={"Content-Type": ctype, "X-Twilio-Signature": sig})  # fmt: skip


async def asgi(
    hot: Hot, path: str, chunks: list[bytes | None], headers: dict[str, str]
) -> list[dict[str, Any]]:
    """A raw ASGI POST to the hotline's public address, its body in ``chunks``."""
    headers = {"Host": "hotline.example.gov.cn", **headers}
    return await asgi_post(
        hot.app, path, chunks, headers, scheme="https", server=("hotline.example.gov.cn", 443)
    )


def error_code(r: Any) -> str:
    assert r.headers["content-type"].startswith("application/json"), r.headers
    return str(r.json()["error"]["code"])


# --- the same answers through both doors ----------------------------------------------------


@pytest.mark.parametrize("n", ["2", "3"])  # 3: the loop that announces the position
async def test_hold_answers_the_same_through_both_doors(
    hot: Hot, parsed_by_route: list[str], n: str
) -> None:
    tid = await hot.queue_call("CAFP1")
    path = f"/voice/hold?ticket={tid}&lang=zh&n={n}"
    lean = await hot.post_signed(path, hot.call_params("CAFP1"))
    assert parsed_by_route == []  # the lean door took it …
    route = await by_route(hot, path, hot.call_params("CAFP1"))
    assert parsed_by_route == ["/voice/hold"]  # … and the multipart post the route's
    for r in (lean, route):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/xml"
        assert r.headers["content-length"] == str(len(r.content))
    assert lean.content == route.content
    assert f"n={int(n) + 1}" in lean.text


async def test_status_is_204_without_a_body_through_both_doors(
    hot: Hot, parsed_by_route: list[str]
) -> None:
    await hot.queue_call("CAFP2")
    params = hot.call_params("CAFP2", CallStatus="ringing")
    lean = await hot.post_signed("/voice/status", params)
    route = await by_route(hot, "/voice/status", params)
    assert parsed_by_route == ["/voice/status"]
    for r in (lean, route):
        assert r.status_code == 204 and r.content == b""
        assert "content-type" not in r.headers


async def test_a_charset_parameter_still_takes_the_lean_door(
    hot: Hot, parsed_by_route: list[str]
) -> None:
    params = hot.call_params("CAFP3")
    r = await hot.client.post("/voice/incoming", content=urlencode(params),
                              headers={"Content-Type": f"{FORM}; charset=UTF-8",
                                       "X-Twilio-Signature": hot.sign(PUBLIC + "/voice/incoming", params)})  # fmt: skip
    assert r.status_code == 200, r.text
    assert parsed_by_route == []


# --- refusals -----------------------------------------------------------------------------------


async def test_a_bad_signature_is_refused_by_the_lean_door_as_by_the_route(
    hot: Hot, parsed_by_route: list[str]
) -> None:
    params = hot.call_params("CAFP4", Digits="3")
    path = "/voice/menu?attempt=0&lang=zh"
    lean = await hot.post_signed(path, params, token="not-the-auth-token")
    unsigned = await hot.client.post(path, data=params)
    assert parsed_by_route == []
    route = await by_route(hot, path, params, signature=hot.sign(PUBLIC + path, params, "nope"))
    assert parsed_by_route == ["/voice/menu"]
    for r in (lean, unsigned, route):
        assert r.status_code == 403 and error_code(r) == "bad_signature"
    assert lean.content == unsigned.content == route.content
    assert not await hot.engine.waiting()


async def test_a_body_over_the_limit_is_413_never_read_past_it(
    hot: Hot, parsed_by_route: list[str]
) -> None:
    params = hot.call_params("CAFP5", Digits="3", Pad="x" * MAX_BODY)
    r = await hot.post_signed("/voice/menu?attempt=0&lang=zh", params)
    assert r.status_code == 413 and error_code(r) == "http_413", r.text
    assert "64 KiB" in r.json()["error"]["message_en"]
    # Streamed without a Content-Length: refused once the chunks pass the limit.
    chunk = b"Pad=" + b"x" * (MAX_BODY // 2)
    sent = await asgi(hot, "/voice/hold?ticket=1", [chunk, chunk, chunk], {"Content-Type": FORM})
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "http_413"
    assert parsed_by_route == []
    assert not await hot.engine.waiting()
    # Under the limit, a large but signed form is served.
    ok = await hot.post_signed("/voice/incoming", hot.call_params("CAFP5", Pad="x" * 10_000))
    assert ok.status_code == 200, ok.text


async def test_more_fields_than_starlette_allows_are_400(hot: Hot) -> None:
    params = {**hot.call_params("CAFP11"), **{f"F{i}": "" for i in range(MAX_FIELDS)}}
    r = await hot.post_signed("/voice/incoming", params)
    assert r.status_code == 400 and error_code(r) == "http_400", r.text
    assert await hot.call_row("CAFP11") is None


async def test_raw_bytes_in_the_query_are_refused_not_a_500(hot: Hot) -> None:
    sent = await asgi(hot, "/voice/hold?ticket=1&lang=\xff", [b"CallSid=CA1"],
                      {"Content-Type": FORM, "X-Twilio-Signature": "x"})  # fmt: skip
    assert sent[0]["status"] == 403


async def test_a_client_that_leaves_mid_body_gets_no_answer(hot: Hot) -> None:
    sent = await asgi(hot, "/voice/incoming", [b"CallSid=CA1&", None], {"Content-Type": FORM})
    assert sent == []


# --- what the lean door leaves to FastAPI ------------------------------------------------------


async def test_unknown_voice_paths_and_other_methods_fall_through(hot: Hot) -> None:
    params = hot.call_params("CAFP6")
    r = await hot.post_signed("/voice/nowhere", params)
    assert r.status_code == 404 and error_code(r) == "http_404"
    r = await hot.client.get("/voice/hold?ticket=1")
    assert r.status_code == 405 and error_code(r) == "http_405"
    r = await hot.client.put("/voice/hold?ticket=1", data=params)
    assert r.status_code == 405 and error_code(r) == "http_405"


async def test_the_routes_are_still_documented(hot: Hot) -> None:
    # Only the voice routes' part of the document (the whole is the app's own test's).
    voice = [rc for rc in iter_route_contexts(hot.app.routes) if rc.path.startswith("/voice/")]
    paths = get_openapi(title="t", version="1", routes=voice)["paths"]
    assert sorted(paths) == sorted(f"/voice/{p}" for p in views.WEBHOOKS)
    hold = paths["/voice/hold"]["post"]
    assert hold["tags"] == ["hotline webhooks"] and hold["operationId"] == "hold_voice_hold_post"
    assert hold["description"].startswith("The hold loop")
    assert "403" in hold["responses"] and "200" in hold["responses"]
    assert "204" in paths["/voice/status"]["post"]["responses"]


# --- errors inside a webhook ------------------------------------------------------------------


async def test_a_queue_error_is_answered_as_the_app_answers_it(
    hot: Hot, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise UnknownServiceError(service="hotline_consult")

    monkeypatch.setattr(hot.engine, "take_ticket", refuse)
    path = "/voice/menu?attempt=0&lang=zh"
    lean = await hot.post_signed(path, hot.call_params("CAFP7", Digits="3"))
    route = await by_route(hot, path, hot.call_params("CAFP8", Digits="3"))
    for r in (lean, route):
        assert r.status_code == 404 and error_code(r) == "unknown_service", r.text
    assert lean.content == route.content


async def test_an_unexpected_error_is_the_apps_500(
    hot: Hot, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "_ticket", broken)
    path = "/voice/hold?ticket=1&lang=zh"
    lean = await hot.post_signed(path, hot.call_params("CAFP9"))
    route = await by_route(hot, path, hot.call_params("CAFP9"))
    for r in (lean, route):
        assert r.status_code == 500 and r.text == "Internal Server Error"


async def test_the_hold_loop_notes_the_call_is_alive_for_the_reconciler(
    hot: Hot, clock: Any
) -> None:
    tid = await hot.queue_call("CAFP10")
    clock.advance(90)
    heard_at = clock.now()
    root = await hot.voice(f"/voice/hold?ticket={tid}&lang=zh", "CAFP10")
    assert root.find("Gather") is not None
    assert (await hot.ticket(tid)).state == TicketState.WAITING
    # Noted in memory, not written per request; the reconciler writes the marks before it
    # picks the quiet calls, so a caller heard from lately is not asked about.
    clock.advance(hot.settings.raw["hotline"].get("reconcile_after_s", 120) - 10)
    connector = connector_of(hot)
    await connector.reconcile()
    assert not [r for r in hot.fake.call_fetches if r.sid == "CAFP10"]
    assert (await hot.call_row("CAFP10"))["updated_at"] == heard_at  # type: ignore[index]
    assert views.Hotline.take_alive(connector.hotline) == {}


async def test_the_hold_loop_follows_the_ticket_as_committed(hot: Hot) -> None:
    """Read from the hall's view: an ended call hears goodbye on its next hold round."""
    tid = await hot.queue_call("CAFP11")
    await hot.engine.abandon(tid)
    await asyncio.sleep(0.05)  # the view follows the commit a moment later
    root = await hot.voice(f"/voice/hold?ticket={tid}&lang=zh", "CAFP11")
    assert root.find("Gather") is None and root.find("Hangup") is not None
