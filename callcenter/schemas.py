"""The JSON API's request and response bodies (Pydantic), with examples for the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from queue_engine import Ticket, TicketState, WaitEstimate, Workstation

RowId = Annotated[int, Path(ge=1, le=2**62, description="a row id")]


class Body(BaseModel):
    """Request bodies refuse unknown fields, so a typo is a 422, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


class LoginIn(Body):
    virtual_number: str = Field(pattern=r"^W\d{4}$", examples=["W0001"])
    password: str = Field(min_length=1, max_length=200, examples=["96166demo"])
    hall: str | None = Field(default=None, max_length=40, examples=["wuhou"])


class LoginOut(BaseModel):
    token: str
    expires_at: float
    virtual_number: str
    name: str
    role: str
    hall: str
    department: str | None = None


class TicketIn(Body):
    service: str = Field(min_length=1, max_length=40, examples=["business_licence"])
    priority: str = Field(default="normal", max_length=40, examples=["normal", "green"])
    phone: str | None = Field(default=None, max_length=32, examples=["13812345678"])
    sms_consent: bool = Field(default=False, description="the citizen agreed to SMS notices")


class TicketOut(BaseModel):
    """A ticket as the citizen may see it (the phone number masked)."""

    id: int
    number: str
    service: str
    service_zh: str
    service_en: str
    state: TicketState
    priority: str
    channel: str
    window: str | None = None
    phone_masked: str | None = None
    ahead: int | None = None
    expected_wait_min: float | None = None
    arrived_at: float
    called_at: float | None = None
    offer_expires_at: float | None = None
    token: str | None = None
    status_url: str | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "id": 17, "number": "A017", "service": "business_licence",
                "service_zh": "营业执照办理", "service_en": "Business licence", "state": "waiting",
                "priority": "normal", "channel": "hall", "window": None,
                "phone_masked": "138****5678", "ahead": 4, "expected_wait_min": 20.0,
                "arrived_at": 1780020000.0, "called_at": None,
                "token": "mG3v0x4y…", "status_url": "/t/mG3v0x4y…",
            }]
        }
    )  # fmt: skip


class SignInIn(Body):
    window: str = Field(min_length=1, max_length=20, examples=["12", "H03"])


class PauseIn(Body):
    reason: str = Field(min_length=1, max_length=40, examples=["break", "meeting", "away"])


class TicketRef(Body):
    ticket_id: int = Field(ge=1, le=2**62, examples=[17])


class TransferIn(Body):
    ticket_id: int | None = Field(default=None, ge=1, le=2**62, description="default: my ticket")
    to_service: str | None = Field(default=None, max_length=40, examples=["tax"])
    to_workstation: str | None = Field(default=None, pattern=r"^W\d{4}$", examples=["W0012"])
    position: str | None = Field(default=None, pattern=r"^(front|back)$")


class WorkstationOut(BaseModel):
    """A workstation's state with the ticket it holds and its held tickets."""

    virtual_number: str
    name: str
    state: str
    window: str | None
    kind: str | None
    since: float
    pause_reason: str | None
    wrap_up_until: float | None = None
    ticket: TicketOut | None = None
    held: list[TicketOut] = []
    skills: dict[str, int] = {}
    waiting: dict[str, int] = {}


class ErrorBody(BaseModel):
    code: str
    message_zh: str
    message_en: str
    details: Any = None


class ErrorOut(BaseModel):
    error: ErrorBody


def ticket_out(
    t: Ticket,
    service_zh: str,
    service_en: str,
    est: WaitEstimate | None = None,
    *,
    with_token: bool = False,
    masked_phone: str | None = None,
) -> TicketOut:
    """The public form of a ticket; the token only for its own citizen."""
    return TicketOut(
        id=t.id, number=t.number, service=t.service, service_zh=service_zh,
        service_en=service_en, state=t.state, priority=t.priority, channel=t.channel.value,
        window=t.window, phone_masked=masked_phone, arrived_at=t.arrived_at,
        called_at=t.called_at, offer_expires_at=t.offer_expires_at, ahead=est.ahead if est else None,
        expected_wait_min=est.minutes if est else None,
        token=t.token if with_token else None,
        status_url=f"/t/{t.token}" if with_token else None,
    )  # fmt: skip


def workstation_out(w: Workstation, name: str, **extra: Any) -> WorkstationOut:
    """A workstation row as the API shows it."""
    return WorkstationOut(
        virtual_number=w.virtual_number, name=name, state=w.state.value, window=w.window,
        kind=w.kind.value if w.kind else None, since=w.since, pause_reason=w.pause_reason,
        wrap_up_until=w.wrap_up_until,
        **extra,
    )  # fmt: skip
