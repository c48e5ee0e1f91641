"""Durability backends: where an engine's records live between processes.

    open_engine("sqlite:///runs.db")            # write-through SQLite (relative path)
    open_engine("sqlite:////var/lib/runs.db", batch=500)
    open_engine("json:///runs.json", save_every=1000)
    open_engine("memory://")                    # same as Engine(): nothing is stored

URLs follow the SQLAlchemy convention: three slashes then a relative path, four for
an absolute one.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import BackendError, shown

from .base import Backend, ReadOnlyStore, check_options
from .json_snapshot import JsonSnapshotBackend
from .sqlite import SqliteBackend

if TYPE_CHECKING:  # pragma: no cover
    from engine.clock import Clock
    from engine.engine import Engine

__all__ = ["open_engine", "parse_url", "Backend", "SqliteBackend", "JsonSnapshotBackend"]

_BACKENDS: dict[str, Any] = {"sqlite": SqliteBackend, "json": JsonSnapshotBackend}
_OPTIONS = {
    "sqlite": ("batch", "synchronous"),
    "json": ("save_every",),
    "memory": (),
}


def parse_url(url: str) -> tuple[str, str]:
    """(scheme, path) of a backend URL; BackendError for anything else."""
    if not isinstance(url, str) or "://" not in url:
        raise BackendError(f"backend URL must look like 'sqlite:///path', 'json:///path' or 'memory://', got "
                           f"{shown(url)}")
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in _OPTIONS:
        raise BackendError(f"unknown backend {shown(scheme)} in {shown(url)}; expected sqlite, json or memory")
    if scheme == "memory":
        if rest.strip("/"):
            raise BackendError(f"a memory URL takes no path, got {shown(url)}")
        return scheme, ""
    if not rest.startswith("/") or len(rest) < 2:
        raise BackendError(f"{shown(url)} has no path: use '{scheme}:///relative/path' or '{scheme}:////absolute/path'")
    if "\x00" in rest:
        raise BackendError(f"{shown(url)}: a path cannot hold a NUL character")
    path = rest[1:]
    # What SQLAlchemy reads otherwise would silently become a file's name here.
    if "?" in path or "#" in path:
        raise BackendError(f"{shown(url)}: a URL query or fragment is not read; give options as keywords, "
                           "e.g. Engine.open('sqlite:///runs.db', batch=100)")
    if path == ":memory:" or path.startswith("file:"):
        raise BackendError(f"{shown(url)}: runstate opens a file path only; for an engine that keeps nothing, "
                           "use 'memory://' or Engine()")
    if path.endswith("/"):
        raise BackendError(f"{shown(url)} names a folder: end the path with a file name")
    return scheme, path


def open_engine(url: str, clock: "Clock | None" = None, **options: Any) -> "Engine":
    """An engine backed by the location in `url`, rebuilt from what is stored there.

    Options: sqlite — `batch` (1 = write-through, the default; N = one SQLite commit
    per N engine commits), `synchronous` ("NORMAL" default, "FULL"); json —
    `save_every` (None = only on flush/close); both — `read_only=True`: load what is
    stored without the writer's lock, creating or changing nothing (another process
    may be writing; SQLite holds a reader's lock for the read), and refuse the
    engine's writes. Raises BackendError when the location cannot be
    used or holds a bad file; then nothing is left open or changed.
    O(n log n) for n stored records.
    """
    from engine.engine import Engine

    scheme, path = parse_url(url)
    read_only = options.pop("read_only", False)
    if not isinstance(read_only, bool):
        raise BackendError(f"read_only must be True or False, got {shown(read_only)}")
    # (unknown names first: a typo is not "a write option")
    check_options(scheme, options, _OPTIONS[scheme], also=("read_only",) if scheme != "memory" else ())
    if read_only and options:
        raise BackendError(f"{', '.join(sorted(options))}: a write option, but the engine is opened read_only")
    engine = Engine(clock=clock)
    if scheme == "memory":
        if read_only:
            raise BackendError("read_only needs a stored engine: a memory URL has nothing to read")
        return engine
    backend_class = _BACKENDS[scheme]
    if read_only:
        backend_class(path).load_read_only(engine)
        store = ReadOnlyStore(url)
        store.attach(engine)
        engine._backend = store
        return engine
    backend = backend_class(path, **options)
    backend.open()
    try:
        backend.load(engine)
        backend.attach(engine)
    except BaseException:
        backend.abort()
        raise
    engine._backend = backend
    return engine
