"""A bounded schemathesis run over the app's OpenAPI schema: no 500s, no schema violations.

The app runs under uvicorn in a thread for the whole module (one lifespan), and
schemathesis (v4) sends its cases over loopback HTTP. Every request carries a
supervisor's session so the checks reach the handlers, and the path parameters and
body fields that name hall objects are mostly steered to real ones (the hall, work
numbers, windows, services, issued tokens), so most cases get past the 404s.
The SSE feed never ends, so it is left to test_feed.py.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from cc_support import HALL, PASSWORD, START, SUPERVISOR, make_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from callcenter.app import create_app
from callcenter.auth import Principal
from queue_engine import FakeClock

_TMP = Path(tempfile.mkdtemp(prefix="callcenter-schemathesis-"))
CLOCK = FakeClock(START)
APP = create_app(make_settings(_TMP), clock=CLOCK, tick_s=3600)
# A supervisor's session signed by the app's own authority, valid for a year of fake time.
TOKEN = APP.state.ctx.authority.sign(Principal(SUPERVISOR, "supervisor", HALL, START + 365 * 86400))
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
STAFF = ["W0001", "W0002", "W0011", "W0101", "W0102", SUPERVISOR]
WINDOWS = ["1", "2", "12", "H01", "H02"]
SERVICES = ["social_insurance", "pension", "business_licence", "hotline_consult", "tax_invoice"]
TOKENS: list[str] = []  # status tokens of the tickets issued so far
CASES: list[str] = []  # the operation of every case sent


# The document /openapi.json serves (test_api checks the route itself), without the feed.
schema = schemathesis.openapi.from_dict(APP.openapi()).exclude(path="/api/halls/{hall}/feed")
SETTINGS = settings(
    max_examples=10,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases every run, so a failure is reproducible
    suppress_health_check=list(HealthCheck),
)


def _steer(values: MutableMapping[str, Any], key: str, real: list[str]) -> None:
    """Replace a generated value by a real one most of the time (deterministically)."""
    value = values.get(key)
    if key not in values or not real:
        return
    pick = zlib.crc32(repr(value).encode()) % (len(real) + 1)
    if pick < len(real):  # one time in len(real) + 1 the generated value stays
        values[key] = real[pick]


def _realistic(case: schemathesis.Case) -> None:
    params = case.path_parameters
    if params:
        if "hall" in params and zlib.crc32(repr(params["hall"]).encode()) % 8:
            params["hall"] = HALL
        _steer(params, "vn", STAFF)
        _steer(params, "window", WINDOWS)
        _steer(params, "token", TOKENS)
    body = case.body
    if isinstance(body, dict):
        _steer(body, "virtual_number", STAFF)
        _steer(body, "password", [PASSWORD])
        _steer(body, "window", WINDOWS)
        _steer(body, "service", SERVICES)
        _steer(body, "to_service", SERVICES)
        _steer(body, "to_workstation", STAFF)
        _steer(body, "phone", ["13812345678", "+852 6123 4567"])
        if isinstance(body.get("ticket_id"), int) and TOKENS:
            body["ticket_id"] = 1 + body["ticket_id"] % len(TOKENS)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The app served by uvicorn in a thread of its own: its lifespan runs once for the module.

    (Through schemathesis' in-process ASGI client the lifespan would be restarted for every
    operation: its pytest plugin ends ASGI lifespans after each test item.)
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    config = uvicorn.Config(APP, lifespan="on", log_level="warning", ws="none", http="h11")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    try:
        sock.bind(("127.0.0.1", 0))
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        if thread.is_alive():
            thread.join(15)
        sock.close()
        shutil.rmtree(_TMP, ignore_errors=True)


def _run(case: schemathesis.Case, base_url: str) -> None:
    CLOCK.advance(1.0)  # rate limiters refill a little between cases; the hall stays open
    _realistic(case)
    CASES.append(case.operation.label)
    response = case.call_and_validate(base_url=base_url, headers=HEADERS, checks=CHECKS)
    if response.status_code == 201 and case.operation.path.endswith("/tickets"):
        TOKENS.append(response.json()["token"])


@schema.parametrize()
@SETTINGS
def test_no_server_error_and_no_schema_violation(case: schemathesis.Case, base_url: str) -> None:
    _run(case, base_url)


def test_the_lifespan_ran_once_and_the_run_reached_the_handlers(base_url: str) -> None:
    if not CASES:
        pytest.skip("checks the schemathesis run above; run the whole module")
    ctx = APP.state.ctx
    assert ctx.ready is True
    assert list(ctx.halls) == [HALL]
    assert TOKENS, "no ticket was issued during the run"
    issued = [t for t in ctx.halls[HALL].view.tickets.values() if t.parent_id is None]
    assert len(issued) == len(TOKENS)  # one runtime saw every ticket of the run
