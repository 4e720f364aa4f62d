"""Appointments, cases and ratings through the pages: a real server, a real Chromium.

A booking is always for a later working day and check-in happens on the booking
day, and ``callcenter serve`` has no clock option. So this module serves the very
same app through tests/e2e/clock_server.py, whose clock is wall time plus an offset
the test moves forward (and the browser's clock is moved with it). Nothing is
written to the database except by the app. Three hall days:

- Dm, three working days before D0: a business-change case is opened and left,
  so on D1 it is past its promised date (the overdue flag on two pages);
- D0, 10:00: the citizen books on the self-service page for the first day offered
  (D1, first slot) and reads the booking code; another booking is found and
  cancelled on the page;
- D1, 09:01, the slot has begun: check-in at the kiosk with the code prints Y001,
  the staff console calls and completes it and opens a case, the rating pad lights
  up and takes the rating, the SMS rating link says kindly that it is already
  rated, the officer moves the case to 待取件, the citizen finds it with its
  pickup window, and the supervisor sees the rating, verifies and closes a
  bad-rating follow-up and sees the overdue case.

Every new page is saved under tests/artifacts/ for a human to look at.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clock_server import write_offset
from pagekit import (
    DESK,
    KIOSK_TOKEN,
    PHONE,
    PORTRAIT,
    ROOT,
    TABLET,
    WALL,
    Pages,
    api,
    front,
    login,
    running_server,
    shot,
    sign_in,
)

from callcenter.settings import load_settings

pytestmark = pytest.mark.browser

TZ = ZoneInfo("Asia/Shanghai")
HALL = "/api/halls/wuhou"
WINDOW, STAFF = "12", "W0012"  # 孙涛: business licences
OTHER_WINDOW, OTHER_STAFF = "13", "W0013"  # 胡玉兰: business changes (and licences)
OFFICER = "W0201"  # market regulation: both services' cases
CITIZEN_PHONE, OTHER_PHONE = "13900001234", "13700005678"
CONFIG = ROOT / "config.toml"
CALENDAR = load_settings(CONFIG).hall.calendar


def _pad_tokens() -> dict[str, str]:
    devices = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["devices"]
    return {d["window"]: d["token"] for d in devices if d["kind"] == "ratingpad"}


PADS = _pad_tokens()


def at(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)


@dataclass
class Hall:
    base: str
    tmp: Path
    clock_file: Path
    dm: date
    d0: date
    d1: date

    def set_clock(self, when: datetime, pages: Pages | None = None) -> None:
        """Move the server's clock (and the browser's) forward to ``when``."""
        write_offset(self.clock_file, when.timestamp() - time.time())
        if pages is not None:
            pages.context.clock.set_system_time(when)


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hall]:
    d0 = datetime.now(TZ).date() + timedelta(days=1)
    while not (CALENDAR.is_working_day(d0) and d0.weekday() < 5):
        d0 += timedelta(days=1)
    dm, d1 = CALENDAR.add_working_days(d0, -3), CALENDAR.working_days_from(d0, 1)[0]
    tmp = tmp_path_factory.mktemp("records")
    clock_file = tmp / "clock-offset"
    write_offset(clock_file, at(dm, 10, 0).timestamp() - time.time())
    text = CONFIG.read_text(encoding="utf-8")
    with running_server(tmp, text, clock_file=clock_file) as base:
        yield Hall(base, tmp, clock_file, dm, d0, d1)


# --- what happens through the API (other staff, other days) ------------------------------


def serve_one(base: str, service: str, phone: str | None = None) -> tuple[int, str]:
    """A kiosk ticket served start to finish at window 13; returns (ticket id, W0013's token)."""
    body: dict[str, Any] = {"service": service}
    if phone:
        body |= {"phone": phone, "sms_consent": True}
    api(base, f"{HALL}/tickets", body, KIOSK_TOKEN)
    token = login(base, OTHER_STAFF)
    desk = f"{HALL}/workstations/{OTHER_STAFF}"
    api(base, desk + "/sign-in", {"window": OTHER_WINDOW}, token)
    ticket_id = int(api(base, desk + "/call-next", {}, token)["ticket"]["id"])
    api(base, desk + "/start", {}, token)
    api(base, desk + "/complete", {}, token)
    return ticket_id, token


def seed_overdue_case(base: str) -> str:
    """On Dm: a business change served and its case opened, never moved on."""
    ticket_id, token = serve_one(base, "business_change", "13600001111")
    case = api(base, f"{HALL}/cases", {"ticket_id": ticket_id}, token)
    api(base, f"{HALL}/workstations/{OTHER_STAFF}/sign-out", {}, token)
    return str(case["number"])


def seed_bad_rating(base: str) -> None:
    """On D1: a service at window 13 rated 非常不满意 on its pad (a follow-up opens)."""
    _, token = serve_one(base, "business_change")
    body = {"level": 1, "comment": "等候久，解释不清"}
    api(base, f"{HALL}/windows/{OTHER_WINDOW}/rating", body, PADS[OTHER_WINDOW])
    api(base, f"{HALL}/workstations/{OTHER_STAFF}/sign-out", {}, token)


def rating_link(hall: Hall, phone_tail: str) -> str:
    """The /r/ token from the rating request texted to the citizen (the console SMS record)."""
    log = hall.tmp / "var" / "sms-console.jsonl"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
        for line in lines:
            sms = json.loads(line)
            found = re.search(r"/r/([\w-]+)", sms["body"])
            if found and sms["to"].endswith(phone_tail):
                return found.group(1)
        time.sleep(0.2)
    pytest.fail("no rating link was texted")


# --- the test ------------------------------------------------------------------------------------


def test_book_check_in_serve_rate_and_follow_the_case(hall: Hall, browser: Any) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=5000)
    late_case = seed_overdue_case(hall.base)
    hall.set_clock(at(hall.d0, 10, 0))
    pages = Pages(browser, hall.base)
    pages.context.clock.install(time=at(hall.d0, 10, 0))
    pages.expect_refusal(r"/appointments/\d{6}\?phone_last4=0000$")  # wrong phone digits
    pages.expect_refusal(r"/check-in$")  # the cancelled booking's code
    pages.expect_refusal(rf"/windows/{WINDOW}/rating$")  # nothing left to rate
    pages.expect_refusal(r"/api/ratings/[\w-]+$")  # the link after the pad's rating
    try:
        _flow(pages, hall, late_case, expect)
    finally:
        pages.close()
    assert pages.errors == []
    assert len(pages.refused) == 4, pages.refused  # each refusal asked for was shown, no more


def _flow(pages: Pages, hall: Hall, late_case: str, expect: Any) -> None:
    base = hall.base
    door = pages.open("/", DESK)
    expect(door.locator('a[data-page="self-service"]')).to_have_attribute("href", "/self-service")
    expect(door.locator('a[data-page="officer"]')).to_have_attribute("href", "/officer")
    expect(door.locator("a[data-ratingpad]")).to_have_count(30)
    expect(door.locator(f'a[data-ratingpad="{WINDOW}"]')).to_have_attribute(
        "href", f"/rating-pad/{WINDOW}?token={PADS[WINDOW]}"
    )
    shot(door, "records-front-door", full_page=True)
    door.close()

    # D0: book on the self-service page for the first day offered, first slot.
    ss = pages.open("/self-service", PHONE)
    ss.click("[data-lang-toggle]")  # English first, then back to Chinese
    expect(ss.locator(".ss-head h1 .zh")).to_have_text("Appointments and look-ups")
    ss.click("[data-lang-toggle]")
    expect(ss.locator(".ss-head h1 .zh")).to_have_text("预约与查询")
    ss.select_option("#bk-service", "business_licence")
    first_day = ss.locator("#bk-days [data-day]").first
    expect(first_day).to_have_attribute("data-day", hall.d1.isoformat())
    first_day.click()
    slot = ss.locator("#bk-slots [data-start]:not([disabled])").first
    expect(slot).to_have_attribute("data-label", "09:00-09:30")
    slot.click()
    ss.fill("#bk-phone", CITIZEN_PHONE)
    expect(ss.locator("#bk-submit")).to_be_disabled()  # not without consent
    ss.check("#bk-consent")
    expect(ss.locator("#bk-submit")).to_be_enabled()
    shot(ss, "self-service-book", full_page=True)
    ss.click("#bk-submit")
    expect(ss.locator("#bk-code")).to_have_text(re.compile(r"^\d{6}$"))
    code = ss.locator("#bk-code").inner_text()
    expect(ss.locator("#bk-result")).to_contain_text("139****1234")
    expect(ss.locator("#bk-result")).not_to_contain_text(CITIZEN_PHONE)
    expect(ss.locator("#bk-slot")).to_have_text("09:00–09:30")
    shot(ss, "self-service-booked", full_page=True)

    ss.click('#tabs [data-tab="mine"]')
    ss.fill("#look-last4", "0000")  # a wrong phone: the API's message, in both languages
    ss.click("#look-submit")
    expect(ss.locator("#look-error .form-error")).to_contain_text("未找到该预约")
    expect(ss.locator("#look-error .form-error [lang=en]")).not_to_be_empty()
    ss.fill("#look-last4", CITIZEN_PHONE[-4:])
    ss.click("#look-submit")
    expect(ss.locator("#booking")).to_have_attribute("data-status", "booked")
    expect(ss.locator("#look-error")).to_be_empty()

    slots = api(base, f"{HALL}/booking/slots?service=business_licence&day={hall.d1}")
    body = {"service": "business_licence", "day": hall.d1.isoformat(), "phone": OTHER_PHONE,
            "slot_start": slots[1]["start"], "sms_consent": True}  # fmt: skip
    other = api(base, f"{HALL}/appointments", body)
    ss.fill("#look-code", other["code"])
    ss.fill("#look-last4", OTHER_PHONE[-4:])
    ss.click("#look-submit")
    expect(ss.locator("#booking")).to_contain_text(other["code"])
    ss.fill("#cancel-phone", OTHER_PHONE)
    ss.click("#cancel-submit")
    expect(ss.locator("#booking")).to_have_attribute("data-status", "cancelled")
    expect(ss.locator("#cancelled-note")).to_be_visible()
    shot(ss, "self-service-cancelled", full_page=True)

    # D1, 09:01: the booked slot has begun.
    hall.set_clock(at(hall.d1, 9, 1), pages)
    seed_bad_rating(base)
    pad = pages.open(f"/rating-pad/{WINDOW}?token={PADS[WINDOW]}", TABLET)
    expect(pad.locator("#pad")).to_have_attribute("data-state", "idle")
    expect(pad.locator(".pad-foot .live")).to_have_attribute("data-live", "on")
    shot(pad, "rating-pad-idle")

    kiosk = pages.open(f"/kiosk?token={KIOSK_TOKEN}", PORTRAIT)
    expect(kiosk.locator('[data-service="business_licence"]')).to_be_visible()
    kiosk.click("#opt-checkin")
    for digit in other["code"]:  # the cancelled booking first: refused, said in both languages
        kiosk.click(f'#ci-keypad [data-key="{digit}"]')
    kiosk.click("#ci-ok")
    expect(kiosk.locator("#ci-error .form-error")).to_contain_text("未找到该预约")
    for _ in range(6):
        kiosk.click('#ci-keypad [data-key="back"]')
    expect(kiosk.locator("#ci-ok")).to_be_disabled()
    for digit in code:
        kiosk.click(f'#ci-keypad [data-key="{digit}"]')
    expect(kiosk.locator("#ci-error")).to_be_empty()
    shot(kiosk, "kiosk-check-in")
    kiosk.click("#ci-ok")
    expect(kiosk.locator("#ticket-number")).to_have_text("Y001")
    expect(kiosk.locator("#ticket-badge")).to_have_attribute("data-priority", "appointment")
    expect(kiosk.locator("#ticket-card")).to_contain_text("139****1234")
    shot(kiosk, "kiosk-appointment-ticket")

    staff = pages.open("/staff", DESK)
    sign_in(staff, STAFF)
    staff.click(f'#window-picker [data-window="{WINDOW}"]')
    staff.click('[data-action="call-next"]')
    expect(staff.locator("#cur-number")).to_have_text("Y001")
    staff.click('[data-action="start"]')
    expect(staff.locator("#cur-state")).to_have_attribute("data-state", "serving")
    staff.click('[data-action="complete"]')
    expect(staff.locator("#cur-number")).to_have_count(0)
    expect(pad.locator("#pad")).to_have_attribute("data-state", "lit")  # live, through the feed
    expect(pad.locator("#pad-number")).to_have_text("Y001")
    shot(pad, "rating-pad-lit")
    front(staff).click("#open-case")
    expect(staff.locator("#case-number")).to_have_text(re.compile(r"^WUHO\d{12}$"))
    case_number = staff.locator("#case-number").inner_text()
    promised = CALENDAR.add_working_days(hall.d1, 3).isoformat()  # business licence: 3 days
    expect(staff.locator("#case-promised")).to_have_attribute("data-day", promised)
    shot(staff, "staff-open-case", full_page=True)

    front(pad).click('#levels [data-level="5"]')
    expect(pad.locator("#pad")).to_have_attribute("data-state", "choose")
    pad.click('#chips [data-chip="态度好"]')
    pad.click('#chips [data-chip="办事快"]')
    shot(pad, "rating-pad-choose")
    pad.click("#pad-submit")
    expect(pad.locator("#pad")).to_have_attribute("data-state", "thanks")
    shot(pad, "rating-pad-thanks")

    rate = pages.open(f"/r/{rating_link(hall, CITIZEN_PHONE[-4:])}", PHONE)
    expect(rate.locator("#rate-number")).to_have_text("Y001")
    expect(rate.locator(".rate-window")).to_contain_text(WINDOW)
    rate.click('#levels [data-level="4"]')
    shot(rate, "rate-link", full_page=True)
    rate.click("#rate-submit")
    expect(rate.locator("#rate")).to_have_attribute("data-state", "already")  # the pad was first
    shot(rate, "rate-link-already", full_page=True)

    expect(pad.locator("#pad")).to_have_attribute("data-state", "idle", timeout=8000)
    front(pad).click('#levels [data-level="3"]')
    pad.click("#pad-submit")
    expect(pad.locator("#pad-message")).to_contain_text("暂时没有需要评价的服务")
    shot(pad, "rating-pad-nothing")

    officer = pages.open("/officer", DESK)
    sign_in(officer, OFFICER)
    expect(officer.locator(f'#cases tr[data-case="{late_case}"]')).to_have_class(
        re.compile(r"\boverdue\b")
    )
    row = officer.locator(f'#cases tr[data-case="{case_number}"]')
    expect(row).not_to_have_class(re.compile(r"\boverdue\b"))
    row.click()
    head = officer.locator("#detail .detail-head")
    expect(head).to_have_attribute("data-number", case_number)
    notes = {"审查": "材料齐全，进入审查", "待取件": "营业执照已制好，请到5号窗口领取"}
    for to in ("审查", "核准", "制证", "待取件"):
        if to in notes:
            officer.fill("#advance-note", notes[to])
        officer.click(f'#advance-buttons [data-to="{to}"]')
        expect(head).to_have_attribute("data-status", to)
    expect(officer.locator('#advance-buttons [data-to="已取件"]')).to_be_visible()
    shot(officer, "officer", full_page=True)

    front(ss).click('#tabs [data-tab="case"]')
    ss.fill("#case-number", case_number)
    ss.fill("#case-last4", CITIZEN_PHONE[-4:])
    ss.click("#case-submit")
    expect(ss.locator("#case")).to_have_attribute("data-status", "待取件")
    expect(ss.locator("#case-pickup")).to_contain_text("5")
    timeline = ss.locator("#case-timeline")
    expect(timeline.locator("li.done")).to_have_count(4)
    expect(timeline.locator("li.now")).to_have_attribute("data-status", "待取件")
    expect(timeline.locator("li.todo")).to_have_attribute("data-status", "已取件")
    expect(ss.locator("#case-promised")).to_contain_text(
        str(int(promised[5:7])) + "月" + str(int(promised[8:])) + "日"
    )
    shot(ss, "self-service-case", full_page=True)

    sup = pages.open("/supervisor", WALL)
    sign_in(sup, "W0900")
    mine = sup.locator(f'tr[data-rated-staff="{STAFF}"]')
    expect(mine.locator(".rated")).to_have_text("1")
    expect(mine.locator(".good-rate")).to_have_text("100%")
    expect(sup.locator(f'tr[data-rated-staff="{OTHER_STAFF}"] .good-rate')).to_have_text("0%")
    licence = sup.locator('tr[data-rated-service="business_licence"]')
    expect(licence.locator('.dist [data-level="5"]')).to_have_text("1")
    expect(sup.locator(f'#overdue tr[data-case="{late_case}"]')).to_be_visible()
    expect(sup.locator(f'#overdue tr[data-case="{case_number}"]')).to_have_count(0)
    follow_up = sup.locator("#follow-ups .fu").first
    expect(follow_up).to_have_attribute("data-state", "open")
    follow_up.locator("textarea[name=finding]").fill("已电话回访：等候时间较长，窗口解释不够清楚")
    follow_up.locator("button[type=submit]").click()
    expect(follow_up).to_have_attribute("data-state", "verified")
    follow_up.locator("select[name=outcome]").select_option("explained")
    follow_up.locator("input[name=resolution]").fill("已对窗口人员进行政策解释培训")
    follow_up.locator("textarea[name=reply]").fill("感谢您的反馈，我们已加强窗口业务培训。")
    shot(sup, "supervisor-records", full_page=True)
    follow_up.locator("button[type=submit]").click()
    expect(sup.locator("#follow-ups .fu")).to_have_count(0)

    # 下一位 finishes a service and calls the next citizen in one press (next_completes):
    # the pad keeps asking the finished citizen while the next one walks up.
    for _ in range(2):
        api(hall.base, f"{HALL}/tickets", {"service": "business_licence"}, KIOSK_TOKEN)
    next_button = front(staff).locator('[data-action="call-next"]')
    next_button.click()
    expect(staff.locator("#cur-state")).to_have_attribute("data-state", "called")
    served = staff.locator("#cur-number").inner_text()
    expect(next_button).to_contain_text("办结并呼叫下一位")
    shot(staff, "staff-next-completes")
    next_button.click()
    expect(staff.locator("#cur-number")).not_to_have_text(served)
    expect(staff.locator("#case-box .case-ticket b")).to_have_text(served)  # a case may follow
    expect(pad.locator("#pad-number")).to_have_text(served)
    time.sleep(1.0)  # the ticket.called that came with it has long arrived
    expect(pad.locator("#pad")).to_have_attribute("data-state", "lit")
    front(pad).click('#levels [data-level="4"]')
    pad.click("#pad-submit")
    expect(pad.locator("#pad")).to_have_attribute("data-state", "thanks")
