"""``callcenter serve`` on a clock the browser tests can move forward (test-only launcher).

The command line has no clock option, and a booking can only be made for a later
working day while check-in happens on the booking day. So the records test runs
the very same app (``create_app``) with a clock that reads wall time plus an
offset kept in a file: the test writes a later offset to move the hall to the
next day. Nothing else differs from ``callcenter serve``; the database is only
ever touched by the app.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import uvicorn

from callcenter.app import create_app
from callcenter.settings import load_settings


class FileOffsetClock:
    """Wall time plus the offset (seconds) in ``path``; it never goes backwards."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: int | None = None
        self._offset = 0.0
        self._last = 0.0

    def now(self) -> float:
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._stamp = stamp
            text = self.path.read_text().strip() if stamp is not None else ""
            self._offset = float(text or 0)
        self._last = max(self._last, time.time() + self._offset)
        return self._last


def write_offset(path: Path, offset: float) -> None:
    """Move the served clock (atomically, so the server never reads half a number)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(repr(offset))
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clock-file", required=True)
    args = parser.parse_args()
    settings = load_settings(args.config)
    app = create_app(settings, clock=FileOffsetClock(Path(args.clock_file)))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
