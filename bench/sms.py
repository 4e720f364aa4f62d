"""SMS outbox drain rate and event-to-provider lag against a local Twilio-shaped server.

One process: a real SQLite store in a temporary directory, the engine on the wall clock,
the SMS notifier's reader runner and the dispatcher with no rate limit, sending through
the real twilio library to the Twilio-shaped server of tests/sms/fake_twilio.py on
127.0.0.1. A burst of tickets with phone numbers is issued at once (every ticket its own
transaction, all of them in flight together); then we wait until every event is read and
every outbox row settled, and report:

* drain_per_s: messages the server received per second, first request to last;
* lag: from an event's commit time (its ``at``, wall clock) to the provider request for
  its message arriving at the server (p50, p99);
* sent (create requests the server got) and expected (outbox rows due to be sent).

The server runs in a child process (as Twilio would be elsewhere), so the figures are
the app's own; ``--in-process`` puts it on the app's event loop instead, where its cost
counts too. The last line of output is one line of JSON.

    python bench/sms.py [--tickets 1000] [--concurrency 32] [--in-process] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from queue_engine import Bus, Engine, ReaderRunner, Store, SystemClock, Tx, open_store  # noqa: E402
from sms.config import SmsConfig, TwilioConfig  # noqa: E402
from sms.dispatcher import Dispatcher  # noqa: E402
from sms.notifier import SmsNotifier  # noqa: E402
from sms.providers.twilio import TwilioProvider  # noqa: E402
from tests.conftest import make_hall  # noqa: E402
from tests.sms.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio  # noqa: E402

SENDER = "+15005550006"
SERVICES = ("biz", "pension", "medical")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def unsettled(store: Store, reader: str) -> int:
    """Events the notifier has yet to read plus rows the dispatcher has yet to settle."""

    def count(tx: Tx) -> int:
        behind = tx.last_event_id() - tx.get_cursor(reader)
        rows = tx.execute("SELECT COUNT(*) FROM sms_outbox WHERE status IN ('pending','sending')")
        return behind + rows[0][0]

    return await store.run(count)


Received = list[dict[str, Any]]  # the server's record: method, to, sid, wall, mono, answered


@contextlib.asynccontextmanager
async def server(in_process: bool) -> AsyncIterator[tuple[str, Callable[[], Awaitable[Received]]]]:
    """The Twilio-shaped server's base URL and a way to read what it received."""
    if in_process:
        async with FakeTwilio() as fake:

            async def local() -> Received:
                return [{"method": r.method, "to": r.form.get("To"), "sid": r.sid,
                         "wall": r.wall, "mono": r.mono} for r in fake.requests]  # fmt: skip

            yield fake.base_url, local
        return
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "tests" / "sms" / "fake_twilio.py"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        line = (await asyncio.wait_for(child.stdout.readline(), 10)).decode()
        assert line.startswith("PORT "), line
        base = f"http://127.0.0.1:{int(line.split()[1])}"

        async def remote() -> Received:
            async with aiohttp.ClientSession() as s, s.get(f"{base}/_fake/requests") as r:
                return await r.json()

        yield base, remote
    finally:
        child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 5)
        except TimeoutError:
            child.kill()
            await child.wait()


async def bench(
    tickets: int, concurrency: int, timeout_s: float, in_process: bool
) -> dict[str, Any]:
    clock = SystemClock()
    hall = make_hall()  # no opening hours: tickets can be issued at any time of day
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        store.add_migrations("sms")
        async with store, server(in_process) as (base_url, received):
            bus = Bus()
            store.add_commit_listener(bus.publish)
            engine = Engine(store, hall, clock)
            await engine.load_hall()
            config = SmsConfig(
                provider="twilio", public_url="https://hall.example", rate_per_s=1e9,
                concurrency=concurrency, quiet_start=None, quiet_end=None, send_timeout_s=10.0,
                twilio=TwilioConfig(ACCOUNT_SID, AUTH_TOKEN, SENDER, base_url=base_url),
            )  # fmt: skip
            assert config.twilio is not None
            provider = TwilioProvider(config.twilio, config.send_timeout_s)
            dispatcher = Dispatcher(store, provider, config, clock)
            notifier = SmsNotifier(config, {hall.code: hall}, dispatcher.wake)
            runner = ReaderRunner(store, bus, notifier)
            tasks = [asyncio.create_task(runner.run()), asyncio.create_task(dispatcher.run())]
            try:
                await asyncio.sleep(0.05)  # both are up and waiting
                t0 = time.perf_counter()
                await asyncio.gather(*(
                    engine.take_ticket(SERVICES[i % 3], phone=f"+86138{i:08d}")
                    for i in range(tickets)
                ))  # fmt: skip
                issued_s = time.perf_counter() - t0
                async with asyncio.timeout(timeout_s):
                    while await unsettled(store, notifier.name):
                        await asyncio.sleep(0.01)
                total_s = time.perf_counter() - t0
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await provider.close()

            rows = await store.run(
                lambda tx: tx.execute(
                    "SELECT o.status, o.provider_id, e.at FROM sms_outbox o"
                    " JOIN events e ON e.id = o.event_id"
                )
            )
            creates = [r for r in await received() if r["method"] == "POST"]
            arrival = {c["sid"]: c["wall"] for c in creates if c["sid"]}
            due = [r for r in rows if r[0] not in ("skipped", "opted_out")]
            lags = [(arrival[sid] - at) * 1000 for _, sid, at in due if sid in arrival]
            walls = sorted(c["wall"] for c in creates)
            span = walls[-1] - walls[0] if len(walls) > 1 else float("nan")
            return {
                "drain_per_s": round((len(walls) - 1) / span, 1) if span else None,
                "lag_p50_ms": round(percentile(lags, 50), 1),
                "lag_p99_ms": round(percentile(lags, 99), 1),
                "sent": len(creates),
                "expected": len(due),
                "_issued_s": issued_s,
                "_total_s": total_s,
                "_lag_max_ms": max(lags) if lags else float("nan"),
                "_lag_mean_ms": statistics.fmean(lags) if lags else float("nan"),
                "_statuses": {s: sum(1 for r in rows if r[0] == s) for s in {r[0] for r in rows}},
            }


def report(result: dict[str, Any], tickets: int, concurrency: int, in_process: bool) -> None:
    rows = [
        ("Twilio-shaped server", "on the app's event loop" if in_process else "child process"),
        ("tickets issued at once", f"{tickets}"),
        ("dispatcher concurrency", f"{concurrency} (no rate limit)"),
        ("issue burst took", f"{result['_issued_s']:.2f} s"),
        ("all settled after", f"{result['_total_s']:.2f} s"),
        ("outbox rows by status", ", ".join(f"{k} {v}" for k, v in
                                             sorted(result["_statuses"].items()))),
        ("expected / sent", f"{result['expected']} / {result['sent']}"),
        ("drain rate", f"{result['drain_per_s']} messages/s (target >= 300)"),
        ("lag commit → request p50", f"{result['lag_p50_ms']} ms"),
        ("lag commit → request p99", f"{result['lag_p99_ms']} ms (target < 1000)"),
        ("lag mean / max", f"{result['_lag_mean_ms']:.1f} / {result['_lag_max_ms']:.1f} ms"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tickets", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the drain")
    p.add_argument("--in-process", action="store_true", help="run the server on our event loop")
    p.add_argument("--profile", action="store_true", help="print where the CPU time goes")
    p.add_argument("--quick", action="store_true", help="a small smoke run (200 tickets)")
    args = p.parse_args()
    if args.quick:
        args.tickets = 200
    # twilio 9.13 still hands aiohttp 3.14 a BasicAuth; the deprecation is not ours to show.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="twilio")
    warnings.filterwarnings("ignore", message=".*auth.*deprecated", category=DeprecationWarning)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    result = asyncio.run(bench(args.tickets, args.concurrency, args.timeout, args.in_process))
    if profiler is not None:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    report(result, args.tickets, args.concurrency, args.in_process)
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}))


if __name__ == "__main__":
    main()
