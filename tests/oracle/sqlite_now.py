"""SQLite's 'now' on the oracle's manual clock (prefect_sandbox.CLOCK).

Prefect reads "now" from SQLite in some queries (julianday('now') in the foreman's,
strftime/datetime('now') in run history and lateness). `install(engine, names)`
replaces those SQL functions on every connection of Prefect's engine with ones that
swap a 'now' argument for the manual clock (while one is set) and hand the call to
SQLite's own function on a private connection; `check(db, names)` proves, before any
scenario runs, that the replacements are the ones called. No Prefect import here.
"""
from __future__ import annotations

import datetime
import sqlite3
import threading

from prefect_sandbox import CLOCK

_REAL_SQLITE = sqlite3.connect(":memory:", check_same_thread=False)
_REAL_LOCK = threading.Lock()
# What check() selects per function, with `{}` for the time argument.
_PROBES = {"strftime": "strftime('%Y-%m-%d %H:%M:%f000', {})", "datetime": "datetime({})", "julianday": "julianday({})"}


def sqlite_text(t: datetime.datetime) -> str:
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _on_manual_clock(name: str):
    """SQL function `name`(...) evaluated by SQLite's own, 'now' being the manual clock."""
    def call(*args):
        if CLOCK[0] is not None:
            args = tuple(sqlite_text(CLOCK[0]) if isinstance(a, str) and a.strip().lower() == "now" else a
                         for a in args)
        marks = ", ".join("?" * len(args))
        with _REAL_LOCK:
            return _REAL_SQLITE.execute(f"SELECT {name}({marks})", args).fetchone()[0]
    return call


def install(async_engine, names: tuple[str, ...]) -> None:
    """Replace the SQL functions `names` on every new connection (call it before the
    first connection is made)."""
    import sqlalchemy as sa

    def on_connect(dbapi_connection, connection_record):
        for name in names:
            dbapi_connection.create_function(name, -1, _on_manual_clock(name))

    sa.event.listen(async_engine.sync_engine, "connect", on_connect)


async def check(db, names: tuple[str, ...], t0: datetime.datetime) -> None:
    """The replacements really answer: each function's 'now' (and 'NOW') follows the
    manual clock, at two probe times around `t0`."""
    import sqlalchemy as sa

    probes = [_PROBES[n] for n in names]
    for probe in (t0 + datetime.timedelta(seconds=1234, milliseconds=567), t0 - datetime.timedelta(days=400)):
        CLOCK[0] = probe
        try:
            async with db.session_context() as s:
                got = tuple((await s.execute(sa.text("SELECT " + ", ".join(
                    p.format(now) for now in ("'now'", "'NOW'") for p in probes)))).one())
        finally:
            CLOCK[0] = None
        text = sqlite_text(probe)
        want = _REAL_SQLITE.execute("SELECT " + ", ".join(p.format("?") for p in probes),
                                    (text,) * len(probes)).fetchone() * 2
        if got != tuple(want):
            raise SystemExit(f"SQLite's 'now' is not the manual clock: {got} != {tuple(want)}")
