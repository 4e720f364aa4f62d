"""Booking the last places: many concurrent attempts on one slot must never overbook it.

A hall whose only slot (Monday 09:00–09:30) holds ``--capacity`` places, on a
real SQLite file in a temporary folder, through the real Engine and
Appointments; ``--attempts`` citizens with distinct phones book that slot at
once (asyncio.gather). The bookings are then counted in the table itself, with
plain sqlite3 after the store has closed. The last line of output is one line
of JSON; ``bookings_per_s`` is successful bookings per second of the whole run.

    python bench/booking.py [--attempts 2000] [--capacity 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queue_engine import (  # noqa: E402
    Engine,
    FakeClock,
    HallConfig,
    PriorityClass,
    Service,
    Session,
    Staff,
    Window,
)
from queue_engine.appointments import Appointments  # noqa: E402
from queue_engine.errors import QueueError  # noqa: E402
from queue_engine.model import BookingPolicy, Department  # noqa: E402
from queue_engine.store.sqlite import SQLiteStore  # noqa: E402

START = 1_780_020_000.0  # Friday 2026-05-29, 10:00 in Shanghai
DAY = date(2026, 6, 1)  # the next working day: Monday
TZ = ZoneInfo("Asia/Shanghai")


def build_hall(capacity: int) -> HallConfig:
    """One bookable service and one 30-minute session a day: exactly one slot on Monday."""
    one_slot = (Session(clock_time(9), clock_time(9, 30)),)
    return HallConfig(
        code="bench", name_zh="压测大厅", name_en="Bench hall", timezone="Asia/Shanghai",
        departments=(Department("dept", "部门", "Department"),),
        services=(Service("biz", "营业执照", "Business licence", "dept", "A"),),
        priority_classes=(PriorityClass("normal", "普通", "Normal", 1.0),
                          PriorityClass("appointment", "预约", "Appointment", 1.5, "Y")),
        windows=(Window("1"),),
        staff=(Staff("W0001", "员工", {"biz": 1}),),
        hours={d: one_slot for d in range(5)},
        booking=BookingPolicy(slot_min=30, capacity=capacity),
    )  # fmt: skip


async def attempt(appts: Appointments, slot: float, i: int) -> tuple[str, float, str | None]:
    """One citizen's booking: its outcome (ok or the error code), latency and code."""
    t0 = time.perf_counter()
    try:
        appt = await appts.book("biz", DAY, slot, phone=f"+86139{i:08d}", channel="web")
    except QueueError as exc:
        return exc.code, time.perf_counter() - t0, None
    return "ok", time.perf_counter() - t0, appt.code


def pct(sorted_s: list[float], q: float) -> float:
    return sorted_s[min(len(sorted_s) - 1, int(q * len(sorted_s)))] * 1000


async def bench(args: argparse.Namespace, db: Path) -> dict[str, float | int]:
    hall = build_hall(args.capacity)
    store = SQLiteStore(db)
    async with store:
        engine = Engine(store, hall, FakeClock(START))
        await engine.load_hall()
        appts = Appointments(engine, b"bench-id-key")
        [slot] = appts.slots("biz", DAY)
        assert DAY in appts.bookable_days(), "the slot's day must be bookable"
        t0 = time.perf_counter()
        results = await asyncio.gather(
            *(attempt(appts, slot.start, i) for i in range(args.attempts))
        )
        elapsed = time.perf_counter() - t0
        free = (await appts.availability("biz", DAY))[0]["free"]
    # Count in the table itself, through a connection of its own.
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT code), COUNT(DISTINCT phone) FROM appointments"
            " WHERE hall='bench' AND service='biz' AND slot_start=? AND status='booked'",
            (slot.start,),
        ).fetchone()
    outcomes = Counter(r[0] for r in results)
    latencies = sorted(r[1] for r in results)
    returned = [r[2] for r in results if r[2] is not None]
    booked, distinct_codes, distinct_phones = rows
    start_at = datetime.fromtimestamp(slot.start, TZ)
    table = [
        ("slot", f"{DAY} {start_at:%H:%M} ({slot.label}), capacity {slot.capacity}"),
        ("attempts", f"{args.attempts} at once (asyncio.gather), distinct phones"),
        ("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))),
        ("booked (rows in the table)", f"{booked}"),
        ("distinct codes / phones", f"{distinct_codes} / {distinct_phones}"),
        ("free places left", f"{free}"),
        ("wall time", f"{elapsed * 1000:.1f} ms"),
        ("bookings/s (successful)", f"{booked / elapsed:,.0f}"),
        ("attempts/s", f"{args.attempts / elapsed:,.0f}"),
        ("latency p50 / p99 / max", f"{pct(latencies, .5):.1f} / {pct(latencies, .99):.1f} / "
                                    f"{latencies[-1] * 1000:.1f} ms"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in table)
    for key, value in table:
        print(f"{key:<{width}}  {value}")
    problems = []
    if booked != slot.capacity:
        problems.append(f"booked {booked} != capacity {slot.capacity}")
    if outcomes["ok"] != booked or len(set(returned)) != booked or distinct_codes != booked:
        problems.append("the successful answers, the codes and the rows disagree")
    if outcomes["slot_full"] != args.attempts - booked:
        problems.append("some attempts failed for another reason than a full slot")
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return {
        "attempts": args.attempts,
        "booked": booked,
        "capacity": slot.capacity,
        "bookings_per_s": round(booked / elapsed, 1),
        "ok": not problems,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--attempts", type=int, default=2000)
    p.add_argument("--capacity", type=int, default=100)
    args = p.parse_args()
    if not 1 <= args.capacity <= args.attempts:
        p.error("need 1 <= capacity <= attempts")
    with tempfile.TemporaryDirectory(prefix="bench-booking-") as tmp:
        result = asyncio.run(bench(args, Path(tmp) / "booking.db"))
    ok = result.pop("ok")
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
