"""The JSON API for what outlives the queue: ratings and their follow-ups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import Field

from .api import ERRORS
from .deps import Ctx, Hall, RatingPad, Supervisor
from .schemas import Body

router = APIRouter(prefix="/api", responses=ERRORS)


class RatingIn(Body):
    level: int = Field(ge=1, le=5, description="5 非常满意 … 1 非常不满意", examples=[5])
    comment: str | None = Field(default=None, max_length=500, examples=["办事很快，态度很好"])


class VerifyIn(Body):
    finding: str = Field(min_length=1, max_length=1000, examples=["已电话回访，窗口解释不清"])


class CloseIn(Body):
    outcome: str = Field(pattern=r"^(fixed|explained)$", examples=["fixed"])
    resolution: str = Field(min_length=1, max_length=1000, examples=["已对窗口人员进行业务培训"])
    reply: str = Field(min_length=1, max_length=300, examples=["感谢您的反馈，我们已整改。"])


@router.post("/halls/{hall}/windows/{window}/rating", status_code=201, tags=["ratings"])
async def rate_at_window(
    window: str, body: RatingIn, runtime: Hall, _: RatingPad
) -> dict[str, Any]:
    """The rating pad at a window rates the service just finished there."""
    rating = await runtime.ratings.rate_at_window(window, body.level, body.comment)
    return rating.to_dict()


@router.get("/ratings/{token}", tags=["ratings"])
async def rating_link(token: str, ctx: Ctx) -> dict[str, Any]:
    """What a one-time rating link is for: the ticket number, service and window."""
    for runtime in ctx.halls.values():
        ticket = await runtime.ratings.link_ticket(token)
        svc = runtime.engine.hall.service(ticket.service)
        return {
            "number": ticket.number, "window": ticket.window, "service": ticket.service,
            "service_zh": svc.name_zh if svc else ticket.service,
            "service_en": svc.name_en if svc else ticket.service, "hall": runtime.engine.hall.code,
        }  # fmt: skip
    return {}


@router.post("/ratings/{token}", status_code=201, tags=["ratings"])
async def rate_by_link(token: str, body: RatingIn, ctx: Ctx) -> dict[str, Any]:
    """Rate through the one-time link sent by SMS after the service."""
    runtime = next(iter(ctx.halls.values()))
    rating = await runtime.ratings.rate_by_link(token, body.level, body.comment)
    return rating.to_dict()


@router.get("/halls/{hall}/follow-ups", tags=["ratings"])
async def follow_ups(
    runtime: Hall, _: Supervisor, state: str = Query(default="open,verified")
) -> list[dict[str, Any]]:
    """Bad-rating follow-ups (差评整改), by state."""
    states = tuple(s for s in state.split(",") if s in ("open", "verified", "fixed", "explained"))
    found = await runtime.ratings.follow_ups(states or ("open", "verified"))
    return [f.to_dict() for f in found]


@router.post("/halls/{hall}/follow-ups/{follow_up_id}/verify", tags=["ratings"])
async def verify(
    follow_up_id: int, body: VerifyIn, runtime: Hall, who: Supervisor
) -> dict[str, Any]:
    """The supervisor called the citizen back and verified what happened."""
    done = await runtime.ratings.verify(follow_up_id, who.subject, body.finding)
    return done.to_dict()


@router.post("/halls/{hall}/follow-ups/{follow_up_id}/close", tags=["ratings"])
async def close(follow_up_id: int, body: CloseIn, runtime: Hall, who: Supervisor) -> dict[str, Any]:
    """Fixed or explained; the reply reaches the citizen by SMS."""
    done = await runtime.ratings.close(
        follow_up_id, who.subject, body.outcome, body.resolution, body.reply
    )
    return done.to_dict()


@router.get("/halls/{hall}/ratings/stats", tags=["ratings"])
async def rating_stats(
    runtime: Hall,
    _: Supervisor,
    since: str | None = Query(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$"),
    until: str | None = Query(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$"),
) -> dict[str, Any]:
    """Per staffer and per service: served, average wait and handle time, ratings, 好评率."""
    today = runtime.engine.today()
    return await runtime.ratings.stats(since or today, until or today)
