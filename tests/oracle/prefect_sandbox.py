"""A throwaway Prefect home for the oracle scripts, and the database they use.

Import this module before anything from Prefect: Prefect reads its settings from the
environment once, when it is first imported (and creates PREFECT_HOME then), so the
environment has to be in place by then. The home is a fresh temporary directory that
is removed when the process exits; nothing is read from or written to ~/.prefect.
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import sys
import tempfile
import time

PREFECT_HOME = tempfile.mkdtemp(prefix="prefect-oracle-")
atexit.register(shutil.rmtree, PREFECT_HOME, ignore_errors=True)

os.environ["PREFECT_HOME"] = PREFECT_HOME
# Prefect logs every orchestration rule that aborts or errors; the oracle records those
# outcomes itself, so the log output would only be noise on stderr.
os.environ["PREFECT_LOGGING_LEVEL"] = "CRITICAL"
os.environ["PREFECT_LOGGING_SERVER_LEVEL"] = "CRITICAL"
logging.disable(logging.CRITICAL)


# A manual clock for Prefect's `pendulum.now` (None: the real one), set by the scripts
# while a scenario's clock-driven steps run; install_manual_clock() routes it.
CLOCK: list = [None]


# The manual clock's origin for the scripts that step it a second at a time.
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def set_clock(seconds: int) -> None:
    """The manual clock at T0 + `seconds`."""
    CLOCK[0] = T0 + dt.timedelta(seconds=seconds)


async def manual_clock_database(path_in: str):
    """Prefect's database, created, with `pendulum.now` on the manual clock; and the
    scenarios of `path_in` (a JSON list)."""
    from prefect.server.database.dependencies import provide_database_interface

    install_manual_clock()
    db = provide_database_interface()
    await db.create_db()
    with open(path_in) as f:
        return db, json.load(f)


def write_answer_list(out: str, answers: list, started: float) -> None:
    """`answers` as one compact JSON line in `out`; their number and the time since
    `started` (perf_counter) to stderr."""
    with open(out, "w") as f:
        json.dump(answers, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"{len(answers)} scenarios answered in {time.perf_counter() - started:.2f}s", file=sys.stderr)


def install_manual_clock() -> None:
    """Route pendulum.now through CLOCK while it is set. Prefect's models and column
    defaults call `pendulum.now(...)` at call time, so patching the module attribute
    reaches all of them."""
    import pendulum

    real_now = pendulum.now

    def now(tz=None):
        return real_now(tz) if CLOCK[0] is None else pendulum.instance(CLOCK[0])

    pendulum.now = now


def database_path(requested: str | None) -> str:
    """The SQLite file to use: `requested` (which must not exist yet) or one in the home."""
    if requested is None:
        return os.path.join(PREFECT_HOME, "oracle.db")
    if os.path.exists(requested):
        raise SystemExit(f"{requested} already exists; give a new path for the database")
    return os.path.abspath(requested)


@contextlib.contextmanager
def prefect_database(path: str):
    """Point Prefect's server at the SQLite file `path` for the duration of the block.

    The connection URL is read from the current settings context each time Prefect's
    database interface is built, so a temporary settings override is enough here.
    """
    # Imported here, not at the top: this module has to be importable before Prefect is.
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings

    with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: "sqlite+aiosqlite:///" + path}):
        yield


def answer_from_command_line(answer_file, description: str, input_help: str, output_help: str,
                             argv: list[str] | None = None):
    """Both scripts' command line: `IN OUT [--db PATH]`; runs the coroutine function
    `answer_file(IN, OUT)` against a fresh database and returns its result."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("input", help=input_help)
    parser.add_argument("output", help=output_help)
    parser.add_argument("--db", help="SQLite file to build (must not exist; default: a temporary one)")
    args = parser.parse_args(argv)
    with prefect_database(database_path(args.db)):
        return asyncio.run(answer_file(args.input, args.output))


async def answer_each(db, scenarios, run_one, out: str, after_each=None) -> None:
    """Answer every scenario with `run_one(session, scenario)`, each in a transaction
    rolled back at its end (so a scenario sees only its own rows), then write the
    answers to `out` (a JSON list) and the time taken to stderr. `after_each()` runs
    after every scenario, even one that raised."""
    # Prefect's SQLite engine turns pysqlite's own BEGIN off and emits "BEGIN <mode>"
    # only while this context variable is set (configurations.py begin_sqlite_stmt);
    # without it, session.begin() is no real transaction and SAVEPOINT/RELEASE commit.
    from prefect.server.database.configurations import SQLITE_BEGIN_MODE

    answers = []
    started = time.perf_counter()
    for scenario in scenarios:
        async with db.session_context() as session:
            token = SQLITE_BEGIN_MODE.set("DEFERRED")
            try:
                transaction = await session.begin()
                try:
                    answers.append(await run_one(session, scenario))
                finally:
                    await transaction.rollback()
            finally:
                SQLITE_BEGIN_MODE.reset(token)
                if after_each is not None:
                    after_each()
    with open(out, "w") as f:
        json.dump(answers, f, indent=1)
    print(f"{len(answers)} scenarios answered in {time.perf_counter() - started:.2f}s", file=sys.stderr)


async def answer_lines(inp: str, out: str, run_one, wipe, before_each=None, report_every: int = 100) -> int:
    """Answer the JSON-lines scenarios of `inp` one by one with `run_one(scenario)`,
    calling `before_each()` before and `wipe()` after each (even one that raised), and
    write `{"scenario", "answer"}` lines to `out`. A scenario the oracle cannot run is
    reported on stderr and left out; returns 1 if any was, else 0."""
    import traceback

    with open(inp) as f:
        scenarios = [json.loads(line) for line in f if line.strip()]
    lines, failed = [], []
    started = time.perf_counter()
    for i, sc in enumerate(scenarios, 1):
        if before_each is not None:
            before_each()
        try:
            answer = await run_one(sc)
        except SystemExit:
            raise
        except Exception:  # noqa: BLE001  (the oracle's own problem: report and skip)
            failed.append(sc.get("id"))
            print(f"scenario {sc.get('id')} could not be run:\n{traceback.format_exc()}", file=sys.stderr)
        else:
            lines.append(json.dumps({"scenario": sc, "answer": answer}, separators=(",", ":")))
        finally:
            await wipe()
        if i % report_every == 0:
            print(f"{i} scenarios ({time.perf_counter() - started:.1f}s)", file=sys.stderr)
    with open(out, "w") as f:
        f.writelines(line + "\n" for line in lines)
    print(f"{len(lines)} scenarios answered in {time.perf_counter() - started:.2f}s", file=sys.stderr)
    return 1 if failed else 0


async def assert_empty(db, *tables) -> None:
    """Fail unless the ORM `tables` hold no rows: a scenario starts on a clean slate."""
    import sqlalchemy as sa

    async with db.session_context() as s:
        for tbl in tables:
            n = (await s.execute(sa.select(sa.func.count()).select_from(tbl))).scalar_one()
            assert n == 0, f"table {tbl.__tablename__} not empty ({n})"


async def delete_all_rows(db) -> None:
    """Empty every table of Prefect's schema, in one transaction."""
    import sqlalchemy as sa
    from prefect.server.database import orm_models as orm

    async with db.session_context(begin_transaction=True) as s:
        # work_pool and work_queue point at each other: check keys at COMMIT only.
        await s.execute(sa.text("PRAGMA defer_foreign_keys = ON"))
        for table in reversed(orm.Base.metadata.sorted_tables):
            await s.execute(table.delete())
