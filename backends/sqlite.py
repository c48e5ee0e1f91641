"""SQLite backend (stdlib sqlite3): a table per record kind, written through at every
engine commit, read back in bulk on open.

Modes:
* write-through (`batch=1`, the default): each engine transaction is one SQLite
  transaction, committed inside the engine's commit. A call that returned is on disk;
  a call whose SQLite write failed raises BackendError and is rolled back in memory.
* batched (`batch=N`): the engine commits are gathered and written as one SQLite
  transaction every N commits, at `flush()` and at `close()`. What is on disk is always
  the complete state as of some commit; a crash loses the commits since the last write.

Journal: WAL with `synchronous=NORMAL` (default): a committed transaction survives a
process crash; after power loss the last transactions may be lost but the file stays
consistent. `synchronous="FULL"` also survives power loss, at one fsync per commit.

One writer per file: a sidecar flock (`<path>.lock`) refuses a second engine.

Read-only opening creates no file: a WAL database nobody is using (no `-wal`) is read
`immutable`, under SQLite's own SHARED lock taken by hand (see _shared_lock), which
keeps any writer that starts meanwhile from checkpointing into the file unseen; one
with a `-wal` is read through the `-wal` and `-shm` its writer keeps.

Closing leaves the database file alone holding every commit: the writer empties its
`-wal` into the file first (see _checkpoint_for_close). SQLite deletes the `-wal` and
`-shm` only on the last connection's close; when a reader's lock keeps the writer's
close from being that, the (empty) files stay until whoever is last of the reader, the
writer and the next open removes them (see _remove_sidecars). What can still stay: an
empty `-wal` and `-shm` beside a reader that may not write the file or folder, or when
two closes miss each other, until a later open; a `-wal` with commits when the close's
checkpoint gave up (a reader reading through the `-wal` for longer than the busy
timeout, an I/O error) or the writer died, until the next writer takes them in.
"""
from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import struct
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Sequence

from engine.errors import BackendError, ValidationError, shown
from engine.serialization import codec
from engine.tables import KINDS
from engine.validation import as_int, storable_text

from .base import (
    COLUMNS_ADDED_IN, PathLock, accessible, closed_listener, columns_missing, lock_location, no_gc, rebuild,
    require_file, resolved,
)

if TYPE_CHECKING:  # pragma: no cover
    from engine.engine import Engine
    from engine.store import Change

__all__ = ["SqliteBackend", "unbindable", "SCHEMA_VERSION", "APPLICATION_ID", "ADDED_IN", "COLUMNS_ADDED_IN"]

SCHEMA_VERSION = 6
APPLICATION_ID = 0x52554E53  # "RUNS": marks a runstate database
# Tables added after version 1, by the version that added them. Opening an older
# database creates them, empty, and moves it to SCHEMA_VERSION in one transaction;
# an older runstate then refuses the file (it would ignore those tables' rows).
ADDED_IN = {"worker": 2, "deployment_schedule": 3, "flow_run_input": 4}
# Columns added after version 1 are in base.COLUMNS_ADDED_IN: opening an older
# database appends them, NULL in every row, in that transaction.


def unbindable(kind: str, columns: Sequence[str], row: Sequence[Any]) -> str | None:
    """Why SQLite cannot bind the encoded `row` of `kind`, naming the first column it
    cannot (text with a lone surrogate, an integer beyond 64 bits: what the engine's
    storable_text and as_int refuse), or None. O(columns)."""
    for column, value in zip(columns, row):
        if value.__class__ is str:
            try:
                storable_text(value, column)
            except ValidationError:
                return f"{kind}.{column} of {kind} {row[columns.index('id')]}: text with a lone surrogate {shown(value)}"
        elif value.__class__ is int:
            try:
                as_int(value, column)
            except ValidationError:
                return f"{kind}.{column} of {kind} {row[columns.index('id')]}: {shown(value)} does not fit in 64 bits"
    return None


def _stamp(conn: sqlite3.Connection) -> tuple[int, int]:
    """The file's (application_id, user_version): whose it is, and its schema version."""
    return (conn.execute("PRAGMA application_id").fetchone()[0],
            conn.execute("PRAGMA user_version").fetchone()[0])


def _uri_path(path: str) -> str:
    # A path inside a file: URI: '?', '#' and '%' would end or escape it.
    return path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")


# What a batch has done to a record (SqliteBackend._dirty).
_TOUCHED, _GONE, _RENEWED = 0, 1, 2


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# SQLite's lock bytes in the database file (os_unix.c): a reader holds a read lock on
# the SHARED range; a connection needs a write lock on it (EXCLUSIVE) to checkpoint on
# close and delete the -wal, and takes PENDING first, which keeps new readers out.
_PENDING_BYTE = 0x40000000
_SHARED_FIRST = _PENDING_BYTE + 2
_SHARED_SIZE = 510
_LOCK_TIMEOUT = 5.0  # seconds, as long as sqlite3.connect waits for a lock
_FLOCK = "hhqqi0q"  # struct flock: type, whence, start, length, pid (then padding)


def _range_lock(fd: int, lock_type: int, start: int, length: int) -> None:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, lock_type, os.SEEK_SET, start, length, 0))


def _shared_lock(fd: int, path: str) -> bool:
    """Take SQLite's SHARED lock on the database open as `fd`, as SQLite would, waiting
    up to _LOCK_TIMEOUT for a connection holding it exclusively; released when `fd` is
    closed. An open-file-description lock: a POSIX one would merge with this process's
    own connections' locks and drop them when `fd` is closed. False where such locks
    are not available (not Linux, or a file system without them)."""
    if not hasattr(fcntl, "F_OFD_SETLK"):
        return False
    deadline = time.monotonic() + _LOCK_TIMEOUT
    delay = 0.001
    while True:
        try:
            _range_lock(fd, fcntl.F_RDLCK, _PENDING_BYTE, 1)
            try:
                _range_lock(fd, fcntl.F_RDLCK, _SHARED_FIRST, _SHARED_SIZE)
                return True
            finally:
                _range_lock(fd, fcntl.F_UNLCK, _PENDING_BYTE, 1)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                return False
        if time.monotonic() >= deadline:
            raise BackendError(f"cannot read {shown(path)}: database is locked")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


# Closing any descriptor of a file drops every POSIX lock this process holds on it, the
# ones SQLite's connections hold included (SQLite defers closing its own descriptors
# for that reason). A writer's SHARED lock is what keeps another process's last close
# (or _remove_sidecars) from deleting the -wal it is still writing to, so a descriptor
# opened by hand is not closed while a writer of this process has the file open: it
# waits here, by the file's (device, inode), until that writer has closed.
_writers: dict[tuple[int, int], list[int]] = {}
_writers_lock = threading.Lock()


def _file_key(st: os.stat_result) -> tuple[int, int]:
    # By inode: a reader may open the file through another name (a hard link).
    return (st.st_dev, st.st_ino)


def _writer_opened(path: str) -> tuple[int, int]:
    """Note that a connection of this process is about to write to `path` (called
    before it takes any lock). Returns the key to pass to _writer_closed."""
    key = _file_key(os.stat(path))
    with _writers_lock:
        _writers[key] = []
    return key


def _writer_closed(key: tuple[int, int] | None) -> None:
    """The writer of `key` has closed its connection: close what waited for it."""
    with _writers_lock:
        waiting = _writers.pop(key, [])
    for fd in waiting:
        os.close(fd)


def _close_by_hand(fd: int, key: tuple[int, int]) -> bool:
    """Close a descriptor of the database opened by hand, or, while a writer of this
    process has the file open, release its locks and keep it for that writer's close
    (see _writers). Returns whether it was kept."""
    with _writers_lock:
        waiting = _writers.get(key)
        if waiting is None:
            os.close(fd)
            return False
        try:  # the whole file: the writer's close must get EXCLUSIVE
            _range_lock(fd, fcntl.F_UNLCK, 0, 0)
        except (AttributeError, OSError):  # no such locks here, so none held
            pass
        waiting.append(fd)
        return True


def _remove_sidecars(path: str) -> None:
    """Remove the empty `-wal` (and the `-shm`) a writer's close had to leave because a
    reader held the database then, if nobody has the database open now.

    Only an empty `-wal`: one with frames may hold commits the file lacks (a writer that
    died), which only a writer may checkpoint. The removal is SQLite's own: a connection
    that reads and closes is the last one exactly when SQLite's close gets the EXCLUSIVE
    lock, and then it deletes both; SQLite counts this process's connections itself, where
    a lock taken by hand could not. Skipped where the files could not be deleted (a
    folder or file we may not write to: a read-only connection would not delete them).
    Never raises: what stays is harmless, and the next writer or reader tries again."""
    wal = path + "-wal"
    try:
        if os.path.getsize(wal) != 0:
            return
    except OSError:
        return
    if not (accessible(path, os.W_OK) and accessible(os.path.dirname(path), os.W_OK)):
        return
    try:
        conn = sqlite3.connect(f"file:{_uri_path(path)}?mode=rw", uri=True, timeout=0)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # takes SHARED, opens the -wal
        finally:
            conn.close()
    except sqlite3.Error:
        pass


class SqliteBackend:
    """Write-through (or batched) SQLite storage of one engine."""

    def __init__(self, path: str, batch: int = 1, synchronous: str = "NORMAL") -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise BackendError(f"batch must be a positive integer (1 = write-through), got {shown(batch)}")
        sync = synchronous.upper() if isinstance(synchronous, str) else None
        if sync not in ("NORMAL", "FULL", "EXTRA"):
            raise BackendError(f"synchronous must be NORMAL, FULL or EXTRA, got {shown(synchronous)}")
        self.url = f"sqlite:///{path}"
        self.path = resolved(path)
        self.batch = batch
        self.synchronous = sync
        self._codecs = {kind: codec(kind, nested_as_text=True) for kind in KINDS}
        self._upsert_sql = {}
        self._delete_sql = {}
        for kind, c in self._codecs.items():
            cols = ", ".join(_quote(col) for col in c.columns)
            marks = ", ".join("?" for _ in c.columns)
            updates = ", ".join(f"{_quote(col)} = excluded.{_quote(col)}" for col in c.columns if col != "id")
            # An upsert (not INSERT OR REPLACE) keeps a row's rowid, so rowid order stays
            # the order records were created in, which is the order the engine had them.
            self._upsert_sql[kind] = (
                f"INSERT INTO {kind} ({cols}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {updates}"
            )
            self._delete_sql[kind] = f"DELETE FROM {kind} WHERE id = ?"
        self._conn: sqlite3.Connection | None = None
        self._lock = PathLock(self.path)
        self._forget_key: Any = lambda: None  # (see _writers; set by `open`)
        self._engine: Engine | None = None
        # kind -> id touched since the last write -> _TOUCHED, _GONE (deleted) or
        # _RENEWED (deleted, then created again: its old row goes first, so the new
        # one takes the next rowid, as it is last in memory).
        self._dirty: dict[str, dict[Any, int]] = {}
        self._pending = 0
        # Set by `open` for an existing file, done by `load` (see _prepare).
        self._upgrade: tuple[list[str], list[tuple[str, tuple[str, ...]]]] | None = None
        self._wal_pending = False

    # opening -------------------------------------------------------------------------------
    def open(self) -> None:
        """Check the location, lock it, connect and check (or create) the schema.
        On failure nothing is left open and a new file is not left behind."""
        existed = lock_location(self.path, self._lock)
        try:
            if existed:
                with open(self.path, "rb") as f:
                    head = f.read(16)
                if head and head != b"SQLite format 3\x00":
                    raise BackendError(f"{shown(self.path)} is not a SQLite database (foreign or corrupt file)")
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                # Before _prepare takes the first lock. Also done if this backend is
                # dropped unclosed (its connection then closes too): a writer noted
                # forever would keep every read-only open's descriptor here.
                self._forget_key = weakref.finalize(self, _writer_closed, _writer_opened(self.path))
                self._prepare(conn, existed)
            except BaseException:
                conn.close()
                raise
        except BaseException as exc:
            self._forget_key()
            self._lock.release(remove_if_created=True)
            if not existed:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    try:
                        os.unlink(self.path + suffix)
                    except OSError:
                        pass
            if isinstance(exc, sqlite3.Error):
                raise BackendError(f"cannot open SQLite database {shown(self.path)}: {exc}") from exc
            raise
        self._conn = conn

    def load_read_only(self, engine: "Engine") -> None:
        """Rebuild `engine` (empty) from the database without writing to it or creating
        any file beside it, holding only a reader's lock meanwhile: one read transaction
        (a writer may carry on; the engine gets the last commit before the read). A file
        of an older schema version is refused: it must be opened writable once to be
        upgraded."""
        require_file(self.path)
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise BackendError(f"cannot open SQLite database {shown(self.path)} read-only: {exc.strerror}") from exc
        key = _file_key(os.fstat(fd))
        try:
            # Held to the end: no writer can checkpoint on close or delete its -wal
            # meanwhile, so a -wal missing both before and after the read means no
            # writer touched the file during it.
            locked = _shared_lock(fd, self.path)
            header = os.pread(fd, 100, 0)
            if header[:16] != b"SQLite format 3\x00":
                raise BackendError(f"{shown(self.path)} is not a SQLite database (foreign or corrupt file)")
            wal = self.path + "-wal"
            records = None
            with no_gc():
                # A WAL database (read and write versions 2) nobody is using: the file
                # holds every commit, and a plain read-only connection would create the
                # -wal and -shm (or fail, in a folder it may not write to).
                if locked and header[18:20] == b"\x02\x02" and not os.path.exists(wal):
                    records = self._records_unless_a_writer_came(wal)
                if records is None:
                    # Through the -wal and -shm a writer keeps: they stay while we hold the lock.
                    records = self._read_only_records("mode=ro")
                with engine._lock:
                    rebuild(engine, records)
        except BaseException:
            _close_by_hand(fd, key)
            raise
        if not _close_by_hand(fd, key):  # (else a writer here is using the -wal)
            _remove_sidecars(self.path)  # if a writer closed while we read

    def _records_unless_a_writer_came(self, wal: str) -> dict[str, list] | None:
        """The file's records read `immutable`; None if a writer opened it meanwhile
        (its -wal appeared: it may have checkpointed into the file mid-read)."""
        try:
            records = self._read_only_records("mode=ro&immutable=1")
        except Exception:  # (a page checkpointed mid-read can fail to decode in any way)
            if not os.path.exists(wal):
                raise
            return None
        return None if os.path.exists(wal) else records

    def _read_only_records(self, options: str) -> dict[str, list]:
        """Every table's decoded rows, read in one transaction through a read-only
        connection opened with the URI `options`, the schema checked first."""
        try:
            conn = sqlite3.connect(f"file:{_uri_path(self.path)}?{options}", uri=True, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open SQLite database {shown(self.path)} read-only: {exc}") from exc
        try:
            conn.execute("BEGIN")  # one snapshot for the checks and every table read
            if self._checked_schema(conn, _stamp(conn)) is not None:
                raise BackendError(self._older_for_read_only())
            return self._records(conn)
        except sqlite3.Error as exc:
            raise BackendError(f"cannot read {shown(self.path)}: {exc}") from exc
        finally:
            conn.close()

    def _older_for_read_only(self) -> str:
        return (f"{self.path!r} has an older runstate schema version; open it writable once to upgrade it to "
                f"version {SCHEMA_VERSION}")

    def _prepare(self, conn: sqlite3.Connection, existed: bool) -> None:
        stamp = _stamp(conn)
        has_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
        if stamp == (0, 0) and not has_tables:
            self._session_pragmas(conn)
            self._use_wal(conn)
            self._create_schema(conn)
            return
        upgrade = self._checked_schema(conn, stamp)
        self._session_pragmas(conn)
        # An older file is upgraded by `load`, in the transaction that reads its rows,
        # so a file refused for a bad row is left as it was (and switched to WAL
        # only once loaded, for the same reason).
        self._upgrade = upgrade
        self._wal_pending = True

    def _checked_schema(self, conn: sqlite3.Connection, stamp: tuple[int, int],
                        ) -> tuple[list[str], list[tuple[str, tuple[str, ...]]]] | None:
        """Refuse a file that is not a runstate database this build reads (by its
        `stamp`, see _stamp, and its tables); for one of an older schema version, the
        (missing tables, widened tables) its upgrade adds, else None."""
        app_id, version = stamp
        if app_id != APPLICATION_ID:
            raise BackendError(f"{shown(self.path)} is a SQLite database but not a runstate one (application_id "
                               f"{app_id})")
        if not 1 <= version <= SCHEMA_VERSION:
            raise BackendError(
                f"{shown(self.path)} has runstate schema version {version}; this runstate reads versions 1 to "
                f"{SCHEMA_VERSION}"
            )
        missing = []
        widened: list[tuple[str, tuple[str, ...]]] = []
        for kind, c in self._codecs.items():
            cols = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({kind})"))
            lacking = columns_missing(kind, cols, c.columns)
            if not cols and version < ADDED_IN.get(kind, 1):
                missing.append(kind)
            elif lacking and version < COLUMNS_ADDED_IN[kind][0]:
                widened.append((kind, lacking))
            elif lacking != ():
                raise BackendError(
                    f"{shown(self.path)}: table {kind} has columns {list(cols)}, expected {list(c.columns)} "
                    "(corrupt schema)"
                )
        return (missing, widened) if version != SCHEMA_VERSION else None

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        """Create every table and stamp the new file, in one transaction."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._schema_statements(conn, list(self._codecs), ())
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _schema_statements(self, conn: sqlite3.Connection, kinds: list[str],
                           widened: list[tuple[str, tuple[str, ...]]]) -> None:
        """Inside the caller's transaction: create the tables of `kinds`, append the
        `widened` tables' new columns, stamp the file as SCHEMA_VERSION."""
        for kind in kinds:
            c = self._codecs[kind]
            cols = ", ".join(
                f"{_quote(col)} {typ}" + (" NOT NULL UNIQUE" if col == "id" else "")
                for col, typ in zip(c.columns, c.sql_types)
            )
            # A rowid table: rowid order is creation order (see the upsert).
            conn.execute(f"CREATE TABLE {kind} ({cols})")
        for kind, added in widened:
            c = self._codecs[kind]
            types = dict(zip(c.columns, c.sql_types))
            for col in added:
                conn.execute(f"ALTER TABLE {kind} ADD COLUMN {_quote(col)} {types[col]}")
        # No secondary indexes: the file is only ever read whole (on open), and
        # each one would cost every write-through commit extra pages.
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        # Persistent (stored in the file), and not allowed inside a transaction.
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise BackendError(f"cannot switch {shown(self.path)} to WAL journal mode (got {mode})")
        self._wal_pending = False

    def _session_pragmas(self, conn: sqlite3.Connection) -> None:
        # This connection's settings only: nothing in the file changes.
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        # Ids are random, so a big run table is written all over its b-tree: a larger
        # page cache and memory-mapped reads keep those pages out of read() calls.
        conn.execute("PRAGMA cache_size=-65536")  # KiB: 64 MiB
        conn.execute("PRAGMA mmap_size=268435456")

    # loading ---------------------------------------------------------------------------------
    def load(self, engine: "Engine") -> None:
        """Rebuild `engine` (empty) from the database. O(n log n) for n records."""
        conn = self._require_open()
        upgrade = self._upgrade
        with no_gc():
            if upgrade is None:
                self._load(conn, engine)
            else:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._schema_statements(conn, *upgrade)
                    self._load(conn, engine)
                    conn.execute("COMMIT")
                except BaseException as exc:
                    conn.execute("ROLLBACK")
                    if isinstance(exc, sqlite3.Error):
                        raise BackendError(f"cannot upgrade {shown(self.path)}: {exc}") from exc
                    raise
                self._upgrade = None
        if self._wal_pending:
            self._use_wal(conn)

    def _load(self, conn: sqlite3.Connection, engine: "Engine") -> None:
        records = self._records(conn)
        with engine._lock:
            rebuild(engine, records)

    def _records(self, conn: sqlite3.Connection) -> dict[str, list]:
        """Every table's decoded rows, in creation order. Raises BackendError."""
        records: dict[str, list] = {}
        cache: dict = {}
        try:
            for kind, c in self._codecs.items():
                cols = ", ".join(_quote(col) for col in c.columns)
                # Creation order: the engine's tables (and the ties some rules break by
                # insertion order) come back exactly as they were.
                rows = conn.execute(f"SELECT {cols} FROM {kind} ORDER BY rowid")
                try:
                    records[kind] = c.decode_many(rows, cache)  # streamed: no fetchall copy
                except (ValueError, TypeError, KeyError, RecursionError) as exc:  # (nesting no decoder reaches)
                    raise BackendError(f"{shown(self.path)}: bad row in table {kind}: {shown(exc)}") from exc
        except sqlite3.Error as exc:
            raise BackendError(f"cannot read {shown(self.path)}: {exc}") from exc
        return records

    # writing ----------------------------------------------------------------------------------
    def attach(self, engine: "Engine") -> None:
        if self._upgrade is not None or self._wal_pending:
            raise BackendError(f"{self.url}: load the database before attaching an engine")
        # A weak proxy: the engine holds this backend, and a strong reference back would
        # make every engine with a store a reference cycle, freed only by the collector.
        self._engine = weakref.proxy(engine)
        engine._store.listeners.append(self._on_commit)  # (not kept here: a cycle again)

    def _on_commit(self, changes: list["Change"]) -> None:
        if self.batch == 1:
            # (A record deleted and created again in one commit comes as two changes.)
            self._write([(c.kind, c.record_id, c.record, False) for c in changes])
            return
        # Only ids are kept (one entry per record however often the batch touches
        # it); values are read and encoded once, at the flush. O(changes).
        dirty = self._dirty
        for c in changes:
            ids = dirty.get(c.kind)
            if ids is None:
                ids = dirty[c.kind] = {}
            if c.record is None:
                ids[c.record_id] = _GONE
            elif ids.get(c.record_id) == _GONE:  # created again: written last
                del ids[c.record_id]
                ids[c.record_id] = _RENEWED
            else:
                ids.setdefault(c.record_id, _TOUCHED)
        self._pending += 1
        if self._pending >= self.batch:
            self._flush_dirty()

    def _flush_dirty(self) -> None:
        """Write the current value of every record touched since the last write.
        A failed write keeps the batch pending (the next flush retries it). O(records)."""
        if not self._dirty:
            self._pending = 0
            return
        tables = self._engine._store.tables
        # A record gone since (or created and deleted within the batch) reads as
        # None: `_write` deletes it.
        self._write([
            (kind, rec_id, tables[kind].rows.get(rec_id), mark == _RENEWED)
            for kind, ids in self._dirty.items() for rec_id, mark in ids.items()
        ])
        self._dirty.clear()
        self._pending = 0

    def _write(self, items: list[tuple[str, Any, Any, bool]]) -> None:
        """One SQLite transaction of (kind, id, record, renewed) items: upsert live
        records, delete the ones that are gone (record None) and the old rows of
        renewed ones (deleted, then created again). Raises BackendError."""
        upserts: dict[str, list] = {}
        deletes: dict[str, list] = {}
        codecs = self._codecs
        try:
            for kind, rec_id, rec, renewed in items:
                if rec is None or renewed:
                    deletes.setdefault(kind, []).append((str(rec_id),))
                if rec is not None:
                    upserts.setdefault(kind, []).append(codecs[kind].encode(rec))
        except (TypeError, ValueError, RecursionError) as exc:
            raise BackendError(f"cannot store a value (free-form fields must hold JSON values): {exc}") from exc
        self._execute(upserts, deletes)

    def _execute(self, upserts: dict[str, list], deletes: dict[str, list]) -> None:
        """One SQLite transaction: the deletes, then the upserts (encoded rows), each
        kind with one executemany. Raises BackendError after rolling the SQLite
        transaction back."""
        conn = self._require_open()
        try:
            conn.execute("BEGIN")
            try:
                for kind, rows in deletes.items():
                    conn.executemany(self._delete_sql[kind], rows)
                for kind, rows in upserts.items():
                    if not rows:
                        continue
                    if len(rows) == 1:
                        conn.execute(self._upsert_sql[kind], rows[0])
                    else:
                        conn.executemany(self._upsert_sql[kind], rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except (UnicodeEncodeError, OverflowError) as exc:
            # The engine's checks refuse such values; this names one that got past them.
            raise BackendError(f"write to {shown(self.path)} failed: {self._unstorable(upserts) or exc}") from exc
        except sqlite3.Error as exc:
            raise BackendError(f"write to {shown(self.path)} failed: {exc}") from exc

    def _unstorable(self, upserts: dict[str, list]) -> str | None:
        """Which value of the encoded rows SQLite cannot bind (see unbindable). O(values)."""
        for kind, rows in upserts.items():
            columns = self._codecs[kind].columns
            for row in rows:
                reason = unbindable(kind, columns, row)
                if reason is not None:
                    return reason
        return None

    def flush(self) -> None:
        """Write the pending batch (batched mode); a no-op in write-through mode."""
        if self._engine is None:
            return
        with self._engine._lock:
            if self._engine._store.in_transaction:
                raise BackendError("flush inside an open transaction: commit it first")
            self._flush_dirty()

    def close(self) -> None:
        """Flush, detach from the engine, close the connection and release the lock.
        Later writes to the engine raise BackendError. Idempotent."""
        if self._conn is None:
            return
        engine = self._engine
        if engine is not None:
            with engine._lock:
                self.flush()
                listeners = engine._store.listeners
                if self._on_commit in listeners:  # (bound methods compare equal)
                    listeners[listeners.index(self._on_commit)] = closed_listener(self.url)
        self._release()

    def abort(self) -> None:
        """Give up an open that failed: close, release the lock, leave the disk as it was."""
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                conn.close()
        finally:
            self._forget_key()
            self._lock.release(remove_if_created=True)

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                self._checkpoint_for_close(conn)
                try:
                    conn.close()
                finally:
                    self._forget_key()
                # A reader that held the file during our close may be gone already.
                _remove_sidecars(self.path)
        finally:
            self._lock.release()

    def _checkpoint_for_close(self, conn: sqlite3.Connection) -> None:
        """Copy every commit in the -wal into the database file (synced) and empty the
        -wal (TRUNCATE), so that the file alone holds them even if this close cannot
        delete the -wal: SQLite's close checkpoints and deletes it only when it is the
        last connection, which a reader holding the file (see _shared_lock) keeps it
        from being. Waits, like any write, up to the busy timeout for a reader still
        reading through the -wal. A checkpoint SQLite gives up on (busy, or an I/O
        error) leaves the commits in the -wal, as durable as before, for the next open
        to recover; it costs nothing in the usual case, the checkpoint SQLite's close
        would have done itself."""
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass

    def _require_open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BackendError(f"{self.url} is closed")
        return self._conn
