"""One check, shared by the stateful machine and the cache's differential test: every
answer of the SQLite store's read cache is what a fresh read of the tables gives."""

from __future__ import annotations

from collections.abc import Sequence

from queue_engine.store.sqlite_tx import TICKET_COLUMNS, SQLiteTx


def same_as_tables(
    tx: SQLiteTx,
    hall: str,
    services: Sequence[str],
    classes: Sequence[str],
    vns: Sequence[str | None],
    now: float,
    longest: int,
    where: str = "",
) -> None:
    """Fronts of 1 to ``longest``, each work number's heads and workstation, every ticket,
    and the rows the transaction diffs its updates against, all as the tables say."""
    fresh = SQLiteTx(tx.conn)  # the same transaction, no cache
    for svc in services:
        for n in range(1, longest + 1):
            got = {t.id: t for t in tx.waiting_front(hall, svc, classes, n)}
            want = {t.id: t for t in fresh.waiting_front(hall, svc, classes, n)}
            assert got == want, (where, "front", svc, n, sorted(got), sorted(want))
    for vn in vns:
        got = {t.id: t for t in tx.waiting_heads(hall, services, vn, now, classes)}
        want = {t.id: t for t in fresh.waiting_heads(hall, services, vn, now, classes)}
        assert got == want, (where, "heads", vn, sorted(got), sorted(want))
        if vn is not None:
            assert tx.get_workstation(hall, vn) == fresh.get_workstation(hall, vn), (where, vn)
    for (tid,) in tx.conn.execute("SELECT id FROM tickets"):
        assert tx.get_ticket(tid) == fresh.get_ticket(tid), (where, "ticket", tid)
    for tid, row in list(tx._rows.items()):  # the base an UPDATE diffs against
        r = tx.conn.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE id=?", (tid,)).fetchone()
        assert r is None or tuple(r[2:]) == tuple(row), (where, "diff base", tid)
