"""What the browser tests share: a server process, Chromium pages, screenshots, API calls.

Each test module starts its own server (``running_server``) on a free port with
its own SQLite file; the browser is one session fixture (see conftest.py).
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI") == "true"
PASSWORD = "96166demo"
KIOSK_TOKEN = "demo-kiosk-1-5f2c9a71"
WALL = {"width": 1920, "height": 1080}
PORTRAIT = {"width": 1080, "height": 1920}
DESK = {"width": 1440, "height": 900}
TABLET = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def unavailable(reason: str) -> None:
    """Skip, except in CI, where a browser test that cannot run is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except OSError:
        return 0


@contextmanager
def running_server(tmp: Path, config_text: str, *, clock_file: Path | None = None) -> Iterator[str]:
    """A server process for ``config_text`` with its own database; yields its base URL.

    Without ``clock_file`` it is ``callcenter serve``; with it, tests/e2e/clock_server.py
    serves the same app on a clock the test can move (wall time plus the file's offset).
    """
    config = tmp / "config.toml"
    config.write_text(config_text, encoding="utf-8")
    port = free_port()
    env = {**os.environ, "CALLCENTER_STORE_URL": f"sqlite:///{tmp}/pages.db"}
    cmd = [sys.executable, "-m", "callcenter", "serve"]
    if clock_file is not None:
        cmd = [sys.executable, str(HERE / "clock_server.py"), "--clock-file", str(clock_file)]
    cmd += ["--config", str(config), "--port", str(port)]
    log_path = tmp / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while http_status(base + "/readyz") != 200:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the server did not start:\n" + log_path.read_text())
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright (skipped, or failed in CI, when missing)."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


class Pages:
    """Opens pages (one browser context, so one profile) and records every script error."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
        self.errors: list[str] = []
        self.refusals: list[str] = []
        self.refused: list[str] = []

    def open(self, path: str, viewport: dict[str, int]) -> Any:
        page = self.context.new_page()
        page.set_viewport_size(viewport)
        page.on("pageerror", lambda exc: self.errors.append(f"{path}: {exc}"))
        page.on("console", lambda msg: self._console(path, msg))
        page.goto(path if path.startswith("http") else self.base + path)
        return page

    def _console(self, path: str, msg: Any) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        if msg.text.startswith("Failed to load resource") and any(
            re.search(pattern, url) for pattern in self.refusals
        ):
            self.refused.append(url)  # an API answer the test asked for (Chromium logs it)
            return
        self.errors.append(f"{path}: console: {msg.text} ({url})")

    def expect_refusal(self, url_pattern: str) -> None:
        """An API call the test makes fail on purpose: its status is logged, not an error."""
        self.refusals.append(url_pattern)

    def close(self) -> None:
        self.context.close()


def front(page: Any) -> Any:
    """Bring a page's tab to the front: Chromium throttles background tabs (a click takes seconds)."""
    page.bring_to_front()
    return page


def shot(page: Any, name: str, **kw: Any) -> Path:
    front(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", **kw)
    return path


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
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)


def login(base: str, virtual_number: str) -> str:
    """A staff bearer token."""
    body = {"virtual_number": virtual_number, "password": PASSWORD}
    return str(api(base, "/api/auth/login", body)["token"])


def sign_in(page: Any, virtual_number: str) -> None:
    page.fill("#login-vn", virtual_number)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
