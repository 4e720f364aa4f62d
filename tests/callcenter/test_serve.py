"""``callcenter serve`` as a process: it stops on Ctrl-C even with live screens connected.

uvicorn waits for every response to finish before it stops, and a feed never finishes on
its own: without ``callcenter.server`` ending the streams, Ctrl-C would hang until the
screens went away.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DISPLAY = "demo-display-main-3c7b"  # config.toml's main hall display


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the server was not ready in 30 s:\n{log.read_text()}")


def test_ctrl_c_ends_the_live_feeds_and_stops_the_process(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "server.log"
    env = {"CALLCENTER_STORE_URL": f"sqlite:///{tmp_path}/hall.db", "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "callcenter", "serve", "--config", "config.toml",
           "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    screens: list[socket.socket] = []
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, port, log)
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(
                f"GET /api/halls/wuhou/feed?token={DISPLAY} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
            screens.append(s)
            head = b""
            while b"retry: 1000" not in head:  # headers and the first chunk may come apart
                chunk = s.recv(4096)
                assert chunk, f"the feed closed at once: {head!r}"
                head += chunk
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        assert time.monotonic() - t0 < 5, "Ctrl-C waited for the screens to hang up"
        assert proc.returncode == 0, log.read_text()
        for s in screens:
            rest = b""
            while chunk := s.recv(4096):
                rest += chunk
            assert rest.endswith(b"0\r\n\r\n"), "each stream ends with HTTP's last chunk"
        assert "Traceback" not in log.read_text()
    finally:
        for s in screens:
            s.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
