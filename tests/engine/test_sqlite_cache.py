"""The SQLite store's read cache against fresh reads of the tables (sqlite_cache.py).

Random jobs insert tickets, read and change them (service, class, state, queue time,
target, booking), change tickets they did not read, write tickets by hand, fail after
writing or after only reading, and run in batches together; another connection commits
now and then. After every operation, and between batches, every front, head, ticket and
the transaction's own diff base must be what the tables say. A small read-ahead makes
fronts fill up, shrink and push tickets out, which the stateful machine's short queues
rarely do.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queue_engine.model import Channel, Ticket, TicketState
from queue_engine.store import sqlite_tx
from queue_engine.store.sqlite import SQLiteStore
from queue_engine.store.sqlite_tx import SQLiteTx
from tests.engine.cache_check import same_as_tables as check

HALL, SERVICES, CLASSES = "h", ("a", "b"), ("n", "g")
STATES = ("waiting", "waiting", "waiting", "called", "done")
TIMES = (1.0, 2.0, 3.0, 4.0, 5.0)


class Refused(Exception):
    """A job that fails on purpose."""


def new_ticket(rng: random.Random) -> Ticket:
    return Ticket(
        id=0, hall=HALL, service=rng.choice(SERVICES), number=f"A{rng.randrange(10**6)}",
        day="2026-01-01", channel=Channel.HALL, priority=rng.choice(CLASSES),
        state=TicketState(rng.choice(STATES)), token=f"t{rng.randrange(10**12)}",
        arrived_at=1.0, queued_at=rng.choice(TIMES), updated_at=1.0, parent_id=1,
        target_workstation=rng.choice([None, None, None, "W1"]),
        appointment_at=rng.choice([None, None, None, 2.5]),
    )  # fmt: skip


def changed(rng: random.Random, t: Ticket) -> Ticket:
    pick: dict[str, Any] = {
        "service": lambda: rng.choice(SERVICES),
        "priority": lambda: rng.choice(CLASSES),
        "state": lambda: TicketState(rng.choice(STATES)),
        "queued_at": lambda: rng.choice(TIMES),
        "target_workstation": lambda: rng.choice([None, "W1"]),
        "appointment_at": lambda: rng.choice([None, 2.5]),
        "note": lambda: str(rng.randrange(100)),
    }
    fields = rng.sample(sorted(pick), rng.randint(1, 3))
    return replace(t, **{f: pick[f]() for f in fields})


def same_as_tables(tx: SQLiteTx, where: str, deep: bool = False) -> None:
    """Asking for more than the read-ahead makes a front hold its whole queue, so only
    ``deep`` checks do, now and then: the others leave fronts full, to fill, shrink and
    push tickets out."""
    longest = 11 if deep else sqlite_tx.FRONT_READ_AHEAD
    check(tx, HALL, SERVICES, CLASSES, ("W1", None), 3.0, longest, where)


def job(rng: random.Random, ids: list[int], last: dict[int, Ticket], fail: bool) -> Any:
    ops = [rng.randrange(6) for _ in range(rng.randint(1, 4))]

    def fn(tx: SQLiteTx) -> None:
        for op in ops:
            if op == 0:
                t = tx.insert_ticket(new_ticket(rng))
                ids.append(t.id)
                last[t.id] = t
            elif op in (1, 2) and ids:  # read one, then change it
                how = rng.randrange(3)
                if how == 0:
                    found = [tx.get_ticket(rng.choice(ids))]
                elif how == 1:
                    svc = rng.choice(SERVICES)
                    longest = rng.choice([sqlite_tx.FRONT_READ_AHEAD] * 4 + [10])
                    found = tx.waiting_front(HALL, svc, list(CLASSES), rng.randint(1, longest))
                else:
                    found = list(tx.waiting(HALL))
                if found and found[0] is not None:
                    t = changed(rng, rng.choice(found))
                    tx.update_ticket(t)
                    last[t.id] = t
            elif op == 3 and ids:  # change one this transaction did not read
                t = changed(rng, last[rng.choice(ids)])
                tx.update_ticket(t)
                last[t.id] = t
            elif op == 4:
                tx.waiting_heads(HALL, list(SERVICES), rng.choice(["W1", None]), 3.0, CLASSES)
            elif op == 5 and ids:  # by hand
                tx.execute(
                    "UPDATE tickets SET queued_at=? WHERE id=?",
                    (rng.choice(TIMES), rng.choice(ids)),
                )
            same_as_tables(tx, f"op {op}")
        if fail:
            raise Refused

    return fn


async def random_batches(path: Path, rng: random.Random, batches: int) -> None:
    ids: list[int] = []
    last: dict[int, Ticket] = {}
    other = sqlite3.connect(path, isolation_level=None)
    try:
        async with SQLiteStore(path) as store:

            def fill(tx: SQLiteTx) -> None:
                for _ in range(25):
                    t = tx.insert_ticket(new_ticket(rng))
                    ids.append(t.id)
                    last[t.id] = t

            await store.run(fill)
            for _ in range(batches):
                jobs = [
                    job(rng, ids, last, rng.random() < 0.15)
                    for _ in range(rng.choice([1, 1, 2, 3]))
                ]
                for out in await asyncio.gather(*map(store.run, jobs), return_exceptions=True):
                    if isinstance(out, AssertionError):
                        raise out
                    assert out is None or isinstance(out, Refused), out
                if rng.random() < 0.05:  # another process
                    other.execute(
                        "UPDATE tickets SET state='waiting', queued_at=0.5 WHERE id=?",
                        (rng.choice(ids),),
                    )
                deep = rng.random() < 0.1
                await store.run(lambda tx, deep=deep: same_as_tables(tx, "between", deep))
    finally:
        other.close()


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), ahead=st.sampled_from([1, 2, 3, 8]))
def test_random_writes_never_leave_the_cache_behind_the_tables(
    tmp_path_factory: Any, seed: int, ahead: int
) -> None:
    path = tmp_path_factory.mktemp("cache") / "q.db"
    was = sqlite_tx.FRONT_READ_AHEAD
    sqlite_tx.FRONT_READ_AHEAD = ahead
    try:
        asyncio.run(random_batches(path, random.Random(seed), 40))
    finally:
        sqlite_tx.FRONT_READ_AHEAD = was


async def test_a_reopened_store_trusts_nothing_it_read_before(tmp_path: Path) -> None:
    """data_version counts per connection: a new connection must start a new cache."""
    path = tmp_path / "q.db"
    store = SQLiteStore(path)
    await store.open()

    def heads(tx: SQLiteTx) -> list[int]:
        return [t.id for t in tx.waiting_heads(HALL, ["a"], None, 3.0, ["n"])]

    assert await store.run(heads) == []
    await store.close()
    with sqlite3.connect(path, isolation_level=None) as other:  # written while it was closed
        row = SQLiteTx(other)
        other.execute("BEGIN")
        t = row.insert_ticket(replace(new_ticket(random.Random(1)), service="a", priority="n",
                                      state=TicketState.WAITING, target_workstation=None,
                                      appointment_at=None))  # fmt: skip
        other.execute("COMMIT")
    await store.open()
    try:
        assert await store.run(heads) == [t.id]
    finally:
        await store.close()
