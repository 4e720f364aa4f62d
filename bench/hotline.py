"""Voice-webhook latency with many calls in progress, beside a trivial endpoint's.

Starts ``python -m callcenter serve`` with ``[hotline]`` and ``[sms.twilio]`` pointed at a
small Twilio-shaped server (tests/hotline/fake_twilio.py, in a thread of this process),
signs one agent in at a hotline seat and pauses them (the skill is staffed, so callers
are queued and hold rather than hearing the night message, and nobody takes a call),
then builds up calls in progress: a signed ``/voice/incoming`` and ``/voice/menu``
(Digits=3) per call, distinct CallSids and numbers. With 200 and then 1,000 calls
holding it times signed ``/voice/hold?ticket=…`` requests for random holding callers
(the webhook Twilio fetches most while calls wait) and ``GET /healthz`` the same way,
on the same connections, in the same run. Target: webhook p99 under 2x the trivial p99
with 1,000 calls in progress. The last line of output is one line of JSON.

    python bench/hotline.py [--requests 2000] [--conns 4] [--profile]

``--profile`` records the server with py-spy during one more 1,000-call hold phase and
prints the functions it spent most samples in.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from twilio.request_validator import RequestValidator  # noqa: E402

from bench import profiling  # noqa: E402
from bench.rawhttp import Http, connect  # noqa: E402
from tests.hotline.fake_twilio import FakeTwilio  # noqa: E402

HALL, PASSWORD, AGENT, SEAT = "wuhou", "96166demo", "W0101", "H01"
NUMBER = "+862896166000"
TICKET = re.compile(rb"ticket=(\d+)")


def bench_config(tmp: Path, port: int, fake: FakeTwilio) -> Path:
    """config.toml with SMS through Twilio (the fake) and a [hotline] table on ``port``."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    for table in ("[hotline]", "[sms.twilio]"):
        if re.search(rf"^\{table[:-1]}\]", text, flags=re.M):
            raise SystemExit(f"config.toml already has {table}: adjust bench_config")
    text, n = re.subn(r'^(provider\s*=\s*)"console"', r'\1"twilio"', text, count=1, flags=re.M)
    if n != 1:
        raise SystemExit('config.toml: no [sms] provider = "console" line to switch')
    public = f"http://127.0.0.1:{port}"
    text = re.sub(r'^(public_url\s*=\s*)"[^"]*"', rf'\1"{public}"', text, count=1, flags=re.M)
    text += f"""
[sms.twilio]
account_sid = "{fake.account_sid}"
auth_token = "{fake.auth_token}"
from_number = "+15005550006"
base_url = "{fake.base_url}"

[hotline]
number = "{NUMBER}"
public_url = "{public}"
"""
    (path := tmp / "config.toml").write_text(text, encoding="utf-8")
    return path


class FakeInThread:
    """The fake Twilio server on its own event loop in a daemon thread."""

    def __init__(self) -> None:
        self.fake = FakeTwilio(unknown_status="in-progress")
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="fake-twilio")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with self.fake:
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> FakeTwilio:
        self.thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake Twilio server did not start")
        return self.fake

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(5)


def raw_request(method: str, path: str, port: int, body: bytes = b"", headers: str = "") -> bytes:
    kind = "Content-Type: application/x-www-form-urlencoded\r\n" if method == "POST" else ""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{kind}{headers}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


class Signer:
    """Signed voice webhooks as Twilio sends them to the server's public URL."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.public = port, f"http://127.0.0.1:{port}"
        self.validator = RequestValidator(token)

    def post(self, path: str, params: dict[str, str]) -> bytes:
        signature = self.validator.compute_signature(self.public + path, params)
        return raw_request("POST", path, self.port, urlencode(params).encode(),
                           f"X-Twilio-Signature: {signature}\r\n")  # fmt: skip


def call_params(i: int, account: str, **extra: str) -> dict[str, str]:
    phone = f"+86139{i:08d}"
    return {"AccountSid": account, "ApiVersion": "2010-04-01", "CallSid": f"CA{i:032x}",
            "CallStatus": "in-progress", "Direction": "inbound", "From": phone, "Caller": phone,
            "To": NUMBER, "Called": NUMBER, **extra}  # fmt: skip


async def build_calls(
    conns: list[Http], signer: Signer, account: str, start: int, stop: int
) -> list[int]:
    """Calls ``start`` … ``stop`` - 1 dial in and press 3; the ticket ids they hold with."""
    todo = list(range(start, stop))
    tickets: list[int] = []

    async def worker(http: Http) -> None:
        while todo:
            i = todo.pop()
            status, _ = await http.send(signer.post("/voice/incoming", call_params(i, account)))
            assert status == 200, status
            status, body = await http.send(signer.post("/voice/menu?attempt=0&lang=zh",
                                                       call_params(i, account, Digits="3")))  # fmt: skip
            m = TICKET.search(body)
            if status != 200 or m is None or b"/voice/hold" not in body:
                raise RuntimeError(f"call {i} was not queued: HTTP {status} {body[:300]!r}")
            tickets.append(int(m[1]))

    await asyncio.gather(*(worker(c) for c in conns))
    return tickets


async def timed(conns: list[Http], requests: list[bytes]) -> list[float]:
    """Send ``requests`` over the connections (one in flight on each); latencies in ms."""
    queue = list(reversed(requests))
    out: list[float] = []

    async def worker(http: Http) -> None:
        while queue:
            raw = queue.pop()
            t0 = time.perf_counter_ns()
            status, body = await http.send(raw)
            out.append((time.perf_counter_ns() - t0) / 1e6)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:300]!r}")

    await asyncio.gather(*(worker(c) for c in conns))
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def measure(conns: list[Http], signer: Signer, account: str, port: int, tickets: list[int],
                  n: int, rng: random.Random) -> dict[str, Any]:  # fmt: skip
    """Hold webhooks and /healthz, interleaved in blocks so both see the same conditions."""
    holds = []
    for _ in range(n):
        i = rng.randrange(len(tickets))
        holds.append(
            signer.post(f"/voice/hold?ticket={tickets[i]}&lang=zh", call_params(i, account))
        )
    trivial = [raw_request("GET", "/healthz", port)] * n
    hook_ms: list[float] = []
    triv_ms: list[float] = []
    block = max(50, n // 10)
    for at in range(0, n, block):
        hook_ms += await timed(conns, holds[at : at + block])
        triv_ms += await timed(conns, trivial[at : at + block])
    return {
        "webhook_p50_ms": round(pct(hook_ms, 50), 2), "webhook_p99_ms": round(pct(hook_ms, 99), 2),
        "webhook_mean_ms": round(statistics.fmean(hook_ms), 2),
        "trivial_p50_ms": round(pct(triv_ms, 50), 2), "trivial_p99_ms": round(pct(triv_ms, 99), 2),
        "requests": n,
    }  # fmt: skip


async def pause_agent(http: Http, port: int) -> None:
    """Sign one agent in at a hotline seat and pause them: staffed, but nobody answers."""
    body = json.dumps({"virtual_number": AGENT, "password": PASSWORD}).encode()
    json_head = "Content-Type: application/json\r\n"
    status, out = await http.send(_json_request("POST", "/api/auth/login", port, body, json_head))
    assert status == 200, out
    auth = f"Authorization: Bearer {json.loads(out)['token']}\r\n"
    base = f"/api/halls/{HALL}/workstations/{AGENT}"
    for path, payload in (("sign-in", {"window": SEAT}), ("pause", {"reason": "bench"})):
        status, out = await http.send(_json_request("POST", f"{base}/{path}", port,
                                                    json.dumps(payload).encode(), auth))  # fmt: skip
        assert status == 200, out


def _json_request(method: str, path: str, port: int, body: bytes, headers: str) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    )
    return f"{head}{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def drive(args: argparse.Namespace, port: int, fake: FakeTwilio,
                profile: Callable[[], Any] | None) -> dict[str, Any]:  # fmt: skip
    signer = Signer(port, fake.auth_token)
    conns = [await connect(port) for _ in range(args.conns)]
    await pause_agent(conns[0], port)
    rng = random.Random(96166)
    # Warm-up: the app builds its routes on the first request; the first webhook imports more.
    warm = await build_calls(conns, signer, fake.account_sid, 0, args.conns)
    await measure(conns, signer, fake.account_sid, port, warm, 200, rng)
    results: dict[int, dict[str, Any]] = {}
    built = args.conns
    tickets = list(warm)
    for target in (200, 1000):
        t0 = time.perf_counter()
        tickets += await build_calls(conns, signer, fake.account_sid, built, target)
        built = target
        print(
            f"{target} calls holding (built in {time.perf_counter() - t0:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
        results[target] = await measure(
            conns, signer, fake.account_sid, port, tickets, args.requests, rng
        )
    if profile is not None:
        print("profiling one more 1,000-call hold phase with py-spy …", file=sys.stderr, flush=True)
        results[1000]["profile"] = await profile_phase(
            conns, signer, fake.account_sid, port, tickets, args, rng, profile
        )
    for c in conns:
        assert c.transport is not None
        c.transport.close()
    return {"results": results, "fake_requests": Counter(r.method for r in fake.requests)}


async def profile_phase(conns: list[Http], signer: Signer, account: str, port: int, tickets: list[int],
                        args: argparse.Namespace, rng: random.Random, start: Callable[[], Any]) -> Any:  # fmt: skip
    proc, out = start()
    await asyncio.sleep(1.0)
    deadline = time.perf_counter() + args.profile_s
    while time.perf_counter() < deadline:
        await measure(conns, signer, account, port, tickets, 500, rng)
    proc.wait(args.profile_s + 30)
    return profiling.top_costs(out)


def start_server(cfg: Path, port: int, url: str, log: Path) -> subprocess.Popen[bytes]:
    python = ROOT / ".venv" / "bin" / "python"
    env = {**os.environ, "CALLCENTER_STORE_URL": url, "CALLCENTER_SECRET": secrets.token_hex(32)}
    env.pop("TWILIO_AUTH_TOKEN", None)
    cmd = [str(python if python.exists() else sys.executable), "-m", "callcenter", "serve",
           "--config", str(cfg), "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("server not ready after 30 s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-hotline-") as tmp, FakeInThread() as fake:
        port = free_port()
        cfg = bench_config(Path(tmp), port, fake)
        server = start_server(cfg, port, f"sqlite:///{tmp}/hotline.db", Path(tmp) / "server.log")
        print(
            f"server pid {server.pid}, port {port}; fake Twilio at {fake.base_url}",
            file=sys.stderr,
            flush=True,
        )
        profile = None
        if args.profile:
            out = Path(tmp) / "profile.txt"

            def profile() -> tuple[subprocess.Popen[bytes], Path]:
                return profiling.record(server.pid, args.profile_s, out), out

        try:
            res = asyncio.run(drive(args, port, fake, profile))
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        log = (Path(tmp) / "server.log").read_text(errors="replace")
        res["server_errors"] = log.count("Traceback")
        return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--requests", type=int, default=2000, help="timed requests per endpoint and size"
    )
    p.add_argument("--conns", type=int, default=4, help="concurrent keep-alive connections")
    p.add_argument("--profile", action="store_true", help="py-spy the server in one more phase")
    p.add_argument("--profile-s", type=float, default=10.0, help="seconds of py-spy recording")
    args = p.parse_args()
    res = run(args)
    results = res["results"]
    print(
        f"{'calls':>6} {'webhook p50':>12} {'webhook p99':>12} {'healthz p50':>12} {'healthz p99':>12} {'ratio p99':>10}"
    )
    for calls, r in results.items():
        ratio = r["webhook_p99_ms"] / r["trivial_p99_ms"] if r["trivial_p99_ms"] else float("inf")
        print(f"{calls:>6} {r['webhook_p50_ms']:>10.2f}ms {r['webhook_p99_ms']:>10.2f}ms "
              f"{r['trivial_p50_ms']:>10.2f}ms {r['trivial_p99_ms']:>10.2f}ms {ratio:>9.2f}x")  # fmt: skip
    big = results[1000]
    ok = big["webhook_p99_ms"] < 2 * big["trivial_p99_ms"]
    print(f"target webhook p99 < 2x trivial p99 at 1,000 calls: {'met' if ok else 'NOT met'}"
          f" ({args.requests} requests each over {args.conns} connections; fake Twilio saw"
          f" {dict(res['fake_requests']) or 'nothing'}; server tracebacks: {res['server_errors']})")  # fmt: skip
    if "profile" in big:
        print(profiling.report(big["profile"]))
    print(json.dumps({"calls": 1000, "webhook_p50_ms": big["webhook_p50_ms"],
                      "webhook_p99_ms": big["webhook_p99_ms"], "trivial_p99_ms": big["trivial_p99_ms"]}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
