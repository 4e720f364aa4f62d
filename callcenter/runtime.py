"""A hall at run time: its engine, its live view, its feed, and the tasks that drive them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from kiosk.display import HallView
from kiosk.feed import HEARTBEAT_S, FeedHub
from queue_engine import Bus, Clock, Engine, Event, HallConfig, QueueError, ReaderRunner, Store
from queue_engine.appointments import Appointments
from queue_engine.cases import Cases
from queue_engine.ratings import Ratings
from queue_engine.workorders import WorkOrders

log = logging.getLogger(__name__)


class ScreensReader:
    """Folds every event into the hall's view, then feeds the live clients."""

    durable = False

    def __init__(self, view: HallView, hub: FeedHub) -> None:
        self.name = f"screens:{view.hall.code}"
        self.view = view
        self.hub = hub

    async def handle(self, events: Sequence[Event]) -> None:
        """Update the view first, so a client reacting to an event reads a fresh snapshot."""
        for event in events:
            self.view.apply(event)
        self.hub.publish(events)


@dataclass
class HallRuntime:
    """One hall's moving parts inside the process."""

    engine: Engine
    view: HallView
    hub: FeedHub
    runner: ReaderRunner
    ratings: Ratings
    appointments: Appointments
    cases: Cases
    work_orders: WorkOrders
    tick_s: float = 1.0
    _snapshot: tuple[int, float, dict] | None = field(default=None, repr=False)

    @classmethod
    async def start(
        cls, store: Store, bus: Bus, hall: HallConfig, clock: Clock, id_secret: bytes
    ) -> HallRuntime:
        """Load the hall's rows, build its view, and position its reader at the log's end."""
        engine = Engine(store, hall, clock)
        await engine.load_hall()
        state = await engine.state()
        view = HallView.load(
            hall, state.day, state.tickets, state.workstations, state.last_event_id
        )

        async def backlog(after: int) -> list[Event]:
            return await store.run(lambda tx: tx.events_after(after, 500, hall.code))

        hub = FeedHub(hall.code, backlog)
        runner = ReaderRunner(store, bus, ScreensReader(view, hub), poll_s=1.0)
        runner.position = state.last_event_id
        return cls(
            engine,
            view,
            hub,
            runner,
            Ratings(engine),
            Appointments(engine, id_secret),
            Cases(engine),
            WorkOrders(engine),
        )

    def snapshot(self) -> dict:
        """The display snapshot, computed at most once per event and second."""
        now = self.engine.clock.now()
        cached = self._snapshot
        if cached and cached[0] == self.view.last_event_id and now - cached[1] < 1.0:
            return cached[2]
        snap = self.view.snapshot(now)
        self._snapshot = (self.view.last_event_id, now, snap)
        return snap

    async def run_ticker(self) -> None:
        """Let time act: offer and call time-outs, wrap-up ends, expiry, hotline dispatch."""
        last_ping = last_orders = 0.0
        while True:
            if self.engine.clock.now() - last_ping >= HEARTBEAT_S:
                self.hub.ping()
                last_ping = self.engine.clock.now()
            try:
                await self.engine.tick()
                await self.engine.dispatch()
                await self.appointments.tick()
                if self.engine.clock.now() - last_orders >= 30:
                    await self.work_orders.tick()
                    last_orders = self.engine.clock.now()
            except QueueError:
                log.exception("the ticker of hall %s failed; trying again", self.engine.hall.code)
            await asyncio.sleep(self.tick_s)
