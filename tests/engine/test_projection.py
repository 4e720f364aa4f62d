"""queue_engine.projection: folding the event log gives back the ticket and workstation tables."""

from __future__ import annotations

from queue_engine import Engine, FakeClock, Store
from queue_engine.model import Event, TicketState, TransferPosition, WorkstationState
from queue_engine.projection import rebuild

DAY = "2026-05-29"
OFFLINE_ALL_DAY = {"W0002", "W0003", "W0103"}


async def log(store: Store) -> list[Event]:
    return await store.run(lambda tx: tx.events_after(0, 10_000))


async def scripted_morning(engine: Engine, clock: FakeClock) -> None:
    """Two windows and two hotline seats through most commands the engine has."""
    step = clock.advance
    await engine.sign_in("W0001", "1")
    await engine.sign_in("W0004", "4")
    await engine.sign_in("W0101", "H01")
    await engine.sign_in("W0102", "H02")
    await engine.take_ticket("biz")
    step(30)
    await engine.take_ticket("biz", priority="green")
    await engine.take_ticket("pension", phone="13800000000")
    await engine.take_ticket("medical")
    step(60)
    await engine.call_next("W0001")  # the green ticket
    await engine.recall("W0001")
    step(20)
    await engine.start_service("W0001")
    await engine.call_next("W0004")  # C001: medical has the shortest target wait
    await engine.mark_no_show("W0004")
    step(300)
    await engine.hold("W0001")
    await engine.call_next("W0001")  # A001: W0001 has biz level 2
    await engine.start_service("W0001")
    moved = await engine.transfer(
        (await engine.take_ticket("biz")).ticket.id, to_workstation="W0004",
        position=TransferPosition.BACK,
    )  # fmt: skip
    await engine.call_next("W0004")
    await engine.start_service("W0004")
    await engine.transfer(moved.id, to_service="medical", by="W0004")
    step(200)
    await engine.complete("W0001")
    held = [t for t in await engine.run(lambda tx: tx.tickets_of_day("test", DAY))
            if t.state == TicketState.HELD][0]  # fmt: skip
    await engine.resume("W0001", held.id)
    await engine.complete("W0001")
    await engine.pause("W0004", "meeting")
    await engine.cancel((await engine.take_ticket("medical")).ticket.id)
    for _ in range(3):
        await engine.take_ticket("consult")
    await engine.dispatch()
    await engine.reject("W0102")
    await engine.accept("W0101")
    await engine.dispatch()
    step(20)
    await engine.tick()  # W0102's second offer times out
    await engine.abandon((await engine.take_ticket("consult")).ticket.id)
    step(600)
    await engine.complete("W0101")
    step(40)
    await engine.tick()  # hotline wrap-up ends
    await engine.resume_work("W0004")


async def assert_rebuild_matches_tables(engine: Engine, store: Store, days: list[str]) -> None:
    state = rebuild(await log(store))
    tickets = [
        t for d in days for t in await store.run(lambda tx, d=d: tx.tickets_of_day("test", d))
    ]
    assert state.tickets == {t.id: t for t in tickets}
    workstations = {w.virtual_number: w for w in await engine.workstations()}
    assert set(workstations) - set(state.workstations) == OFFLINE_ALL_DAY
    assert state.workstations == {
        vn: w for vn, w in workstations.items() if vn not in OFFLINE_ALL_DAY
    }


async def test_rebuild_of_a_scripted_morning_equals_the_tables(
    engine: Engine, store: Store, clock: FakeClock
) -> None:
    await scripted_morning(engine, clock)
    tickets = await store.run(lambda tx: tx.tickets_of_day("test", DAY))
    assert len(tickets) == 12
    assert {t.state for t in tickets} == {
        TicketState.WAITING, TicketState.DONE, TicketState.NO_SHOW,
        TicketState.TRANSFERRED, TicketState.CANCELLED, TicketState.ABANDONED,
    }  # fmt: skip
    ws = {w.virtual_number: w.state for w in await engine.workstations()}
    assert ws == {
        "W0001": WorkstationState.AVAILABLE, "W0002": WorkstationState.OFFLINE,
        "W0003": WorkstationState.OFFLINE, "W0004": WorkstationState.AVAILABLE,
        "W0101": WorkstationState.AVAILABLE, "W0102": WorkstationState.PAUSED,
        "W0103": WorkstationState.OFFLINE,
    }  # fmt: skip
    await assert_rebuild_matches_tables(engine, store, [DAY])


async def test_rebuild_still_matches_after_the_day_ends(
    engine: Engine, store: Store, clock: FakeClock
) -> None:
    await scripted_morning(engine, clock)
    clock.set(1_780_070_400.0)  # 00:00 on 2026-05-30 in Shanghai
    expired = await engine.tick()
    assert [e.type for e in expired] == ["ticket.expired"] * 4  # B001, A002, H001, H003
    await engine.take_ticket("biz")
    await assert_rebuild_matches_tables(engine, store, [DAY, "2026-05-30"])


def test_rebuild_of_nothing_is_empty() -> None:
    state = rebuild([])
    assert (state.tickets, state.workstations) == ({}, {})
