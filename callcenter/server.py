"""uvicorn, told how to stop a process whose screens never hang up."""

from __future__ import annotations

import contextlib
from typing import Any

import uvicorn
from fastapi import FastAPI

from .app import end_streams

SHUTDOWN_GRACE_S = 2.0  # after this, answers still in flight are cancelled


class Server(uvicorn.Server):
    """uvicorn's server, ending the live feeds' streams as it starts to stop.

    uvicorn waits for every response to finish before it stops, and a feed never does;
    ended, the screens reconnect with Last-Event-ID to the next run and miss nothing.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        end_streams(self.app)
        await super().shutdown(sockets)


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run ``app`` until Ctrl-C (or SIGTERM)."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )  # fmt: skip
    # uvicorn raises the caught Ctrl-C again once it has stopped; uvicorn.run swallows it too.
    with contextlib.suppress(KeyboardInterrupt):
        Server(config, app).run()
