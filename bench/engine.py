"""Engine throughput against plain sqlite3 replaying the very same SQL.

A hall with many signed-in windows and a large waiting backlog on a file
database runs N full lifecycles (take_ticket, call_next, start_service,
complete); the statements the engine's connection executed meanwhile are then
replayed, in the same transactions, with plain sqlite3 in one thread on a copy
of the database as it was when the measured phase began. The last line of
output is one line of JSON.

    python bench/engine.py [--concurrency 8] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queue_engine import (  # noqa: E402
    Engine,
    FakeClock,
    HallConfig,
    Policy,
    PriorityClass,
    Service,
    Staff,
    Window,
)
from queue_engine.model import Department  # noqa: E402
from queue_engine.store.sqlite import SQLiteStore  # noqa: E402

START = 1_780_020_000.0  # Friday 2026-05-29, 10:00 in Shanghai: the day never rolls over here
TX_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def build_hall(workstations: int, services: int, seed: int) -> HallConfig:
    """A hall of ``services`` window services (prefixes A, B, …) and as many staff as windows."""
    rng = random.Random(seed)
    svcs = tuple(
        Service(f"s{i:02d}", f"事项{i}", f"Service {i}", "dept", chr(ord("A") + i), 15, 10)
        for i in range(services)
    )
    codes = [s.code for s in svcs]
    staff = tuple(
        Staff(
            f"W{n:04d}",
            f"员工{n}",
            {c: rng.randint(1, 3) for c in rng.sample(codes, rng.randint(2, min(4, len(codes))))},
        )
        for n in range(1, workstations + 1)
    )
    return HallConfig(
        code="bench", name_zh="压测大厅", name_en="Bench hall", timezone="Asia/Shanghai",
        departments=(Department("dept", "部门", "Department"),),
        services=svcs,
        priority_classes=(PriorityClass("normal", "普通", "Normal", 1.0),),
        windows=tuple(Window(str(n)) for n in range(1, workstations + 1)),
        staff=staff,
        policy=Policy(wrap_up_s=0.0),
    )  # fmt: skip


async def setup(engine: Engine, clock: FakeClock, waiting: int, seed: int) -> None:
    """Sign every staffer in at a window and issue the waiting backlog."""
    await engine.load_hall()
    for n, staffer in enumerate(engine.hall.staff, start=1):
        clock.advance(0.001)
        await engine.sign_in(staffer.virtual_number, str(n))
    rng = random.Random(seed + 1)
    codes = [s.code for s in engine.hall.services]
    for start in range(0, waiting, 100):
        clock.advance(0.001)
        batch = [rng.choice(codes) for _ in range(min(100, waiting - start))]
        await asyncio.gather(*(engine.take_ticket(c) for c in batch))


async def worker(
    engine: Engine, clock: FakeClock, vns: list[str], count: int, seed: int, lat: list[float]
) -> int:
    """Run ``count`` lifecycles over ``vns`` in turn; returns how many found nobody waiting."""
    rng = random.Random(seed)
    skills = {s.virtual_number: sorted(s.skills) for s in engine.hall.staff}
    idle = 0
    for i in range(count):
        vn = vns[i % len(vns)]
        clock.advance(0.001)
        await engine.take_ticket(rng.choice(skills[vn]))
        clock.advance(0.001)
        t0 = time.perf_counter()
        ticket = await engine.call_next(vn)
        lat.append(time.perf_counter() - t0)
        if ticket is None:
            idle += 1
            continue
        clock.advance(0.001)
        await engine.start_service(vn)
        clock.advance(0.001)
        await engine.complete(vn)
    return idle


async def measure(
    engine: Engine, clock: FakeClock, n: int, k: int, lat: list[float]
) -> tuple[float, float, int]:
    """N lifecycles by K workers over disjoint workstations: (seconds, CPU seconds, idle calls)."""
    vns = [s.virtual_number for s in engine.hall.staff]
    shares = [n // k + (1 if j < n % k else 0) for j in range(k)]
    t0, c0 = time.perf_counter(), time.process_time()
    idle = await asyncio.gather(
        *(worker(engine, clock, vns[j::k], shares[j], 100 + j, lat) for j in range(k))
    )
    return time.perf_counter() - t0, time.process_time() - c0, sum(idle)


LITERAL = re.compile(r"'(?:[^']|'')*'|(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])")


def parameterise(sql: str) -> tuple[str, list[object]]:
    """Expanded SQL back to text with ? and its values, so sqlite3's statement cache applies."""
    params: list[object] = []
    named_index = "INDEXED BY" in sql

    def take(m: re.Match[str]) -> str:
        lit = m.group()
        if named_index and sql.endswith("state=", 0, m.start()):
            return lit  # as written in the query: its partial index (INDEXED BY) needs it
        if lit.startswith("'"):
            params.append(lit[1:-1].replace("''", "'"))
        else:
            params.append(float(lit) if any(c in lit for c in ".eE") else int(lit))
        return "?"

    return LITERAL.sub(take, sql), params


def replay(path: Path, statements: list[tuple[str, list[object]]]) -> tuple[float, float]:
    """Execute the statements in order with plain sqlite3 here: (seconds, CPU seconds)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    t0, c0 = time.perf_counter(), time.process_time()
    for sql, params in statements:
        conn.execute(sql, params).fetchall()
    spent = time.perf_counter() - t0, time.process_time() - c0
    conn.close()
    return spent


def snapshot(db: Path, copy: Path) -> None:
    """Checkpoint ``db`` from a side connection and copy it, consistently, to ``copy``."""
    src = sqlite3.connect(db, isolation_level=None)
    src.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    dst = sqlite3.connect(copy)
    src.backup(dst)
    dst.close()
    src.close()


async def trace(store: SQLiteStore, callback: Callable[[str], None] | None) -> None:
    """store.set_trace, run on the connection's own thread (sqlite3 refuses any other)."""
    if inspect.iscoroutinefunction(store.set_trace):  # once the store hops by itself
        await store.set_trace(callback)
    else:
        await store._hop(store.set_trace, callback)


def pct(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def bench(args: argparse.Namespace) -> dict[str, float]:
    hall = build_hall(args.workstations, args.services, args.seed)
    clock = FakeClock(START)
    n = args.lifecycles
    tmp = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    store = SQLiteStore(tmp / "queue.db")
    try:
        await store.open()
        engine = Engine(store, hall, clock)
        t0 = time.perf_counter()
        await setup(engine, clock, args.waiting, args.seed)
        setup_s = time.perf_counter() - t0

        for copy in ("replay.db", "replay2.db"):  # the engine's connection is idle here
            snapshot(tmp / "queue.db", tmp / copy)
        captured: list[str] = []
        await trace(store, captured.append)
        lat: list[float] = []
        try:
            elapsed, cpu, idle = await measure(engine, clock, n, args.concurrency, lat)
        finally:
            await trace(store, None)
            await store.close()
        if engine.day_of(clock.now()) != engine.day_of(START):
            raise RuntimeError("the hall's local day rolled over during the bench")
        raw_s, raw_cpu = replay(tmp / "replay.db", [(sql, []) for sql in captured])
        cached_s, cached_cpu = replay(tmp / "replay2.db", [parameterise(sql) for sql in captured])
    finally:
        await store.close()
        shutil.rmtree(tmp, ignore_errors=True)

    ms = sorted(x * 1000 for x in lat)
    commits = sum(1 for s in captured if s.startswith("COMMIT"))
    work = sum(1 for s in captured if not s.startswith(TX_CONTROL))
    result = {
        "lifecycles_per_s": round(n / elapsed, 1),
        "raw_lifecycles_per_s": round(n / raw_s, 1),
        "ratio": round(raw_s / elapsed, 3),
        "call_next_p50_ms": round(pct(ms, 0.50), 3),
        "call_next_p99_ms": round(pct(ms, 0.99), 3),
    }
    rows = [
        ("hall", f"{args.workstations} workstations, {args.services} services, "
                 f"{args.waiting} waiting, concurrency {args.concurrency}"),
        ("setup", f"{setup_s:.2f} s"),
        ("lifecycles", f"{n} in {elapsed:.2f} s ({idle} call_next found nobody)"),
        ("lifecycles/s (engine)", f"{result['lifecycles_per_s']:.1f} (CPU {cpu:.2f} s)"),
        ("lifecycles/s (raw sqlite3)",
         f"{result['raw_lifecycles_per_s']:.1f} ({raw_s:.2f} s, CPU {raw_cpu:.2f} s)"),
        ("  same, re-parameterised", f"{n / cached_s:.1f} ({cached_s:.2f} s, CPU {cached_cpu:.2f}"
                                     " s: no prepare per statement)"),
        ("ratio engine/raw", f"{result['ratio']:.3f} (by CPU time {raw_cpu / cpu:.3f}; against "
                             f"re-parameterised {cached_s / elapsed:.3f}, CPU "
                             f"{cached_cpu / cpu:.3f})"),
        ("call_next p50/p90/p99/max", " / ".join(
            f"{v:.2f}" for v in (pct(ms, .5), pct(ms, .9), pct(ms, .99), ms[-1])) + " ms"),
        ("statements per lifecycle", f"{work / n:.1f} (+{(len(captured) - work) / n:.1f} "
                                     "transaction control)"),
        ("commits per lifecycle", f"{commits / n:.2f}"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workstations", type=int, default=200)
    p.add_argument("--waiting", type=int, default=5000)
    p.add_argument("--lifecycles", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--services", type=int, default=20)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="a small smoke run")
    args = p.parse_args()
    if args.quick:
        args.workstations, args.waiting, args.lifecycles = 20, 300, 200
        args.services = min(args.services, 5)
    if not 1 <= args.concurrency <= args.workstations or args.services > 26:
        p.error("need 1 <= concurrency <= workstations and at most 26 services")
    result = asyncio.run(bench(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
