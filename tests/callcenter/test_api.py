"""Every route of the JSON API and every error it answers, through the real config.toml."""

from __future__ import annotations

import base64
import json
import tomllib
from typing import Any

import httpx
import pytest
from cc_support import (
    ADMIN,
    CONFIG,
    DISPLAY,
    HALL,
    KIOSK,
    KIOSK2,
    PASSWORD,
    SECRET,
    START,
    SUPERVISOR,
    WINDOW1,
    Api,
    bearer,
    make_settings,
)

from callcenter.app import create_app
from callcenter.auth import Principal
from callcenter.security import authority_from
from callcenter.settings import ConfigError, Settings, parse_settings
from queue_engine import FakeClock

TICKETS = f"/api/halls/{HALL}/tickets"


def error(r: httpx.Response) -> dict[str, Any]:
    """The error object of an error response, checked for its one shape."""
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message_zh", "message_en", "details"}, err
    assert err["message_zh"] and err["message_en"]
    return err


def ws_url(vn: str, action: str = "") -> str:
    return f"/api/halls/{HALL}/workstations/{vn}" + (f"/{action}" if action else "")


# --- sign-in ------------------------------------------------------------------------


async def test_login_returns_a_token_naming_the_staffer(api: Api) -> None:
    r = await api.client.post(
        "/api/auth/login", json={"virtual_number": "W0001", "password": PASSWORD}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["virtual_number"] == "W0001"
    assert body["name"] == "李雪梅"
    assert body["role"] == "staff"
    assert body["hall"] == HALL
    assert body["expires_at"] == START + 720 * 60
    me = await api.client.get(ws_url("W0001"), headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.json()["state"] == "offline"


async def test_login_of_the_supervisor_carries_the_role(api: Api) -> None:
    r = await api.client.post(
        "/api/auth/login", json={"virtual_number": SUPERVISOR, "password": PASSWORD, "hall": HALL}
    )
    assert r.status_code == 200
    assert (r.json()["role"], r.json()["name"]) == ("supervisor", "王志刚")


async def test_wrong_password_is_401_with_a_bilingual_body(api: Api) -> None:
    r = await api.client.post(
        "/api/auth/login", json={"virtual_number": "W0001", "password": "96166DEMO"}
    )
    assert r.status_code == 401
    assert r.json() == {
        "error": {
            "code": "unauthorized",
            "message_zh": "请先登录：工号或密码错误",
            "message_en": "Sign in first: wrong work number or password.",
            "details": {"reason": "wrong work number or password"},
        }
    }


@pytest.mark.parametrize(
    "body",
    [
        {"virtual_number": "W7777", "password": PASSWORD},  # well formed, not on the staff list
        {"virtual_number": "W0001", "password": PASSWORD, "hall": "elsewhere"},
    ],
)
async def test_unknown_number_or_hall_is_the_same_401(api: Api, body: dict[str, str]) -> None:
    r = await api.client.post("/api/auth/login", json=body)
    assert r.status_code == 401
    assert error(r)["message_en"] == "Sign in first: wrong work number or password."


@pytest.mark.parametrize(
    "body",
    [
        {"virtual_number": "0001", "password": PASSWORD},
        {"virtual_number": "W0001", "password": ""},
        {"virtual_number": "W0001"},
        {"virtual_number": "W0001", "password": PASSWORD, "remember": True},
    ],
)
async def test_malformed_login_is_422_invalid_request(api: Api, body: dict[str, Any]) -> None:
    r = await api.client.post("/api/auth/login", json=body)
    assert r.status_code == 422
    assert error(r)["code"] == "invalid_request"


async def test_a_session_expires_after_720_minutes(api: Api) -> None:
    w1 = await api.login("W0001")
    api.clock.advance(720 * 60 - 1)
    assert (await api.client.get(ws_url("W0001"), headers=w1)).status_code == 200
    api.clock.advance(1)
    r = await api.client.get(ws_url("W0001"), headers=w1)
    assert r.status_code == 401
    err = error(r)
    assert err["details"] == {"reason": "the session has expired"}
    assert err["message_zh"] == "请先登录：登录已过期"


def _tamper_claims(token: str, **changes: Any) -> str:
    body, _, mac = token.partition(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    claims = json.loads(raw) | changes
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{forged}.{mac}"


async def test_tampered_tokens_are_401(api: Api) -> None:
    token = (await api.login("W0001"))["Authorization"].removeprefix("Bearer ")
    body, _, mac = token.partition(".")
    flipped = f"{body}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    other_secret = authority_from(api.ctx.settings, env={"CALLCENTER_SECRET": "other"})
    foreign = other_secret.sign(Principal("W0900", "supervisor", HALL, START + 3600))
    for bad in (
        _tamper_claims(token, role="supervisor"),
        _tamper_claims(token, exp=START + 10**9),
        flipped,
        foreign,
        "garbage",
        "a.b.c",
        "é.é",
    ):
        r = await api.client.get(f"/api/halls/{HALL}/stats", params={"token": bad})
        assert r.status_code == 401, bad
        assert error(r)["details"] == {"reason": "the token is not valid"}, bad


async def test_no_token_is_401(api: Api) -> None:
    r = await api.client.get(f"/api/halls/{HALL}/snapshot")
    assert r.status_code == 401
    assert error(r)["details"] == {"reason": "no token was given"}


async def test_a_session_of_another_hall_is_403(api: Api) -> None:
    other = api.ctx.authority.sign(Principal("W0900", "supervisor", "elsewhere", START + 3600))
    r = await api.client.get(f"/api/halls/{HALL}/snapshot", headers=bearer(other))
    assert r.status_code == 403
    assert error(r)["details"] == {"reason": "this token belongs to another hall"}


async def test_the_secret_given_to_load_settings_signs_sessions(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    monkeypatch.delenv("CALLCENTER_SECRET", raising=False)
    settings = make_settings(tmp_path)  # env={"CALLCENTER_SECRET": "test-secret", ...}
    app = create_app(settings, clock=fake_clock)
    token, _ = app.state.ctx.authority.login(HALL, "W0001", PASSWORD, START)
    expected = authority_from(settings, env={"CALLCENTER_SECRET": SECRET})
    assert expected.check(token, START).subject == "W0001"


async def test_password_guessing_is_rate_limited(api: Api) -> None:
    statuses = [
        (
            await api.client.post(
                "/api/auth/login", json={"virtual_number": "W0001", "password": f"guess{i}"}
            )
        ).status_code
        for i in range(21)
    ]
    assert 429 in statuses


async def test_a_garbled_password_hash_in_config_is_not_a_500(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    data = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    data["store"]["url"] = f"sqlite:///{tmp_path}/garbled.db"
    data["auth"]["default_password_hash"] = "scrypt$16384$8$1$A$AAAA"  # a truncated paste
    try:
        app = create_app(parse_settings(data, CONFIG), clock=fake_clock)
    except ConfigError:
        return  # refusing the config at start is the other good outcome
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.post(
                "/api/auth/login", json={"virtual_number": "W0001", "password": PASSWORD}
            )
    assert r.status_code == 401


# --- who may do what ----------------------------------------------------------------


async def test_a_kiosk_issues_tickets_but_a_display_or_window_screen_cannot(api: Api) -> None:
    r = await api.client.post(TICKETS, json={"service": "pension"}, headers=bearer(DISPLAY))
    assert r.status_code == 403
    assert error(r) == {
        "code": "forbidden",
        "message_zh": "无权操作：仅取号机可以取号",
        "message_en": "Not allowed: only kiosks issue tickets.",
        "details": {"reason": "only kiosks issue tickets"},
    }
    r = await api.client.post(TICKETS, json={"service": "pension"}, headers=bearer(WINDOW1))
    assert r.status_code == 403
    ticket = await api.issue("pension", token=KIOSK)
    assert ticket["number"] == "D001"


async def test_a_staffer_may_issue_a_ticket(api: Api) -> None:
    w1 = await api.login("W0001")
    r = await api.client.post(TICKETS, json={"service": "pension"}, headers=w1)
    assert r.status_code == 201
    assert r.json()["number"] == "D001"


@pytest.mark.parametrize("path", ["", "/sign-in", "/call-next"])
async def test_devices_cannot_act_as_a_workstation(api: Api, path: str) -> None:
    method = api.client.get if not path else api.client.post
    kwargs: dict[str, Any] = {"json": {"window": "1"}} if path == "/sign-in" else {}
    r = await method(ws_url("W0001") + path, headers=bearer(KIOSK), **kwargs)
    assert r.status_code == 403
    assert error(r)["details"] == {"reason": "devices cannot do this"}


async def test_a_staffer_cannot_act_on_another_number_but_a_supervisor_can(api: Api) -> None:
    w2 = await api.login("W0002")
    r = await api.act("W0001", "sign-in", w2, {"window": "1"})
    assert r.status_code == 403
    err = error(r)
    assert err["details"] == {"reason": "you are signed in as W0002, not W0001"}
    assert err["message_zh"] == "无权操作：您登录的工号是W0002，不是W0001"
    assert (await api.client.get(ws_url("W0001"), headers=w2)).status_code == 403

    sup = await api.login(SUPERVISOR)
    r = await api.act("W0001", "sign-in", sup, {"window": "1"})
    assert r.status_code == 200
    assert (r.json()["virtual_number"], r.json()["state"], r.json()["window"]) == (
        "W0001", "available", "1",
    )  # fmt: skip
    admin = await api.login(ADMIN)
    r = await api.act("W0001", "sign-out", admin)
    assert (r.status_code, r.json()["state"]) == (200, "offline")


@pytest.mark.parametrize("route", ["stats", "workstations"])
async def test_supervisor_only_routes(api: Api, route: str) -> None:
    url = f"/api/halls/{HALL}/{route}"
    r = await api.client.get(url, headers=await api.login("W0001"))
    assert r.status_code == 403
    assert error(r)["details"] == {"reason": "supervisors only"}
    assert (await api.client.get(url, headers=bearer(DISPLAY))).status_code == 403
    assert (await api.client.get(url, headers=await api.login(SUPERVISOR))).status_code == 200
    assert (await api.client.get(url, headers=await api.login(ADMIN))).status_code == 200


# --- tickets ------------------------------------------------------------------------


async def test_issue_a_ticket(api: Api) -> None:
    first = await api.issue("social_insurance")
    r = await api.client.post(TICKETS, json={"service": "social_insurance"}, headers=bearer(KIOSK2))
    assert r.status_code == 201
    second = r.json()
    assert first["number"] == "C001"
    assert second["number"] == "C002"
    assert (second["state"], second["channel"], second["priority"]) == (
        "waiting", "hall", "normal",
    )  # fmt: skip
    assert second["service_zh"] == "社保参保与关系转移"
    assert second["service_en"] == "Social insurance enrolment and transfer"
    # Nobody is signed in for social insurance: one ahead, at its 10 minutes default.
    assert (first["ahead"], first["expected_wait_min"]) == (0, 0.0)
    assert (second["ahead"], second["expected_wait_min"]) == (1, 10.0)
    assert second["arrived_at"] == START
    assert second["called_at"] is None
    assert second["phone_masked"] is None
    assert len(second["token"]) >= 20
    assert second["status_url"] == f"/t/{second['token']}"
    assert second["token"] != first["token"]


async def test_expected_wait_divides_by_the_signed_in_staff(api: Api) -> None:
    sup = await api.login(SUPERVISOR)
    for vn, window in (("W0001", "1"), ("W0002", "2")):
        assert (await api.act(vn, "sign-in", sup, {"window": window})).status_code == 200
    for _ in range(4):
        last = await api.issue("social_insurance")
    assert (last["ahead"], last["expected_wait_min"]) == (3, 15.0)  # 3 / 2 desks * 10 min


async def test_green_channel_ticket_takes_its_own_prefix(api: Api, settings: Settings) -> None:
    green = next(c for c in settings.hall.priority_classes if c.prefix == "G")
    ticket = await api.issue("pension", priority=green.code)
    assert (ticket["number"], ticket["priority"]) == ("G001", green.code)


async def test_phone_is_normalised_and_shown_masked(api: Api) -> None:
    ticket = await api.issue("pension", phone="138 1234-5678", sms_consent=True)
    assert ticket["phone_masked"] == "138****5678"
    stored = await api.runtime.engine.ticket(ticket["id"])
    assert stored.phone == "+8613812345678"
    status = await api.client.get(f"/api/tickets/{ticket['token']}")
    assert status.json()["phone_masked"] == "138****5678"
    assert "+86" not in status.text


async def test_phone_without_consent_is_422_consent_required(api: Api) -> None:
    r = await api.client.post(
        TICKETS, json={"service": "pension", "phone": "13812345678"}, headers=bearer(KIOSK)
    )
    assert r.status_code == 422
    assert error(r)["code"] == "consent_required"
    assert error(r)["message_zh"] == "留存手机号用于短信通知需要市民同意（sms_consent: true）"
    assert await api.runtime.engine.waiting() == []


@pytest.mark.parametrize("phone", ["12345", "12812345678", "+8612812345678", "phone"])
async def test_invalid_phone_is_422_invalid_phone(api: Api, phone: str) -> None:
    r = await api.client.post(
        TICKETS,
        json={"service": "pension", "phone": phone, "sms_consent": True},
        headers=bearer(KIOSK),
    )
    assert r.status_code == 422
    err = error(r)
    assert err["code"] == "invalid_phone"
    assert err["details"]["phone"] == phone


async def test_unknown_service_is_404_unknown_service(api: Api) -> None:
    r = await api.client.post(TICKETS, json={"service": "passports"}, headers=bearer(KIOSK))
    assert r.status_code == 404
    assert error(r) == {
        "code": "unknown_service",
        "message_zh": "本大厅没有事项“passports”",
        "message_en": "There is no service 'passports' in this hall.",
        "details": {"service": "passports"},
    }


async def test_unknown_priority_is_404(api: Api) -> None:
    r = await api.client.post(
        TICKETS, json={"service": "pension", "priority": "vip"}, headers=bearer(KIOSK)
    )
    assert r.status_code == 404
    assert error(r)["code"] == "unknown_priority"


@pytest.mark.parametrize(
    "body",
    [
        {"service": "pension", "colour": "red"},
        {"service": "pension", "sms_consent": "maybe"},
        {"service": ""},
        {},
        [],
    ],
)
async def test_bad_ticket_bodies_are_422_invalid_request(api: Api, body: Any) -> None:
    r = await api.client.post(TICKETS, json=body, headers=bearer(KIOSK))
    assert r.status_code == 422
    err = error(r)
    assert err["code"] == "invalid_request"
    assert err["message_zh"] == "请求参数无效"
    assert isinstance(err["details"], list) and err["details"]


async def test_extra_field_is_named_in_the_error(api: Api) -> None:
    r = await api.client.post(TICKETS, json={"service": "pension", "x": 1}, headers=bearer(KIOSK))
    assert error(r)["details"] == [{"where": "body.x", "problem": "Extra inputs are not permitted"}]


async def test_a_kiosk_cannot_issue_a_hotline_ticket(api: Api) -> None:
    r = await api.client.post(TICKETS, json={"service": "hotline_consult"}, headers=bearer(KIOSK))
    assert r.status_code == 422


# --- ticket status ------------------------------------------------------------------


async def test_ticket_status_by_token(api: Api) -> None:
    first = await api.issue("pension")
    second = await api.issue("pension")
    r = await api.client.get(f"/api/tickets/{second['token']}")
    assert r.status_code == 200
    body = r.json()
    assert (body["id"], body["number"], body["state"]) == (second["id"], "D002", "waiting")
    assert (body["ahead"], body["expected_wait_min"]) == (1, 12.0)
    # A status read never hands out a token, neither its own nor another's.
    assert body["token"] is None and body["status_url"] is None
    assert first["token"] not in r.text
    mine = (await api.client.get(f"/api/tickets/{first['token']}")).json()
    assert (mine["id"], mine["number"], mine["ahead"]) == (first["id"], "D001", 0)


@pytest.mark.parametrize("token", ["nope", "x" * 65, "%25", "*"])
async def test_unknown_token_is_404(api: Api, token: str) -> None:
    ticket = await api.issue("pension")
    for probe in (token, ticket["token"][:-1], ticket["token"].upper()):
        r = await api.client.get(f"/api/tickets/{probe}")
        assert r.status_code == 404, probe
        err = error(r)
        assert err["code"] == "ticket_not_found"
        assert ticket["number"] not in r.text


async def test_ticket_lookups_are_rate_limited_per_client(api: Api) -> None:
    for i in range(30):
        assert (await api.client.get(f"/api/tickets/guess{i}")).status_code == 404
    r = await api.client.get("/api/tickets/guess30")
    assert r.status_code == 429
    assert error(r)["details"] == {"retry_s": 1}
    api.clock.advance(0.2)  # 5 per second refill: one more try
    assert (await api.client.get("/api/tickets/guess31")).status_code == 404
    assert (await api.client.get("/api/tickets/guess32")).status_code == 429


async def test_a_transferred_tickets_token_follows_the_live_ticket(api: Api) -> None:
    w1 = await api.login("W0001")
    ticket = await api.issue("social_insurance")
    await api.act("W0001", "sign-in", w1, {"window": "1"})
    await api.act("W0001", "call-next", w1)
    r = await api.act("W0001", "transfer", w1, {"to_service": "pension"})
    assert r.status_code == 200
    status = (await api.client.get(f"/api/tickets/{ticket['token']}")).json()
    assert status["id"] != ticket["id"]
    assert (status["number"], status["service"], status["state"]) == (
        "C001", "pension", "waiting",
    )  # fmt: skip
    assert status["arrived_at"] == ticket["arrived_at"]
    old = await api.runtime.engine.ticket(ticket["id"])
    assert old.state.value == "transferred"
    assert old.token != ticket["token"]


# --- rate limits on issuing ---------------------------------------------------------


async def test_a_device_may_issue_a_burst_of_20_then_429(api: Api) -> None:
    for _ in range(20):
        await api.issue("general_consult")
    r = await api.client.post(TICKETS, json={"service": "general_consult"}, headers=bearer(KIOSK))
    assert r.status_code == 429
    err = error(r)
    assert err["code"] == "rate_limited"
    assert err["details"] == {"retry_s": 1}
    assert err["message_en"] == "Too many requests; try again in 1 seconds."
    # Another kiosk has its own bucket; this one refills at 2 a second.
    assert (await api.issue("general_consult", token=KIOSK2))["number"] == "S021"
    api.clock.advance(0.5)
    assert (await api.issue("general_consult"))["number"] == "S022"


async def test_the_same_phone_four_times_quickly_is_429(api: Api) -> None:
    for phone in ("13812345678", "+86 138 1234 5678", "138-1234-5678"):
        await api.issue("pension", phone=phone, sms_consent=True, token=KIOSK)
    r = await api.client.post(
        TICKETS,
        json={"service": "pension", "phone": "008613812345678", "sms_consent": True},
        headers=bearer(KIOSK2),
    )
    assert r.status_code == 429
    assert error(r)["details"] == {"retry_s": 60}
    # Another phone is fine, and the same phone a minute later too.
    await api.issue("pension", phone="13912345678", sms_consent=True)
    api.clock.advance(60)
    await api.issue("pension", phone="13812345678", sms_consent=True)


# --- the window flow ----------------------------------------------------------------


async def test_the_whole_window_flow(api: Api) -> None:  # noqa: C901 - one long story
    w1 = await api.login("W0001")
    c1 = await api.issue("social_insurance", phone="13812345678", sms_consent=True)
    c2 = await api.issue("social_insurance")

    r = await api.act("W0001", "sign-in", w1, {"window": "1"})
    assert r.status_code == 200
    desk = r.json()
    assert (desk["state"], desk["window"], desk["kind"], desk["ticket"]) == (
        "available", "1", "window", None,
    )  # fmt: skip
    assert desk["skills"] == {"social_insurance": 3, "pension": 2}
    assert desk["waiting"] == {"social_insurance": 2, "pension": 0}

    desk = (await api.act("W0001", "call-next", w1)).json()
    assert desk["state"] == "calling"
    assert desk["ticket"]["number"] == c1["number"] == "C001"
    assert (desk["ticket"]["state"], desk["ticket"]["window"]) == ("called", "1")
    assert desk["ticket"]["phone_masked"] == "138****5678"
    assert desk["ticket"]["token"] is None

    desk = (await api.act("W0001", "recall", w1)).json()
    assert (desk["state"], desk["ticket"]["state"]) == ("calling", "called")

    desk = (await api.act("W0001", "start", w1)).json()
    assert (desk["state"], desk["ticket"]["state"]) == ("serving", "serving")
    desk = (await api.act("W0001", "complete", w1)).json()
    assert (desk["state"], desk["ticket"]) == ("available", None)  # wrap_up_s = 0
    done = (await api.client.get(f"/api/tickets/{c1['token']}")).json()
    assert done["state"] == "done"

    desk = (await api.act("W0001", "call-next", w1)).json()
    assert desk["ticket"]["number"] == "C002"
    desk = (await api.act("W0001", "no-show", w1)).json()
    assert (desk["state"], desk["ticket"]) == ("available", None)
    assert (await api.client.get(f"/api/tickets/{c2['token']}")).json()["state"] == "no_show"

    # Nobody waits: call-next answers with no ticket.
    r = await api.act("W0001", "call-next", w1)
    assert (r.status_code, r.json()["state"], r.json()["ticket"]) == (200, "available", None)

    # Hold and resume.
    c3 = await api.issue("social_insurance")
    await api.act("W0001", "call-next", w1)
    await api.act("W0001", "start", w1)
    desk = (await api.act("W0001", "hold", w1)).json()
    assert (desk["state"], desk["ticket"]) == ("available", None)
    assert [(t["number"], t["state"]) for t in desk["held"]] == [("C003", "held")]
    r = await api.act("W0001", "resume-ticket", w1, {"ticket_id": c3["id"]})
    assert r.status_code == 200
    desk = r.json()
    assert (desk["state"], desk["ticket"]["number"], desk["ticket"]["state"]) == (
        "serving", "C003", "serving",
    )  # fmt: skip
    assert desk["held"] == []

    # Signing out with a ticket in hand is refused.
    r = await api.act("W0001", "sign-out", w1)
    assert r.status_code == 409
    assert error(r)["code"] == "workstation_state"

    # Transfer to another service: the window is free, the ticket waits in pension.
    desk = (await api.act("W0001", "transfer", w1, {"to_service": "pension"})).json()
    assert (desk["state"], desk["ticket"]) == ("available", None)
    moved = (await api.client.get(f"/api/tickets/{c3['token']}")).json()
    assert (moved["number"], moved["service"], moved["state"]) == ("C003", "pension", "waiting")

    # Transfer to a work number: the targeted staffer gets it before an older ticket.
    desk = (await api.act("W0001", "call-next", w1)).json()
    assert desk["ticket"]["number"] == "C003"  # W0001 serves pension too
    await api.act("W0001", "start", w1)
    r = await api.act("W0001", "transfer", w1, {"to_workstation": "W0002"})
    assert (r.status_code, r.json()["ticket"]) == (200, None)
    api.clock.advance(60)
    c4 = await api.issue("social_insurance")
    w2 = await api.login("W0002")
    await api.act("W0002", "sign-in", w2, {"window": "2"})
    desk = (await api.act("W0002", "call-next", w2)).json()
    assert desk["ticket"]["number"] == "C003"
    assert (await api.client.get(f"/api/tickets/{c4['token']}")).json()["state"] == "waiting"

    # Pause needs a reason; resume; sign out.
    r = await api.act("W0001", "pause", w1, {"reason": ""})
    assert r.status_code == 422
    assert error(r)["code"] == "invalid_request"
    r = await api.act("W0001", "pause", w1, {"reason": "   "})
    assert (r.status_code, error(r)["code"]) == (422, "invalid_request")
    desk = (await api.act("W0001", "pause", w1, {"reason": "break"})).json()
    assert (desk["state"], desk["pause_reason"]) == ("paused", "break")
    r = await api.act("W0001", "call-next", w1)
    assert r.status_code == 409
    desk = (await api.act("W0001", "resume", w1)).json()
    assert (desk["state"], desk["pause_reason"]) == ("available", None)
    desk = (await api.act("W0001", "sign-out", w1)).json()
    assert (desk["state"], desk["window"]) == ("offline", None)


async def test_workstation_errors(api: Api) -> None:
    w1 = await api.login("W0001")
    w2 = await api.login("W0002")
    r = await api.act("W0001", "call-next", w1)
    assert (r.status_code, error(r)["code"]) == (409, "not_signed_in")
    r = await api.act("W0001", "sign-in", w1, {"window": "99"})
    assert (r.status_code, error(r)["code"]) == (404, "unknown_window")
    await api.act("W0001", "sign-in", w1, {"window": "1"})
    r = await api.act("W0002", "sign-in", w2, {"window": "1"})
    assert (r.status_code, error(r)["code"]) == (409, "window_taken")
    assert error(r)["details"] == {"window": "1", "virtual_number": "W0001"}
    for action in ("recall", "start", "complete", "no-show", "hold"):
        r = await api.act("W0001", action, w1)
        assert (r.status_code, error(r)["code"]) == (409, "no_ticket"), action
    r = await api.act("W0001", "transfer", w1, {"to_service": "pension"})
    assert (r.status_code, error(r)["code"]) == (409, "no_ticket")
    r = await api.act("W0001", "resume", w1)
    assert (r.status_code, error(r)["code"]) == (409, "workstation_state")

    ticket = await api.issue("social_insurance")
    r = await api.act("W0001", "resume-ticket", w1, {"ticket_id": ticket["id"]})
    assert (r.status_code, error(r)["code"]) == (409, "illegal_transition")
    r = await api.act("W0001", "resume-ticket", w1, {"ticket_id": 999})
    assert (r.status_code, error(r)["code"]) == (404, "ticket_not_found")
    r = await api.act("W0001", "resume-ticket", w1, {"ticket_id": 0})
    assert (r.status_code, error(r)["code"]) == (422, "invalid_request")

    await api.act("W0001", "call-next", w1)
    await api.act("W0001", "start", w1)
    cases = [
        ({}, 422, "invalid_request"),
        ({"to_service": "nope"}, 404, "unknown_service"),
        ({"to_workstation": "W7777"}, 404, "unknown_workstation"),
        ({"to_workstation": "W0004"}, 409, "skill_missing"),  # 刘洋: medical insurance only
        ({"to_workstation": "0004"}, 422, "invalid_request"),
        ({"to_service": "pension", "position": "middle"}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        r = await api.act("W0001", "transfer", w1, body)
        assert (r.status_code, error(r)["code"]) == (status, code), body
    r = await api.act("W0001", "transfer", w1, {"to_service": "pension", "position": "back"})
    assert r.status_code == 200
    r = await api.client.get(ws_url("W7777"), headers=await api.login(SUPERVISOR))
    assert (r.status_code, error(r)["code"]) == (404, "unknown_workstation")


# --- the hotline --------------------------------------------------------------------


async def test_call_next_at_a_hotline_seat_is_409_wrong_seat_kind(api: Api) -> None:
    a1 = await api.login("W0101")
    r = await api.act("W0101", "sign-in", a1, {"window": "H01"})
    assert (r.json()["state"], r.json()["kind"]) == ("available", "hotline")
    r = await api.act("W0101", "call-next", a1)
    assert r.status_code == 409
    err = error(r)
    assert err["code"] == "wrong_seat_kind"
    assert err["message_zh"] == "工号W0101所在为热线坐席，不能叫号"


async def test_hotline_accept_after_dispatch(api: Api) -> None:
    a1 = await api.login("W0101")
    await api.act("W0101", "sign-in", a1, {"window": "H01"})
    issued = await api.runtime.engine.take_ticket("hotline_consult", channel="phone")
    offered = await api.runtime.engine.dispatch()
    assert [t.id for t in offered] == [issued.ticket.id]
    desk = (await api.client.get(ws_url("W0101"), headers=a1)).json()
    assert (desk["state"], desk["ticket"]["number"], desk["ticket"]["state"]) == (
        "calling", "T001", "called",
    )  # fmt: skip
    desk = (await api.act("W0101", "accept", a1)).json()
    assert (desk["state"], desk["ticket"]["state"], desk["ticket"]["channel"]) == (
        "serving", "serving", "phone",
    )  # fmt: skip
    desk = (await api.act("W0101", "complete", a1)).json()
    assert (desk["state"], desk["ticket"]) == ("wrap_up", None)  # hotline_wrap_up_s = 30
    r = await api.act("W0101", "accept", a1)
    assert (r.status_code, error(r)["code"]) == (409, "no_ticket")


async def test_hotline_reject_goes_to_the_next_agent(api: Api) -> None:
    a1 = await api.login("W0101")
    a2 = await api.login("W0102")
    await api.act("W0101", "sign-in", a1, {"window": "H01"})
    issued = await api.runtime.engine.take_ticket("hotline_consult", channel="phone")
    await api.runtime.engine.dispatch()
    desk = (await api.act("W0101", "reject", a1)).json()
    assert (desk["state"], desk["ticket"]) == ("available", None)
    ticket = await api.runtime.engine.ticket(issued.ticket.id)
    assert (ticket.state.value, ticket.declined_by) == ("waiting", ("W0101",))
    await api.act("W0102", "sign-in", a2, {"window": "H02"})
    offered = await api.runtime.engine.dispatch()
    assert [(t.number, t.workstation) for t in offered] == [("T001", "W0102")]
    assert (await api.act("W0102", "accept", a2)).json()["ticket"]["number"] == "T001"
    r = await api.act("W0101", "reject", a1)
    assert (r.status_code, error(r)["code"]) == (409, "no_ticket")


# --- screens and supervisors --------------------------------------------------------


async def _public_texts(api: Api) -> list[str]:
    display = bearer(DISPLAY)
    urls = [
        f"/api/halls/{HALL}",
        f"/api/halls/{HALL}/services",
        f"/api/halls/{HALL}/snapshot",
        f"/api/halls/{HALL}/windows/1",
        f"/api/halls/{HALL}/windows/2",
    ]
    texts = []
    for url in urls:
        r = await api.client.get(url, headers=display)
        assert r.status_code == 200, url
        texts.append(r.text)
    return texts


async def test_public_responses_show_no_phone_or_full_name(api: Api, settings: Settings) -> None:
    w1 = await api.login("W0001")
    ticket = await api.issue("social_insurance", phone="13812345678", sms_consent=True)
    await api.act("W0001", "sign-in", w1, {"window": "1"})
    await api.act("W0001", "call-next", w1)
    await api.settle()
    texts = await _public_texts(api)
    texts.append((await api.client.get(f"/api/tickets/{ticket['token']}")).text)
    names = [s.name for s in settings.hall.staff]
    assert "李雪梅" in names and "王志刚" in names
    for text in texts:
        assert "+86" not in text
        assert "13812345678" not in text
        assert [n for n in names if n in text] == []
    window = json.loads(texts[3])
    assert window == {
        "window": "1", "state": "calling", "virtual_number": "W0001", "staff_masked": "李**",
        "pause_reason": None, "number": "C001", "ticket_state": "called",
        "service_zh": "社保参保与关系转移",
        "service_en": "Social insurance enrolment and transfer",
    }  # fmt: skip
    assert json.loads(texts[4])["state"] == "offline"


async def test_snapshot(api: Api, settings: Settings) -> None:
    w1 = await api.login("W0001")
    await api.issue("social_insurance")
    await api.issue("social_insurance")
    await api.act("W0001", "sign-in", w1, {"window": "1"})
    await api.act("W0001", "call-next", w1)
    await api.settle()
    r = await api.client.get(f"/api/halls/{HALL}/snapshot", headers=bearer(KIOSK))
    assert r.status_code == 200
    snap = r.json()
    assert (snap["hall"], snap["event_id"], snap["silent"]) == (HALL, 4, False)
    assert snap["calling"][0]["text_zh"] == "请C001号到1号窗口办理"
    assert snap["calling"][0]["text_en"] == "Ticket C001, please go to window 1"
    queue = next(q for q in snap["queues"] if q["service"] == "social_insurance")
    assert (queue["waiting"], queue["staffed"], queue["expected_wait_min"]) == (1, 1, 10.0)
    assert [w["window"] for w in snap["windows"]] == [w.number for w in settings.hall.windows]
    assert [q["service"] for q in snap["queues"]] == [s.code for s in settings.hall.services]


async def test_recent_calls_list_the_call_and_the_recall(api: Api) -> None:
    w1 = await api.login("W0001")
    await api.issue("social_insurance")
    await api.act("W0001", "sign-in", w1, {"window": "1"})
    await api.act("W0001", "call-next", w1)
    await api.act("W0001", "recall", w1)
    await api.settle()
    snap = (await api.client.get(f"/api/halls/{HALL}/snapshot", headers=bearer(DISPLAY))).json()
    assert [(c["number"], c["recall"]) for c in snap["recent"]] == [("C001", 1), ("C001", 0)]


async def test_calling_now_shows_a_recalled_ticket_once(api: Api) -> None:
    w1 = await api.login("W0001")
    await api.issue("social_insurance")
    await api.act("W0001", "sign-in", w1, {"window": "1"})
    await api.act("W0001", "call-next", w1)
    await api.act("W0001", "recall", w1)
    await api.settle()
    snap = (await api.client.get(f"/api/halls/{HALL}/snapshot", headers=bearer(DISPLAY))).json()
    assert [(c["number"], c["window"], c["recall"]) for c in snap["calling"]] == [("C001", "1", 1)]


async def test_hall_info_and_services(api: Api, settings: Settings) -> None:
    hall = settings.hall
    info = (await api.client.get(f"/api/halls/{HALL}", headers=bearer(DISPLAY))).json()
    assert (info["code"], info["name_zh"]) == (HALL, "武侯区政务服务中心")
    assert [d["code"] for d in info["departments"]] == [d.code for d in hall.departments]
    assert [s["code"] for s in info["services"]] == [s.code for s in hall.services]
    assert [w["number"] for w in info["windows"]] == [w.number for w in hall.windows]
    assert [p["code"] for p in info["priority_classes"]] == [c.code for c in hall.priority_classes]
    assert len(info["windows"]) == 40
    hotline = next(s for s in info["services"] if s["code"] == "hotline_consult")
    assert (hotline["channel"], hotline["prefix"]) == ("phone", "T")
    assert info["windows"][-1] == {"number": "H10", "kind": "hotline", "zone": "H"}
    assert "staff" not in info

    await api.issue("pension")
    await api.settle()
    services = (await api.client.get(f"/api/halls/{HALL}/services", headers=bearer(KIOSK2))).json()
    pension = next(s for s in services if s["service"] == "pension")
    assert (pension["waiting"], pension["prefix"], pension["target_wait_min"]) == (1, "D", 20)


async def test_window_display_of_an_unknown_window_is_404(api: Api) -> None:
    r = await api.client.get(f"/api/halls/{HALL}/windows/99", headers=bearer(DISPLAY))
    assert (r.status_code, error(r)["code"]) == (404, "unknown_window")


async def test_unknown_hall_is_404(api: Api) -> None:
    r = await api.client.get("/api/halls/nowhere/snapshot", headers=bearer(DISPLAY))
    assert r.status_code == 404
    assert error(r) == {
        "code": "unknown_hall",
        "message_zh": "没有大厅“nowhere”",
        "message_en": "There is no hall 'nowhere'.",
        "details": {"hall": "nowhere"},
    }


async def test_stats_count_what_was_served(api: Api, settings: Settings) -> None:
    sup = await api.login(SUPERVISOR)
    w1 = await api.login("W0001")
    for _ in range(3):
        await api.issue("social_insurance")
    await api.act("W0001", "sign-in", w1, {"window": "1"})
    api.clock.advance(600)
    await api.act("W0001", "call-next", w1)  # C001 waited 10 minutes
    await api.act("W0001", "start", w1)
    api.clock.advance(300)
    await api.act("W0001", "complete", w1)  # handled in 5 minutes
    await api.act("W0001", "call-next", w1)  # C002 waited 15 minutes
    await api.act("W0001", "no-show", w1)
    await api.settle()
    stats = (await api.client.get(f"/api/halls/{HALL}/stats", headers=sup)).json()
    assert {k: v for k, v in stats.items() if k != "queues"} == {
        "day": "2026-05-29", "issued": 3, "waiting": 1, "served": 1, "no_show": 1,
        "avg_wait_min": 12.5, "avg_handle_min": 5.0,
    }  # fmt: skip
    queue = next(q for q in stats["queues"] if q["service"] == "social_insurance")
    assert (queue["served_today"], queue["waiting"], queue["within_target_share"]) == (1, 1, 1.0)

    rows = (await api.client.get(f"/api/halls/{HALL}/workstations", headers=sup)).json()
    assert [r["virtual_number"] for r in rows] == [s.virtual_number for s in settings.hall.staff]
    row = next(r for r in rows if r["virtual_number"] == "W0001")
    assert (row["name"], row["state"], row["window"], row["served_today"]) == (
        "李雪梅", "available", "1", 1,
    )  # fmt: skip
    assert next(r for r in rows if r["virtual_number"] == "W0002")["state"] == "offline"


# --- health and the error shape of the framework ------------------------------------


async def test_healthz_and_readyz(api: Api) -> None:
    r = await api.client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = await api.client.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ready", "halls": [HALL]})


async def test_readyz_is_503_before_the_lifespan(settings: Settings, fake_clock: FakeClock) -> None:
    app = create_app(settings, clock=fake_clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/readyz")
        assert (r.status_code, r.json()) == (503, {"status": "starting"})
        assert (await client.get("/healthz")).status_code == 200


async def test_unknown_route_is_a_json_404(api: Api) -> None:
    r = await api.client.get("/api/nothing/here")
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "code": "http_404", "message_zh": "未找到", "message_en": "Not Found",
            "details": None,
        }
    }  # fmt: skip


async def test_wrong_method_is_a_json_405(api: Api) -> None:
    r = await api.client.delete("/api/auth/login")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert error(r) == {
        "code": "http_405", "message_zh": "不支持该请求方法",
        "message_en": "Method Not Allowed", "details": None,
    }  # fmt: skip
    r = await api.client.put(f"/api/halls/{HALL}/tickets", headers=bearer(KIOSK), json={})
    assert (r.status_code, error(r)["code"]) == (405, "http_405")


async def test_openapi_json_is_served(api: Api) -> None:
    r = await api.client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/halls/{hall}/tickets" in paths
    assert "/api/halls/{hall}/workstations/{vn}/resume-ticket" in paths
    assert "/t/{token}" not in paths  # pages stay out of the schema


@pytest.mark.parametrize("path", ["/sms/inbound", "/sms/status"])
async def test_an_unsigned_sms_webhook_is_403(api: Api, path: str) -> None:
    r = await api.client.post(path, data={"From": "+8613812345678", "Body": "C001"})
    assert r.status_code == 403
    assert error(r)["code"] == "bad_signature"


# --- found by the schemathesis run (test_schemathesis.py) ---------------------------

BIG = 2**63  # one past SQLite's largest INTEGER


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("verify", {"finding": "checked"}),
        ("close", {"outcome": "explained", "resolution": "x", "reply": "y"}),
    ],
)
async def test_a_huge_follow_up_id_is_not_a_500(api: Api, action: str, body: Any) -> None:
    sup = await api.login(SUPERVISOR)
    r = await api.client.post(
        f"/api/halls/{HALL}/follow-ups/{BIG}/{action}", headers=sup, json=body
    )
    assert r.status_code in (404, 422)


async def test_a_huge_ticket_id_for_the_caller_history_is_not_a_500(api: Api) -> None:
    agent = await api.login("W0101")
    r = await api.client.get(f"/api/halls/{HALL}/tickets/{BIG}/caller", headers=agent)
    assert r.status_code in (404, 422)


@pytest.mark.parametrize("day", ["0000-00-00", "2026-13-45", "2026-02-30"])
async def test_an_impossible_day_for_hotline_stats_is_422(api: Api, day: str) -> None:
    sup = await api.login(SUPERVISOR)
    r = await api.client.get(f"/api/halls/{HALL}/hotline/stats", params={"day": day}, headers=sup)
    assert r.status_code == 422, r.text
    assert error(r)["code"] == "invalid_request"


@pytest.mark.parametrize("path", ["/sms/inbound", "/sms/status"])
async def test_the_webhooks_document_their_403(api: Api, path: str) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    assert "403" in doc["paths"][path]["post"]["responses"]
