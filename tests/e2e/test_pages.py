"""The pages end to end: a real server process, a real Chromium, one citizen's ticket.

Kiosk → hall display (waiting count) → staff console calls it → hall display and
window screen show the call within a second → start, complete → the supervisor
dashboard counts it served; the citizen's status page follows along. Every page
is saved as a screenshot under tests/artifacts/ for a human to look at.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI") == "true"
PASSWORD = "96166demo"
KIOSK_TOKEN = "demo-kiosk-1-5f2c9a71"
DISPLAY_TOKEN = "demo-display-main-3c7b"
WINDOW, WINDOW_TOKEN, STAFF = "12", "demo-window-12-39297a0c", "W0012"  # 孙涛: business licences
WALL = {"width": 1920, "height": 1080}
PORTRAIT = {"width": 1080, "height": 1920}
DESK = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config_open_all_day() -> str:
    """The demo config without opening hours, so tickets don't expire at whatever time tests run."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    return re.sub(r"^\[hall\.hours\]\n(?:(?!\[).*\n)*", "", text, flags=re.M)


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except OSError:
        return 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("pages")
    config = tmp / "config.toml"
    config.write_text(_config_open_all_day(), encoding="utf-8")
    port = _free_port()
    env = {**os.environ, "CALLCENTER_STORE_URL": f"sqlite:///{tmp}/pages.db"}
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "callcenter", "serve", "--config", str(config), "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while _get(base + "/readyz") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the server did not start:\n" + (tmp / "server.log").read_text())
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


class Pages:
    """Opens pages (one browser context, so one profile) and records every script error."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
        self.errors: list[str] = []

    def open(self, path: str, viewport: dict[str, int]) -> Any:
        page = self.context.new_page()
        page.set_viewport_size(viewport)
        page.on("pageerror", lambda exc: self.errors.append(f"{path}: {exc}"))
        page.on(
            "console",
            lambda msg: msg.type == "error" and self.errors.append(f"{path}: console: {msg.text}"),
        )
        page.goto(path if path.startswith("http") else self.base + path)
        return page

    def close(self) -> None:
        self.context.close()


def shot(page: Any, name: str, **kw: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), animations="disabled", **kw)


def decode_qr(png: bytes) -> str | None:
    """The QR code's text, if a decoder is installed (zxing-cpp and Pillow)."""
    try:
        import zxingcpp
        from PIL import Image
    except ImportError:
        return None
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return found[0].text if found else ""


def api(base: str, path: str, body: dict[str, Any] | None = None, token: str = "") -> Any:
    """One JSON API call (POST when there is a body)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(base + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)


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


def sign_in(page: Any, virtual_number: str) -> None:
    page.fill("#login-vn", virtual_number)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")


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
