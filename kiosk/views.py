"""The pages: server-rendered templates with a little plain JavaScript, live through the feed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from queue_engine import HallConfig
from queue_engine.workorders import STATE_EN, STATES, TYPES

HERE = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class DeviceLink:
    """A configured device the front door links to (its token only in demo mode)."""

    id: str
    kind: str
    window: str | None
    token: str | None


def mount_pages(app: FastAPI, hall: HallConfig, devices: Sequence[DeviceLink]) -> None:
    """Serve the pages and their static files on ``app``."""
    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    router = APIRouter(include_in_schema=False)

    def page(request: Request, name: str, **extra: Any) -> HTMLResponse:
        context = {"hall": hall, "silent": hall.policy.silent, **extra}
        return templates.TemplateResponse(request, name, context)

    @router.get("/", response_class=HTMLResponse)
    async def front_door(request: Request) -> HTMLResponse:
        return page(request, "index.html", devices=devices)

    @router.get("/kiosk", response_class=HTMLResponse)
    async def kiosk(request: Request) -> HTMLResponse:
        return page(request, "kiosk.html")

    @router.get("/display", response_class=HTMLResponse)
    async def display(request: Request) -> HTMLResponse:
        return page(request, "display.html")

    @router.get("/window/{window}", response_class=HTMLResponse)
    async def window_screen(request: Request, window: str) -> HTMLResponse:
        return page(request, "window.html", window=window)

    @router.get("/staff", response_class=HTMLResponse)
    async def staff(request: Request) -> HTMLResponse:
        return page(request, "staff.html")

    @router.get("/supervisor", response_class=HTMLResponse)
    async def supervisor(request: Request) -> HTMLResponse:
        return page(request, "supervisor.html")

    @router.get("/t/{token}", response_class=HTMLResponse)
    async def status(request: Request, token: str) -> HTMLResponse:
        return page(request, "status.html", token=token)

    _records_pages(router, page, hall)
    _hotline_pages(router, page, hall)
    app.include_router(router)


def _records_pages(router: APIRouter, page: Callable[..., HTMLResponse], hall: HallConfig) -> None:
    """Appointments, cases and ratings: the citizen's, the officer's and the rating pages."""
    flows = case_flows(hall)

    @router.get("/self-service", response_class=HTMLResponse)
    async def self_service(request: Request) -> HTMLResponse:
        return page(request, "self_service.html", flows=flows, booking=hall.booking)

    @router.get("/officer", response_class=HTMLResponse)
    async def officer(request: Request) -> HTMLResponse:
        return page(request, "officer.html", flows=flows)

    @router.get("/rating-pad/{window}", response_class=HTMLResponse)
    async def rating_pad(request: Request, window: str) -> HTMLResponse:
        return page(request, "rating_pad.html", window=window)

    @router.get("/r/{token}", response_class=HTMLResponse)
    async def rate_link(request: Request, token: str) -> HTMLResponse:
        return page(request, "rate.html", token=token)


def case_flows(hall: HallConfig) -> dict[str, dict[str, Any]]:
    """The case flows as the pages read them: each status to the statuses it may move to."""
    return {
        code: {
            "transitions": {status: list(nexts) for status, nexts in flow.transitions.items()},
            "initial": flow.initial,
            "pickup_status": flow.pickup_status,
        }
        for code, flow in hall.case_flows.items()
    }


def _hotline_pages(router: APIRouter, page: Callable[..., HTMLResponse], hall: HallConfig) -> None:
    """The 96166 hotline: the agent's console and the work orders (工单) page."""
    policy = hall.policy
    hotline = {
        "offer_timeout_s": policy.offer_timeout_s,
        "wrap_up_s": policy.hotline_wrap_up_s,
        "types": [[code, *names] for code, names in TYPES.items()],  # in order: 咨询 first
        "states": [[s, STATE_EN[s]] for s in STATES],
        # Officers see their own department's orders; the page needs to know which that is.
        "officers": {s.virtual_number: s.department for s in hall.staff if s.role == "officer"},
    }

    @router.get("/agent", response_class=HTMLResponse)
    async def agent(request: Request) -> HTMLResponse:
        return page(request, "agent.html", hotline=hotline)

    @router.get("/orders", response_class=HTMLResponse)
    async def orders(request: Request) -> HTMLResponse:
        return page(request, "orders.html", hotline=hotline)
