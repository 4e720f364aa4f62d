"""py-spy around a bench's server: record one phase, then name where the time went.

Shared by bench/hotline.py and bench/realtime.py (``--profile``). py-spy is not a
dependency of the project: ``.venv/bin/pip install py-spy`` first.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Frames every sample passes through (thread and loop start-up): not costs of their own.
PLUMBING = {"<module>", "_run_code", "_run_module_as_main", "main", "run", "Runner.run",
            "BaseEventLoop.run_until_complete", "BaseEventLoop.run_forever", "BaseEventLoop._run_once",
            "Thread._bootstrap", "Thread._bootstrap_inner", "Thread.run", "Server.serve", "Server._serve",
            "_serve", "Config.load", "Handle._run", "asyncio_run", "serve", "Server.run"}  # fmt: skip
FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^()]*?):(?P<line>\d+)\)$")


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Start py-spy on ``pid`` for ``seconds``, writing collapsed stacks to ``out``."""
    spy = shutil.which("py-spy", path=str(ROOT / ".venv" / "bin")) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy (.venv/bin/pip install py-spy)")
    cmd = [spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
           "--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_costs(raw: Path, n: int = 15) -> dict[str, Any]:
    """From py-spy's collapsed stacks: the functions with most samples, inclusive and self."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        k = int(count)
        total += k
        frames = [_frame(f) for f in stack.split(";")]
        for f in set(frames):
            inclusive[f] += k
        own[frames[-1]] += k

    def pc(k: int) -> float:
        return round(100 * k / total, 1) if total else 0.0

    plumbing = [f for f in inclusive if f.split(" ")[0] in PLUMBING]
    return {"samples": total,
            "inclusive_pct": [(f, pc(k)) for f, k in inclusive.most_common() if f not in plumbing][:n],
            "self_pct": [(f, pc(k)) for f, k in own.most_common(n)]}  # fmt: skip


def report(costs: dict[str, Any]) -> str:
    """The costs as lines to print."""
    lines = [f"py-spy, {costs['samples']} samples; inclusive:"]
    lines += [f"  {share:5.1f}%  {name}" for name, share in costs["inclusive_pct"]]
    lines.append("self:")
    lines += [f"  {share:5.1f}%  {name}" for name, share in costs["self_pct"]]
    return "\n".join(lines)


def _frame(text: str) -> str:
    """'est (/work/main/queue_engine/engine.py:547)' → 'est engine.py:547'."""
    m = FRAME.match(text.strip())
    if m is None:
        return text.strip()
    return f"{m['name']} {m['file'].rsplit('/', 1)[-1]}:{m['line']}"
