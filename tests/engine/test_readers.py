"""Readers of the event log (DESIGN §6): restart catch-up, failures, bus overflow, group commit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from queue_engine import Bus, Engine, FakeClock, ReaderRunner, Store
from queue_engine.errors import UnknownServiceError
from queue_engine.model import Channel, Event, Ticket, TicketState
from queue_engine.store.base import Tx
from tests.conftest import make_hall


class Recording:
    """An async Reader that remembers what it was handed and can be told to fail."""

    def __init__(self, name: str = "recording", durable: bool = True) -> None:
        self.name = name
        self.durable = durable
        self.seen: list[Event] = []
        self.fail = 0

    async def handle(self, events: Sequence[Event]) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("reader down")
        self.seen.extend(events)


class SeenTable:
    """A TxReader writing one row per event; the primary key makes a second delivery fail."""

    name = "seen-table"

    def handle_in_tx(self, tx: Tx, events: Sequence[Event]) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS seen (event_id INTEGER PRIMARY KEY)")
        for e in events:
            tx.execute("INSERT INTO seen VALUES (?)", (e.id,))


class SmallBus(Bus):
    """A bus whose subscriptions hold two events at most."""

    def subscribe(self, maxlen: int = 2):  # type: ignore[no-untyped-def]
        return super().subscribe(maxlen)


async def log(store: Store) -> list[Event]:
    return await store.run(lambda tx: tx.events_after(0, 1000))


async def cursor(store: Store, name: str) -> int:
    return await store.run(lambda tx: tx.get_cursor(name))


async def seen_rows(store: Store) -> list[int]:
    rows = await store.run(lambda tx: tx.execute("SELECT event_id FROM seen ORDER BY event_id"))
    return [r[0] for r in rows]


def ids(events: Sequence[Event]) -> list[int]:
    return [e.id for e in events]


async def morning(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    await engine.take_ticket("pension")
    await engine.call_next("W0001")
    await engine.start_service("W0001")
    await engine.complete("W0001")


# --- restart -------------------------------------------------------------------------------


async def test_restart_catches_up_every_event_exactly_once_in_order(
    store_factory: Callable[[], Store], clock: FakeClock
) -> None:
    async with store_factory() as first:
        engine = Engine(first, make_hall(), clock)
        await engine.load_hall()
        await morning(engine)
        written = await log(first)
    assert len(written) == 6

    recording, table = Recording(), SeenTable()
    async with store_factory() as second:
        bus = Bus()
        second.add_commit_listener(bus.publish)
        runners = [ReaderRunner(second, bus, r, batch=4) for r in (recording, table)]
        assert [await r.catch_up() for r in runners] == [6, 6]
        assert recording.seen == written
        assert await seen_rows(second) == ids(written)
        assert [await cursor(second, n) for n in ("recording", "seen-table")] == [6, 6]

    again = Recording()
    async with store_factory() as third:
        bus = Bus()
        third.add_commit_listener(bus.publish)
        published: list[Event] = []
        third.add_commit_listener(published.extend)
        runners = [ReaderRunner(third, bus, r) for r in (again, SeenTable())]
        assert [await r.catch_up() for r in runners] == [0, 0]
        assert again.seen == []

        engine = Engine(third, make_hall(), clock)
        await engine.load_hall()
        issued = await engine.take_ticket("medical")
        await engine.call_next("W0001")
        assert [await r.step() for r in runners] == [2, 2]
        assert [e.type for e in again.seen] == ["ticket.issued", "ticket.called"]
        assert all(a is b for a, b in zip(again.seen, published, strict=True))  # the bus fast path
        assert again.seen[0].ticket == issued.ticket
        assert await seen_rows(third) == [*ids(written), 7, 8]
        assert await cursor(third, "recording") == 8


async def test_steps_without_news_deliver_nothing(engine: Engine, store: Store, bus: Bus) -> None:
    recording = Recording()
    runner = ReaderRunner(store, bus, recording)
    await engine.take_ticket("biz")
    assert await runner.catch_up() == 1
    assert await runner.step() == 0
    assert ids(recording.seen) == [1]


# --- a failing reader ----------------------------------------------------------------------


async def test_failing_reader_keeps_its_cursor_and_catch_up_redelivers(
    engine: Engine, store: Store, bus: Bus
) -> None:
    recording = Recording()
    runner = ReaderRunner(store, bus, recording)
    await engine.take_ticket("biz")
    await engine.take_ticket("biz")
    recording.fail = 1
    with pytest.raises(RuntimeError):
        await runner.catch_up()
    assert (runner.position, await cursor(store, "recording")) == (0, 0)
    assert await runner.catch_up() == 2
    assert ids(recording.seen) == [1, 2]
    assert await cursor(store, "recording") == 2


async def test_failing_step_keeps_the_cursor(engine: Engine, store: Store, bus: Bus) -> None:
    recording = Recording()
    runner = ReaderRunner(store, bus, recording)
    await runner.catch_up()
    await engine.take_ticket("biz")
    recording.fail = 1
    with pytest.raises(RuntimeError):
        await runner.step()
    assert (runner.position, await cursor(store, "recording")) == (0, 0)
    assert await runner.catch_up() == 1


async def test_failing_step_gets_the_events_again_on_the_next_step(
    engine: Engine, store: Store, bus: Bus
) -> None:
    recording = Recording()
    runner = ReaderRunner(store, bus, recording)
    await runner.catch_up()
    await engine.take_ticket("biz")
    recording.fail = 1
    with pytest.raises(RuntimeError):
        await runner.step()
    assert await runner.step() == 1
    assert ids(recording.seen) == [1]


async def test_failing_step_never_loses_events_when_new_ones_arrive(
    engine: Engine, store: Store, bus: Bus
) -> None:
    recording = Recording()
    runner = ReaderRunner(store, bus, recording)
    await runner.catch_up()
    await engine.take_ticket("biz")
    recording.fail = 1
    with pytest.raises(RuntimeError):
        await runner.step()
    await engine.take_ticket("biz")
    await runner.step()
    assert ids(recording.seen) == [1, 2]


# --- bus overflow, non-durable readers --------------------------------------------------------


async def test_subscription_overflow_drops_the_backlog_and_says_so(
    engine: Engine, bus: Bus
) -> None:
    sub = bus.subscribe(maxlen=2)
    await engine.take_ticket("biz")
    await engine.take_ticket("biz")
    events, overflowed = sub.drain()
    assert (ids(events), overflowed) == ([1, 2], False)
    for _ in range(3):
        await engine.take_ticket("biz")
    assert sub.drain() == ([], True)
    assert sub.drain() == ([], False)


async def test_runner_reads_the_table_after_an_overflow(engine: Engine, store: Store) -> None:
    bus = SmallBus()
    store.add_commit_listener(bus.publish)
    recording = Recording()
    runner = ReaderRunner(store, bus, recording)
    await runner.catch_up()
    for _ in range(5):
        await engine.take_ticket("biz")
    assert await runner.step() == 5
    assert recording.seen == await log(store)
    assert await cursor(store, "recording") == 5
    assert await runner.step() == 0


async def test_non_durable_reader_starts_at_the_end_of_the_log(
    engine: Engine, store: Store, bus: Bus
) -> None:
    await engine.take_ticket("biz")
    await engine.take_ticket("biz")
    live = Recording("live", durable=False)
    runner = ReaderRunner(store, bus, live)
    assert runner.durable is False
    assert await runner.catch_up() == 0
    await engine.take_ticket("pension")
    assert await runner.step() == 1
    assert ids(live.seen) == [3]
    assert await cursor(store, "live") == 0


# --- group commit ---------------------------------------------------------------------------------


async def test_fifty_concurrent_tickets_get_distinct_numbers_in_one_commit(
    engine: Engine, store: Store
) -> None:
    commits: list[int] = []
    store.add_commit_listener(lambda events: commits.append(len(events)))
    issued = await asyncio.gather(*(engine.take_ticket("biz") for _ in range(50)))
    assert [i.ticket.number for i in issued] == [f"A{n:03d}" for n in range(1, 51)]
    assert len({i.ticket.id for i in issued}) == 50
    assert commits == [50]
    assert [e.ticket_id for e in await log(store)] == [i.ticket.id for i in issued]


async def test_failing_job_rolls_back_only_its_own_writes(
    engine: Engine, store: Store, clock: FakeClock
) -> None:
    day = engine.day_of(clock.now())
    now = clock.now()
    published: list[Event] = []
    store.add_commit_listener(published.extend)

    def bad(tx: Tx) -> None:
        n = tx.next_number("test", "A", day)
        t = tx.insert_ticket(
            Ticket(0, "test", "biz", f"A{n:03d}", day, Channel.HALL, "normal", TicketState.WAITING,
                   "bad-token", now, now, now, note="bad")
        )  # fmt: skip
        tx.append_event(Event(0, "test", "bad.event", now, ticket_id=t.id))
        raise UnknownServiceError(service="nope")

    jobs = [engine.take_ticket("biz"), engine.take_ticket("biz"), store.run(bad),
            engine.take_ticket("biz"), engine.take_ticket("biz")]  # fmt: skip
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert isinstance(results[2], UnknownServiceError)
    good = [r.ticket for i, r in enumerate(results) if i != 2]
    assert [t.number for t in good] == ["A001", "A002", "A003", "A004"]
    tickets = await store.run(lambda tx: tx.tickets_of_day("test", day))
    assert tickets == good
    assert await engine.ticket_by_token("bad-token") is None
    events = await log(store)
    assert [(e.type, e.ticket_id) for e in events] == [("ticket.issued", t.id) for t in good]
    assert published == events
