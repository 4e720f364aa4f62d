"""The SQLite backend's own promises: transactions run inline on the loop, so it must never
hold the loop while another process has the database locked, never commit work its caller
gave up on, never leave a caller waiting, and run long reports off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from queue_engine.errors import StoreError
from queue_engine.store import sqlite as backend
from queue_engine.store.base import Tx
from queue_engine.store.sqlite import SQLiteStore
from queue_engine.store.sqlite_tx import SQLiteTx


def insert(value: int):  # type: ignore[no-untyped-def]
    def fn(tx: Tx) -> int:
        tx.execute(
            "INSERT INTO reader_cursors (name, position) VALUES (?, ?)", (f"r{value}", value)
        )
        return value

    return fn


async def names(store: SQLiteStore) -> list[str]:
    rows = await store.run(lambda tx: tx.execute("SELECT name FROM reader_cursors ORDER BY name"))
    return [r[0] for r in rows]


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = SQLiteStore(tmp_path / "hall.db")
    async with s:
        yield s


async def ticks_during(coro, every_s: float = 0.01) -> tuple[object, int]:  # type: ignore[no-untyped-def]
    """Run ``coro`` while counting how often a 10 ms sleeper gets the loop."""
    count = 0
    stop = asyncio.Event()

    async def sleeper() -> None:
        nonlocal count
        while not stop.is_set():
            await asyncio.sleep(every_s)
            count += 1

    task = asyncio.create_task(sleeper())
    try:
        return await coro, count
    finally:
        stop.set()
        await task


async def test_a_lock_held_by_another_process_is_waited_out_off_the_loop(
    store: SQLiteStore, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "hall.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer: an operator's sqlite3 shell, say
    asyncio.get_running_loop().call_later(0.4, other.execute, "COMMIT")
    t0 = time.monotonic()
    result, ticks = await ticks_during(store.run(insert(1)))
    assert result == 1 and time.monotonic() - t0 >= 0.35
    assert ticks >= 20, f"the loop stood still while waiting ({ticks} ticks in 0.4 s)"
    assert await names(store) == ["r1"]
    other.close()


async def test_a_lock_held_too_long_fails_every_waiting_caller_and_the_store_recovers(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "LOCK_WAIT_S", 0.3)
    monkeypatch.setattr(store, "_batch_limit", 2)  # the callers span several batches
    other = sqlite3.connect(tmp_path / "hall.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    results = await asyncio.gather(
        *(store.run(insert(i)) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, StoreError) for r in results), results
    assert "locked" in str(results[0])
    other.execute("ROLLBACK")
    other.close()
    assert await store.run(insert(9)) == 9, "a later command runs"
    assert await names(store) == ["r9"]


async def test_a_caller_that_gave_up_before_its_turn_commits_nothing(store: SQLiteStore) -> None:
    kept = asyncio.ensure_future(store.run(insert(1)))
    dropped = asyncio.ensure_future(store.run(insert(2)))
    await asyncio.sleep(0)  # both queued for the same batch, which has not run yet
    dropped.cancel()
    assert await kept == 1
    with pytest.raises(asyncio.CancelledError):
        await dropped
    assert await names(store) == ["r1"]


async def test_closing_fails_no_caller_and_finishes_pending_work(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hall.db")
    await store.open()
    pending = [asyncio.ensure_future(store.run(insert(i))) for i in range(3)]
    await asyncio.sleep(0)
    await store.close()
    assert [await p for p in pending] == [0, 1, 2]
    with pytest.raises(StoreError):
        await store.run(insert(4))


async def test_a_long_report_runs_off_the_loop_on_a_snapshot(store: SQLiteStore) -> None:
    await asyncio.gather(*(store.run(insert(i)) for i in range(3)))

    def report(tx: Tx) -> list[list[str]]:
        def names_now() -> list[str]:
            return [r[0] for r in tx.execute("SELECT name FROM reader_cursors ORDER BY name")]

        first = names_now()
        time.sleep(0.3)  # a long scan of the log, holding no lock the writer needs
        return [first, names_now()]

    async def write_meanwhile() -> float:
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        await store.run(insert(7))
        return time.monotonic() - t0

    (seen, ticks), took = await asyncio.gather(ticks_during(store.read(report)), write_meanwhile())
    assert seen == [["r0", "r1", "r2"]] * 2, "the report reads the snapshot it began with"
    assert ticks >= 15 and took < 0.1, "neither the loop nor the writer waited for the report"
    with pytest.raises(StoreError, match="readonly"):
        await store.read(lambda tx: tx.execute("DELETE FROM reader_cursors"))  # read-only


async def test_in_memory_reports_run_as_transactions() -> None:
    async with SQLiteStore(":memory:") as store:
        await store.run(insert(1))
        assert await store.read(lambda tx: tx.execute("SELECT COUNT(*) FROM reader_cursors")) == [
            (1,)
        ]


# --- query plans: the queue reads stay O(1) in the queue's length -------------------------


async def vm_steps(store: SQLiteStore, fn) -> int:  # type: ignore[no-untyped-def]
    """How many SQLite virtual-machine steps ``fn(tx)`` takes: what a plan costs, untimed."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    store._db.set_progress_handler(count, 1)
    try:
        await store.run(fn)
    finally:
        store._db.set_progress_handler(None, 1)
    return steps


@pytest.mark.parametrize("skills", [["medical"], ["pension", "medical"]])
async def test_the_heads_of_the_queues_cost_the_same_however_long_they_are(
    store: SQLiteStore, skills: list[str]
) -> None:
    """A window with one skill once paid a walk of its whole queue on every call-next: the
    planner took "service IN (?)" as "service=?" and left the partial indexes for targeted
    and booked tickets unused."""
    from queue_engine import Engine, FakeClock
    from tests.conftest import make_hall

    engine = Engine(store, make_hall(), FakeClock(1_780_020_000.0))
    await engine.load_hall()
    classes = [p.code for p in engine.hall.priority_classes]

    # The seeks as they run when the queue-front cache misses (it would answer from memory).
    def heads(tx: Tx) -> object:  # what call-next reads
        fresh = SQLiteTx(tx.conn)  # type: ignore[attr-defined]
        return fresh.waiting_heads("test", skills, "W0003", engine.clock.now(), classes)

    def front(tx: Tx) -> object:  # what the near-turn SMS reads after each call
        return SQLiteTx(tx.conn).waiting_front("test", skills[0], classes, 4)  # type: ignore[attr-defined]

    async def steps_with(waiting: int) -> tuple[int, int]:
        await asyncio.gather(*(engine.take_ticket(s) for s in skills for _ in range(waiting)))
        return await vm_steps(store, heads), await vm_steps(store, front)

    short = await steps_with(20)
    long = await steps_with(400)  # now 420 per service
    for read, few, many in zip(("waiting_heads", "waiting_front"), short, long, strict=True):
        assert many < few * 1.2, f"{read}: {few} steps with 20 waiting, {many} with 420"


# --- the queue-front cache ------------------------------------------------------------------


async def pad(store: SQLiteStore, hall_code: str = "test"):  # type: ignore[no-untyped-def]
    from queue_engine import Engine, FakeClock
    from tests.conftest import make_hall

    engine = Engine(store, make_hall(code=hall_code), FakeClock(1_780_020_000.0))
    await engine.load_hall()
    return engine


async def test_a_repeated_read_of_the_queue_fronts_runs_no_sql(store: SQLiteStore) -> None:
    engine = await pad(store)
    classes = [p.code for p in engine.hall.priority_classes]
    for svc in ("pension", "medical"):
        for _ in range(12):
            await engine.take_ticket(svc)

    def heads(tx: Tx) -> list:
        return tx.waiting_heads(
            "test", ["pension", "medical"], "W0002", engine.clock.now(), classes
        )

    def fresh(tx: Tx) -> list:
        plain = SQLiteTx(tx.conn)  # type: ignore[attr-defined]
        return plain.waiting_heads(
            "test", ["pension", "medical"], "W0002", engine.clock.now(), classes
        )

    empty = await vm_steps(store, lambda tx: None)  # begin, data_version, commit
    first = await vm_steps(store, heads)
    assert first > empty and await vm_steps(store, heads) == empty
    await engine.take_ticket("pension")  # joins at the back: no front changes
    assert await vm_steps(store, heads) == empty
    await engine.sign_in("W0002", "2")
    steps = []
    for _ in range(20):  # each call takes the head of a queue; eight were read ahead
        called = await engine.call_next("W0002")
        assert called is not None
        steps.append(await vm_steps(store, heads))
        got, want = await store.run(heads), await store.run(fresh)
        assert sorted(t.id for t in got) == sorted(t.id for t in want)
        assert called.id not in {t.id for t in got}
        await engine.mark_no_show("W0002")
    assert steps.count(empty) >= 16, steps  # a seek only when the read-ahead ran out


async def test_another_process_writing_the_file_empties_the_cache(tmp_path: Path) -> None:
    """Two processes may share the database file (DESIGN §2): a commit by the other
    connection moves PRAGMA data_version, and nothing cached is trusted after it."""
    path = tmp_path / "shared.db"
    async with SQLiteStore(path) as ours, SQLiteStore(path) as theirs:
        engine, other = await pad(ours), await pad(theirs)
        classes = [p.code for p in engine.hall.priority_classes]
        await engine.sign_in("W0002", "2")

        def heads(tx: Tx) -> list:
            return tx.waiting_heads("test", ["pension"], "W0002", engine.clock.now(), classes)

        assert await ours.run(heads) == []  # cached: nobody waits for pension
        issued = (await other.take_ticket("pension")).ticket  # the other process issues one
        assert [t.id for t in await ours.run(heads)] == [issued.id]
        called = await engine.call_next("W0002")
        assert called is not None and called.id == issued.id
        await other.mark_no_show("W0002")  # the other process changes our desk and ticket
        assert (await engine.desk("W0002")) == (await other.desk("W0002"))
        assert (await engine.ticket(issued.id)).state.value == "no_show"


# --- a time range of the log --------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "want"),
    [
        (0.0, 1e12, [2, 3, 5, 9, 10, 14, 20]),  # everything of hall "a"
        (300.0, 500.0, [5, 9]),  # at 300 and 450: start counts, end does not
        (300.0, 450.0, [5]),
        (301.0, 449.0, []),  # between two events
        (0.0, 100.0, []),  # before the first
        (100.0, 101.0, [2]),  # the very first event
        (900.0, 2000.0, [20]),  # the very last
        (901.0, 2000.0, []),  # after the last
    ],
)
async def test_events_between_bisects_the_log(
    store: SQLiteStore, start: float, end: float, want: list[int]
) -> None:
    """Ids with gaps (a rolled-back batch leaves some) and another hall's events between."""
    rows = [(2, "a", 100.0), (3, "a", 200.0), (4, "b", 250.0), (5, "a", 300.0), (9, "a", 450.0),
            (10, "a", 600.0), (11, "b", 650.0), (14, "a", 700.0), (20, "a", 900.0)]  # fmt: skip

    def fill(tx: Tx) -> None:
        for ident, hall, at in rows:
            tx.execute(
                "INSERT INTO events (id, hall, type, at, payload) VALUES (?, ?, 'x', ?, '{}')",
                (ident, hall, at),
            )

    await store.run(fill)
    got = await store.run(lambda tx: tx.events_between(start, end, "a"))
    assert [e.id for e in got] == want


async def test_events_between_on_an_empty_log(store: SQLiteStore) -> None:
    assert await store.run(lambda tx: tx.events_between(0.0, 1e12, "a")) == []
