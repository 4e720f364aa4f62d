"""The embedded backend: one SQLite file in WAL mode, on the event loop's own thread.

A transaction here is a few dozen microseconds of work that never waits for
the disk (WAL with ``synchronous=NORMAL`` commits by one ``write``, durable
against a crash of the process), so it runs inline: a hop to a database
thread cost more than the work itself (about 0.1 ms, and under load a wait
for the GIL of up to the 5 ms switch interval). Callers that ask during one
loop turn are gathered and committed together (group commit), each inside
its own savepoint so one caller's error never undoes another's work. Only
the WAL checkpoint, which does read and write the disk, runs in a thread on
a connection of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import QueueError, StoreError
from .base import R, Store, Tx
from .migrate import pending
from .sqlite_cache import ReadCache
from .sqlite_tx import SQLiteTx

log = logging.getLogger(__name__)
BUSY_WAIT_MS = 5  # how long a statement may block the loop on another process's lock
LOCK_WAIT_S = 5.0  # how long a batch waits, off the loop, for that lock before it fails
Job = tuple[Callable[[Tx], Any], "asyncio.Future[Any]"]
Outcome = tuple[bool, Any]


class SQLiteStore(Store):
    """A Store on one SQLite database file (or ':memory:')."""

    def __init__(self, path: str | Path, *, batch_limit: int = 256) -> None:
        super().__init__()
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self._batch_limit = batch_limit
        self._db: sqlite3.Connection | None = None
        self._pending: list[Job] = []
        self._flusher: asyncio.Task[None] | None = None
        self._trace: Callable[[str], None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._reader: sqlite3.Connection | None = None
        self._reading = asyncio.Lock()
        self._cache = ReadCache()

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # data_version counts per connection: a new one must not inherit the old one's cache.
        self._cache = ReadCache()
        self._configure()
        self._migrate()
        if self.path != ":memory:":
            self._checkpointer = asyncio.create_task(self._checkpoints(), name="sqlite-checkpoints")

    async def close(self) -> None:
        try:
            if self._checkpointer is not None:
                self._checkpointer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._checkpointer
                self._checkpointer = None
            if self._flusher is not None:
                await asyncio.shield(self._flusher)
        finally:
            async with self._reading:
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None
            if self._db is not None:
                self._db.close()
                self._db = None

    async def run(self, fn: Callable[[Tx], R]) -> R:
        if self._db is None:
            raise StoreError(reason="the store is not open")
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, fut))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="sqlite-group-commit")
        return await fut

    async def read(self, fn: Callable[[Tx], R]) -> R:
        """Run a long read-only ``fn`` on a connection of its own in a thread: WAL lets it
        read a consistent snapshot while commits go on, and the loop is not held up."""
        if self._db is None:
            raise StoreError(reason="the store is not open")
        if self.path == ":memory:":
            return await self.run(fn)  # another connection would see another database
        async with self._reading:
            if self._reader is None:
                self._reader = sqlite3.connect(
                    f"{Path(self.path).resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                    check_same_thread=False,
                )  # fmt: skip
            return await asyncio.to_thread(self._read_on, self._reader, fn)

    @staticmethod
    def _read_on(conn: sqlite3.Connection, fn: Callable[[Tx], R]) -> R:
        conn.execute("BEGIN")
        try:
            return fn(SQLiteTx(conn))
        except Exception as exc:
            raise _as_queue_error(exc) from exc
        finally:
            conn.execute("ROLLBACK")

    async def set_trace(self, callback: Callable[[str], None] | None) -> None:
        """Hand every statement the connection runs to ``callback`` (for bench/engine.py)."""
        self._trace = callback
        self._raw().set_trace_callback(callback)

    async def _checkpoints(self, every_s: float = 1.0) -> None:
        """Copy the WAL back into the database now and then, off the committing connection.

        PASSIVE never waits for the writer; the WAL is reset when a checkpoint catches up.
        """
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            while True:
                await asyncio.sleep(every_s)
                running = asyncio.ensure_future(
                    asyncio.to_thread(conn.execute, "PRAGMA wal_checkpoint(PASSIVE)")
                )
                try:
                    await asyncio.shield(running)
                except asyncio.CancelledError:
                    # Let the checkpoint in flight finish before its connection closes.
                    with contextlib.suppress(sqlite3.Error):
                        await running
                    raise
                except sqlite3.Error as exc:  # busy or locked: the next round tries again
                    log.debug("checkpoint skipped: %s", exc)
        finally:
            conn.close()

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._batch_limit]
                del self._pending[: self._batch_limit]
                await self._flush_batch(batch)
        finally:
            self._flusher = None
            # Cancelled, or the connection gone: nobody may be left waiting.
            for _, fut in self._pending:
                if not fut.done():
                    fut.set_exception(StoreError(reason="the store stopped before this ran"))
            self._pending.clear()

    async def _flush_batch(self, batch: list[Job]) -> None:
        try:
            outcomes, events = await self._apply_when_free(batch)
        except Exception as exc:
            # The batch itself failed (the connection closed under us, or another process
            # kept the database locked): every caller in it hears of it, never hangs.
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(StoreError(reason=f"{type(exc).__name__}: {exc}"))
            return
        try:
            if events:
                self._committed(events)
        finally:
            for (_, fut), (ok, value) in zip(batch, outcomes, strict=True):
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)

    async def _apply_when_free(self, batch: list[Job]) -> tuple[list[Outcome], list]:
        """Apply the batch; while another process holds the write lock, wait for it without
        holding up the loop (the connection itself waits only BUSY_WAIT_MS)."""
        deadline = time.monotonic() + LOCK_WAIT_S
        delay = 0.005
        while True:
            try:
                return self._apply(batch)
            except _Locked:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        reason=f"another process kept the database locked for {LOCK_WAIT_S:.0f} s"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)

    # --- the statements ------------------------------------------------------

    def _configure(self) -> None:
        conn = self._raw()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_WAIT_MS}")  # on the loop: see _apply_when_free
        # Checkpoints run on their own connection and thread (see _checkpoints): done by the
        # committing connection they put a 10-20 ms stall into one command in a hundred.
        if self.path != ":memory:":
            conn.execute("PRAGMA wal_autocheckpoint=0")

    def _migrate(self) -> None:
        conn = self._raw()
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL,"
            " version INTEGER NOT NULL, name TEXT NOT NULL, applied_at REAL NOT NULL,"
            " PRIMARY KEY (component, version))"
        )
        applied = {
            (r[0], r[1]) for r in conn.execute("SELECT component, version FROM schema_migrations")
        }
        for mig in pending(applied, self.components, "sqlite"):
            conn.executescript(
                f"BEGIN;\n{mig.sql}\nINSERT INTO schema_migrations VALUES"
                f" ('{mig.component}', {mig.version}, '{mig.name}', {time.time()});\nCOMMIT;"
            )

    def _raw(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(reason="the store is not open")
        return self._db

    def _apply(self, batch: list[Job]) -> tuple[list[Outcome], list]:
        conn = self._raw()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise _Locked from exc
            raise
        # Another process may have committed since the last batch: then nothing cached holds.
        self._cache.begin(conn.execute("PRAGMA data_version").fetchone()[0])
        tx = SQLiteTx(conn, self._cache)
        single, changes = len(batch) == 1, conn.total_changes
        outcomes: list[Outcome] = []
        try:
            for fn, fut in batch:
                if fut.cancelled():  # its caller gave up: do not commit what it asked
                    outcomes.append((False, asyncio.CancelledError()))
                    continue
                outcomes.append(self._apply_one(conn, tx, fn, single))
            if single and not outcomes[0][0]:
                conn.execute("ROLLBACK")
                if conn.total_changes != changes:
                    self._cache.clear()
                return outcomes, []
            conn.execute("COMMIT")
        except Exception as exc:
            self._cache.clear()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failure = StoreError(reason=str(exc))
            failure.__cause__ = exc
            return [(False, failure)] * len(batch), []
        except BaseException:
            self._cache.clear()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes, tx.events

    @staticmethod
    def _apply_one(conn: sqlite3.Connection, tx: SQLiteTx, fn: Callable, single: bool) -> Outcome:
        if single:
            try:
                return True, fn(tx)
            except Exception as exc:
                return False, _as_queue_error(exc)
        mark, changes = len(tx.events), conn.total_changes
        conn.execute("SAVEPOINT job")
        try:
            value = fn(tx)
        except Exception as exc:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            del tx.events[mark:]
            if conn.total_changes != changes:
                tx.forget()  # what it wrote is undone; a refusal that wrote nothing keeps all
            return False, _as_queue_error(exc)
        conn.execute("RELEASE job")
        return True, value


class _Locked(Exception):
    """Another process holds the database's write lock."""


def _as_queue_error(exc: Exception) -> Exception:
    """Domain errors pass through; a driver error becomes a StoreError naming it."""
    if isinstance(exc, QueueError):
        return exc
    if isinstance(exc, sqlite3.Error):
        failure = StoreError(reason=f"{type(exc).__name__}: {exc}")
        failure.__cause__ = exc
        return failure
    return exc
