"""What every durability backend shares: the protocol, the location checks, the
single-writer lock and the bulk rebuild of an engine.

A backend is attached to one engine. The engine's store calls the backend's
listener at every top-level commit with that transaction's changes; a listener that
raises makes the commit fail and roll back, so an engine call either is recorded by
the backend or did not happen. The core itself never does I/O.
"""
from __future__ import annotations

import errno
import fcntl
import os
from typing import TYPE_CHECKING, Any, Iterable, Protocol

from engine.errors import BackendError, ValidationError, shown
from engine.indexes import HashIndex, SortedIndex, SparseHashIndex
from engine.store import no_gc
from engine.tables import KINDS

if TYPE_CHECKING:  # pragma: no cover
    from engine.engine import Engine

__all__ = ["Backend", "PathLock", "check_location", "lock_location", "accessible", "rebuild", "check_options", "no_gc",
           "COLUMNS_ADDED_IN", "columns_missing"]

# Columns added to a kind after its first stored form (the record's last fields), by
# the SQLite schema version that added them. Data an older runstate wrote lacks them:
# SQLite appends them to the table on open, a JSON snapshot's rows are read as None
# there (each one's default).
COLUMNS_ADDED_IN = {
    "deployment": (5, ("created_by", "updated_by", "infrastructure_document_id", "storage_document_id")),
    "artifact_collection": (6, ("task_run_id", "flow_run_id", "type", "data", "description", "metadata_")),
}


def columns_missing(kind: str, found: tuple, expected: tuple) -> tuple | None:
    """The columns `found` lacks at the end of `expected` as data written before they
    were added does (() when none), or None if `found` is not such a form. O(columns)."""
    if found == expected:
        return ()
    added = COLUMNS_ADDED_IN.get(kind, (1, ()))[1]
    return added if added and found + added == expected else None


class Backend(Protocol):
    """A durability backend attached to one engine."""

    url: str

    def load(self, engine: "Engine") -> None:
        """Fill an empty engine from the location (indexes included); on any error the
        engine is left empty and BackendError is raised."""

    def attach(self, engine: "Engine") -> None:
        """Start recording the engine's committed transactions."""

    def flush(self) -> None:
        """Make everything committed so far durable."""

    def close(self) -> None:
        """Flush, release the location; later writes to the engine fail."""


def check_options(scheme: str, options: dict, allowed: Iterable[str], also: Iterable[str] = ()) -> None:
    """ValidationError naming `options` not in `allowed`, and listing every option
    the backend takes (`also`: those the caller has taken out already)."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValidationError(
            f"unknown option(s) for {scheme} backend: {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted({*allowed, *also})) or 'none'}"
        )


def resolved(path: str) -> str:
    """The file `path` names, through any symbolic links: one lock then guards a file
    whatever name opens it, and a save replaces the file a link points to, not the
    link. ("" stays "", for check_location to refuse.)"""
    return os.path.realpath(path) if path else path


def require_file(path: str) -> None:
    """BackendError unless `path` is an existing file: what a read-only open needs,
    having nothing to create."""
    if not os.path.isfile(path):
        raise BackendError(f"{shown(path)} does not exist (nothing to open read-only)")


def check_location(path: str) -> bool:
    """Refuse a location we could not use, before touching anything on disk.

    Returns whether the file already exists. Raises BackendError for a directory, a
    missing parent folder, an unreadable or unwritable file, a file with other hard
    links, or a read-only folder.
    """
    if not path:
        raise BackendError("no path given")
    if os.path.isdir(path):
        raise BackendError(f"{shown(path)} is a directory, not a database file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise BackendError(f"folder {shown(folder)} of {shown(path)} does not exist")
    # Atomic replacement and the lock file both need to create files in the folder.
    if not accessible(folder, os.W_OK | os.X_OK):
        raise BackendError(f"folder {shown(folder)} is not writable (read-only location?)")
    exists = os.path.exists(path)
    if exists:
        if not os.path.isfile(path):
            raise BackendError(f"{shown(path)} is not a regular file")
        if not accessible(path, os.R_OK):
            raise BackendError(f"{shown(path)} is not readable (permission denied)")
        if not accessible(path, os.W_OK):
            raise BackendError(f"{shown(path)} is read-only (permission denied)")
        links = os.stat(path).st_nlink
        if links > 1:
            # The lock sits beside one name; a writer through another name would not see
            # it (SQLite's -wal and -shm are per name too, and a JSON save splits the names).
            raise BackendError(
                f"{shown(path)} has {links} hard links (names): one writer per file cannot be enforced "
                "across them, so it is not opened for writing; open a copy, or remove the other names "
                "(read_only=True is allowed)"
            )
    return exists


def lock_location(path: str, lock: "PathLock") -> bool:
    """Check `path` (check_location), take the writer's `lock`, and return whether the
    file exists, asked again under the lock: another engine may have made or saved it
    between the first look and the lock (taken as new, it would be overwritten, or
    deleted by a failed open). On an error the lock is not held."""
    check_location(path)  # first, so a location we cannot use gets no lock file
    lock.acquire()
    try:
        return check_location(path)
    except BaseException:
        lock.release(remove_if_created=True)
        raise


def accessible(path: str, mode: int) -> bool:
    """os.access by the effective ids, which decide what open() may do (they differ
    in setuid programs), where the platform can check them."""
    if os.access in os.supports_effective_ids:
        return os.access(path, mode, effective_ids=True)
    return os.access(path, mode)


class PathLock:
    """An exclusive advisory lock (flock) on a sidecar file `<path>.lock`.

    flock locks belong to an open file, so a second engine in the same process is
    refused just like another process; the kernel drops the lock when the holder
    dies, so a crash never leaves a stale lock behind.
    """

    __slots__ = ("path", "_fd", "_created")

    def __init__(self, data_path: str) -> None:
        self.path = os.path.abspath(data_path) + ".lock"
        self._fd: int | None = None
        self._created = False

    def acquire(self) -> None:
        try:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                self._created = True
            except FileExistsError:
                fd = os.open(self.path, os.O_RDWR)
        except OSError as exc:
            raise BackendError(f"cannot create lock file {shown(self.path)}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise BackendError(
                    f"{shown(self.path[:-5])} is already open for writing by another engine or process"
                ) from None
            raise BackendError(f"cannot lock {shown(self.path)}: {exc.strerror}") from exc
        self._fd = fd

    def release(self, remove_if_created: bool = False) -> None:
        """Drop the lock. `remove_if_created`: also delete a lock file this lock made
        (used when opening failed, so a refused open leaves the disk as it was)."""
        if self._fd is None:
            return
        if remove_if_created and self._created:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        os.close(self._fd)  # closing the last descriptor releases the flock
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __del__(self) -> None:
        # An engine dropped without close(): the lock goes with it (a bare descriptor
        # would stay open, and the file locked, until the process exits).
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def rebuild(engine: "Engine", records: dict[str, list]) -> None:
    """Fill an empty engine with decoded records, indexes included, then restore each
    run's current `state` object from its state row.

    Bulk-built (see `_fill_table`): hash buckets filled directly and each sorted index
    sorted once, several times faster than filing 100,000 runs one by one. O(n log n).
    On any error the engine is emptied again.
    """
    store = engine._store
    try:
        for kind in KINDS:
            recs = records.get(kind, ())
            if not recs:
                continue
            table = store.tables[kind]
            if table.rows:
                raise BackendError(f"cannot load into a non-empty engine (table {kind} has rows)")
            _fill_table(table, recs)
            if len(table.rows) != len(recs):  # counted, not checked per row: hashing UUIDs is slow
                raise BackendError(f"duplicate ids in table {kind}")
        _restore_current_states(engine)
    except BaseException:
        store.clear()
        raise


def _fill_table(table: Any, recs: list) -> None:
    """File `recs` into an empty table, one index at a time (column-wise): the
    per-record key tuples and the id maps are then zipped together in C, and each
    index's loop is as tight as it can be."""
    indexes = table.indexes
    ids = [rec.id for rec in recs]
    rows = table.rows
    rows.update(zip(ids, recs))
    if len(indexes) == 1 and type(indexes[0]) is HashIndex:
        # One equality index (state rows by run): the table's own filing, which
        # shares one keys tuple per bucket (or keeps none, in a history table).
        file = table._file
        for rec in recs:
            file(rec)
        return
    columns = [_column(idx, recs) for idx in indexes]
    # Index structures key records by the records themselves (see Table), rows by id.
    table._keys.update(zip(recs, zip(*columns)) if columns else ((r, ()) for r in recs))
    for idx, column in zip(indexes, columns):
        if type(idx) is HashIndex or type(idx) is SparseHashIndex:
            sparse = type(idx) is SparseHashIndex
            buckets = idx.buckets
            first = column[0] if column else None
            if column and column.count(first) == len(column):
                if first is None and sparse:
                    continue
                # One key for every record (None columns, a single flow).
                buckets[first] = dict(zip(recs, recs))
                continue
            get = buckets.get
            last = bucket = _NO_KEY
            for key, rec in zip(column, recs):
                if key is None and sparse:
                    continue
                if key is not last:  # runs of one key object (interned by the decoder) skip the lookup
                    bucket = get(key)
                    if bucket is None:
                        bucket = buckets[key] = {}
                    last = key
                bucket[rec] = rec
        elif isinstance(idx, SortedIndex):
            idx.entries.update(column)  # one sort instead of n insertions
        else:
            for key, rec in zip(column, recs):
                idx.insert(key, rec)


_NO_KEY = object()


def _column(index: Any, recs: list) -> list:
    """Each record's key in `index`; equal keys of a shared-key index are one object
    (see HashIndex), as live filing leaves them."""
    column = list(map(index.extract, recs))
    if getattr(index, "shared", False):
        canonical: dict = {}
        column = [canonical.setdefault(key, key) for key in column]
    return column


def _restore_current_states(engine: "Engine") -> None:
    tables = engine._store.tables
    to_state = engine._row_to_state
    for run_kind, row_kind in (("flow_run", "flow_run_state"), ("task_run", "task_run_state")):
        state_rows = tables[row_kind].rows
        for run in tables[run_kind].rows.values():
            state_id = run.state_id
            if state_id is not None:
                row = state_rows.get(state_id)
                # A dangling state_id cannot come from the engine; keep the run, stateless.
                run.state = to_state(row, True) if row is not None else None


def fsync_folder(path: str) -> None:
    """Make a rename inside `path`'s folder durable."""
    folder = os.path.dirname(os.path.abspath(path))
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ReadOnlyStore:
    """The backend of an engine opened with `read_only=True`: what was stored when it
    was opened, loaded once; nothing is locked, written or kept open. The engine's
    writes raise BackendError and change nothing."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.read_only = True

    def attach(self, engine: Any) -> None:
        url = self.url

        def refuse(changes: list) -> None:
            raise BackendError(f"{url} was opened read-only; this engine accepts no writes")

        engine._store.listeners.append(refuse)

    def flush(self) -> None:
        """Nothing to write."""

    def close(self) -> None:
        """Nothing to release (the file was closed once loaded)."""


def closed_listener(url: str) -> Any:
    """The listener left on an engine whose backend was closed: writes now fail rather
    than silently stop being durable."""

    def refuse(changes: list) -> None:
        raise BackendError(f"the backend {url} is closed; this engine no longer accepts writes")

    return refuse
