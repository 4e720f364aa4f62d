"""What every request may depend on, as FastAPI ``Annotated`` aliases in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import QueryParams

from queue_engine import Clock, QueueError

from .auth import AuthError, Authority, ForbiddenError, Principal, Role
from .ratelimit import RateLimiter
from .runtime import HallRuntime
from .settings import Settings


class UnknownHallError(QueueError):
    """There is no hall '{hall}'."""

    code = "unknown_hall"
    zh = "没有大厅“{hall}”"
    status = 404


@dataclass
class AppContext:
    """The process's shared parts, built by the lifespan and kept on ``app.state.ctx``."""

    settings: Settings
    clock: Clock
    authority: Authority
    halls: dict[str, HallRuntime] = field(default_factory=dict)
    issue_limit_device: RateLimiter = field(default_factory=lambda: RateLimiter(2.0, 20))
    issue_limit_phone: RateLimiter = field(default_factory=lambda: RateLimiter(1 / 60, 3))
    lookup_limit: RateLimiter = field(default_factory=lambda: RateLimiter(5.0, 30))
    # Per work number: password guessing. Per client address: looser, since a whole hall's
    # staff sign in at nine o'clock from behind one address.
    login_limit: RateLimiter = field(default_factory=lambda: RateLimiter(0.2, 10))
    login_ip_limit: RateLimiter = field(default_factory=lambda: RateLimiter(2.0, 100))
    case_guess_limit: RateLimiter = field(default_factory=lambda: RateLimiter(1 / 60, 5))
    ready: bool = False
    sms: Any = None
    dispatcher: Any = None


# The checks are plain functions over (context, hall, token) and the principal, so the lean
# door to the desk actions (desk_fastpath.py) makes exactly the checks the routes make. Each
# dependency below takes the request (and the path's names) and calls them directly: FastAPI
# spends about 15 µs on every node of a dependency tree, and a chain like "acting for vn <-
# staffer <- hall member <- principal <- context" cost a workstation request a third of its time.


def hall_of(ctx: AppContext, hall: str) -> HallRuntime:
    """The runtime of ``hall``; UnknownHallError if there is none."""
    runtime = ctx.halls.get(hall)
    if runtime is None:
        raise UnknownHallError(hall=hall)
    return runtime


def bearer_token(authorization: str, query_string: bytes) -> str | None:
    """The Authorization header's bearer token, else ``?token=`` (EventSource sends no headers)."""
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return QueryParams(query_string).get("token")


def principal_of(ctx: AppContext, token: str | None) -> Principal:
    """Whoever ``token`` names; AuthError if there is none or it does not check out."""
    if not token:
        raise AuthError(reason="no token was given", reason_zh="未提供登录凭证")
    return ctx.authority.check(token, ctx.clock.now())


def member_of(ctx: AppContext, hall: str, token: str | None) -> Principal:
    """Whoever ``token`` names, if a staffer or device of ``hall``."""
    runtime = hall_of(ctx, hall)
    who = principal_of(ctx, token)
    if who.hall != runtime.engine.hall.code:
        raise ForbiddenError(
            reason="this token belongs to another hall", reason_zh="凭证不属于本大厅"
        )
    return who


def acting_as(ctx: AppContext, hall: str, vn: str, token: str | None) -> Principal:
    """A staffer of ``hall`` acting on their own work number ``vn``, or a supervisor."""
    who = _person(member_of(ctx, hall, token))
    if who.subject != vn and not who.at_least(Role.SUPERVISOR):
        raise ForbiddenError(
            reason=f"you are signed in as {who.subject}, not {vn}",
            reason_zh=f"您登录的工号是{who.subject}，不是{vn}",
        )
    return who


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def _token(request: Request) -> str | None:
    return bearer_token(request.headers.get("authorization", ""), request.scope["query_string"])


def _member(request: Request, hall: str) -> Principal:
    return member_of(_ctx(request), hall, _token(request))


def _person(who: Principal) -> Principal:
    if who.is_device:
        raise ForbiddenError(reason="devices cannot do this", reason_zh="设备无权执行此操作")
    return who


def _supervisor(who: Principal) -> Principal:
    if not who.at_least(Role.SUPERVISOR):
        raise ForbiddenError(reason="supervisors only", reason_zh="仅限值班长/管理员")
    return who


def _case_worker(who: Principal) -> Principal:
    if who.is_device and who.device_kind == "department":
        return who
    if not who.is_device and (who.role == Role.OFFICER or who.at_least(Role.SUPERVISOR)):
        return who
    raise ForbiddenError(reason="department officers only", reason_zh="仅限部门审批人员")


async def context(request: Request) -> AppContext:
    """The app's context (set by the lifespan)."""
    return _ctx(request)


Ctx = Annotated[AppContext, Depends(context)]


async def hall_runtime(request: Request, hall: str) -> HallRuntime:
    """The runtime of the hall named in the path."""
    return hall_of(_ctx(request), hall)


Hall = Annotated[HallRuntime, Depends(hall_runtime)]


async def principal(request: Request) -> Principal:
    """Whoever the bearer token (or ``?token=`` for EventSource) names."""
    return principal_of(_ctx(request), _token(request))


Who = Annotated[Principal, Depends(principal)]


async def in_hall(request: Request, hall: str) -> Principal:
    """Any staffer or device of the hall in the path."""
    return _member(request, hall)


HallMember = Annotated[Principal, Depends(in_hall)]


async def staffer(request: Request, hall: str) -> Principal:
    """A signed-in person (not a device) of the hall."""
    return _person(_member(request, hall))


Staffer = Annotated[Principal, Depends(staffer)]


async def supervisor(request: Request, hall: str) -> Principal:
    """A supervisor or admin of the hall."""
    return _supervisor(_person(_member(request, hall)))


Supervisor = Annotated[Principal, Depends(supervisor)]


async def acting_for(request: Request, hall: str, vn: str) -> Principal:
    """The staffer may act only on the workstation signed in under their own number."""
    return acting_as(_ctx(request), hall, vn, _token(request))


Acting = Annotated[Principal, Depends(acting_for)]


async def rating_pad(request: Request, hall: str, window: str) -> Principal:
    """The rating pad (or window screen) bound to the window in the path, or a supervisor."""
    who = _member(request, hall)
    if who.is_device and who.device_kind in ("ratingpad", "window") and who.window == window:
        return who
    if who.at_least(Role.SUPERVISOR):
        return who
    raise ForbiddenError(
        reason=f"only the rating pad of window {window} rates its services",
        reason_zh=f"仅{window}号窗口的评价器可以评价",
    )


RatingPad = Annotated[Principal, Depends(rating_pad)]


async def case_worker(request: Request, hall: str) -> Principal:
    """A department officer, a department system's key, or a supervisor."""
    return _case_worker(_member(request, hall))


CaseWorker = Annotated[Principal, Depends(case_worker)]


async def case_reader(request: Request, hall: str) -> Principal:
    """Who may read a case: its department, supervisors, and hotline agents answering callers."""
    who = _member(request, hall)
    if not who.is_device and who.role in (Role.AGENT, Role.STAFF):
        return who
    return _case_worker(who)


CaseReader = Annotated[Principal, Depends(case_reader)]


async def issuer(request: Request, hall: str) -> Principal:
    """A kiosk device or a staffer may issue tickets."""
    who = _member(request, hall)
    if who.is_device and who.device_kind != "kiosk":
        raise ForbiddenError(reason="only kiosks issue tickets", reason_zh="仅取号机可以取号")
    return who


Issuer = Annotated[Principal, Depends(issuer)]
