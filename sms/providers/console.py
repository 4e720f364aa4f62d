"""The embedded default: print each message with rich and keep a record of it.

The record (one JSON line per message, flushed before the send returns) is
what lets a restarted dispatcher see that a message left mid-send was
already printed, so it is not printed twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from queue_engine.masking import mask_phone

from .base import Outgoing, Sent


class ConsoleProvider:
    """Prints messages (phone masked) and records them in a JSON-lines file."""

    name = "console"

    def __init__(self, log_path: str | Path, console: Console | None = None) -> None:
        self.path = Path(log_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.console = console or Console(stderr=True)

    async def send(self, message: Outgoing, status_callback: str | None) -> Sent:
        """Record, then print; the provider id is derived from the outbox row."""
        sent = Sent(provider_id=f"console-{message.outbox_id}", status="delivered")
        record = {"outbox_id": message.outbox_id, "to": message.phone, "body": message.body}
        with self.path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(record, ensure_ascii=False) + "\n")
            log.flush()
            os.fsync(log.fileno())
        title = f"SMS → {mask_phone(message.phone)}"
        self.console.print(Panel(message.body, title=title, expand=False, border_style="cyan"))
        return sent

    async def lookup(self, message: Outgoing) -> Sent | None:
        """Found in the record if a previous run got as far as writing it."""
        if not self.path.exists():
            return None
        with self.path.open(encoding="utf-8") as log:
            for line in log:
                if f'"outbox_id": {message.outbox_id},' in line:
                    return Sent(provider_id=f"console-{message.outbox_id}", status="delivered")
        return None

    async def close(self) -> None:
        """Nothing to release."""
