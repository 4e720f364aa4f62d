"""Signed voice webhooks replayed through the whole app; REST calls checked at the fake Twilio.

Each sequence posts what Twilio would post (signed over the public URL with its query),
follows the TwiML it gets back (Gather actions, Redirects), and checks the queue and the
requests the connector made through the real twilio library.
"""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from callcenter.hotline.connector import Connector
from queue_engine import Channel, TicketState, WorkstationState

from .conftest import (
    CALLER,
    ENDPOINTS,
    HALL,
    NUMBER,
    PUBLIC,
    SUPERVISOR,
    Hot,
    query_of,
    redirect_of,
    says,
    ticket_of,
)
from .fake_twilio import Fail

OTHER = "+8613987654321"
T = TicketState
W = WorkstationState


def connector_of(hot: Hot) -> Connector:
    """The app's own connector (the reconciler task's ``self``): the lifespan keeps no handle."""
    for task in asyncio.all_tasks():
        if task.get_name() == "hotline-reconciler":
            frame = task.get_coro().cr_frame  # type: ignore[union-attr]
            assert frame is not None
            connector = frame.f_locals["self"]
            assert isinstance(connector, Connector)
            return connector
    raise AssertionError("the app runs no hotline reconciler")


async def events(hot: Hot, kind: str) -> list[Any]:
    rows = await hot.engine.run(lambda tx: tx.events_after(0, 100_000, HALL))
    return [e for e in rows if e.type == kind]


async def offered_to(hot: Hot, ticket_id: int) -> str:
    t = await hot.ticket(ticket_id)
    assert t.state == T.CALLED and t.workstation, t
    return t.workstation


# --- the signature ------------------------------------------------------------------------------

VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "From": "+14158675309",
                 "To": "+18005551212", "Caller": "+14158675309"}  # fmt: skip
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_known_answer_signature_vector() -> None:
    validator = RequestValidator("12345")
    assert validator.compute_signature(VECTOR_URL, VECTOR_PARAMS) == VECTOR_SIGNATURE
    assert validator.validate(VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)
    assert not validator.validate(VECTOR_URL, {**VECTOR_PARAMS, "Digits": "1235"}, VECTOR_SIGNATURE)
    assert not RequestValidator("54321").validate(VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)


async def test_the_harness_signs_as_twilio_does(hot: Hot) -> None:
    # post_signed's signer is the library's: the vector holds for it too.
    assert hot.sign(VECTOR_URL, VECTOR_PARAMS, token="12345") == VECTOR_SIGNATURE


PATHS = ["/voice/incoming", "/voice/menu?attempt=0&lang=zh", "/voice/hold?ticket=1&lang=zh",
         "/voice/hold-key?ticket=1&lang=zh", "/voice/case?lang=zh", "/voice/connect?ticket=1",
         "/voice/callback-connect?ticket=1", "/voice/dial-done?ticket=1", "/voice/status"]  # fmt: skip


def _assert_forbidden(r: Any) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "bad_signature"


@pytest.mark.parametrize("path", PATHS)
async def test_unsigned_and_wrongly_signed_webhooks_get_403(hot: Hot, path: str) -> None:
    params = hot.call_params("CA403", Digits="3")
    _assert_forbidden(await hot.client.post(path, data=params))  # no signature at all
    _assert_forbidden(await hot.client.post(path, data=params, headers={"X-Twilio-Signature": ""}))
    _assert_forbidden(await hot.client.post(path, data=params,
                                            headers={"X-Twilio-Signature": VECTOR_SIGNATURE}))  # fmt: skip
    _assert_forbidden(await hot.post_signed(path, params, token="not-the-auth-token"))
    _assert_forbidden(
        await hot.post_signed(path, params, url="https://other.example.gov.cn" + path)
    )
    _assert_forbidden(
        await hot.post_signed(path, params, url=PUBLIC.replace("https", "http") + path)
    )
    # Signed, then tampered with: another key than the one signed for.
    signature = hot.sign(PUBLIC + path, params)
    _assert_forbidden(await hot.client.post(path, data={**params, "Digits": "1"},
                                            headers={"X-Twilio-Signature": signature}))  # fmt: skip
    # The query is part of what is signed.
    if "?" in path:
        _assert_forbidden(await hot.post_signed(path, params, url=PUBLIC + path.split("?")[0]))
    assert not await hot.engine.waiting()  # nothing reached the queue


async def test_a_forged_request_changes_nothing(hot: Hot) -> None:
    tid = await hot.queue_call("CAF1")
    r = await hot.client.post("/voice/status", data=hot.call_params("CAF1", CallStatus="completed"),
                              headers={"X-Twilio-Signature": hot.sign(PUBLIC + "/voice/status", {})})  # fmt: skip
    _assert_forbidden(r)
    assert (await hot.ticket(tid)).state == T.WAITING


async def test_x_forwarded_proto_and_host_are_honoured(hot: Hot) -> None:
    params = hot.call_params("CAXF")
    proxied = "https://edge.hotline.example/voice/incoming"
    ok = await hot.post_signed("/voice/incoming", params, url=proxied,
                               headers={"Host": "edge.hotline.example", "X-Forwarded-Proto": "https"})  # fmt: skip
    assert ok.status_code == 200, ok.text
    # X-Forwarded-Host names the public host when the proxy rewrites Host.
    ok = await hot.post_signed("/voice/incoming", params, url=proxied,
                               headers={"Host": "10.0.0.5:8000", "X-Forwarded-Host": "edge.hotline.example",
                                        "X-Forwarded-Proto": "https"})  # fmt: skip
    assert ok.status_code == 200, ok.text
    # The same signature without the forwarded scheme is for another URL (http://…).
    _assert_forbidden(await hot.post_signed("/voice/incoming", params, url=proxied,
                                            headers={"Host": "edge.hotline.example"}))  # fmt: skip
    # The plain (TLS-terminated, unproxied) URL signed as seen also passes.
    ok = await hot.post_signed("/voice/incoming", params, url="http://edge.hotline.example/voice/incoming",
                               headers={"Host": "edge.hotline.example"})  # fmt: skip
    assert ok.status_code == 200, ok.text


async def test_signed_webhook_reaches_its_handler(hot: Hot) -> None:
    # Regression (fixed in 1aae130): `form: Signed` was read as a query parameter, every
    # webhook got 422 and the signature check never ran.
    r = await hot.post_signed("/voice/incoming", hot.call_params("CAU1"))
    assert r.status_code == 200, r.text
    assert ET.fromstring(r.text).find("Gather") is not None
    _assert_forbidden(await hot.client.post("/voice/incoming", data=hot.call_params("CAU1")))
    spec = (await hot.client.get("/openapi.json")).json()
    assert "/voice/incoming" in spec["paths"]


# --- the menu -----------------------------------------------------------------------------------


async def paused_agent(hot: Hot, vn: str = "W0101", seat: str = "H01") -> dict[str, str]:
    """A signed-in agent on a break: the skill is staffed, yet nobody takes calls."""
    auth = await hot.sign_in(vn, seat)
    r = await hot.act(vn, "pause", auth, {"reason": "break"})
    assert r.status_code == 200, r.text
    return auth


async def test_incoming_menu_3_queues_with_position_and_wait_then_holds(hot: Hot) -> None:
    await paused_agent(hot)
    for i in range(2):
        await hot.queue_call(f"CAQ{i}", f"+861380000000{i}")
    hot.fake.add_call("CAQ9", CALLER, NUMBER)
    root = await hot.voice("/voice/incoming", "CAQ9")
    gather = root.find("Gather")
    assert gather is not None and says(root)[0].startswith("您好")
    root = await hot.voice(gather.get("action", ""), "CAQ9", Digits="3")
    (text,) = says(root)
    # Two ahead, one staffed agent, 5-minute default handle time: about ten minutes.
    assert "您前面还有2位" in text and "约10分钟" in text and "星号" in text
    tid = ticket_of(root)
    ticket = await hot.ticket(tid)
    assert (ticket.service, ticket.channel, ticket.state) == (
        "hotline_consult",
        Channel.PHONE,
        T.WAITING,
    )
    assert ticket.phone == CALLER
    row = await hot.call_row("CAQ9")
    assert row is not None and (row["ticket_id"], row["status"], row["direction"]) == (
        tid,
        "queued",
        "inbound",
    )
    # The hold loop: silence that listens for star, then round again.
    path = redirect_of(root)
    for _ in range(3):
        root = await hot.voice(path, "CAQ9")
        gather = root.find("Gather")
        assert gather is not None and gather.find("Pause") is not None
        assert (gather.get("action") or "").startswith(f"/voice/hold-key?ticket={tid}")
        path = redirect_of(root)
        assert path.startswith(f"/voice/hold?ticket={tid}")


async def test_holding_caller_hears_the_position_every_so_often(hot: Hot) -> None:
    await paused_agent(hot)
    for i in range(3):
        tid = await hot.queue_call(f"CAP{i}", f"+861380000001{i}")
    path = f"/voice/hold?ticket={tid}&lang=zh"
    heard = []
    for _ in range(8):  # two minutes of hold with the default 15-second pauses
        root = await hot.voice(path, "CAP2")
        heard += [t for t in says(root) if "您前面还有" in t]
        path = redirect_of(root)
    assert any("您前面还有2位" in t for t in heard), heard
    assert any("分钟" in t for t in heard), heard


async def test_no_input_or_invalid_input_repeats_once_then_goes_to_an_agent(hot: Hot) -> None:
    await paused_agent(hot)
    hot.fake.add_call("CAI1", CALLER, NUMBER)
    root = await hot.voice("/voice/incoming", "CAI1")
    # No key at all: the Gather falls through to its Redirect (menu with empty Digits).
    root = await hot.voice(redirect_of(root), "CAI1")
    assert any("输入有误" in t for t in says(root))
    again = redirect_of(root)
    assert again.startswith("/voice/incoming?") and query_of(again)["attempt"] == "1"
    root = await hot.voice(again, "CAI1")
    assert root.find("Gather") is not None  # the menu once more
    root = await hot.voice(root.find("Gather").get("action", ""), "CAI1", Digits="7")  # type: ignore[union-attr]
    assert any("正在为您转接人工服务" in t for t in says(root))
    ticket = await hot.ticket(ticket_of(root))
    assert ticket.service == "hotline_consult" and ticket.state == T.WAITING


async def test_invalid_key_twice_goes_to_an_agent(hot: Hot) -> None:
    await paused_agent(hot)
    root = await hot.voice("/voice/menu?attempt=0&lang=zh", "CAI2", Digits="5")
    assert any("输入有误" in t for t in says(root))
    root = await hot.voice(redirect_of(root), "CAI2")
    root = await hot.voice(root.find("Gather").get("action", ""), "CAI2", Digits="8")  # type: ignore[union-attr]
    assert (await hot.ticket(ticket_of(root))).service == "hotline_consult"
    assert len(await hot.engine.waiting()) == 1


async def test_nine_switches_to_english(hot: Hot) -> None:
    await paused_agent(hot)
    root = await hot.voice("/voice/menu?attempt=0&lang=zh", "CAE1", Digits="9")
    gather = root.find("Gather")
    assert gather is not None and gather.get("language") == "en-US"
    say = gather.find("Say")
    assert say is not None and (say.get("voice"), say.get("language")) == ("Polly.Joanna", "en-US")
    assert query_of(gather.get("action", ""))["lang"] == "en"
    root = await hot.voice(gather.get("action", ""), "CAE1", Digits="0")
    (text,) = says(root)
    assert "ahead of you" in text and "press star" in text
    assert query_of(redirect_of(root))["lang"] == "en"
    root = await hot.voice(redirect_of(root), "CAE1")
    assert query_of(root.find("Gather").get("action", ""))["lang"] == "en"  # type: ignore[union-attr]


async def test_menu_2_goes_to_an_agent_with_the_appointment_skill(hot: Hot) -> None:
    # W0104 has hotline_consult and hotline_complaint only; W0103 has hotline_appointment.
    await hot.sign_in("W0104", "H02")
    await hot.sign_in("W0103", "H03")
    root = await hot.voice("/voice/menu?attempt=0&lang=zh", "CAA1", Digits="2")
    tid = ticket_of(root)
    ticket = await hot.ticket(tid)
    assert ticket.service == "hotline_appointment"
    assert (ticket.state, ticket.workstation) == (T.CALLED, "W0103")  # offered at once, to W0103
    assert (await hot.engine.workstation("W0104")).state == W.AVAILABLE


# --- case status by phone -----------------------------------------------------------------------


async def open_case(hot: Hot, phone: str) -> str:
    """Serve a hall ticket for ``phone`` at window 10 and open its case; the case number."""
    engine = hot.engine
    issued = await engine.take_ticket("business_licence", phone=phone)
    await engine.sign_in("W0011", "10")
    called = await engine.call_next("W0011")
    assert called is not None and called.id == issued.ticket.id
    await engine.start_service("W0011")
    case = await hot.runtime.cases.open(issued.ticket.id, "W0011")
    await engine.complete("W0011")
    return case.number


async def test_menu_1_speaks_the_status_of_the_callers_own_case(hot: Hot) -> None:
    number = await open_case(hot, CALLER)
    digits = number[-12:]
    assert digits.isdigit()
    root = await hot.voice("/voice/menu?attempt=0&lang=zh", "CAC1", Digits="1")
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "12"
    root = await hot.voice(gather.get("action", ""), "CAC1", Digits=digits)
    (text,) = says(root)
    assert number in text and "受理" in text and "承诺办结日期" in text
    assert redirect_of(root).startswith("/voice/incoming?")
    # With the hash the caller ends the number with.
    root = await hot.voice(gather.get("action", ""), "CAC1", Digits=digits + "#")
    assert number in says(root)[0]


async def test_another_phone_hears_not_found(hot: Hot) -> None:
    number = await open_case(hot, CALLER)
    root = await hot.voice("/voice/case?lang=zh", "CAC2", OTHER, Digits=number[-12:])
    (text,) = says(root)
    assert "未查询到" in text and number not in text
    for digits in ("", "123", "9" * 12):
        root = await hot.voice("/voice/case?lang=zh", "CAC3", CALLER, Digits=digits)
        assert "未查询到" in says(root)[0]


# --- night and call-backs ---------------------------------------------------------------------


async def test_night_with_no_agent_signed_in_offers_a_call_back(hot: Hot, clock: Any) -> None:
    clock.advance(12 * 3600)  # 22:00: nobody at a hotline seat
    hot.fake.add_call("CAN1", CALLER, NUMBER)
    root = await hot.voice("/voice/incoming", "CAN1")
    root = await hot.voice(root.find("Gather").get("action", ""), "CAN1", Digits="3")  # type: ignore[union-attr]
    gather = root.find("Gather")
    assert gather is not None and "暂无座席" in says(root)[0]
    assert query_of(gather.get("action", ""))["night"] == "1"
    assert [el.tag for el in root][-1] == "Hangup"
    tid = ticket_of(root)
    original = await hot.ticket(tid)
    clock.advance(4)
    root = await hot.voice(gather.get("action", ""), "CAN1", Digits="1")
    assert [el.tag for el in root] == ["Say", "Hangup"]
    assert "138****5678" in says(root)[0]
    old = await hot.ticket(tid)
    assert old.state == T.TRANSFERRED
    callback = await hot.live_ticket(original.number)
    assert (
        callback.id != tid and callback.channel == Channel.CALLBACK and callback.state == T.WAITING
    )
    assert (callback.number, callback.phone) == (original.number, CALLER)
    assert callback.queued_at == original.queued_at and callback.arrived_at == original.arrived_at
    row = await hot.call_row("CAN1")
    assert row is not None and (row["ticket_id"], row["status"]) == (
        callback.id,
        "callback_requested",
    )
    # The caller hangs up after the confirmation: the call-back is not abandoned with the call.
    await hot.status("CAN1", "completed")
    assert (await hot.ticket(callback.id)).state == T.WAITING


async def test_night_without_a_key_hangs_up_and_the_call_is_abandoned(hot: Hot) -> None:
    root = await hot.voice("/voice/menu?attempt=0&lang=zh", "CAN2", Digits="3")
    tid = ticket_of(root)
    root = await hot.voice(root.find("Gather").get("action", ""), "CAN2", Digits="")  # type: ignore[union-attr]
    assert [el.tag for el in root][-1] == "Hangup"
    await hot.status("CAN2", "completed")
    assert (await hot.ticket(tid)).state == T.ABANDONED


async def test_star_while_holding_leaves_a_call_back_that_keeps_its_place(
    hot: Hot, clock: Any
) -> None:
    await paused_agent(hot)
    first = await hot.queue_call("CAS1", CALLER)
    clock.advance(30)
    second = await hot.queue_call("CAS2", OTHER)
    clock.advance(30)
    root = await hot.voice(f"/voice/hold-key?ticket={first}&lang=zh", "CAS1", Digits="*")
    assert [el.tag for el in root] == ["Say", "Hangup"] and "回电" in says(root)[0]
    number = (await hot.ticket(first)).number
    callback = await hot.live_ticket(number)
    assert callback.channel == Channel.CALLBACK and callback.queued_at == clock.now() - 60
    # Its place: still ahead of the caller who came after it.
    waiting = await hot.engine.waiting("hotline_consult")
    assert [t.id for t in waiting] == [callback.id, second]
    # Any other key on hold just keeps holding.
    root = await hot.voice(f"/voice/hold-key?ticket={second}&lang=zh", "CAS2", Digits="5")
    assert root.find("Gather") is not None and (await hot.ticket(second)).state == T.WAITING
    # The agent comes back: the call-back is offered first.
    auth = await hot.login("W0101")
    assert (await hot.act("W0101", "resume", auth)).status_code == 200
    await hot.engine.dispatch()
    assert (await hot.ticket(callback.id)).workstation == "W0101"


async def test_status_completed_while_waiting_abandons_the_ticket(hot: Hot, clock: Any) -> None:
    await paused_agent(hot)
    tid = await hot.queue_call("CAH1")
    clock.advance(3)
    for status in ("ringing", "in-progress"):  # progress events change nothing
        await hot.status("CAH1", status)
    assert (await hot.ticket(tid)).state == T.WAITING
    await hot.status("CAH1", "completed")
    ticket = await hot.ticket(tid)
    assert ticket.state == T.ABANDONED and ticket.ended_at == clock.now()
    assert (await hot.call_row("CAH1"))["status"] == "completed"  # type: ignore[index]
    await hot.status("CAH1", "completed")  # a repeated callback is harmless
    await hot.status("CA-unknown", "completed")
    (abandoned,) = await events(hot, "ticket.abandoned")
    assert abandoned.ticket_id == tid


async def test_caller_who_hangs_up_while_offered_frees_the_agent(hot: Hot) -> None:
    auth = await hot.sign_in("W0101", "H01")
    tid = await hot.queue_call("CAH2")
    assert await offered_to(hot, tid) == "W0101"
    await hot.status("CAH2", "completed")
    assert (await hot.ticket(tid)).state == T.ABANDONED
    ws = await hot.engine.workstation("W0101")
    assert (ws.state, ws.ticket_id) == (W.AVAILABLE, None)  # no zombie call for the agent
    r = await hot.act("W0101", "accept", auth)
    assert r.status_code == 409, r.text
    await asyncio.sleep(0.05)
    assert not hot.fake.call_updates


# --- agents: offers, accept, the connector ------------------------------------------------------


async def test_accept_redirects_the_live_call_to_the_agent(hot: Hot, clock: Any) -> None:
    auth = await hot.sign_in("W0101", "H01")
    tid = await hot.queue_call("CAR1")
    assert await offered_to(hot, tid) == "W0101"
    assert not hot.fake.call_updates  # an offer alone moves no call
    clock.advance(6)
    r = await hot.act("W0101", "accept", auth)
    assert r.status_code == 200, r.text
    (update,) = await hot.fake.wait_for("call_updates")
    assert update.path.endswith("/Calls/CAR1.json") and update.auth_ok
    assert update.form["Url"] == f"{PUBLIC}/voice/connect?ticket={tid}"
    assert update.form["Method"] == "POST" and update.answered == 200
    # Twilio now fetches the new URL: the call is put through to the agent's endpoint.
    root = await hot.voice(update.form["Url"].removeprefix(PUBLIC), "CAR1")
    assert root.find("Dial/Client").text == ENDPOINTS["W0101"].removeprefix("client:")  # type: ignore[union-attr]
    # A hold request racing the redirect connects as well.
    root = await hot.voice(f"/voice/hold?ticket={tid}&lang=zh", "CAR1")
    assert root.find("Dial") is not None
    # The call ends: the ticket is done and the agent goes to wrap-up.
    clock.advance(120)
    root = await hot.voice(
        f"/voice/dial-done?ticket={tid}&lang=zh", "CAR1", DialCallStatus="completed"
    )
    assert [el.tag for el in root] == ["Say", "Hangup"]
    await hot.status("CAR1", "completed", CallDuration="126")
    ticket = await hot.ticket(tid)
    assert ticket.state == T.DONE and ticket.ended_at - ticket.started_at == 120  # type: ignore[operator]
    ws = await hot.engine.workstation("W0101")
    assert ws.state == W.WRAP_UP and ws.wrap_up_until == clock.now() + 30


@pytest.mark.parametrize(
    ("vn", "seat", "noun"), [("W0102", "H02", "Sip"), ("W0103", "H03", "Number")]
)
async def test_connect_uses_each_agents_endpoint(hot: Hot, vn: str, seat: str, noun: str) -> None:
    auth = await hot.sign_in(vn, seat)
    tid = await hot.queue_call("CAEP")
    assert (await hot.act(vn, "accept", auth)).status_code == 200
    (update,) = await hot.fake.wait_for("call_updates")
    root = await hot.voice(update.form["Url"].removeprefix(PUBLIC), "CAEP")
    assert (root.find(f"Dial/{noun}").text or "").strip() == ENDPOINTS[vn]  # type: ignore[union-attr]
    assert query_of(root.find("Dial").get("action", ""))["ticket"] == str(tid)  # type: ignore[union-attr]


async def test_connect_before_accept_keeps_holding(hot: Hot) -> None:
    await hot.sign_in("W0101", "H01")
    tid = await hot.queue_call("CAR2")
    root = await hot.voice(f"/voice/connect?ticket={tid}", "CAR2")
    assert root.find("Dial") is None and root.find("Gather") is not None


async def test_offer_that_times_out_goes_to_the_next_agent(hot: Hot, clock: Any) -> None:
    await hot.sign_in("W0101", "H01")
    clock.advance(1)
    await hot.sign_in("W0102", "H02")
    tid = await hot.queue_call("CAT1")
    first = await offered_to(hot, tid)
    assert first == "W0101"  # equal skill: the longer idle agent
    clock.advance(19)
    await hot.engine.tick()
    assert (await hot.ticket(tid)).workstation == first  # 20 s are not up yet
    clock.advance(1)
    await hot.engine.tick()
    ticket = await hot.ticket(tid)
    assert ticket.state == T.WAITING and ticket.declined_by == (first,)
    await hot.engine.dispatch()
    assert await offered_to(hot, tid) == "W0102"
    (declined,) = await events(hot, "ticket.offer_declined")
    assert declined.payload["reason"] == "timeout"
    ws = await hot.engine.workstation(first)
    assert (ws.state, ws.missed_offers) == (W.AVAILABLE, 1)


async def test_rejected_offer_goes_to_the_next_agent(hot: Hot) -> None:
    auth = await hot.sign_in("W0101", "H01")
    await hot.sign_in("W0102", "H02")
    tid = await hot.queue_call("CAJ1")
    assert await offered_to(hot, tid) == "W0101"
    r = await hot.act("W0101", "reject", auth)
    assert r.status_code == 200, r.text
    await hot.engine.dispatch()
    assert await offered_to(hot, tid) == "W0102"
    (declined,) = await events(hot, "ticket.offer_declined")
    assert declined.payload["reason"] == "rejected"


async def test_missed_offers_pause_the_agent(hot: Hot, clock: Any) -> None:
    await hot.sign_in("W0101", "H01")
    tid = await hot.queue_call("CAM1")
    for missed in (1, 2):
        assert await offered_to(hot, tid) == "W0101"
        clock.advance(21)
        await hot.engine.tick()
        await hot.engine.dispatch()
        assert (await hot.engine.workstation("W0101")).missed_offers == missed
    ws = await hot.engine.workstation("W0101")
    assert ws.state == W.PAUSED and ws.pause_reason == "missed_offers"
    assert (await hot.ticket(tid)).state == T.WAITING  # the caller still waits, nobody reserved
    (paused,) = await events(hot, "workstation.paused")
    assert paused.payload["automatic"] is True
    # Still staffed (paused, not signed out): a new caller is queued, not sent to night service.
    root = await hot.voice("/voice/menu?attempt=0&lang=zh", "CAM2", Digits="3")
    assert "您前面还有1位" in says(root)[0]


# --- call-backs dialled out -----------------------------------------------------------------------


async def night_callback(hot: Hot, sid: str, phone: str = CALLER) -> int:
    """A caller at night leaves a call-back; the call-back ticket's id."""
    root = await hot.voice("/voice/menu?attempt=0&lang=zh", sid, phone, Digits="3")
    root = await hot.voice(root.find("Gather").get("action", ""), sid, phone, Digits="1")  # type: ignore[union-attr]
    assert "回电" in says(root)[0]
    row = await hot.call_row(sid)
    assert row is not None
    return int(row["ticket_id"])


async def test_accepted_call_back_is_dialled_out(hot: Hot, clock: Any) -> None:
    cb = await night_callback(hot, "CAB1")
    auth = await hot.sign_in("W0101", "H01")
    await hot.engine.dispatch()
    assert await offered_to(hot, cb) == "W0101"
    assert (await hot.act("W0101", "accept", auth)).status_code == 200
    (create,) = await hot.fake.wait_for("call_creates")
    assert create.auth_ok and create.answered == 201
    assert create.form["To"] == CALLER and create.form["From"] == NUMBER
    assert create.form["Url"] == f"{PUBLIC}/voice/callback-connect?ticket={cb}"
    assert create.form["StatusCallback"] == f"{PUBLIC}/voice/status"
    assert create.form.get("StatusCallbackMethod") == "POST"
    assert "completed" in create.multi["StatusCallbackEvent"]
    sid = create.sid
    assert sid and sid.startswith("CA")
    row = await hot.until(lambda: hot.call_row(sid))
    assert (row["direction"], row["ticket_id"], row["attempt"], row["phone"]) == (
        "outbound",
        cb,
        1,
        CALLER,
    )
    assert not hot.fake.call_updates  # nothing to redirect: the citizen is not on the line yet
    # The citizen answers: the call is put through to the agent.
    params = hot.call_params(sid, NUMBER, To=CALLER, Called=CALLER, Direction="outbound-api")
    r = await hot.post_signed(create.form["Url"].removeprefix(PUBLIC), params)
    root = ET.fromstring(r.text)
    assert "为您回电" in says(root)[0] and root.find("Dial/Client").text == "agent-w0101"  # type: ignore[union-attr]
    clock.advance(90)
    await hot.status(sid, "completed", NUMBER, To=CALLER, Direction="outbound-api")
    assert (await hot.ticket(cb)).state == T.DONE


async def test_unanswered_call_back_is_retried_keeping_its_place_then_abandoned(
    hot: Hot, clock: Any
) -> None:
    cb = await night_callback(hot, "CAB2")
    first = await hot.ticket(cb)
    clock.advance(600)
    later = await night_callback(hot, "CAB3", OTHER)  # a newer call-back behind it
    auth = await hot.sign_in("W0101", "H01")
    await hot.engine.dispatch()
    for attempt in (1, 2, 3):
        live = await hot.live_ticket(first.number)
        assert (live.queued_at, live.arrived_at, live.channel) == (
            first.queued_at,
            first.arrived_at,
            Channel.CALLBACK,
        )
        assert await offered_to(hot, live.id) == "W0101", attempt  # still first in line
        assert (await hot.act("W0101", "accept", auth)).status_code == 200
        creates = await hot.fake.wait_for("call_creates", attempt)
        create = creates[-1]
        assert create.form["To"] == CALLER
        row = await hot.until(lambda sid=create.sid: hot.call_row(sid))
        assert row["attempt"] == attempt
        clock.advance(30)
        await hot.status(create.sid, "no-answer", NUMBER, To=CALLER, Direction="outbound-api")
        await hot.engine.dispatch()
    assert len(hot.fake.call_creates) == 3
    gone = await hot.engine.ticket_by_number(first.number)
    assert gone is None or gone.state == T.ABANDONED
    chain = [
        e
        for e in await events(hot, "ticket.abandoned")
        if e.payload["ticket"]["number"] == first.number
    ]
    assert len(chain) == 1
    # The agent is free again and the next call-back is offered.
    assert await offered_to(hot, later) == "W0101"


async def test_call_backs_are_paced_one_new_call_per_second(make_hot: Any) -> None:
    async with make_hot(callback_rate_per_s=1.0) as hot:
        cbs = [await night_callback(hot, f"CAP{i}", f"+86139000000{i:02d}") for i in range(3)]
        auths = [
            await hot.sign_in(vn, seat)
            for vn, seat in (("W0101", "H01"), ("W0102", "H02"), ("W0105", "H05"))
        ]
        await hot.engine.dispatch()
        for cb in cbs:
            vn = await offered_to(hot, cb)
            auth = auths[["W0101", "W0102", "W0105"].index(vn)]
            assert (await hot.act(vn, "accept", auth)).status_code == 200
        creates = await hot.fake.wait_for("call_creates", 3, timeout=6)
        gaps = [b.mono - a.mono for a, b in zip(creates, creates[1:], strict=False)]
        assert all(g >= 0.9 for g in gaps), gaps
        assert sorted(c.form["To"] for c in creates) == [f"+86139000000{i:02d}" for i in range(3)]


async def test_a_live_call_is_not_held_up_behind_paced_call_backs(make_hot: Any) -> None:
    async with make_hot(callback_rate_per_s=1.0) as hot:
        cbs = [await night_callback(hot, f"CAL{i}", f"+86139000001{i:02d}") for i in range(3)]
        seats = (("W0101", "H01"), ("W0102", "H02"), ("W0105", "H05"), ("W0106", "H06"))
        auths = {vn: await hot.sign_in(vn, seat) for vn, seat in seats}
        await hot.engine.dispatch()
        for cb in cbs:
            vn = await offered_to(hot, cb)
            assert (await hot.act(vn, "accept", auths[vn])).status_code == 200
        live = await hot.queue_call("CALIVE")
        vn = await offered_to(hot, live)
        assert (await hot.act(vn, "accept", auths[vn])).status_code == 200
        (update,) = await hot.fake.wait_for("call_updates", timeout=0.5)
        assert update.form["Url"].endswith(f"ticket={live}")


async def test_a_call_back_that_cannot_be_dialled_does_not_strand_the_agent(hot: Hot) -> None:
    cb = await night_callback(hot, "CAX1")
    auth = await hot.sign_in("W0101", "H01")
    await hot.engine.dispatch()
    hot.fake.fail_next_create(Fail(400, 21211, "The 'To' number is not a valid phone number."))
    assert (await hot.act("W0101", "accept", auth)).status_code == 200
    await hot.fake.wait_for("call_creates")
    await asyncio.sleep(0.2)
    for _ in range(2):
        await connector_of(hot).reconcile()
        hot.clock.advance(600)
        await hot.engine.tick()
    ws = await hot.engine.workstation("W0101")
    assert ws.state != W.SERVING or ws.ticket_id != cb, (
        "agent still serving a call that was never dialled"
    )


# --- reconciliation ---------------------------------------------------------------------------


async def test_lost_status_callback_is_reconciled(hot: Hot, clock: Any) -> None:
    await paused_agent(hot)
    gone = await hot.queue_call("CAZ1")
    still = await hot.queue_call("CAZ2", OTHER)
    connector = connector_of(hot)
    hot.fake.set_status("CAZ1", "completed")  # hung up; the status callback never came
    assert await connector.reconcile() == 0  # not quiet long enough to ask
    assert not hot.fake.call_fetches
    clock.advance(121)
    assert await connector.reconcile() == 1
    fetched = {r.sid for r in hot.fake.call_fetches}
    assert fetched == {"CAZ1", "CAZ2"} and all(r.auth_ok for r in hot.fake.call_fetches)
    assert (await hot.ticket(gone)).state == T.ABANDONED
    assert (await hot.ticket(still)).state == T.WAITING  # in progress: left alone …
    row = await hot.call_row("CAZ2")
    assert row is not None and row["updated_at"] == clock.now()  # … and not asked again at once
    n = len(hot.fake.call_fetches)
    assert await connector.reconcile() == 0 and len(hot.fake.call_fetches) == n


async def test_reconciler_frees_an_agent_whose_call_ended_unreported(hot: Hot, clock: Any) -> None:
    auth = await hot.sign_in("W0101", "H01")
    tid = await hot.queue_call("CAZ3")
    assert (await hot.act("W0101", "accept", auth)).status_code == 200
    await hot.fake.wait_for("call_updates")
    hot.fake.set_status("CAZ3", "completed")
    clock.advance(600)
    assert await connector_of(hot).reconcile() == 1
    assert (await hot.ticket(tid)).state == T.DONE
    assert (await hot.engine.workstation("W0101")).state == W.WRAP_UP


async def test_reconciler_retries_a_call_back_whose_no_answer_was_lost(
    hot: Hot, clock: Any
) -> None:
    cb = await night_callback(hot, "CAZ4")
    number = (await hot.ticket(cb)).number
    auth = await hot.sign_in("W0101", "H01")
    await hot.engine.dispatch()
    assert (await hot.act("W0101", "accept", auth)).status_code == 200
    (create,) = await hot.fake.wait_for("call_creates")
    await hot.until(lambda: hot.call_row(create.sid))
    hot.fake.set_status(create.sid, "no-answer")
    clock.advance(600)
    assert await connector_of(hot).reconcile() == 1
    live = await hot.live_ticket(number)
    assert (
        live.id != cb and live.state in (T.WAITING, T.CALLED) and live.channel == Channel.CALLBACK
    )


async def test_a_replayed_menu_webhook_does_not_queue_the_call_twice(hot: Hot) -> None:
    await paused_agent(hot)
    await hot.voice("/voice/menu?attempt=0&lang=zh", "CADUP", Digits="3")
    await hot.voice("/voice/menu?attempt=0&lang=zh", "CADUP", Digits="3")
    assert len(await hot.engine.waiting("hotline_consult")) == 1


# --- the statistics endpoint ---------------------------------------------------------------------


async def test_hotline_stats_endpoint(hot: Hot, clock: Any) -> None:
    auth = await hot.sign_in("W0101", "H01")
    answered = await hot.queue_call("CAST1")
    clock.advance(3)
    lost = await hot.queue_call("CAST2", OTHER)
    clock.advance(5)
    assert (await hot.act("W0101", "accept", auth)).status_code == 200
    await hot.status("CAST2", "completed")
    clock.advance(60)
    await hot.status("CAST1", "completed")
    sup = await hot.login(SUPERVISOR)
    r = await hot.client.get(f"/api/halls/{HALL}/hotline/stats", headers=sup)
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["offered"], s["answered"], s["abandoned"], s["abandoned_within_5s"]) == (2, 1, 1, 1)
    assert s["average_speed_of_answer_s"] == 8.0 and s["average_handle_time_s"] == 60.0
    assert s["service_level"] == 1.0 and s["service_level_2"] == 1.0
    assert s["reservations"]["accepted"] == 1
    assert set(s["work_orders"]) >= {"by_state", "overdue", "satisfaction"}
    assert (await hot.ticket(answered)).state == T.DONE and (
        await hot.ticket(lost)
    ).state == T.ABANDONED
    r = await hot.client.get(f"/api/halls/{HALL}/hotline/stats", headers=await hot.login("W0102"))
    assert r.status_code == 403
    assert json.loads(r.text)["error"]


async def test_hotline_stats_count_the_chosen_day_only(hot: Hot, clock: Any) -> None:
    auth = await hot.sign_in("W0101", "H01")
    yesterday = hot.engine.today()
    await hot.queue_call("CADAY1")
    await hot.status("CADAY1", "completed")  # abandoned in the queue
    clock.advance(86400)
    auth = await hot.login("W0101")  # yesterday's token has expired
    await hot.queue_call("CADAY2")
    assert (await hot.act("W0101", "accept", auth)).status_code == 200
    clock.advance(30)
    await hot.status("CADAY2", "completed")
    sup = await hot.login(SUPERVISOR)

    async def figures(**params: str) -> tuple[int, int, int]:
        r = await hot.client.get(f"/api/halls/{HALL}/hotline/stats", params=params, headers=sup)
        assert r.status_code == 200, r.text
        s = r.json()
        return s["offered"], s["answered"], s["abandoned"]

    assert await figures(day=yesterday) == (1, 0, 1)
    assert await figures() == (1, 1, 0)
    assert await figures(day="2020-01-01") == (0, 0, 0)
