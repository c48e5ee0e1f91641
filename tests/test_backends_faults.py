"""Bad locations, bad files and failed writes: each gives a clear BackendError, leaves
the disk as it was, and never lets memory get ahead of what is durable."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import zlib

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_backends_support import (  # noqa: E402
    Workload, as_schema_version, dump, execute_sql, make_clock, nested_lists, reader_elsewhere, rewrite_snapshot,
)

from backends.sqlite import SCHEMA_VERSION  # noqa: E402
from engine import Completed, Engine, State  # noqa: E402
from engine.errors import BackendError, ValidationError  # noqa: E402
from engine.validation import MAX_JSON_DEPTH  # noqa: E402

SCHEMES = ("sqlite", "json")


def _listing(folder) -> dict:
    """Every file in `folder` with its bytes: 'nothing changed on disk' is equality."""
    out = {}
    for name in sorted(os.listdir(folder)):
        p = os.path.join(folder, name)
        out[name] = open(p, "rb").read() if os.path.isfile(p) else "<dir>"
    return out


def _populated(url: str, steps: int = 60, **options) -> Engine:
    engine = Engine.open(url, clock=make_clock(), **options)
    w = Workload(7)
    for _ in range(steps):
        w.step(engine)
    return engine


@contextlib.contextmanager
def unprivileged():
    """Run the block with an unprivileged effective uid, so permission bits bite
    even when the tests run as root. A no-op for a normal user."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def shared_dir():
    """A folder an unprivileged uid can use (tmp_path's parents are private to root)."""
    folder = tempfile.mkdtemp(prefix="runstate-faults-")
    os.chmod(folder, 0o777)
    yield folder
    os.chmod(folder, 0o777)
    shutil.rmtree(folder, ignore_errors=True)


# locations --------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", SCHEMES)
def test_an_engine_dropped_unclosed_gives_its_lock_back(tmp_path, scheme):
    # A notebook or a test that forgets close(): once the engine is gone, the file
    # is no longer "open for writing by another engine", and its writes are there.
    import gc
    import weakref

    url = f"{scheme}:///{tmp_path / 'runs'}"
    engine = Engine.open(url)
    engine.create_flow(name="kept")
    engine.flush()
    gone = weakref.ref(engine)
    del engine
    gc.collect()
    assert gone() is None
    with Engine.open(url) as reopened:
        assert [f.name for f in reopened.read_flows()] == ["kept"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_file_made_while_an_open_waits_for_the_lock_is_loaded(tmp_path, scheme, monkeypatch):
    # Whether the file exists is asked again under the lock: another engine may have
    # saved it between the first look and the lock. Taken as new, it would be
    # overwritten (JSON) or deleted on a failed open (SQLite).
    import backends.base as module  # (lock_location, which both backends open with, looks there)

    url = f"{scheme}:///{tmp_path / 'runs'}"
    real_check, calls = module.check_location, []

    def check_then_another_engine_saves(path):
        found = real_check(path)
        calls.append(found)
        if len(calls) == 1:
            monkeypatch.setattr(module, "check_location", real_check)  # the other engine looks normally
            with Engine.open(url) as other:
                other.create_flow(name="from-the-other")
            monkeypatch.setattr(module, "check_location", check_then_another_engine_saves)
        return found

    monkeypatch.setattr(module, "check_location", check_then_another_engine_saves)
    with Engine.open(url) as late:
        assert [f.name for f in late.read_flows()] == ["from-the-other"]
        late.create_flow(name="from-the-late-one")
    assert calls[0] is False
    with Engine.open(url, read_only=True) as reader:
        assert sorted(f.name for f in reader.read_flows()) == ["from-the-late-one", "from-the-other"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_directory_is_refused(tmp_path, scheme):
    (tmp_path / "d").mkdir()
    before = _listing(tmp_path)
    with pytest.raises(BackendError, match="is a directory"):
        Engine.open(f"{scheme}:///{tmp_path / 'd'}")
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("scheme", SCHEMES)
def test_missing_folder_is_refused(tmp_path, scheme):
    with pytest.raises(BackendError, match="does not exist"):
        Engine.open(f"{scheme}:///{tmp_path / 'nope' / 'x.db'}")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("scheme", SCHEMES)
def test_unreadable_file_is_refused(shared_dir, scheme):
    path = os.path.join(shared_dir, "runs")
    _populated(f"{scheme}:///{path}").close()
    os.chmod(path, 0o200)
    before = _listing(shared_dir)
    with unprivileged(), pytest.raises(BackendError, match="not readable"):
        Engine.open(f"{scheme}:///{path}")
    assert _listing(shared_dir) == before


@pytest.mark.parametrize("scheme", SCHEMES)
def test_read_only_location_is_refused(shared_dir, scheme):
    path = os.path.join(shared_dir, "runs")
    _populated(f"{scheme}:///{path}").close()
    os.chmod(path, 0o444)
    before = _listing(shared_dir)
    with unprivileged(), pytest.raises(BackendError, match="read-only"):
        Engine.open(f"{scheme}:///{path}")
    os.chmod(path, 0o644)
    os.chmod(shared_dir, 0o555)
    with unprivileged(), pytest.raises(BackendError, match="not writable"):
        Engine.open(f"{scheme}:///{path}")
    with unprivileged(), pytest.raises(BackendError, match="not writable"):
        Engine.open(f"{scheme}:///{os.path.join(shared_dir, 'new')}")
    os.chmod(shared_dir, 0o777)
    assert _listing(shared_dir) == before


@pytest.mark.parametrize("scheme", SCHEMES)
def test_second_engine_on_one_file_is_refused(tmp_path, scheme):
    url = f"{scheme}:///{tmp_path / 'runs'}"
    first = _populated(url)
    with pytest.raises(BackendError, match="already open for writing"):
        Engine.open(url)
    first.close()
    second = Engine.open(url)  # released on close
    assert second.read_flows()
    second.close()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_file_held_by_another_process_is_refused(tmp_path, scheme):
    url = f"{scheme}:///{tmp_path / 'runs'}"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from engine import Engine; e = Engine.open(sys.argv[1]); e.create_flow(name='held'); "
         "print('ready', flush=True); sys.stdin.readline(); e.close()", url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(BackendError, match="already open for writing by another engine or process"):
            Engine.open(url)
    finally:
        holder.communicate("\n", timeout=30)
    engine = Engine.open(url)
    assert engine.read_flow_by_name("held") is not None
    engine.close()


# bad files ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("content", [b"hello, I am a text file\n", b"\x00\xff" * 300, b'{"a": 1}\n{}'])
def test_foreign_file_is_refused(tmp_path, scheme, content):
    path = tmp_path / "runs"
    path.write_bytes(content)
    before = _listing(tmp_path)
    with pytest.raises(BackendError, match="foreign|not a runstate|not a SQLite"):
        Engine.open(f"{scheme}:///{path}")
    assert _listing(tmp_path) == before


def test_other_apps_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    execute_sql(path, "CREATE TABLE notes (body TEXT)")
    before = _listing(tmp_path)
    with pytest.raises(BackendError, match="not a runstate one"):
        Engine.open(f"sqlite:///{path}")
    assert _listing(tmp_path) == before


def test_json_url_on_a_sqlite_file_and_back(tmp_path):
    _populated(f"sqlite:///{tmp_path / 'a.db'}").close()
    _populated(f"json:///{tmp_path / 'a.json'}").close()
    with pytest.raises(BackendError, match="not a runstate snapshot"):
        Engine.open(f"json:///{tmp_path / 'a.db'}")
    with pytest.raises(BackendError, match="not a SQLite database"):
        Engine.open(f"sqlite:///{tmp_path / 'a.json'}")


@pytest.mark.parametrize("statement, match", [
    pytest.param("PRAGMA user_version = 99", "schema version 99; this runstate reads versions 1 to 6",
                 id="schema-version-mismatch"),
    pytest.param("ALTER TABLE flow_run ADD COLUMN extra TEXT", "table flow_run has columns", id="altered-table"),
    pytest.param("UPDATE flow_run SET created = 'not a date'", "bad row in table flow_run", id="bad-row"),
])
def test_damaged_sqlite_database_is_refused(tmp_path, statement, match):
    path = tmp_path / "runs.db"
    _populated(f"sqlite:///{path}").close()
    execute_sql(path, statement)
    before = _listing(tmp_path)
    with pytest.raises(BackendError, match=match):
        Engine.open(f"sqlite:///{path}")
    assert _listing(tmp_path) == before


def test_older_sqlite_database_refused_for_a_bad_row_is_not_upgraded(tmp_path):
    """The upgrade of an older file shares the transaction that reads its rows: a file
    refused for a bad row is left byte for byte as it was, and opens (upgraded) once
    the row is mended."""
    path = _older_file_refused_unchanged(tmp_path, 3, "UPDATE flow_run SET created = 'not a date' WHERE rowid = 1",
                                         "bad row in table flow_run")
    execute_sql(path, "UPDATE flow_run SET created = updated WHERE rowid = 1")
    Engine.open(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'flow_run_input'").fetchone()[0] == 1
    conn.close()


def _snapshot(tmp_path) -> tuple[str, bytes]:
    path = str(tmp_path / "runs.json")
    _populated(f"json:///{path}").close()
    return path, open(path, "rb").read()


@pytest.mark.parametrize("cut", [10, 200, -1])
def test_truncated_snapshot_is_refused(tmp_path, cut):
    path, blob = _snapshot(tmp_path)
    open(path, "wb").write(blob[:cut] if cut >= 0 else blob[:-1])
    with pytest.raises(BackendError, match="truncated|not a runstate snapshot"):
        Engine.open(f"json:///{path}")


def test_an_empty_file_is_a_new_store_for_a_writer_as_with_sqlite(tmp_path):
    # (touch, mktemp): a save never leaves an empty file, it renames a whole one over it
    for name in ("a.json", "a.db"):
        path = tmp_path / name
        path.touch()
        url = f"{'json' if name.endswith('json') else 'sqlite'}:///{path}"
        with pytest.raises(BackendError, match="empty|not a SQLite database"):
            Engine.open(url, read_only=True)  # nothing to read: refused, by both
        with Engine.open(url) as engine:
            assert engine.count_flow_runs() == 0
            engine.create_flow(name="f")
        with Engine.open(url, read_only=True) as reopened:
            assert [f.name for f in reopened.read_flows()] == ["f"]


def test_damaged_snapshot_is_refused(tmp_path):
    path, blob = _snapshot(tmp_path)
    damaged = bytearray(blob)
    damaged[len(blob) // 2] ^= 0x01
    open(path, "wb").write(bytes(damaged))
    with pytest.raises(BackendError, match="checksum mismatch"):
        Engine.open(f"json:///{path}")


def test_snapshot_of_another_version_is_refused(tmp_path):
    path, _ = _snapshot(tmp_path)
    rewrite_snapshot(path, {"version": 2})
    with pytest.raises(BackendError, match="format version 2; this runstate reads version 1"):
        Engine.open(f"json:///{path}")


@pytest.mark.parametrize("change, match", [
    (lambda body: body.pop("tables"), "is corrupt: no tables"),
    (lambda body: body.update(tables=[]), "is corrupt: no tables"),
    (lambda body: body["tables"].update(bogus={"columns": [], "rows": []}),
     r"has unknown table\(s\) \['bogus'\] \(corrupt or newer file\)"),
    (lambda body: body["tables"].update(flow_run=[]), "table flow_run does not have the expected columns"),
    (lambda body: body["tables"]["flow_run"].update(columns="id"), "table flow_run does not have the expected columns"),
    (lambda body: body["tables"]["flow_run"]["columns"].reverse(), "table flow_run does not have the expected columns"),
    (lambda body: body["tables"]["flow_run"].update(rows={}), "table flow_run has malformed rows"),
])
def test_a_snapshot_whose_checksum_holds_but_whose_tables_are_malformed_is_refused(tmp_path, change, match):
    path, good = _snapshot(tmp_path)
    rewrite_snapshot(path, {}, change)
    with pytest.raises(BackendError, match=match):
        Engine.open(f"json:///{path}")
    # The refused open released its lock: the good file put back opens.
    open(path, "wb").write(good)
    Engine.open(f"json:///{path}").close()


def test_snapshot_with_a_bad_row_leaves_no_half_loaded_engine(tmp_path):
    path, _ = _snapshot(tmp_path)

    def break_last_state(body):
        rows = body["tables"]["flow_run_state"]["rows"]
        rows[-1][body["tables"]["flow_run_state"]["columns"].index("flow_run_id")] = "not-a-uuid"

    rewrite_snapshot(path, {}, break_last_state)
    with pytest.raises(BackendError, match="bad row in table flow_run_state"):
        Engine.open(f"json:///{path}")
    # The refused open released its lock: a fixed file opens.
    rewrite_snapshot(path, {}, lambda body: body["tables"].pop("flow_run_state"))
    Engine.open(f"json:///{path}").close()


def test_rebuild_failure_empties_the_engine(tmp_path):
    from backends.sqlite import SqliteBackend

    path = str(tmp_path / "runs.db")
    _populated(f"sqlite:///{path}").close()
    backend = SqliteBackend(path)
    backend.open()
    engine = Engine()
    engine.create_flow(name="already here")
    with pytest.raises(BackendError, match="non-empty engine"):
        backend.load(engine)
    assert all(not t.rows for t in engine._store.tables.values())
    backend.abort()


@pytest.mark.parametrize(
    "url, options, error, match",
    [
        ("postgres:///x", {}, BackendError, "unknown backend 'postgres'"),
        ("runs.db", {}, BackendError, "must look like"),
        ("sqlite://", {}, BackendError, "has no path"),
        ("memory:///x", {}, BackendError, "takes no path"),
        # read by SQLAlchemy, and once silently taken as a file's name
        ("sqlite:///{tmp}/a.db?mode=ro", {}, BackendError, "query or fragment is not read"),
        ("json:///{tmp}/a.json?save_every=10", {}, BackendError, "query or fragment is not read"),
        ("sqlite:///{tmp}/a.db#x", {}, BackendError, "query or fragment is not read"),
        ("sqlite:///:memory:", {}, BackendError, "use 'memory://'"),
        ("sqlite:///{tmp}/new/", {}, BackendError, "names a folder"),
        ("sqlite:///{tmp}/a.db", {"bogus": 1}, ValidationError, "unknown option.*bogus; allowed: batch, read_only, synchronous$"),
        # a typo beside read_only is a typo, not "a write option"
        ("sqlite:///{tmp}/a.db", {"bogus": 1, "read_only": True}, ValidationError, "unknown option.*: bogus;"),
        ("json:///{tmp}/a.json", {"colour": 1, "read_only": True}, ValidationError, "allowed: read_only, save_every$"),
        ("memory://", {"colour": 1}, ValidationError, "unknown option.*colour; allowed: none$"),
        ("sqlite:///{tmp}/a.db", {"batch": 0}, BackendError, "batch must be a positive integer"),
        ("sqlite:///{tmp}/a.db", {"synchronous": "OFF"}, BackendError, "synchronous must be"),
        # (str() of these raised ValueError and RecursionError; a NUL reached open() as a ValueError)
        ("sqlite:///{tmp}/a.db", {"synchronous": 10**5000}, BackendError, "synchronous must be .* got <int of"),
        ("sqlite:///{tmp}/a.db", {"synchronous": nested_lists(3000)}, BackendError, r"synchronous must be .* got \[\[\["),
        ("sqlite:///{tmp}/a\x00.db", {}, BackendError, "a path cannot hold a NUL character"),
        ("json:///{tmp}/a\x00.json", {}, BackendError, "a path cannot hold a NUL character"),
        ("json:///{tmp}/a.json", {"save_every": -1}, BackendError, "save_every must be"),
        ("json:///{tmp}/a.json", {"batch": 3}, ValidationError, "unknown option.*batch"),
    ],
)
def test_bad_urls_and_options(tmp_path, url, options, error, match):
    with pytest.raises(error, match=match):
        Engine.open(url.format(tmp=tmp_path), **options)
    assert os.listdir(tmp_path) == []


# failed writes --------------------------------------------------------------------------------------

def _rows_on_disk(path) -> dict:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        kinds = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {k: conn.execute(f"SELECT count(*) FROM {k}").fetchone()[0] for k in kinds}
    finally:
        conn.close()


def _counts(engine) -> dict:
    return {k: len(t.rows) for k, t in engine._store.tables.items()}


def test_sqlite_disk_full_fails_the_call_atomically(tmp_path):
    path = tmp_path / "runs.db"
    engine = _populated(f"sqlite:///{path}")
    flow = engine.read_flows()[0]
    before = dump(engine)
    conn = engine.backend._conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is now full
    with pytest.raises(BackendError, match="full"):
        engine.create_flow_run(flow_id=flow.id, parameters={"blob": "x" * 200_000})
    assert dump(engine) == before
    assert _rows_on_disk(path) == _counts(engine)
    conn.execute("PRAGMA max_page_count = 1073741823")  # space freed: writes work again
    run = engine.create_flow_run(flow_id=flow.id, parameters={"blob": "x" * 200_000})
    engine.close()
    reopened = Engine.open(f"sqlite:///{path}")
    assert reopened.read_flow_run(run.id).parameters["blob"] == "x" * 200_000
    reopened.close()


def test_sqlite_read_only_database_fails_the_call_atomically(tmp_path):
    path = tmp_path / "runs.db"
    engine = _populated(f"sqlite:///{path}")
    before = dump(engine)
    engine.backend._conn.execute("PRAGMA query_only = 1")
    runs = list(engine._store.tables["flow_run"].rows)
    with pytest.raises(BackendError, match="readonly|read-only|query_only"):
        with engine.transaction():
            engine.update_flow_run(runs[0], name="changed")
            engine.delete_flow_run(runs[1])
    assert dump(engine) == before
    assert _rows_on_disk(path) == _counts(engine)
    engine.backend._conn.execute("PRAGMA query_only = 0")
    engine.close()


# Every store mode: the deferred ones (a batch, a snapshot saved every N commits or
# at close) used to take a value JSON cannot hold and then fail every later save.
_MODES = [("sqlite", {}), ("sqlite", {"batch": 5}), ("json", {}), ("json", {"save_every": 1}),
          ("json", {"save_every": 5})]


@pytest.mark.parametrize("scheme, options", _MODES)
def test_result_data_is_kept_as_a_store_gives_it_back(tmp_path, scheme, options):
    url = f"{scheme}:///{tmp_path / 'runs'}"
    engine = _populated(url, **options)
    flow = engine.read_flows()[0]
    run = engine.create_flow_run(flow_id=flow.id)
    before = dump(engine)
    # Not JSON at all: refused by the engine before anything changes.
    with pytest.raises(ValidationError, match="state.data must hold JSON values"):
        engine.set_flow_run_state(run.id, Completed(data={"when": object()}), force=True)
    with pytest.raises(ValidationError, match="state.data keys must be strings"):
        engine.set_flow_run_state(run.id, Completed(data={1: "a"}), force=True)
    assert dump(engine) == before
    # JSON as Prefect's JSON column keeps it: NaN None, tuples lists, nested keys text.
    data = {"x": float("nan"), "t": (1, 2), "nested": {1: "a"}}
    engine.set_flow_run_state(run.id, Completed(data=data), force=True)
    kept = {"x": None, "t": [1, 2], "nested": {"1": "a"}}
    assert engine.read_flow_run(run.id).state.data == kept
    assert data["t"] == (1, 2)  # the caller's value is not changed
    engine.create_flow_run(flow_id=flow.id)  # later writes and saves go on
    expected = dump(engine)
    engine.close()
    with Engine.open(url) as reopened:
        assert dump(reopened) == expected
        assert reopened.read_flow_run(run.id).state.data == kept


@pytest.mark.parametrize("scheme, options", _MODES)
def test_json_nesting_a_fresh_process_could_not_decode_is_refused_where_it_enters(tmp_path, scheme, options):
    """A value nested ~990 deep used to be stored, then made the whole store fail to
    open (a bare RecursionError). Deeper than MAX_JSON_DEPTH is refused, naming the
    field, in every free-form field; as deep as that is kept and reopens."""
    url = f"{scheme}:///{tmp_path / 'runs'}"
    engine = _populated(url, **options)
    flow = engine.read_flows()[0]
    run = engine.create_flow_run(flow_id=flow.id)
    before = dump(engine)
    for depth in (MAX_JSON_DEPTH + 1, 990, 5000):
        with pytest.raises(ValidationError, match=r"flow_run\.parameters nests"):
            engine.create_flow_run(flow_id=flow.id, parameters={"p": nested_lists(depth - 1)})
        with pytest.raises(ValidationError, match=r"state\.data nests"):
            engine.set_flow_run_state(run.id, Completed(data=nested_lists(depth)), force=True)
        with pytest.raises(ValidationError, match=r"deployment\.pull_steps nests"):
            engine.create_deployment(flow.id, "deep", pull_steps=[{"p": nested_lists(depth - 2)}])
    assert dump(engine) == before
    # Brackets inside strings are text, not nesting.
    deepest = engine.create_flow_run(flow_id=flow.id, parameters={"p": nested_lists(MAX_JSON_DEPTH - 1), "s": "[{" * 600,
                                                                     "q": '\\"[' * 300})
    expected = dump(engine)
    engine.close()
    with Engine.open(url) as reopened:
        assert dump(reopened) == expected
        assert reopened.read_flow_run(deepest.id).parameters["s"] == "[{" * 600


def test_a_stored_value_too_deep_to_decode_is_a_bad_row(tmp_path):
    """A store written before the depth limit (or by hand) with a value no decoder
    reaches is refused as a bad row, like any other, not with a bare RecursionError."""
    path = tmp_path / "runs.db"
    _populated(f"sqlite:///{path}").close()
    # (100,000 levels: CPython 3.13's decoder reaches 5,000, 3.11's about 1,000)
    execute_sql(path, "UPDATE flow_run SET parameters = '" + "[" * 100_000 + "]" * 100_000 + "'")
    with pytest.raises(BackendError, match="bad row in table flow_run"):
        Engine.open(f"sqlite:///{path}")
    json_path = tmp_path / "runs.json"
    _populated(f"json:///{json_path}").close()
    blob = open(json_path, "rb").read()
    head, payload = blob.split(b"\n", 1)
    deep = payload.replace(b'"tables":', b'"deep":' + b"[" * 100_000 + b"]" * 100_000 + b',"tables":', 1)
    header = json.loads(head)
    header.update(length=len(deep), crc32=zlib.crc32(deep))
    open(json_path, "wb").write(json.dumps(header).encode() + b"\n" + deep)
    with pytest.raises(BackendError, match="is corrupt"):
        Engine.open(f"json:///{json_path}")


@pytest.mark.parametrize("scheme, options", _MODES)
def test_a_limit_rate_no_store_can_hold_is_refused(tmp_path, scheme, options):
    engine = _populated(f"{scheme}:///{tmp_path / 'runs'}", **options)
    before = dump(engine)
    for bad in (float("nan"), float("inf"), 10**400):  # (the last: past float, not an OverflowError)
        with pytest.raises(ValidationError, match="slot_decay_per_second must be a finite non-negative number"):
            engine.create_concurrency_limit_v2("n", 3, slot_decay_per_second=bad)
    limit = engine.create_concurrency_limit_v2("ok", 3)
    engine.bulk_increment_active_slots([limit.id], 1)
    with pytest.raises(ValidationError, match="occupancy_seconds must be a finite number"):
        engine.bulk_decrement_active_slots([limit.id], 1, occupancy_seconds=float("nan"))
    assert limit.avg_slot_occupancy_seconds == 2.0 and limit.active_slots == 1
    engine.delete_concurrency_limit_v2(limit.id)
    assert dump(engine) == before
    engine.close()


class _FailingFile:
    """A file whose writes fail as on a full disk."""

    def __init__(self, fd, mode):
        self._f = os.fdopen(fd, mode)

    def write(self, data):
        self._f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def test_json_failed_save_keeps_the_old_snapshot(tmp_path):
    path = tmp_path / "runs.json"
    engine = _populated(f"json:///{path}", save_every=1)
    old = path.read_bytes()
    before = dump(engine)
    engine.backend._fdopen = _FailingFile
    flow = engine.read_flows()[0]
    with pytest.raises(BackendError, match="No space left on device"):
        engine.create_flow_run(flow_id=flow.id)  # autosave fails: the call is undone
    assert dump(engine) == before
    with pytest.raises(BackendError, match="No space left on device"):
        engine.flush()
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["runs.json", "runs.json.lock"]  # no temporary left
    engine.backend._fdopen = os.fdopen
    engine.close()
    reopened = Engine.open(f"json:///{path}")
    assert dump(reopened) == before
    reopened.close()


def test_batched_flush_failure_keeps_the_batch_for_the_next_flush(tmp_path):
    path = tmp_path / "runs.db"
    engine = _populated(f"sqlite:///{path}", batch=1000)
    assert _rows_on_disk(path)["flow_run"] == 0  # nothing written yet: one batch
    conn = engine.backend._conn
    conn.execute("PRAGMA query_only = 1")
    with pytest.raises(BackendError):
        engine.flush()
    conn.execute("PRAGMA query_only = 0")
    engine.flush()
    assert _rows_on_disk(path) == _counts(engine)
    engine.close()


def test_flush_inside_a_transaction_is_refused(tmp_path):
    for url in (f"sqlite:///{tmp_path / 'a.db'}", f"json:///{tmp_path / 'a.json'}"):
        engine = Engine.open(url)
        with pytest.raises(BackendError, match="inside an open transaction"):
            with engine.transaction():
                engine.create_flow(name="f")
                engine.flush()
        assert engine.read_flows() == []
        engine.close()


def test_close_inside_a_transaction_is_refused_by_its_name_and_the_engine_stays_open(tmp_path):
    # Both backends say the same, naming close() (SQLite's named flush, JSON's a
    # snapshot): the block is undone, the engine still open, and it closes after.
    for url in (f"sqlite:///{tmp_path / 'a.db'}", f"json:///{tmp_path / 'a.json'}"):
        engine = Engine.open(url)
        engine.create_flow(name="kept")
        with pytest.raises(BackendError, match=r"^close\(\) inside an open transaction: close after the"):
            with engine.transaction():
                engine.create_flow(name="undone")
                engine.close()
        engine.create_flow(name="after")
        engine.close()
        with Engine.open(url) as reopened:
            assert sorted(f.name for f in reopened.read_flows()) == ["after", "kept"]


def test_failed_worker_writes_change_nothing(tmp_path):
    """A heartbeat, a worker delete and a pool delete (cascading to its workers)
    whose SQLite write fails are undone in memory, worker order included."""
    path = tmp_path / "runs.db"
    engine = Engine.open(f"sqlite:///{path}", clock=make_clock())
    pool = engine.create_work_pool("p")
    for name in ("a", "b", "c"):
        engine.worker_heartbeat(pool.id, name)
    order = [w.name for w in engine.read_workers(pool.id)]
    before = dump(engine)
    engine.backend._conn.execute("PRAGMA query_only = 1")
    for call in (lambda: engine.worker_heartbeat(pool.id, "a", 10), lambda: engine.worker_heartbeat(pool.id, "d"),
                 lambda: engine.delete_worker(pool.id, "b"), lambda: engine.delete_work_pool(pool.id)):
        with pytest.raises(BackendError, match="readonly|read-only|query_only"):
            call()
        assert dump(engine) == before
        assert [w.name for w in engine.read_workers(pool.id)] == order == ["c", "b", "a"]
    engine.backend._conn.execute("PRAGMA query_only = 0")
    assert _rows_on_disk(path) == _counts(engine)
    # An interval SQLite cannot hold (beyond 64 bits) is refused before anything is written.
    with pytest.raises(ValidationError, match="heartbeat_interval_seconds must fit in a signed 64-bit integer"):
        engine.worker_heartbeat(pool.id, "a", 2**70)
    assert dump(engine) == before
    engine.close()


@pytest.mark.parametrize("bad, match", [
    ("x\udc80", r"flow_run\.name of flow_run .*: text with a lone surrogate"),
    (2**70, r"flow_run\.name of flow_run .*: 1180591620717411303424 does not fit in 64 bits"),
])
def test_a_value_sqlite_cannot_bind_is_named_and_undone(tmp_path, bad, match):
    """The engine refuses such values on the way in; one that gets past (here set
    behind the engine's back) fails its write with the column and record named, and
    the call is undone."""
    engine = Engine.open(f"sqlite:///{tmp_path / 'runs.db'}", clock=make_clock())
    run = engine.create_flow_run(flow_id=engine.create_flow("f").id, tags=["a"])
    run.name = bad
    with pytest.raises(BackendError, match=match):
        engine.update_flow_run(run.id, tags=["b"])
    assert engine.read_flow_run(run.id).tags == ["a"]
    engine.close()


def test_a_damaged_version_1_database_is_refused_unchanged(tmp_path):
    """The move from version 1 (no worker table) happens only once every other table
    checks out: a damaged old file is refused and left as it was."""
    _older_file_refused_unchanged(tmp_path, 1, "ALTER TABLE flow_run ADD COLUMN extra TEXT", "table flow_run has columns")


def _older_file_refused_unchanged(tmp_path, version: int, damage: str, match: str):
    """A populated SQLite file made to look written at schema `version`, damaged by the
    `damage` statement: opening it is refused and leaves the folder byte for byte as
    it was. Returns the file's path."""
    path = tmp_path / "runs.db"
    _populated(f"sqlite:///{path}").close()
    as_schema_version(path, version, damage)
    before = _listing(tmp_path)
    with pytest.raises(BackendError, match=match):
        Engine.open(f"sqlite:///{path}")
    assert _listing(tmp_path) == before
    return path


def test_a_json_snapshot_opened_through_a_link_saves_into_the_file_it_points_to(tmp_path):
    (tmp_path / "data").mkdir()
    real, link = tmp_path / "data" / "runs.json", tmp_path / "runs.json"
    with Engine.open(f"json:///{real}") as engine:
        engine.create_flow("first")
    link.symlink_to(real)
    with Engine.open(f"json:///{link}") as engine:
        engine.create_flow("second")
    assert link.is_symlink()  # (a save used to replace the link with a file of its own)
    with Engine.open(f"json:///{real}") as engine:
        assert sorted(f.name for f in engine.read_flows()) == ["first", "second"]


@pytest.mark.parametrize("scheme", ["sqlite", "json"])
def test_one_writer_per_file_whatever_name_opens_it(tmp_path, scheme):
    real, link = tmp_path / "runs.db", tmp_path / "link.db"
    Engine.open(f"{scheme}:///{real}").close()
    link.symlink_to(real)
    with Engine.open(f"{scheme}:///{real}"):
        with pytest.raises(BackendError, match="already open for writing"):
            Engine.open(f"{scheme}:///{link}")


@pytest.mark.parametrize("scheme", ["sqlite", "json"])
def test_a_hard_linked_store_is_refused_for_writing_and_left_as_it_was(tmp_path, scheme):
    """The lock sits beside one name, so a file with a second name (a hard link) could
    get a writer through each; it is refused for writing, by either name, with nothing
    written, and still opens read-only."""
    real, other = tmp_path / "runs.db", tmp_path / "other.db"
    with Engine.open(f"{scheme}:///{real}") as engine:
        engine.create_flow("kept")
    os.link(real, other)
    before = _listing(tmp_path)
    for name in (real, other):
        with pytest.raises(BackendError, match="2 hard links"):
            Engine.open(f"{scheme}:///{name}")
        assert _listing(tmp_path) == before
    with Engine.open(f"{scheme}:///{other}", read_only=True) as reader:
        assert [f.name for f in reader.read_flows()] == ["kept"]
    other.unlink()
    with Engine.open(f"{scheme}:///{real}") as engine:  # one name again: writable
        engine.create_flow("more")


def test_opening_a_snapshot_leaves_another_snapshots_temporary_files_alone(tmp_path):
    # "runs" and "runs.json" side by side: a save of the second in progress has a
    # temporary ".runs.json.XXXXXXXX.tmp", which opening the first must not delete.
    other = tmp_path / ".runs.json.abcd1234.tmp"
    other.write_text("a save in progress")
    stale = tmp_path / ".runs.abcd1234.tmp"
    stale.write_text("left by a crash")
    Engine.open(f"json:///{tmp_path / 'runs'}").close()
    assert other.exists() and not stale.exists()


# read-only opening ---------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme, name", [("sqlite", "runs.db"), ("json", "runs.json")])
def test_read_only_open_loads_everything_and_refuses_writes(tmp_path, scheme, name):
    """A read-only engine holds exactly what was stored, takes no lock (a writer may
    have the store open, and opens it afterwards), writes nothing to the store file,
    and refuses its own writes, changing nothing."""
    url = f"{scheme}:///{tmp_path / name}"
    writer = _populated(url)
    writer.flush()  # (a snapshot is saved on flush or close)
    expected = dump(writer)
    store_bytes = open(tmp_path / name, "rb").read() if scheme == "json" else None
    reader = Engine.open(url, clock=make_clock(), read_only=True)
    assert dump(reader) == expected
    assert repr(reader).startswith(f"<Engine {scheme}:///{tmp_path / name} (read-only), ManualClock(")
    assert repr(writer).startswith(f"<Engine {scheme}:///{tmp_path / name}, ManualClock(")
    flow = reader.read_flow_runs(limit=1)[0]
    with pytest.raises(BackendError, match="opened read-only; this engine accepts no writes"):
        reader.create_flow("new")
    with pytest.raises(BackendError, match="opened read-only"):
        reader.set_flow_run_state(flow.id, Completed(), force=True)
    assert dump(reader) == expected
    writer.create_flow("after")  # the reader took no lock, and does not see later writes
    writer.close()
    assert dump(reader) == expected
    reader.close()
    if scheme == "json":
        assert open(tmp_path / name, "rb").read() != store_bytes  # the writer's close saved
    Engine.open(url, clock=make_clock()).close()  # and a writer still gets in


def test_read_only_sqlite_open_reads_one_commit_and_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "runs.db"
    _populated(f"sqlite:///{path}").close()
    before = open(path, "rb").read()
    engine = Engine.open(f"sqlite:///{path}", read_only=True)
    engine.close()
    assert open(path, "rb").read() == before
    assert not os.path.exists(f"{path}-journal")


def test_read_only_sqlite_open_creates_no_file_beside_the_database(tmp_path):
    # A plain read-only connection to a WAL database nobody has open creates its -wal
    # and -shm, and cannot delete them on close.
    path = tmp_path / "runs.db"
    with _populated(f"sqlite:///{path}") as writer:
        expected = dump(writer)
    before = _listing(tmp_path)
    assert sorted(before) == ["runs.db", "runs.db.lock"]
    with Engine.open(f"sqlite:///{path}", read_only=True) as reader:
        assert dump(reader) == expected
    assert _listing(tmp_path) == before


def test_read_only_sqlite_open_works_in_a_folder_it_cannot_write(shared_dir):
    """Without a writer there is no -wal or -shm, and none can be created; with one,
    its own (not writable by the reader) are read, its last commit included."""
    path = os.path.join(shared_dir, "runs.db")
    url = f"sqlite:///{path}"
    with _populated(url) as writer:
        expected = dump(writer)
    os.chmod(path, 0o444)
    os.chmod(shared_dir, 0o555)
    try:
        before = _listing(shared_dir)
        with unprivileged(), Engine.open(url, read_only=True) as reader:
            assert dump(reader) == expected
        assert _listing(shared_dir) == before
        os.chmod(shared_dir, 0o755)
        os.chmod(path, 0o644)
        with Engine.open(url) as writer:
            writer.create_flow("while open")
            expected = dump(writer)
            os.chmod(shared_dir, 0o555)
            names = sorted(os.listdir(shared_dir))
            with unprivileged(), Engine.open(url, read_only=True) as reader:
                assert dump(reader) == expected
            assert sorted(os.listdir(shared_dir)) == names
            os.chmod(shared_dir, 0o777)  # for the writer's close to delete them
    finally:
        os.chmod(shared_dir, 0o777)
    assert not os.path.exists(f"{path}-wal") and not os.path.exists(f"{path}-shm")  # the writer's, gone with it


def test_read_only_sqlite_open_reads_what_a_writer_left_and_removes_it_if_it_may(shared_dir):
    """A writer that closed while a reader held the file left an empty -wal and its
    -shm: a reader that may not write reads through them and changes nothing; the next
    one that may removes them."""
    path = os.path.join(shared_dir, "runs.db")
    url = f"sqlite:///{path}"
    _populated(url).close()
    writer = Engine.open(url)
    writer.create_flow("last")
    expected = dump(writer)
    with reader_elsewhere(path):
        writer.close()
    names = ["runs.db", "runs.db-shm", "runs.db-wal", "runs.db.lock"]
    assert sorted(os.listdir(shared_dir)) == names
    os.chmod(path, 0o444)
    os.chmod(shared_dir, 0o555)
    try:
        before = [open(path + suffix, "rb").read() for suffix in ("", "-wal")]
        with unprivileged(), Engine.open(url, read_only=True) as reader:
            assert dump(reader) == expected
        assert sorted(os.listdir(shared_dir)) == names
        assert [open(path + suffix, "rb").read() for suffix in ("", "-wal")] == before
    finally:
        os.chmod(shared_dir, 0o777)
        os.chmod(path, 0o644)
    with Engine.open(url, read_only=True) as reader:
        assert dump(reader) == expected
    assert sorted(os.listdir(shared_dir)) == ["runs.db", "runs.db.lock"]


def test_read_only_sqlite_open_rereads_through_the_wal_of_a_writer_that_came_mid_read(tmp_path, monkeypatch):
    """A writer that opens during the read of the bare file may checkpoint into it
    under the reader: the reader then reads again, through the writer's -wal, which
    the reader's lock keeps there (the writer cannot delete it on close meanwhile)."""
    import backends.sqlite as sqlite_backend

    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    _populated(url).close()
    read = sqlite_backend.SqliteBackend._read_only_records
    reads = []

    def writer_comes(self, options: str) -> dict:
        records = read(self, options)
        reads.append(options)
        if "immutable" in options:
            with Engine.open(url) as writer:
                writer.create_flow("mid-read")
            assert os.path.exists(f"{path}-wal")
        return records

    monkeypatch.setattr(sqlite_backend.SqliteBackend, "_read_only_records", writer_comes)
    with Engine.open(url, read_only=True) as reader:
        assert reader.read_flow_by_name("mid-read") is not None
    assert reads == ["mode=ro&immutable=1", "mode=ro"]
    monkeypatch.undo()
    assert not os.path.exists(f"{path}-wal")  # the reader, closing last, removed the writer's
    Engine.open(url).close()
    before = _listing(tmp_path)
    with Engine.open(url, read_only=True) as reader:
        assert reader.read_flow_by_name("mid-read") is not None
    assert _listing(tmp_path) == before and not os.path.exists(f"{path}-wal")


def test_read_only_sqlite_open_gives_up_on_a_database_locked_exclusively(tmp_path, monkeypatch):
    import backends.sqlite as sqlite_backend

    path = tmp_path / "runs.db"
    _populated(f"sqlite:///{path}").close()
    monkeypatch.setattr(sqlite_backend, "_LOCK_TIMEOUT", 0.05)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")  # kept until the connection closes
        holder.execute("COMMIT")
        with pytest.raises(BackendError, match="database is locked"):
            Engine.open(f"sqlite:///{path}", read_only=True)
    finally:
        holder.close()
    with Engine.open(f"sqlite:///{path}", read_only=True) as reader:
        assert reader.read_flows()


def test_read_only_sqlite_opens_while_another_process_opens_writes_and_closes(tmp_path):
    """Readers racing a process that opens, writes and closes the store over and over
    (each close checkpoints into the file and deletes the -wal) always see a whole
    commit, never fewer flows than before, and leave nothing behind."""
    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    _populated(url).close()
    cycles = 60
    writer = subprocess.Popen(
        [sys.executable, "-c",
         ("import sys; from engine import Engine\n"
          "for i in range(int(sys.argv[2])):\n"
          "    with Engine.open(sys.argv[1]) as e:\n"
          "        e.create_flow(f'cycle-{i}')\n"), url, str(cycles)],
    )
    seen, reads = 0, 0
    try:
        while writer.poll() is None:
            with Engine.open(url, read_only=True) as reader:
                names = {f.name for f in reader.read_flows() if f.name.startswith("cycle-")}
            assert names == {f"cycle-{i}" for i in range(len(names))}
            assert len(names) >= seen
            seen, reads = len(names), reads + 1
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0 and reads > 1
    Engine.open(url).close()  # a reader may have kept the last close from removing the -wal
    before = _listing(tmp_path)
    with Engine.open(url, read_only=True) as reader:
        assert len([f for f in reader.read_flows() if f.name.startswith("cycle-")]) == cycles
    assert _listing(tmp_path) == before


def test_read_only_open_of_an_older_sqlite_file_is_refused_unchanged(tmp_path):
    path = tmp_path / "runs.db"
    _populated(f"sqlite:///{path}").close()
    as_schema_version(path, 3)
    before = _listing(tmp_path)
    with pytest.raises(BackendError, match="older runstate schema version; open it writable once"):
        Engine.open(f"sqlite:///{path}", read_only=True)
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("url, options, match", [
    ("sqlite:///{tmp}/missing.db", {}, "does not exist \\(nothing to open read-only\\)"),
    ("json:///{tmp}/missing.json", {}, "does not exist \\(nothing to open read-only\\)"),
    ("memory://", {}, "a memory URL has nothing to read"),
    ("sqlite:///{tmp}/runs.db", {"batch": 5}, "batch: a write option, but the engine is opened read_only"),
    ("json:///{tmp}/runs.json", {"save_every": 1}, "save_every: a write option"),
    ("sqlite:///{tmp}/runs.db", {"read_only": "yes"}, "read_only must be True or False"),
])
def test_read_only_open_refusals(tmp_path, url, options, match):
    before = _listing(tmp_path)
    with pytest.raises(BackendError, match=match):
        Engine.open(url.format(tmp=tmp_path), read_only=options.pop("read_only", True), **options)
    assert _listing(tmp_path) == before


def _cached_source() -> tuple[Engine, dict]:
    """An engine with runs, a cached task result and a flow-run input, and its
    records by table (what a backend decodes before `rebuild`)."""
    src = Engine(clock=make_clock())
    flow = src.create_flow("f")
    runs = [src.create_flow_run(flow_id=flow.id, name=f"r{i}", state=State(type="COMPLETED")) for i in range(3)]
    task = src.create_task_run(flow_run_id=runs[0].id, task_key="t", dynamic_key="0", state=State(type="RUNNING"))
    done = src.set_task_run_state(task.id, State(type="COMPLETED", state_details={"cache_key": "k"}),
                                  task_policy="CoreTaskPolicy")
    assert done.status.value == "ACCEPT"
    src.create_flow_run_input(runs[0].id, "key", "value")
    return src, {kind: list(table.rows.values()) for kind, table in src._store.tables.items()}


def _cache_probe(engine: Engine) -> str:
    """The state a new task run of `engine` gets when it proposes Running with cache key k."""
    flow = engine.create_flow("probe")
    run = engine.create_flow_run(flow_id=flow.id, state={"type": "RUNNING"})
    task = engine.create_task_run(flow_run_id=run.id, task_key="t", dynamic_key="probe", state={"type": "PENDING"})
    return engine.set_task_run_state(task.id, {"type": "RUNNING", "state_details": {"cache_key": "k"}},
                                     task_policy="CoreTaskPolicy").state.name


def test_a_rebuild_failing_late_leaves_no_index_entries_behind():
    # The last table holds a duplicate id, so every other table (runs, states, the
    # cache) was already filed when the rebuild fails: clearing must reach the
    # indexes, sorted ones and the cache's newest-entry index included.
    from backends.base import rebuild

    src, records = _cached_source()
    bad = dict(records, flow_run_input=records["flow_run_input"] * 2)
    completed = {"state": {"type": {"any_": ["COMPLETED"]}}}
    engine = Engine()
    engine.read_flow_runs(sort="NAME_ASC")  # a sorted index in use before the load
    with pytest.raises(BackendError, match="duplicate ids in table flow_run_input"):
        rebuild(engine, bad)
    assert engine.count_flow_runs(flow_run_filter=completed) == 0
    assert engine.read_flow_runs(sort="NAME_ASC") == []
    assert engine.count_task_runs_by_state().as_dict()["COMPLETED"] == 0
    rebuild(engine, records)  # the same engine then loads cleanly
    assert [r.name for r in engine.read_flow_runs(sort="NAME_ASC")] == ["r0", "r1", "r2"]
    assert engine.count_flow_runs(flow_run_filter=completed) == 3
    assert engine.count_task_runs_by_state().as_dict()["COMPLETED"] == 1

    other = Engine()
    with pytest.raises(BackendError, match="duplicate ids"):
        rebuild(other, bad)
    assert _cache_probe(other) == "Running"  # no cache entry left behind
    assert _cache_probe(src) == "Cached"
