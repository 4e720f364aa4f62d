"""The pure async queue core: halls, tickets, virtual workstations, routing and the event log.

It imports no web, MQTT, SMS or voice framework; adapters wrap it (DESIGN §2).
"""

from .bus import Bus, Subscription
from .clock import Clock, FakeClock, SystemClock
from .engine import Engine, Issued
from .errors import QueueError
from .model import (
    Channel,
    Department,
    Event,
    HallConfig,
    PauseReason,
    Policy,
    PriorityClass,
    SeatKind,
    Service,
    Session,
    Staff,
    Ticket,
    TicketState,
    TransferPosition,
    WaitEstimate,
    Window,
    Workstation,
    WorkstationState,
)
from .readers import Reader, ReaderRunner, TxReader
from .store import Store, Tx, open_store

__all__ = [
    "Bus", "Channel", "Clock", "Department", "Engine", "Event", "FakeClock", "HallConfig",
    "Issued", "PauseReason", "Policy", "PriorityClass", "QueueError", "Reader", "ReaderRunner",
    "SeatKind", "Service", "Session", "Staff", "Store", "Subscription", "SystemClock", "Ticket",
    "TicketState", "TransferPosition", "Tx", "TxReader", "WaitEstimate", "Window", "Workstation",
    "WorkstationState", "open_store",
]  # fmt: skip
