"""JSON snapshot backend: the whole engine in one file, saved on demand (`flush`), on
`close`, and optionally every N commits (`save_every=N`).

File layout: one header line, then the payload.

    {"format": "runstate-snapshot", "version": 1, "length": <bytes>, "crc32": <int>}\\n
    {"tables": {"flow_run": {"columns": [...], "rows": [[...], ...]}, ...}}

The header lets a load tell a foreign file, a newer/older format, a truncated file
(length) and a damaged one (crc32) apart, each with its own clear error.

A save writes a temporary file in the same folder, flushes and fsyncs it, renames it
over the old snapshot and fsyncs the folder: a crash at any instant leaves the old
snapshot or the new one, never a torn file. Between saves nothing is durable.
"""
from __future__ import annotations

import glob
import json
import os
import tempfile
import weakref
import zlib
from typing import TYPE_CHECKING, Any, Callable

from engine.errors import BackendError, shown
from engine.serialization import codec
from engine.tables import KINDS

from .base import (
    PathLock, closed_listener, columns_missing, fsync_folder, lock_location, no_gc, rebuild, require_file, resolved,
)

if TYPE_CHECKING:  # pragma: no cover
    from engine.engine import Engine

__all__ = ["JsonSnapshotBackend", "FORMAT", "FORMAT_VERSION", "read_snapshot_tables"]

FORMAT = "runstate-snapshot"
FORMAT_VERSION = 1


class JsonSnapshotBackend:
    """Atomic whole-engine JSON snapshots of one engine."""

    def __init__(self, path: str, save_every: int | None = None) -> None:
        if save_every is not None and (isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1):
            raise BackendError(f"save_every must be a positive integer or None, got {shown(save_every)}")
        self.url = f"json:///{path}"
        self.path = resolved(path)
        self.save_every = save_every
        self._codecs = {kind: codec(kind, nested_as_text=False) for kind in KINDS}
        self._lock = PathLock(self.path)
        self._engine: Engine | None = None
        self._since_save = 0
        self._opened = False
        self._existed = False
        # Seam for fault-injection tests: how the temporary file's descriptor is opened.
        self._fdopen: Callable[..., Any] = os.fdopen

    # opening and loading ------------------------------------------------------------------------
    def open(self) -> None:
        """Check the location and lock it. Nothing is created but the lock file."""
        self._existed = lock_location(self.path, self._lock)
        self._opened = True

    def _remove_stale_temporaries(self) -> None:
        # Temporary files of a save that a crash interrupted: ours to remove once we
        # hold the lock and the snapshot has loaded.
        # mkstemp's names: the prefix, 8 characters without a dot, ".tmp" (so another
        # snapshot's, e.g. "runs.json"'s next to "runs", never matches).
        pattern = glob.escape(self._temp_prefix()) + "[!.]" * 8 + ".tmp"
        for stale in glob.glob(os.path.join(glob.escape(self._folder()), pattern)):
            try:
                os.unlink(stale)
            except OSError:
                pass

    def _folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    def _temp_prefix(self) -> str:
        return "." + os.path.basename(self.path) + "."

    def load(self, engine: "Engine") -> None:
        """Rebuild `engine` (empty) from the snapshot, if there is one. O(n log n)."""
        if not self._existed:
            return
        blob = self._read()
        if not blob:
            # A file made empty (touch, mktemp) is a new store, as SQLite takes one: a
            # save never leaves an empty file (it renames a complete one over it).
            return
        with no_gc():
            self._load(blob, engine)

    def load_read_only(self, engine: "Engine") -> None:
        """Rebuild `engine` (empty) from the snapshot without locking it: saves replace
        the file whole (a rename), so this reads one complete snapshot even while a
        writer saves. An empty file is refused, as SQLite refuses one: nothing to read."""
        require_file(self.path)
        with no_gc():
            self._load(self._read(), engine)

    def _read(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise BackendError(f"cannot read {shown(self.path)}: {exc.strerror}") from exc

    def _load(self, blob: bytes, engine: "Engine") -> None:
        tables = read_snapshot_tables(blob, self.path)
        records: dict[str, list] = {}
        cache: dict = {}
        for kind, c in self._codecs.items():
            table = tables.get(kind, {"columns": list(c.columns), "rows": []})
            columns = table.get("columns") if isinstance(table, dict) else None
            missing = columns_missing(kind, tuple(columns), c.columns) if isinstance(columns, list) else None
            if missing is None:
                raise BackendError(f"{shown(self.path)}: table {kind} does not have the expected columns "
                                   "(corrupt file)")
            rows = table.get("rows")
            # A row of the wrong length fails to unpack in decode_many (ValueError).
            if not isinstance(rows, list):
                raise BackendError(f"{shown(self.path)}: table {kind} has malformed rows (corrupt file)")
            try:
                if missing:  # saved by an older runstate: the later columns take their default
                    rows = [[*row, *(None for _ in missing)] for row in rows]
                records[kind] = c.decode_many(rows, cache)
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
                raise BackendError(f"{shown(self.path)}: bad row in table {kind}: {shown(exc)}") from exc
        with engine._lock:
            rebuild(engine, records)

    # saving -----------------------------------------------------------------------------------
    def attach(self, engine: "Engine") -> None:
        self._remove_stale_temporaries()
        # A weak proxy: the engine holds this backend, and a strong reference back would
        # make every engine with a store a reference cycle, freed only by the collector.
        self._engine = weakref.proxy(engine)
        # Always listening: commits since the last save tell close() whether to save.
        engine._store.listeners.append(self._on_commit)  # (not kept here: a cycle again)

    def _on_commit(self, changes: list) -> None:
        self._since_save += 1
        if self.save_every is not None and self._since_save >= self.save_every:
            # The committing transaction is already applied in memory; if the save
            # fails, the commit fails and the engine rolls that transaction back.
            self._save()

    def flush(self) -> None:
        """Save a snapshot now. Raises BackendError (file untouched) on failure. After
        `close` (which saved), a no-op, as SQLite's."""
        if self._engine is None or not self._opened:
            return
        with self._engine._lock:
            if self._engine._store.in_transaction:
                raise BackendError("cannot save a snapshot inside an open transaction: commit it first")
            self._save()

    def _save(self) -> None:
        if not self._opened:
            raise BackendError(f"{self.url} is closed")
        with no_gc():
            blob = self._serialize(self._engine)
        self._write_atomically(blob)
        self._since_save = 0

    def _serialize(self, engine: "Engine") -> bytes:
        tables = {}
        try:
            for kind, c in self._codecs.items():
                encode = c.encode
                tables[kind] = {"columns": list(c.columns), "rows": [encode(r) for r in engine._store.tables[kind].rows.values()]}
            payload = json.dumps(
                {"tables": tables},
                allow_nan=False, separators=(",", ":"), check_circular=False,
            ).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise BackendError(f"cannot save a value (free-form fields must hold JSON values): {exc}") from exc
        header = json.dumps(
            {"format": FORMAT, "version": FORMAT_VERSION, "length": len(payload), "crc32": zlib.crc32(payload)}
        ).encode()
        return header + b"\n" + payload

    def _write_atomically(self, blob: bytes) -> None:
        try:
            fd, tmp = tempfile.mkstemp(prefix=self._temp_prefix(), suffix=".tmp", dir=self._folder())
        except OSError as exc:
            raise BackendError(f"cannot create a temporary file next to {shown(self.path)}: {exc.strerror}") from exc
        try:
            try:
                # mkstemp makes the file private (0600); keep the snapshot's usual mode.
                os.fchmod(fd, self._file_mode())
                f = self._fdopen(fd, "wb")
            except BaseException:
                os.close(fd)
                raise
            with f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise BackendError(f"saving {shown(self.path)} failed: {exc.strerror or exc}") from exc
            raise
        try:
            fsync_folder(self.path)
        except OSError:
            pass  # the rename itself happened; only its durability across power loss is weaker

    def _file_mode(self) -> int:
        try:
            return os.stat(self.path).st_mode & 0o777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            return 0o666 & ~umask

    def close(self) -> None:
        """Save (if anything changed since the last save), detach, release the lock. Later writes to the engine raise BackendError."""
        if not self._opened:
            return
        engine = self._engine
        if engine is not None:
            with engine._lock:
                # An unchanged engine is not rewritten (a 100,000-run snapshot is big).
                if self._since_save or not os.path.exists(self.path):
                    self.flush()
                listeners = engine._store.listeners
                if self._on_commit in listeners:  # (bound methods compare equal)
                    listeners.remove(self._on_commit)
                listeners.append(closed_listener(self.url))
        self._opened = False
        self._lock.release()

    def abort(self) -> None:
        """Give up an open that failed: release the lock, leaving the disk as it was."""
        self._opened = False
        self._lock.release(remove_if_created=True)


def read_snapshot_tables(blob: bytes, where: str = "snapshot") -> dict:
    """Validate a snapshot file's bytes and return its `tables` mapping.

    Raises BackendError naming the problem: foreign file, wrong version, truncated,
    damaged (checksum), or unparsable.
    """
    newline = blob.find(b"\n")
    if not blob:
        raise BackendError(f"{shown(where)} is empty (truncated snapshot)")
    try:
        header = json.loads(blob[:newline] if newline >= 0 else blob)
    except (ValueError, UnicodeDecodeError):
        raise BackendError(f"{shown(where)} is not a runstate snapshot (foreign or corrupt file)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackendError(f"{shown(where)} is not a runstate snapshot (foreign file)")
    version = header.get("version")
    if version != FORMAT_VERSION:
        raise BackendError(f"{shown(where)} is snapshot format version {shown(version)}; this runstate reads "
                           f"version {FORMAT_VERSION}")
    payload = blob[newline + 1:] if newline >= 0 else b""
    length = header.get("length")
    if len(payload) != length:
        raise BackendError(f"{shown(where)} is truncated or padded: payload is {len(payload)} bytes, header "
                           f"says {length}")
    if zlib.crc32(payload) != header.get("crc32"):
        raise BackendError(f"{shown(where)} is damaged: checksum mismatch")
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BackendError(f"{shown(where)} is corrupt: {exc}") from None
    tables = body.get("tables") if isinstance(body, dict) else None
    if not isinstance(tables, dict):
        raise BackendError(f"{shown(where)} is corrupt: no tables")
    unknown = sorted(set(tables) - set(KINDS))
    if unknown:
        raise BackendError(f"{shown(where)} has unknown table(s) {unknown} (corrupt or newer file)")
    return tables
