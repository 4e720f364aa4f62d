"""The 96166 hotline pages end to end: a real server, a real Chromium.

An agent signs in at seat H01 on /agent; a phone call is queued through HTTP and the
offer lights up on the console within 2 s; the agent accepts, sees the caller's history,
opens a work order for the market regulation bureau, jots call notes (saved to the server)
and finishes into wrap-up. The bureau's officer sees it on /orders, signs for it and asks
for more time; the supervisor's dashboard shows the hotline figures and the supervisor
grants the extension on /orders. The same number rings again: the agent sees the first
call's notes in the caller's history. Every page is saved under tests/artifacts/ for a
human to look at.

The call arrives through the signed ``/voice/incoming`` and ``/voice/menu`` webhooks,
signed as Twilio signs them.
"""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from pagekit import (
    DESK,
    ROOT,
    WALL,
    Pages,
    api,
    free_port,
    front,
    login,
    running_server,
    shot,
    sign_in,
)
from twilio.request_validator import RequestValidator

pytestmark = pytest.mark.browser

HALL = "/api/halls/wuhou"
AGENT, SEAT = "W0101", "H01"
OFFICER, DEPARTMENT = "W0201", "market"
SUPERVISOR = "W0900"
CALLER, CALLER_MASKED = "13812345678", "138****5678"
NOTE = "来电人称已向物业反映，未处理。"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN") or "made-up-token-for-the-hotline-pages"
# The list route's 422 (and the by-number probes that stand in for it end in a 404).
LIST_REFUSALS = (r"/work-orders$", r"/work-orders/GD\d{12}$")


def _config() -> str:
    """The demo hall open all day, with the voice webhooks on (made-up Twilio credentials
    whose REST calls go to a port where nothing listens)."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = re.sub(r"^\[hall\.hours\]\n(?:(?!\[).*\n)*", "", text, flags=re.M)
    return (
        text
        + f"""
[sms.twilio]
account_sid = "{TWILIO_SID}"
auth_token = "{TWILIO_TOKEN}"
from_number = "+15005550006"
base_url = "http://127.0.0.1:{free_port()}"

[hotline]
number = "+862896166000"
"""
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("hotline"), _config()) as base:
        yield base


def test_call_to_work_order_to_department(server: str, browser: Any) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=5000)
    people = [Pages(browser, server) for _ in range(3)]  # agent, officer, supervisor
    for pages in people:
        for pattern in LIST_REFUSALS:
            pages.expect_refusal(pattern)
    # While the agent's network is down, the notes' saves and the desk's refreshes fail.
    for pattern in (r"/tickets/\d+/notes$", rf"/workstations/{AGENT}$", r"/feed\?"):
        people[0].expect_refusal(pattern)
    try:
        agent, number = _agent_takes_the_call(people[0], server, expect)
        _officer_signs_and_asks_for_time(people[1], number, expect)
        _supervisor_sees_the_hotline(people[2], number, expect)
        _the_caller_rings_again(people[0], agent, server, expect)
    finally:
        for pages in people:
            pages.close()
    assert [e for pages in people for e in pages.errors] == []


def _agent_takes_the_call(pages: Pages, server: str, expect: Any) -> tuple[Any, str]:
    with urllib.request.urlopen(server + "/", timeout=5) as resp:
        door = resp.read().decode()
    assert 'href="/agent"' in door and 'href="/orders"' in door

    agent = pages.open("/agent", DESK)
    sign_in(agent, AGENT)
    agent.click(f'#seat-picker [data-seat="{SEAT}"]')
    expect(agent.locator("#presence")).to_have_attribute("data-state", "available")
    expect(agent.locator("#seat-label")).to_contain_text(SEAT)

    queued = time.monotonic()
    call = _ring(server, "+86" + CALLER)
    assert call["channel"] == "phone"
    expect(agent.locator("#call-card.is-offer")).to_be_visible(timeout=2000)
    expect(agent.locator("#call-number")).to_have_text(call["number"], timeout=500)
    assert time.monotonic() - queued < 2.0
    expect(agent.locator("#presence")).to_have_attribute("data-state", "calling")
    expect(agent.locator("#call-phone")).to_contain_text(CALLER_MASKED)
    expect(agent.locator("#offer-left")).to_have_text(re.compile(r"^\d{1,2} s$"))
    assert agent.title().startswith("【来电")
    shot(agent, "hotline-agent-offer")

    agent.click("#btn-accept")
    expect(agent.locator("#presence")).to_have_attribute("data-state", "serving")
    expect(agent.locator("#hist-phone")).to_have_text(CALLER_MASKED)
    expect(agent.locator("#history")).to_contain_text(call["number"])
    assert not agent.title().startswith("【来电")
    agent.fill("#case-number", "wuho202601010001")  # an agent needs the caller's last four
    agent.press("#case-number", "Enter")
    expect(agent.locator("#case-result")).to_contain_text("后四位")
    expect(agent.locator("#case-last4")).to_be_visible()

    agent.locator("#order-types label", has_text="投诉").click()
    agent.fill("#order-desc", "玉林北路12号小区门口路灯损坏两周，夜间出行不便，请尽快维修。")
    agent.fill("#order-phone", CALLER)
    agent.fill("#order-location", "武侯区玉林北路12号")
    agent.select_option("#order-dept", DEPARTMENT)
    expect(agent.locator("#order-submit")).to_contain_text("受理并派单")
    agent.fill("#notes", NOTE)
    expect(agent.locator("#notes-status")).to_contain_text("已保存")  # saved with the call
    saved = api(server, f"{HALL}/tickets/{call['id']}/notes", token=login(server, SUPERVISOR))
    assert [(n["author"], n["text"]) for n in saved["notes"]] == [(AGENT, NOTE)]
    agent.click("#order-submit")
    expect(agent.locator("#made-number")).to_have_text(re.compile(r"^GD\d{12}$"))
    expect(agent.locator("#made-state")).to_contain_text("派单")
    number = agent.locator("#made-number").inner_text()
    expect(agent.locator("#history")).to_contain_text(number)  # the caller's history now lists it
    shot(agent, "hotline-agent-call", full_page=True)

    agent.click("#btn-complete")
    expect(agent.locator("#presence")).to_have_attribute("data-state", "wrap_up")
    expect(agent.locator("#wrap-count")).to_have_text(re.compile(r"^剩 0:[0-3]\d$"))
    expect(agent.locator("#notes")).to_have_value(NOTE)  # wrap-up keeps the call's notes
    shot(agent, "hotline-agent-wrapup")
    return agent, number


def _officer_signs_and_asks_for_time(pages: Pages, number: str, expect: Any) -> None:
    orders = pages.open("/orders", DESK)
    sign_in(orders, OFFICER)
    row = orders.locator(f'#orders tr[data-number="{number}"]')
    expect(row).to_contain_text("派单")
    expect(row).to_contain_text("区市场监督管理局")
    row.click()
    expect(orders.locator("#detail-number")).to_have_text(number)
    expect(orders.locator("#detail-steps li")).to_have_count(2)  # opened, dispatched
    orders.click('#detail-actions [data-do="sign"]')
    expect(row).to_contain_text("签收")
    orders.click('#detail-actions [data-do="extension"]')
    orders.fill("#f-days", "3")
    orders.fill("#f-text", "需协调供电公司更换灯杆")
    orders.click("#act-ok")
    expect(row).to_contain_text("延+3")
    expect(orders.locator("#detail-steps li")).to_have_count(4)
    shot(orders, "hotline-orders-officer")


def _supervisor_sees_the_hotline(pages: Pages, number: str, expect: Any) -> None:
    board = pages.open("/supervisor", WALL)
    sign_in(board, SUPERVISOR)
    panel = board.locator("#hotline-panel")
    expect(panel.locator('[data-hl="offered"] b')).to_have_text("1")
    expect(panel.locator('[data-hl="answered"] b')).to_have_text("1")
    expect(panel.locator('[data-hl="sl"] b')).to_contain_text("100")
    expect(panel.locator('[data-hl-state="签收"] b')).to_have_text("1")
    expect(panel.locator('[data-hl="accepted"] b')).to_have_text("1")
    shot(board, "hotline-supervisor")

    orders = pages.open("/orders", DESK)
    sign_in(orders, SUPERVISOR)
    ask = orders.locator(f'#extensions li[data-ext="{number}"]')
    expect(ask).to_contain_text("需协调供电公司更换灯杆")
    shot(orders, "hotline-orders-supervisor")
    ask.locator('[data-do="grant"]').click()
    expect(ask).to_have_count(0)
    expect(orders.locator(f'#orders tr[data-number="{number}"]')).not_to_contain_text("延+")


def _the_caller_rings_again(pages: Pages, agent: Any, server: str, expect: Any) -> None:
    front(agent)
    if agent.locator("#presence").get_attribute("data-state") == "wrap_up":
        agent.click("#btn-resume")
    expect(agent.locator("#presence")).to_have_attribute("data-state", "available")
    call = _ring(server, "+86" + CALLER, sid="CA" + "2" * 32)
    expect(agent.locator("#call-number")).to_have_text(call["number"])
    entry = agent.locator("#history li.has-notes")  # the first call, with what was noted
    expect(entry).to_have_count(1)
    expect(entry.locator(".call-note")).to_contain_text(NOTE)
    agent.click("#btn-accept")
    expect(agent.locator("#presence")).to_have_attribute("data-state", "serving")
    expect(agent.locator("#notes")).to_have_value("")  # a new call starts a new note
    shot(agent, "hotline-agent-notes-history")

    # The network drops: the note waits on this computer and goes up once it is back.
    pages.context.set_offline(True)
    agent.fill("#notes", "来电人再次来电催办")
    expect(agent.locator("#notes-status")).to_contain_text("保存失败，稍后重试")
    draft = agent.evaluate(f"localStorage.getItem('cc.agent.draft.{AGENT}.{call['id']}')")
    assert draft == "来电人再次来电催办"
    pages.context.set_offline(False)
    expect(agent.locator("#notes-status")).to_contain_text("已保存", timeout=8000)
    saved = api(server, f"{HALL}/tickets/{call['id']}/notes", token=login(server, AGENT))
    assert [n["text"] for n in saved["notes"]] == ["来电人再次来电催办"]
    assert agent.evaluate(f"localStorage.getItem('cc.agent.draft.{AGENT}.{call['id']}')") is None
    agent.click("#btn-complete")
    expect(agent.locator("#presence")).to_have_attribute("data-state", "wrap_up")


# --- what the pages work around today -------------------------------------------------------


def _ring(server: str, caller: str, sid: str | None = None) -> dict[str, Any]:
    """A caller rings 96166 and presses 0 for an agent, through the signed voice webhooks;
    returns the phone ticket the call became."""
    sid = sid or "CA" + caller[-8:].rjust(32, "f")
    call = {"CallSid": sid, "AccountSid": TWILIO_SID, "From": caller,
            "To": "+862896166000", "CallStatus": "ringing", "Direction": "inbound"}  # fmt: skip
    body = b""
    for path, extra in (("/voice/incoming", {}), ("/voice/menu", {"Digits": "0"})):
        url, form = server + path, {**call, **extra}
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
        request = urllib.request.Request(
            url, data=urllib.parse.urlencode(form).encode(),
            headers={"X-Twilio-Signature": signature},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
            body = resp.read()
            assert b"<Response>" in body
    ticket_id = re.search(rb"ticket=(\d+)", body)
    assert ticket_id, body
    supervisor = login(server, SUPERVISOR)
    rows = api(server, f"{HALL}/workstations", token=supervisor)
    assert isinstance(rows, list)
    return {
        "id": int(ticket_id[1]),
        "channel": "phone",
        "number": _number_of(server, int(ticket_id[1])),
    }


def _number_of(server: str, ticket_id: int) -> str:
    history = api(server, f"{HALL}/tickets/{ticket_id}/caller", token=login(server, AGENT))
    return history["tickets"][0]["number"]


def test_signed_voice_webhooks_queue_a_phone_call(server: str) -> None:
    assert _ring(server, "+8613912345678")["channel"] == "phone"


def test_work_order_list_route_answers(server: str) -> None:
    for who in (AGENT, OFFICER, SUPERVISOR):
        assert isinstance(api(server, f"{HALL}/work-orders", token=login(server, who)), list)
