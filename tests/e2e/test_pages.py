"""The pages end to end: a real server process, a real Chromium, one citizen's ticket.

Kiosk → hall display (waiting count) → staff console calls it → hall display and
window screen show the call within a second → start, complete → the supervisor
dashboard counts it served; the citizen's status page follows along. Every page
is saved as a screenshot under tests/artifacts/ for a human to look at.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pagekit import (
    DESK,
    KIOSK_TOKEN,
    PASSWORD,
    PHONE,
    PORTRAIT,
    ROOT,
    WALL,
    Pages,
    api,
    decode_qr,
    running_server,
    shot,
    sign_in,
)

pytestmark = pytest.mark.browser

DISPLAY_TOKEN = "demo-display-main-3c7b"
WINDOW, WINDOW_TOKEN, STAFF = "12", "demo-window-12-39297a0c", "W0012"  # 孙涛: business licences


def _config_open_all_day() -> str:
    """The demo config without opening hours, so tickets don't expire at whatever time tests run."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    return re.sub(r"^\[hall\.hours\]\n(?:(?!\[).*\n)*", "", text, flags=re.M)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("pages"), _config_open_all_day()) as base:
        yield base


def seed_busy_hall(base: str) -> None:
    """Other citizens and staff, so the screens look like a working morning."""
    services = ["social_insurance", "social_insurance", "pension", "medical_insurance",
                "housing_fund", "tax_invoice", "tax_invoice", "id_card", "id_card",
                "real_estate_registration", "business_licence"]  # fmt: skip
    for service in services:
        api(base, "/api/halls/wuhou/tickets", {"service": service}, KIOSK_TOKEN)
    desks = [("W0001", "3", ["call-next"]), ("W0015", "15", ["call-next", "start"]),
             ("W0030", "27", ["call-next"]), ("W0004", "5", ["pause"])]  # fmt: skip
    for vn, window, actions in desks:
        token = api(base, "/api/auth/login", {"virtual_number": vn, "password": PASSWORD})["token"]
        desk = f"/api/halls/wuhou/workstations/{vn}"
        api(base, desk + "/sign-in", {"window": window}, token)
        for action in actions:
            api(base, f"{desk}/{action}", {"reason": "meeting"} if action == "pause" else {}, token)


def test_ticket_from_kiosk_to_served(server: str, browser: Any) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=5000)
    pages = Pages(browser, server)
    try:
        _flow(pages, expect)
    finally:
        pages.close()
    assert pages.errors == []


def _flow(pages: Pages, expect: Any) -> None:
    door = pages.open("/", DESK)
    expect(door.locator("a[data-window]")).to_have_count(30)
    expect(door.locator(f'a[data-window="{WINDOW}"]')).to_have_attribute(
        "href", f"/window/{WINDOW}?token={WINDOW_TOKEN}"
    )
    shot(door, "front-door", full_page=True)
    door.click("[data-lang-toggle]")  # English first, then back to Chinese
    expect(door.locator(".hero h1 .zh")).to_have_text("Wuhou District Government Service Centre")
    door.click("[data-lang-toggle]")
    expect(door.locator(".hero h1 .zh")).to_have_text("武侯区政务服务中心")

    display = pages.open(f"/display?token={DISPLAY_TOKEN}", WALL)
    licence = display.locator('.q-tile[data-service="business_licence"] .q-waiting')
    expect(licence).to_have_text("0")
    window = pages.open(f"/window/{WINDOW}?token={WINDOW_TOKEN}", WALL)
    expect(window.locator("#win-body")).to_have_attribute("data-state", "offline")

    kiosk = pages.open(f"/kiosk?token={KIOSK_TOKEN}", PORTRAIT)
    expect(kiosk.locator('[data-service="business_licence"]')).to_be_visible()
    shot(kiosk, "kiosk-start")
    kiosk.click("#opt-sms")
    for digit in "13812345678":
        kiosk.click(f'#keypad [data-key="{digit}"]')
    expect(kiosk.locator("#sms-ok")).to_be_disabled()  # not without consent
    kiosk.check("#sms-consent")
    kiosk.click("#sms-ok")
    expect(kiosk.locator("#opt-sms")).to_have_attribute("aria-pressed", "true")
    kiosk.click('[data-service="business_licence"]')
    expect(kiosk.locator("#ticket-number")).to_have_text("A001")
    expect(kiosk.locator("#ticket-card")).to_contain_text("138****5678")
    expect(kiosk.locator("#ticket-card")).not_to_contain_text("13812345678")
    shot(kiosk, "kiosk-ticket")
    status_url = kiosk.locator("#ticket-qr").get_attribute("data-url")
    assert status_url and status_url.startswith(pages.base + "/t/")
    qr_text = decode_qr(kiosk.locator("#ticket-qr svg").screenshot())
    assert qr_text in (None, status_url)

    expect(licence).to_have_text("1")  # live on the hall display
    status = pages.open(status_url, PHONE)
    expect(status.locator("#status")).to_have_attribute("data-state", "waiting")
    expect(status.locator("#status-number")).to_have_text("A001")

    staff = pages.open("/staff", DESK)
    sign_in(staff, STAFF)
    staff.click(f'#window-picker [data-window="{WINDOW}"]')
    expect(staff.locator('#skills [data-service="business_licence"] b')).to_contain_text("1")
    expect(window.locator("#win-body")).to_have_attribute("data-state", "available")
    seed_busy_hall(pages.base)
    expect(display.locator("#recent tr")).to_have_count(3)

    staff.click('[data-action="call-next"]')
    called = time.monotonic()
    expect(display.locator('#call-line[data-number="A001"]')).to_have_attribute(
        "data-window", WINDOW, timeout=1000
    )
    left_ms = max(50, 1000 - (time.monotonic() - called) * 1000)
    expect(window.locator("#win-ticket")).to_have_text("A001", timeout=left_ms)
    expect(window.locator("#win-body")).to_have_attribute("data-state", "called", timeout=left_ms)
    expect(staff.locator("#cur-state")).to_have_attribute("data-state", "called")
    expect(display.locator("#recent tr").first).to_contain_text("A001")
    expect(display.locator("#recent tr")).to_have_count(4)
    expect(status.locator("#status-window")).to_contain_text(WINDOW, timeout=8000)
    shot(display, "display")
    shot(window, "window")
    shot(staff, "staff")
    shot(status, "status", full_page=True)

    staff.click('[data-action="start"]')
    expect(staff.locator("#cur-state")).to_have_attribute("data-state", "serving")
    expect(window.locator("#win-body")).to_have_attribute("data-state", "serving")
    # The demo hall's 下一位 finishes the ticket in hand (next_completes): offered while serving.
    expect(staff.locator('[data-action="call-next"]')).to_be_enabled()
    expect(staff.locator('[data-action="call-next"]')).to_contain_text("办结并呼叫下一位")
    staff.click('[data-action="complete"]')
    expect(staff.locator("#cur-number")).to_have_count(0)
    expect(staff.locator('[data-action="call-next"]')).to_be_enabled()

    supervisor = pages.open("/supervisor", WALL)
    sign_in(supervisor, "W0900")
    expect(supervisor.locator('[data-total="served"] b')).to_contain_text("1")
    expect(supervisor.locator('tr[data-service="business_licence"] .q-served')).to_have_text("1")
    expect(supervisor.locator(f'.seat[data-window="{WINDOW}"]')).to_contain_text(STAFF)
    expect(status.locator("#status")).to_have_attribute("data-state", "done", timeout=8000)
    shot(supervisor, "supervisor")
