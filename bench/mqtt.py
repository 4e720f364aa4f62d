"""Engine-to-subscriber latency through the MQTT bridge, beside a bare aiomqtt round trip.

A hall of 200 windows, every one signed in, with a waiting backlog on a SQLite
file; the bridge publishes its events through Mosquitto (our own, on a free
loopback port, with ``set_tcp_nodelay true``, unless ``--broker HOST:PORT``).
A subscriber in its own process stamps each message on CLOCK_MONOTONIC, which
every process on Linux shares. Measured:

1. bare: QoS 1 publish of a small payload (stamped just before ``publish``) to
   the subscriber receiving it, at the same pace as phase 2;
2. engine: windows run call next → start → complete at ``--rate`` calls per
   second; each call is stamped when it returns, and its event when the
   subscriber receives it from the bridge.

The last line of output is one line of JSON.

    python bench/mqtt.py [--windows 200] [--rate 100] [--calls 2000] [--broker HOST:PORT] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from bench.engine import build_hall, setup  # noqa: E402
from kiosk.devices import MqttConfig, Topics  # noqa: E402
from kiosk.display import HallView  # noqa: E402
from kiosk.mqtt_bridge import NO_DELAY, MqttBridge  # noqa: E402
from queue_engine import Bus, Engine, FakeClock, open_store  # noqa: E402

START = 1_780_020_000.0
PREFIX = f"bench-{os.getpid()}"
Key = tuple[Any, ...]
STEPS = (("call_next", "ticket.called"), ("start_service", "ticket.started"),
         ("complete", "ticket.completed"))  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mosquitto(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Our own broker on a free loopback port, without Nagle's delay."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = folder / "mosquitto.conf"
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
        f"log_dest none\n{user}"
    )
    proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    for _ in range(250):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


# --- the subscriber, in its own process -------------------------------------


def subscriber(host: str, port: int, topics: list[str], conn: Connection) -> None:
    """Stamp every message with CLOCK_MONOTONIC until told to stop; send the stamps back."""
    asyncio.run(_subscribe(host, port, topics, conn))


async def _subscribe(host: str, port: int, topics: list[str], conn: Connection) -> None:
    import aiomqtt

    stamps: dict[Key, int] = {}
    client = aiomqtt.Client(host, port, identifier=f"{PREFIX}-sub", socket_options=NO_DELAY)
    async with client:
        for topic in topics:
            await client.subscribe(topic, qos=1)
        conn.send("ready")
        loop = asyncio.get_running_loop()
        stop = loop.run_in_executor(None, conn.recv)
        reader = asyncio.create_task(_stamp(client, stamps))
        await stop
        reader.cancel()
    conn.send(stamps)


async def _stamp(client: Any, stamps: dict[Key, int]) -> None:
    async for message in client.messages:
        now = time.monotonic_ns()
        if message.topic.value.endswith("/bare"):
            stamps[("bare", int(message.payload))] = now
            continue
        event = json.loads(message.payload)
        ticket = event.get("ticket") or {}
        stamps[(ticket.get("id"), event["type"])] = now


# --- the measured side ------------------------------------------------------


async def bare(host: str, port: int, n: int, pace_s: float) -> dict[Key, int]:
    """Publish n small QoS 1 messages at the given pace; returns the send stamps."""
    import aiomqtt

    sent: dict[Key, int] = {}
    client = aiomqtt.Client(host, port, identifier=f"{PREFIX}-bare", socket_options=NO_DELAY)
    async with client:
        for i in range(n):
            sent[("bare", i)] = time.monotonic_ns()
            await client.publish(f"{PREFIX}/bare", str(i), qos=1)
            await asyncio.sleep(pace_s)
    return sent


async def window(
    engine: Engine,
    clock: FakeClock,
    vn: str,
    lock: asyncio.Lock,
    step: list[int],
    sent: dict[Key, int],
    calls: list[float],
) -> None:
    """One press of this window's next button; the call is stamped when it returns."""
    async with lock:
        name, kind = STEPS[step[0]]
        clock.advance(0.01)
        began = time.monotonic_ns()
        ticket = await getattr(engine, name)(vn)
        stamp = time.monotonic_ns()
        calls.append((stamp - began) / 1e6)
        if ticket is None:
            return  # nobody this window can serve is waiting
        sent[(ticket.id, kind)] = stamp
        step[0] = (step[0] + 1) % len(STEPS)


async def drive(
    engine: Engine, clock: FakeClock, calls: int, pace_s: float, took: list[float]
) -> dict[Key, int]:
    """Windows in turn, one call every pace_s seconds, each call its own task."""
    vns = [s.virtual_number for s in engine.hall.staff]
    locks = {vn: asyncio.Lock() for vn in vns}
    steps = {vn: [0] for vn in vns}
    sent: dict[Key, int] = {}
    tasks = set()
    began = time.perf_counter()
    for i in range(calls):
        vn = vns[i % len(vns)]
        press = window(engine, clock, vn, locks[vn], steps[vn], sent, took)
        tasks.add(asyncio.create_task(press))
        await asyncio.sleep(max(0.0, began + (i + 1) * pace_s - time.perf_counter()))
    await asyncio.gather(*tasks)
    return sent


def latencies(sent: dict[Key, int], got: dict[Key, int]) -> list[float]:
    """Milliseconds from each stamp to its arrival, sorted; missing arrivals are an error."""
    missing = [k for k in sent if k not in got]
    if missing:
        raise SystemExit(
            f"{len(missing)} of {len(sent)} messages never arrived, e.g. {missing[:3]}"
        )
    return sorted((got[k] - sent[k]) / 1e6 for k in sent)


def pct(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def row(label: str, ms: list[float]) -> str:
    return (
        f"{label:40s} n={len(ms):5d}  p50 {pct(ms, 0.5):7.3f} ms  p99 {pct(ms, 0.99):7.3f} ms"
        f"  max {ms[-1]:7.3f} ms"
    )


async def bench(args: argparse.Namespace, host: str, port: int, db: Path) -> dict[str, float]:
    topics = Topics(PREFIX, "bench")
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    sub = ctx.Process(
        target=subscriber, args=(host, port, [topics.events, f"{PREFIX}/bare"], theirs)
    )
    sub.start()
    async with open_store(f"sqlite:///{db}") as store:
        bus = Bus()
        store.add_commit_listener(bus.publish)
        clock = FakeClock(START)
        engine = Engine(store, build_hall(args.windows, 12, 7), clock)
        await setup(engine, clock, args.backlog, 7)
        state = await engine.state()
        view = HallView.load(engine.hall, state.day, state.tickets, state.workstations,
                             state.last_event_id)  # fmt: skip
        config = MqttConfig(host=host, port=port, client_id=f"{PREFIX}-bridge", prefix=PREFIX)
        await asyncio.to_thread(ours.recv)  # the subscriber is subscribed
        pace, call_ms = 1.0 / args.rate, []
        bare_sent = await bare(host, port, args.bare, pace)
        async with MqttBridge(config, store, bus, engine, view) as bridge:
            await bridge.connected()
            began = time.perf_counter()
            sent = await drive(engine, clock, args.calls, pace, call_ms)
            took = time.perf_counter() - began
            await asyncio.sleep(0.5)  # the last events on their way
    ours.send("stop")
    got = await asyncio.to_thread(ours.recv)
    sub.join(5)
    b, e, c = latencies(bare_sent, got), latencies(sent, got), sorted(call_ms)
    load = os.getloadavg()[0]
    print(f"hall: {args.windows} windows, {args.backlog} waiting at start; broker {host}:{port}")
    print(f"machine: load average {load:.1f} on {os.cpu_count()} CPUs (figures swell with it)")
    print(row("bare aiomqtt QoS 1 publish -> receive", b))
    print(row("engine call -> subscriber via bridge", e) + f"  ({len(sent) / took:.0f} events/s)")
    print(row("(the engine calls themselves)", c))
    return {
        "engine_to_subscriber_p50_ms": round(pct(e, 0.5), 3),
        "engine_to_subscriber_p99_ms": round(pct(e, 0.99), 3),
        "bare_p99_ms": round(pct(b, 0.99), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=2000, help="tickets waiting at start")
    parser.add_argument("--rate", type=float, default=100.0, help="engine calls per second")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--bare", type=int, default=1000, help="bare publishes")
    parser.add_argument("--broker", help="HOST:PORT of a running broker (default: start our own)")
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.bare, args.backlog = 600, 400, 600
    with tempfile.TemporaryDirectory() as tmp:
        proc = None
        if args.broker:
            host, _, port_text = args.broker.rpartition(":")
            port = int(port_text)
        else:
            proc, port = start_mosquitto(Path(tmp))
            host = "127.0.0.1"
        try:
            result = asyncio.run(bench(args, host, port, Path(tmp) / "bench.db"))
        finally:
            if proc is not None:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(5)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
