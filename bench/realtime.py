"""Live-feed fan-out latency and call-next throughput against one server process.

Starts ``python -m callcenter serve`` over a pre-filled SQLite store, connects N SSE
feed clients (raw asyncio sockets, their own process), then with them connected:
1. times sequential call-next requests (each followed by a pause) until the LAST feed
   client has that ticket's ``ticket.called`` event, on CLOCK_MONOTONIC, which every
   process on Linux shares;
2. runs call-next on 16 keep-alive connections, one staffer each, and counts call-next
   requests per second (and all requests per second);
3. runs GET /healthz on 16 keep-alive connections, same client, as the ceiling;
   2 and 3 take turns (``--rounds``, 5 by default), so that a shared machine's slow
   spells fall on both and their ratio is measured under the same conditions.
Each staffer works as the demo hall's counters do: its 下一位 (call-next) also completes
the ticket in hand (``next_completes``), so every call-next commits and fans out two
events, the last ticket's ``ticket.completed`` and the next one's ``ticket.called``. With
``--full-cycle`` (or a hall without that policy) each call-next is followed by separate
start and complete requests instead, three requests and three events per ticket.
The server's copy of config.toml has no [hall.hours] (outside them the ticker expires
every waiting ticket). The last line of output is one line of JSON.

    python bench/realtime.py [--clients 200] [--requests 300] [--duration 5] [--rounds 5]
                             [--quick] [--full-cycle] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from bench import profiling  # noqa: E402
from bench.rawhttp import Http, connect  # noqa: E402
from callcenter.settings import Settings, load_settings  # noqa: E402
from queue_engine import Engine, SystemClock, open_store  # noqa: E402

HALL, DISPLAY, PASSWORD, CONNS = "wuhou", "demo-display-main-3c7b", "96166demo", 16
CALLED = re.compile(rb'event: ticket\.called\ndata: [^\n]*?"ticket":\{"id":(\d+)')
Staffer = tuple[str, str, list[str]]  # virtual number, window, services it may take
Stats = dict[int, list[int]]  # ticket id -> [feed clients that got its ticket.called, last ns]
FeedReport = tuple[Stats, list[int], int]  # stamps, events per client, connections lost
FULL_CYCLE = ("call-next", "start", "complete")
Work = Callable[["Http", int, float], Awaitable[tuple[int, int]]]


def bench_config(tmp: Path, full_cycle: bool) -> Path:
    """config.toml without opening hours, so no ticket expires whatever the time of day
    (and with 下一位 not completing, for ``--full-cycle``)."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    out = re.sub(r"\n\[hall\.hours\]\n.*?(?=\n# -{10})", "\n", text, flags=re.S)
    assert "[hall.hours]" not in out, "could not drop [hall.hours] from config.toml"
    if full_cycle:
        out, n = re.subn(r"(?m)^next_completes = true", "next_completes = false", out)
        assert n == 1, "could not turn next_completes off in config.toml"
    (path := tmp / "config.toml").write_text(out, encoding="utf-8")
    return path


async def prefill(settings: Settings, tickets: int) -> list[Staffer]:
    """Sign CONNS window staff in and issue ``tickets`` tickets spread over their services."""
    hall = settings.hall
    open_ = {s.code for s in hall.services if s.channel.value == "hall" and s.daily_limit is None}
    windows = [w.number for w in hall.windows if w.kind.value == "window"]
    found = [(s.virtual_number, sorted(set(s.skills) & open_)) for s in hall.staff]
    staff = [(vn, windows[i], s) for i, (vn, s) in enumerate([f for f in found if f[1]][:CONNS])]
    async with open_store(settings.store_url) as store:
        engine = Engine(store, hall, SystemClock())
        await engine.load_hall()
        for vn, window, _ in staff:
            await engine.sign_in(vn, window)
        svcs = [staff[i % len(staff)][2] for i in range(tickets)]
        codes = [s[(i // len(staff)) % len(s)] for i, s in enumerate(svcs)]
        await asyncio.gather(*(engine.take_ticket(code) for code in codes))
    return staff


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settle(
    pid: int, quiet: float = 0.1, window_s: float = 0.2, limit_s: float = 60.0
) -> float:
    """Wait until process ``pid`` uses under ``quiet`` of a core over ``window_s``; returns
    the CPU seconds it used meanwhile beyond that idle level (work left over from a phase)."""
    used, deadline = 0.0, time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        before = cpu_s(pid)
        await asyncio.sleep(window_s)
        busy = cpu_s(pid) - before
        if busy < quiet * window_s:
            return used
        used += busy - quiet * window_s
    raise RuntimeError(f"server {pid} still busy after {limit_s:.0f} s")


class FeedClient(asyncio.Protocol):
    """One SSE connection: counts events and, while ``stamping[0]``, stamps each
    ticket.called it sees. The 200 of them share the machine's second core with the driver,
    so they do their work in C (``bytes.count``, one regex pass per read), not per frame in
    Python: what they cost is taken from the server they measure."""

    def __init__(self, stats: Stats, port: int, stamping: list[bool]) -> None:
        self.stats, self.port, self.buf, self.events, self.lost = stats, port, b"", 0, False
        self.stamping = stamping
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        path = f"/api/halls/{HALL}/feed?token={DISPLAY}"
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAccept: text/event-stream"
        transport.write(f"{head}\r\n\r\n".encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        buf = self.buf + data
        end = buf.rfind(b"\n\n") + 2  # chunk framing lines end in \r\n: harmless
        if end < 2:
            self.buf = buf
            return
        done, self.buf = buf[:end], buf[end:]
        self.events += done.count(b"\nevent: ")
        if self.stamping[0]:
            for m in CALLED.finditer(done):
                entry = self.stats.setdefault(int(m[1]), [0, 0])
                entry[0], entry[1] = entry[0] + 1, now
        if not self.ready.done():
            self.ready.set_result(None)  # "retry:" comes after the hub registered us

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


async def feeds(port: int, n: int, stamping: list[bool]) -> Callable[[], FeedReport]:
    """Connect ``n`` feed clients on this loop; returns what reports on them."""
    loop, clients = asyncio.get_running_loop(), []
    stats: Stats = {}
    for _ in range(n):
        _, c = await loop.create_connection(
            lambda: FeedClient(stats, port, stamping), "127.0.0.1", port
        )
        clients.append(c)
    await asyncio.wait_for(asyncio.gather(*(c.ready for c in clients)), 30)
    return lambda: (dict(stats), [c.events for c in clients], sum(c.lost for c in clients))


def feed_process(port: int, n: int, conn: Connection) -> None:
    """The feed clients in their own process (on uvloop, as cheap as clients get), answering
    "report" and "count-only" (stop stamping ticket.called: only the latency phase reads the
    stamps) until "stop"."""

    async def serve() -> None:
        stamping = [True]
        report = await feeds(port, n, stamping)
        conn.send(os.getpid())
        while (ask := await asyncio.get_running_loop().run_in_executor(None, conn.recv)) != "stop":
            if ask == "count-only":
                stamping[0] = False
            conn.send(report())

    uvloop.run(serve())


def request(method: str, path: str, token: str = "", body: bytes = b"") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    kind = "Content-Type: application/json\r\n" if body else ""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}{kind}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def timed(port: int, duration: float, work: Work) -> tuple[int, int, float]:
    """Run ``work`` on CONNS fresh connections until the deadline: (counted, requests, s)."""
    conns = [await connect(port) for _ in range(CONNS)]
    t0 = time.perf_counter()
    done = await asyncio.gather(*(work(c, i, t0 + duration) for i, c in enumerate(conns)))
    secs = time.perf_counter() - t0
    for c in conns:
        c.transport.close()  # type: ignore[union-attr]
    return sum(d[0] for d in done), sum(d[1] for d in done), secs


async def profiled(args: argparse.Namespace, pid: int, run: Callable[[], Awaitable[Any]]) -> Any:
    """``run()``; with --profile, also py-spy ``pid`` through it after a second's run-in."""
    if not args.profile:
        return await run(), None
    out = Path(args.profile_out or Path(args.tmp) / "profile.txt")

    async def spy() -> None:
        await asyncio.sleep(1.0)
        proc = profiling.record(pid, args.duration - 2, out)
        await asyncio.to_thread(proc.wait, 30)

    watching = asyncio.create_task(spy())
    result = await run()
    await watching
    return result, profiling.top_costs(out)


class Desk:
    """One staffer's requests. Under 下一位 each call-next names the ticket it finishes, as
    the staff console does (``?finish=``); in a full cycle start and complete follow it."""

    def __init__(self, vn: str, token: str, steps: tuple[str, ...]) -> None:
        self.base, self.token = f"/api/halls/{HALL}/workstations/{vn}/", token
        self.rest = [request("POST", self.base + step, token) for step in steps[1:]]
        self.in_hand: int | None = None

    async def call_next(self, http: Http) -> tuple[dict[str, Any] | None, int]:
        """One call-next (and the rest of the cycle): the ticket called, and the requests."""
        finish = f"?finish={self.in_hand}" if self.in_hand is not None else ""
        ticket = (await http.ok(request("POST", f"{self.base}call-next{finish}", self.token)))[
            "ticket"
        ]
        self.in_hand = ticket["id"] if ticket is not None and not self.rest else None
        if ticket is None:
            return None, 1
        for step in self.rest:
            await http.ok(step)
        return ticket, 1 + len(self.rest)


async def timed_calls(port: int, desks: list[Desk], n: int, gap_ms: float) -> dict[int, int]:
    """``n`` call-next requests one at a time, each cycle's other steps after it and then a
    pause: the ticket each called, with the moment its request was sent."""
    sent: dict[int, int] = {}
    http = await connect(port)
    for i in range(n):
        t0 = time.monotonic_ns()
        if (ticket := (await desks[i % len(desks)].call_next(http))[0]) is None:
            raise RuntimeError("call-next found nobody waiting; raise --backlog")
        sent[ticket["id"]] = t0
        await asyncio.sleep(gap_ms / 1000)
    return sent


async def drive(args: argparse.Namespace, port: int, staff: list[Staffer], pids: dict[str, int],
                report: Callable[..., Awaitable[FeedReport]]) -> dict[str, Any]:  # fmt: skip
    http, desks = await connect(port), []
    for vn, _, _ in staff:
        body = json.dumps({"virtual_number": vn, "password": PASSWORD, "hall": HALL}).encode()
        token = (await http.ok(request("POST", "/api/auth/login", body=body)))["token"]
        desks.append(Desk(vn, token, args.steps))
    res: dict[str, Any] = {"cpu": {}, "load": os.getloadavg(), "empty": 0}
    spent: dict[str, tuple[float, dict[str, float]]] = {}  # phase -> wall s, CPU s by process

    async def phase(name: str, run: Callable[[], Awaitable[Any]]) -> Any:
        print(f"phase {name} starts", file=sys.stderr, flush=True)  # for py-spy runs
        before, t0 = {k: cpu_s(p) for k, p in pids.items()}, time.perf_counter()
        out = await run()
        wall, cpu = spent.get(name, (0.0, dict.fromkeys(pids, 0.0)))
        wall += time.perf_counter() - t0
        cpu = {k: cpu[k] + cpu_s(p) - before[k] for k, p in pids.items()}
        spent[name] = (wall, cpu)
        res["cpu"][name] = {k: c / wall * 100 for k, c in cpu.items()}
        return out

    async def cycles_on(http: Http, i: int, deadline: float) -> tuple[int, int]:
        calls = reqs = 0
        while time.perf_counter() < deadline:
            ticket, sent = await desks[i].call_next(http)
            reqs += sent
            if ticket is None:  # the queue ran dry: not counted as a call
                res["empty"] += 1
            else:
                calls += 1
        return calls, reqs

    async def healthz_on(http: Http, i: int, deadline: float) -> tuple[int, int]:
        n, raw = 0, request("GET", "/healthz")
        while time.perf_counter() < deadline:
            n += (await http.send(raw))[0] == 200
        return n, n

    sent = await phase("latency", lambda: timed_calls(port, desks, args.requests, args.gap_ms))
    await asyncio.sleep(0.3)
    stats = (await report("count-only"))[0]
    seen = {t: stats[t][1] for t in sent if stats.get(t, [0])[0] == args.clients}
    res["latency_ms"] = sorted((ns - sent[t]) / 1e6 for t, ns in seen.items())
    res["incomplete"] = len(sent) - len(seen)
    await timed(port, 0.5, healthz_on)  # warm-up
    await settle(pids["server"])
    before = (await report())[1]
    # The two throughput phases take turns, so a shared machine's slow and fast seconds
    # fall on both alike: their ratio is the figure, and it is compared within one run.
    rounds, calls, trivial = 1 if args.profile else args.rounds, [], []
    res["deferred_s"] = 0.0
    for _ in range(rounds):
        got, res["profile"] = await phase(
            "call-next",
            lambda: profiled(
                args, pids["server"], lambda: timed(port, args.duration / rounds, cycles_on)
            ),
        )
        calls.append(got)
        # What the calls left for later (readers catching up with the log) is theirs too:
        # the server's CPU seconds until it is quiet again count as time of the phase.
        res["deferred_s"] += await settle(pids["server"])
        trivial.append(
            await phase("trivial", lambda: timed(port, args.duration / rounds, healthz_on))
        )
    # (counted, requests, seconds), summed over the rounds
    res["calls"], res["trivial"] = (
        tuple(map(sum, zip(*parts, strict=True))) for parts in (calls, trivial)
    )
    _, events, res["lost"] = await report()
    got = [after - b for after, b in zip(events, before, strict=True)]
    res["events"] = (min(got), max(got))
    return res


def start_server(cfg: Path, url: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    python = ROOT / ".venv" / "bin" / "python"
    env = {**os.environ, "CALLCENTER_STORE_URL": url, "CALLCENTER_SECRET": secrets.token_hex(32)}
    cmd = [str(python if python.exists() else sys.executable), "-m", "callcenter", "serve",
           "--config", str(cfg), "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("server not ready after 30 s")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-rt-") as tmp:
        args.tmp = tmp
        cfg, url = bench_config(Path(tmp), args.full_cycle), f"sqlite:///{tmp}/rt.db"
        settings = load_settings(cfg, {"CALLCENTER_STORE_URL": url})
        pad = settings.hall.policy.next_completes
        args.steps = ("call-next",) if pad else FULL_CYCLE
        staff = asyncio.run(prefill(settings, args.backlog))
        # Filling the store left this process (and the feed process forked from it) a large
        # heap; frozen, the collector stops walking it, which paused the clients for up to
        # 0.1 s in the middle of a measurement.
        gc.collect()
        gc.freeze()
        server, port = start_server(cfg, url, Path(tmp) / "server.log")
        print(f"server pid {server.pid}, port {port}", file=sys.stderr, flush=True)
        pids, feed = {"server": server.pid, "driver": os.getpid()}, None
        try:
            ours, theirs = mp.get_context("fork").Pipe()
            feed = mp.get_context("fork").Process(
                target=feed_process, args=(port, args.clients, theirs), daemon=True
            )
            feed.start()
            if not ours.poll(60):
                raise RuntimeError("feed clients did not connect")
            pids["feed"] = ours.recv()

            async def ask(what: str = "report") -> FeedReport:
                ours.send(what)
                return await asyncio.get_running_loop().run_in_executor(None, ours.recv)

            res = asyncio.run(drive(args, port, staff, pids, ask))
            ours.send("stop")
            return res
        finally:
            if feed is not None:
                feed.join(5)
                if feed.is_alive():
                    feed.kill()
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int, default=200, help="live-feed clients")
    p.add_argument("--requests", type=int, default=300, help="timed sequential call-next requests")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per throughput phase")
    p.add_argument("--rounds", type=int, default=5,
                   help="turns the two throughput phases take (each runs duration/rounds a turn)")  # fmt: skip
    p.add_argument("--backlog", type=int, default=15000, help="tickets waiting at the start")
    p.add_argument("--gap-ms", type=float, default=25.0, help="pause between timed calls")
    p.add_argument("--quick", action="store_true", help="at most 60 timed calls and 2 s phases")
    p.add_argument("--full-cycle", action="store_true",
                   help="call-next, start and complete as three requests (下一位 not completing)")  # fmt: skip
    p.add_argument("--profile", action="store_true",
                   help="py-spy the server during the call-next phase (needs py-spy; use --duration 8)")  # fmt: skip
    p.add_argument("--profile-out", help="keep py-spy's raw stacks in this file")
    args = p.parse_args()
    if args.quick:
        args.requests, args.duration = min(args.requests, 60), min(args.duration, 2.0)
    res = run(args)
    lat, (calls, reqs, secs), (triv, _, tsecs) = res["latency_ms"], res["calls"], res["trivial"]
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = statistics.quantiles(lat, n=100, method="inclusive")[98] if len(lat) > 1 else p50
    call_rps, triv_rps = calls / (secs + res["deferred_s"]), triv / tsecs
    ev, cpu = res["events"], res["cpu"]
    lines = [
        f"realtime bench: {args.clients} feed clients (own process), backlog {args.backlog} tickets, "
        f"load average {'/'.join(f'{x:.1f}' for x in res['load'])}",
        f"  call→last client  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  max {max(lat, default=0):.2f} "
        f"ms  ({len(lat)} timed, {res['incomplete']} not seen by every client)",
        f"  call-next         {call_rps:9.1f} req/s  ({'→'.join(args.steps)} on {CONNS} conns; "
        f"all requests {reqs / secs:.1f} req/s; "
        f"{res['empty']} found nobody waiting, not counted{': raise --backlog' * bool(res['empty'])})",
        f"                    over {secs:.2f} s of calls + {res['deferred_s']:.2f} s the server then "
        f"spent catching up ({calls / secs:.1f} req/s over the calls alone)",
        f"  GET /healthz      {triv_rps:9.1f} req/s  ({CONNS} keep-alive conns)",
        f"  ratio             {call_rps / triv_rps:9.4f}",
        f"  events per feed client in the call-next phase: min {ev[0]} max {ev[1]}; "
        f"feed connections lost {res['lost']}",
        "  CPU, % of one core " + "".join(f"{k:>9}" for k in cpu["trivial"]),
        *(f"    {n:<16}" + "".join(f"{v:9.1f}" for v in c.values()) for n, c in cpu.items()),
    ]
    print("\n".join(lines))
    if res["profile"]:
        print(profiling.report(res["profile"]))
    print(json.dumps({
        "call_to_last_client_p50_ms": round(p50, 2), "call_to_last_client_p99_ms": round(p99, 2),
        "call_next_rps": round(call_rps, 1), "trivial_rps": round(triv_rps, 1),
        "ratio": round(call_rps / triv_rps, 4),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
