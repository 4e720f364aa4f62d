"""200 simultaneous callers and 50 agents in fake time, through the engine and the hotline's
own call settlement (views.settle_call), with a seeded RNG.

Agents accept, reject or ignore offers (ignored ones time out on tick); callers hang up
when their patience runs out (while waiting or while offered), some leave a call-back
(which the agent's side dials; the citizen may not answer, and it is retried up to
callback_attempts times). After every step (the clock moves one second, or straight on
to the next moment anything is due) the whole hall is read back and checked: no ticket
offered to two agents, no agent holding two calls, every reserved agent pointing at a
live ticket that points back, no caller queued twice. At the end every caller was
answered, called back or abandoned: none lost; the event log is replayed to check the
same of every offer.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from callcenter.hotline.config import HotlineConfig
from callcenter.hotline.views import Hotline, settle_call
from callcenter.settings import load_settings
from queue_engine import Channel, Engine, FakeClock, Store, Ticket, TicketState, Tx, open_store
from queue_engine.model import HallConfig, SeatKind, Staff, Window, WorkstationState

from .conftest import CONFIG, START

T = TicketState
W = WorkstationState
CALLERS, AGENTS, SEED = 200, 50, 96166
LIVE = (T.WAITING.value, T.CALLED.value, T.SERVING.value, T.HELD.value)
SERVICES = ("hotline_consult", "hotline_appointment", "hotline_complaint")


def load_hall() -> HallConfig:
    """The real hall's services and policy with 50 hotline seats and 50 agents."""
    hall = load_settings(CONFIG, env={"CALLCENTER_STORE_URL": "sqlite:///:memory:"}).hall
    rng = random.Random(SEED)
    staff = []
    for i in range(AGENTS):
        skills = {"hotline_consult": rng.randint(1, 3)}
        for extra in SERVICES[1:]:
            if rng.random() < 0.5:
                skills[extra] = rng.randint(1, 3)
        staff.append(Staff(f"W1{i:03d}", f"座席{i}", skills, role="agent"))
    windows = tuple(Window(f"H{i:02d}", SeatKind.HOTLINE, "H") for i in range(1, AGENTS + 1))
    return replace(hall, windows=windows, staff=tuple(staff))


@dataclass
class Caller:
    n: int
    phone: str
    service: str
    arrives: float
    patience: float
    callback_at: float | None
    sid: str = ""
    ticket_id: int | None = None
    number: str = ""
    hung_up: bool = False
    is_callback: bool = False


@dataclass
class Sim:
    engine: Engine
    clock: FakeClock
    hotline: Any
    rng: random.Random
    callers: list[Caller]
    agents: list[str]
    due: list[tuple[float, int, str, Any]] = field(default_factory=list)  # (when, seq, what, arg)
    decided: set[tuple[int, str, float]] = field(default_factory=set)  # offers seen
    stats: Counter[str] = field(default_factory=Counter)
    seq: int = 0

    def later(self, after: float, what: str, arg: Any) -> None:
        self.seq += 1
        self.due.append((self.clock.now() + after, self.seq, what, arg))

    @property
    def store(self) -> Store:
        return self.engine.store


async def read_hall(engine: Engine) -> tuple[list[Ticket], list[Any]]:
    code = engine.hall.code
    return await engine.run(lambda tx: (tx.tickets_in(code, list(LIVE)), tx.workstations(code)))


def check(tickets: list[Ticket], workstations: list[Any], when: float) -> None:
    """The hall's invariants at one moment."""
    held = {t.id: t for t in tickets if t.state in (T.CALLED, T.SERVING)}
    by_agent: Counter[str] = Counter(t.workstation for t in held.values())
    for t in held.values():
        assert t.workstation is not None, (when, t)
        assert t.state != T.CALLED or t.offer_expires_at is not None, (when, t)
    doubled = [vn for vn, n in by_agent.items() if n > 1]
    assert not doubled, f"at {when}: agents holding two calls: {doubled}"
    holders: Counter[int] = Counter()
    for ws in workstations:
        if ws.state in (W.CALLING, W.SERVING):
            assert ws.ticket_id is not None, (when, ws)
            holders[ws.ticket_id] += 1
            t = held.get(ws.ticket_id)
            assert t is not None and t.workstation == ws.virtual_number, (when, ws, t)
            assert (ws.state == W.CALLING) == (t.state == T.CALLED), (when, ws, t)
        else:
            assert ws.ticket_id is None, (when, ws)
    twice = [tid for tid, n in holders.items() if n > 1]
    assert not twice, f"at {when}: tickets offered to two agents at once: {twice}"
    for t in held.values():
        assert holders[t.id] == 1, f"at {when}: {t.number} held by no agent"
    per_number = Counter(t.number for t in tickets)
    assert all(n == 1 for n in per_number.values()), (
        f"at {when}: a caller queued twice: {per_number}"
    )


async def link(engine: Engine, sid: str, ticket_id: int, status: str) -> None:
    await engine.run(lambda tx: tx.execute(
        "UPDATE calls SET ticket_id=?, status=?, updated_at=? WHERE call_sid=?",
        (ticket_id, status, engine.clock.now(), sid)))  # fmt: skip


async def insert_call(engine: Engine, sid: str, direction: str, phone: str, ticket_id: int,
                      status: str, attempt: int = 1) -> None:  # fmt: skip
    now = engine.clock.now()
    await engine.run(lambda tx: tx.execute(
        "INSERT INTO calls (call_sid, hall, direction, phone, ticket_id, status, attempt, created_at,"
        " updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (sid, engine.hall.code, direction, phone, ticket_id, status, attempt, now, now)))  # fmt: skip


async def outbound_attempts(engine: Engine, number: str) -> int:
    def count(tx: Tx) -> int:
        return tx.execute(
            "SELECT COUNT(*) FROM calls c JOIN tickets t ON t.id=c.ticket_id"
            " WHERE c.direction='outbound' AND t.number=?", (number,))[0][0]  # fmt: skip

    return await engine.run(count)


async def arrive(sim: Sim, c: Caller) -> None:
    issued = await sim.engine.take_ticket(c.service, channel=Channel.PHONE, phone=c.phone)
    c.ticket_id, c.number, c.sid = issued.ticket.id, issued.ticket.number, f"CA{c.n:032x}"
    await insert_call(sim.engine, c.sid, "inbound", c.phone, issued.ticket.id, "queued")
    sim.later(c.patience, "patience", c)
    if c.callback_at is not None:
        sim.later(c.callback_at, "callback", c)


async def live_of(sim: Sim, c: Caller) -> Ticket | None:
    t = await sim.engine.ticket_by_number(c.number)
    return t if t is not None and t.state.value in LIVE else None


async def act(sim: Sim, what: str, arg: Any) -> None:  # noqa: C901 (one branch per event kind)
    engine, rng = sim.engine, sim.rng
    if what == "arrive":
        await arrive(sim, arg)
    elif what == "patience":  # the caller hangs up, whatever is happening
        c: Caller = arg
        t = await live_of(sim, c)
        if c.is_callback or t is None or t.state == T.SERVING:
            return
        c.hung_up = True
        await settle_call(sim.hotline, c.sid, "completed")
        sim.stats["hung_up"] += 1
    elif what == "callback":
        c = arg
        t = await live_of(sim, c)
        if (
            t is None
            or c.is_callback
            or t.state not in (T.WAITING, T.CALLED)
            or t.channel != Channel.PHONE
        ):
            return
        moved = await engine.request_callback(t.id)
        await link(engine, c.sid, moved.id, "callback_requested")
        c.is_callback = True
        sim.stats["callbacks_requested"] += 1
    elif what in ("accept", "reject"):
        ticket_id, vn = arg
        ws = await engine.workstation(vn)
        if ws.state != W.CALLING or ws.ticket_id != ticket_id:
            return  # timed out or the caller hung up meanwhile
        if what == "reject":
            await engine.reject(vn)
            sim.stats["rejected"] += 1
            return
        t = await engine.accept(vn)
        sim.stats["accepted"] += 1
        c = sim.callers[int(t.phone[-3:])]  # type: ignore[index]
        if t.channel == Channel.CALLBACK:
            attempt = await outbound_attempts(engine, t.number) + 1
            sid = f"CB{c.n:03d}x{attempt}"
            await insert_call(engine, sid, "outbound", c.phone, t.id, "queued", attempt)
            answers = rng.random() < 0.6
            sim.later(rng.uniform(5, 20), "outbound", (sid, answers))
        else:
            sim.later(rng.uniform(30, 240), "hangup_after_talk", c)
    elif what == "outbound":
        sid, answers = arg
        if answers:
            sim.later(rng.uniform(30, 180), "outbound_done", sid)
        else:
            await settle_call(sim.hotline, sid, rng.choice(["no-answer", "busy"]))
            sim.stats["callback_unanswered"] += 1
    elif what == "outbound_done":
        await settle_call(sim.hotline, arg, "completed")
    elif what == "hangup_after_talk":
        await settle_call(sim.hotline, arg.sid, "completed")
    elif what == "resume":
        ws = await engine.workstation(arg)
        if ws.state == W.PAUSED:
            await engine.resume_work(arg)
            sim.stats["resumed"] += 1


async def decide_offers(sim: Sim, tickets: list[Ticket]) -> None:
    """Each new offer: accept, reject, or let it time out."""
    for t in tickets:
        key = (t.id, t.workstation or "", t.called_at or 0.0)  # each offer is decided once
        if t.state != T.CALLED or key in sim.decided:
            continue
        sim.decided.add(key)
        roll = sim.rng.random()
        if roll < 0.75:
            sim.later(sim.rng.uniform(1, 12), "accept", (t.id, t.workstation))
        elif roll < 0.87:
            sim.later(sim.rng.uniform(1, 6), "reject", (t.id, t.workstation))
        else:
            sim.stats["ignored"] += 1  # the offer times out on tick


def replay(events: list[Any]) -> None:
    """The log agrees: 200 calls issued; a ticket is offered only while it waits, and only to
    an agent holding nothing."""
    assert sum(1 for e in events if e.type == "ticket.issued") == CALLERS
    state: dict[int, str] = {}
    agent_holds: dict[str, int | None] = {}
    for e in events:
        t = e.payload.get("ticket")
        if e.type == "ticket.offered":
            assert state.get(e.ticket_id) == "waiting", e
            assert agent_holds.get(e.virtual_number or "") is None, e
        if t is not None and e.ticket_id is not None:
            state[e.ticket_id] = t["state"]
        ws = e.payload.get("workstation")
        if ws is not None:
            agent_holds[ws["virtual_number"]] = ws["ticket_id"]


async def test_200_callers_and_50_agents(tmp_path: Path) -> None:
    started = time.perf_counter()
    hall = load_hall()
    rng = random.Random(SEED)
    clock = FakeClock(START)
    store = open_store(f"sqlite:///{tmp_path}/load.db")
    store.add_migrations("callcenter.hotline")
    async with store:
        engine = Engine(store, hall, clock)
        await engine.load_hall()
        hotline = Hotline(HotlineConfig(callback_attempts=3), SimpleNamespace(engine=engine))  # type: ignore[arg-type]
        callers = [
            Caller(n, f"+8613800000{n:03d}", rng.choices(SERVICES, (7, 2, 1))[0], rng.uniform(0, 5),
                   rng.uniform(30, 900), rng.uniform(15, 120) if rng.random() < 0.2 else None)
            for n in range(CALLERS)
        ]  # fmt: skip
        agents = [s.virtual_number for s in hall.staff]
        sim = Sim(engine, clock, hotline, rng, callers, agents)
        for vn, seat in zip(agents, hall.windows, strict=True):
            await engine.sign_in(vn, seat.number)
        for c in callers:
            sim.due.append((START + c.arrives, -c.n, "arrive", c))
        paused_seen: set[tuple[str, float]] = set()
        for step in range(4 * 3600):
            now = clock.now()
            ready = sorted(d for d in sim.due if d[0] <= now)
            sim.due = [d for d in sim.due if d[0] > now]
            for _, _, what, arg in ready:
                await act(sim, what, arg)
            swept = await engine.tick()
            sim.stats["timeouts"] += sum(1 for e in swept if e.type == "ticket.offer_declined")
            await engine.dispatch()
            tickets, workstations = await read_hall(engine)
            check(tickets, workstations, now - START)
            await decide_offers(sim, tickets)
            for ws in workstations:
                if ws.state == W.PAUSED and (ws.virtual_number, ws.since) not in paused_seen:
                    paused_seen.add((ws.virtual_number, ws.since))
                    sim.stats["auto_paused"] += 1
                    sim.later(30, "resume", ws.virtual_number)
            if not tickets and not sim.due and step > 10:
                break
            # On to the next moment anything can happen (a due action, an offer's or a
            # wrap-up's end), one second at least: the same run, fewer idle steps.
            moments = [d[0] for d in sim.due]
            moments += [t.offer_expires_at for t in tickets if t.offer_expires_at is not None]
            moments += [w.wrap_up_until for w in workstations if w.wrap_up_until is not None]
            clock.advance(max(1.0, min(moments, default=now + 1.0) - now))
        else:
            raise AssertionError(f"calls still open after four hours: {len(tickets)}")

        # Every caller ended answered, called back or abandoned; none lost, none duplicated.
        day = engine.today()
        every = await engine.run(lambda tx: tx.tickets_of_day(hall.code, day))
        final = {t.number: t for t in sorted(every, key=lambda t: t.id)}  # the last of each chain
        assert len(final) == CALLERS
        outcomes = Counter(
            ("answered" if t.channel == Channel.PHONE else "called back")
            if t.state == T.DONE else t.state.value
            for t in final.values()
        )  # fmt: skip
        assert set(outcomes) <= {"answered", "called back", "abandoned"}, outcomes
        assert sum(outcomes.values()) == CALLERS
        assert all(t.state in (T.DONE, T.ABANDONED, T.TRANSFERRED) for t in every)
        replay(await engine.run(lambda tx: tx.events_after(0, 1_000_000, hall.code)))
        # The run exercised what it claims to.
        for key in ("accepted", "rejected", "timeouts", "hung_up", "callbacks_requested",
                    "callback_unanswered", "auto_paused"):  # fmt: skip
            assert sim.stats[key] > 0, (key, sim.stats)
        assert (
            outcomes["answered"] > 0 and outcomes["called back"] > 0 and outcomes["abandoned"] > 0
        )
    elapsed = time.perf_counter() - started
    print(
        f"\n{dict(outcomes)} {dict(sim.stats)} in {clock.now() - START:.0f} s fake, {elapsed:.1f} s real"
    )
    assert elapsed < 60, elapsed
