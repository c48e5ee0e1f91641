"""The in-memory core: tables of records, their indexes, and transactions.

Atomicity comes from an undo log. Before a record is mutated it is `touch`ed: its
field values (with copies of its mutable containers) are saved once per savepoint.
Rolling back replays the log backwards, restoring fields and re-filing indexes. A
committed top-level transaction hands its changes to the listeners (backends); a
listener that raises makes the commit fail and the transaction roll back, so memory
never gets ahead of what is durable.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Any, Callable, Iterable, Iterator

import attrs

from .errors import DuplicateIdError, TransactionError
from .indexes import ColdHashIndex, ColumnView, HashIndex, MultiIndex, NewestIndex, SortedIndex, SparseHashIndex
from .refile import bind_file, bind_refile

__all__ = ["Table", "Store", "Change", "record_snapshot", "record_restore", "no_gc"]


# Tables at least this large build a cold index with the collector paused (no_gc).
BULK_BUILD_ROWS = 10_000


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building or dumping hundreds of
    thousands of objects (a backend's load, a cold index's first build): otherwise
    it keeps rescanning the growing heap, which costs more than the building
    itself. Nothing built here is garbage.

    On the way out, what was built goes straight to the oldest generation
    (`freeze` then `unfreeze` splices the lists in O(1)): left in the youngest, the
    next allocation would trigger a collection that walks every new object (a
    second per million), only to promote them all anyway. Skipped when the process
    has frozen objects of its own, which `unfreeze` would release."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()


_FIELD_CACHE: dict[type, tuple[tuple[str, ...], tuple[str, ...], bool]] = {}


def _layout(cls: type) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    layout = _FIELD_CACHE.get(cls)
    if layout is None:
        names = tuple(f.name for f in attrs.fields(cls))
        nested = tuple(getattr(cls, "_NESTED", ()))
        layout = (names, nested, bool(getattr(cls, "_POLICY", False)))
        _FIELD_CACHE[cls] = layout
    return layout


_SNAPSHOTTERS: dict[type, Callable[[Any], tuple]] = {}
_POLICY_STATES: dict[type, Callable[[Any], tuple]] = {}
_CONTAINERS = (list, set, dict)


def _compile_snapshotter(cls: type) -> Callable[[Any], tuple]:
    # Straight-line slot reads (specialised by the interpreter: cheaper than one
    # attrgetter over 30 names); a snapshot is taken of every touched record.
    names, nested, has_policy = _layout(cls)
    parts = []
    for i, n in enumerate(names):
        if n in nested:
            parts.append(f"(None if (v{i} := rec.{n}) is None else v{i}.copy())")
        elif has_policy and n == "empirical_policy":
            parts.append(f"(None if (v{i} := rec.{n}) is None else policy_state(v{i}))")
        else:
            parts.append(f"rec.{n}")
    ns = {"policy_state": policy_state}
    exec(f"def snapshot(rec):\n    return ({', '.join(parts)},)", ns)  # noqa: S102 - attrs field names only
    fn = _SNAPSHOTTERS[cls] = ns["snapshot"]
    return fn


def policy_state(policy: Any) -> tuple:
    """(policy, its field values): restoring puts the same object back with those
    values, so in-place changes (pause keys added, resuming set) are undone too."""
    fn = _POLICY_STATES.get(policy.__class__)
    if fn is None:
        names = [f.name for f in attrs.fields(policy.__class__)]
        parts = [f"(v{i}.copy() if (v{i} := p.{n}).__class__ in containers else v{i})" for i, n in enumerate(names)]
        ns = {"containers": _CONTAINERS}
        exec(f"def state(p):\n    return (p, {', '.join(parts)},)", ns)  # noqa: S102
        fn = _POLICY_STATES[policy.__class__] = ns["state"]
    return fn(policy)


def record_snapshot(rec: Any) -> tuple:
    """Field values of `rec`, mutable containers copied one level deep and the
    policy saved by value (see `policy_state`). O(fields)."""
    fn = _SNAPSHOTTERS.get(rec.__class__) or _compile_snapshotter(rec.__class__)
    return fn(rec)


def record_restore(rec: Any, snap: tuple) -> None:
    names, _, has_policy = _layout(type(rec))
    for n, v in zip(names, snap):
        if has_policy and n == "empirical_policy" and v is not None:
            policy = v[0]
            for f, value in zip(attrs.fields(policy.__class__), v[1:]):
                object.__setattr__(policy, f.name, value)
            v = policy
        object.__setattr__(rec, n, v)


def _filer_sharing_keys(idx: HashIndex, keys: dict) -> Callable[[Any], None]:
    """The file function of a table whose one live index is the equality index
    `idx` (flows by name, ...): a record joining a bucket shares its neighbours'
    keys tuple, one object fewer per record for the garbage collector to walk."""
    buckets = idx.buckets
    extract = idx.extract

    def file(rec: Any) -> None:
        key = extract(rec)
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = {rec: rec}
            keys[rec] = (key,)
        else:
            shared = keys[next(iter(bucket))]
            # Only tuples are shared: a list is its record's own, updated in place.
            keys[rec] = shared if shared.__class__ is tuple else (key,)
            bucket[rec] = rec

    return file


class Table:
    """Records of one kind by id, plus their indexes.

    `rows` maps ids to records; everything internal (index buckets, `_keys`, the
    store's undo bookkeeping) is keyed by the record object itself. Records hash by
    identity (attrs `eq=False`), in C; a record's id is a UUID, which hashes in
    Python and costs a cache miss or two per lookup, several times a transition.

    `_keys[record]` holds the keys a record is filed under, one per *live* index
    (`self.indexes`); cold sorted indexes join that list when first used. It is a
    list updated in place on `_refile`, keeping the unchanged key objects: a
    transition then leaves no new keys container (nor rebuilt composite keys)
    alive for the garbage collector to walk. Records of a one-index table instead
    share their bucket's keys *tuple* (and backends bulk-load tuples): a tuple is
    never mutated, its record gets its own list when first moved.

    `order_shown`: where the table's creation order shows in reads (ties fall to
    it, as they fall to SQLite's rowid order): "" nowhere, "buckets" within its
    equality buckets (a run's inputs), "everywhere" (catalog tables, listed whole).
    A delete then saves the record's places there, and a rollback puts it back in
    them instead of at the end: O(bucket), or O(n) for "everywhere", per delete.
    """

    # (weak references: cold indexes reach their table through a proxy, see ColdIndex)
    __slots__ = ("kind", "rows", "indexes", "by_name", "_keys", "_file_fn", "_refile_fn", "order_shown",
                 "__weakref__")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.order_shown = ""
        self.rows: dict[Any, Any] = {}
        self.indexes: list[Any] = []
        self.by_name: dict[str, Any] = {}
        self._keys: dict[Any, Any] = {}
        # Generated for the current live indexes (engine/refile.py), bound on first
        # use and None again whenever the live indexes change. They hold the parts
        # they use, never the table itself: a table reaching itself through them
        # would make every engine a reference cycle, freed only by the collector.
        self._file_fn: Callable[[Any], None] | None = None
        self._refile_fn: Callable[[Any], bool] | None = None

    # index registration -------------------------------------------------------------
    def hash_index(self, name: str, extract: Callable[[Any], Any], sparse: bool = False,
                   shared_keys: bool = False) -> HashIndex:
        """An equality index; `sparse` leaves records whose key is None unfiled
        (see SparseHashIndex: for optional references, mostly None); `shared_keys`
        for a composite key that many records hold at once (see HashIndex)."""
        if sparse:
            return self._add_live(SparseHashIndex(name, extract, self.rows))
        return self._add_live(HashIndex(name, extract, shared_keys))

    def newest_index(self, name: str, extract: Callable[[Any], Any], stamp: Callable[[Any], Any],
                     expiry: Callable[[Any], Any]) -> NewestIndex:
        """An equality index that also finds a key's newest unexpired record."""
        return self._add_live(NewestIndex(name, extract, stamp, expiry))

    def multi_index(self, name: str, extract: Callable[[Any], Any]) -> MultiIndex:
        return self._add_live(MultiIndex(name, extract))

    def sorted_index(self, name: str, key: Callable[[Any], Any]) -> SortedIndex:
        return self._register(SortedIndex(name, key, self))

    def column_views(self, composite: HashIndex, columns: dict[str, Callable[[Any], Any]]) -> None:
        """Register a ColumnView of `composite` (an equality index on a tuple of
        these columns, in this order) under each column's name."""
        for position, (name, extract) in enumerate(columns.items()):
            self._register(ColumnView(name, extract, composite, position))

    def _add_live(self, index: Any) -> Any:
        # Maintained from the first row on (unlike a sorted index, cold until read).
        self.indexes.append(index)
        self._file_fn = self._refile_fn = None
        return self._register(index)

    def _register(self, index: Any) -> Any:
        if self.rows:
            raise RuntimeError("indexes must be registered before rows are added")
        self.by_name[index.name] = index
        return index

    def cold_hash_index(self, name: str, extract: Callable[[Any], Any]) -> ColdHashIndex:
        """An equality index (sparse: None keys unfiled) built on first use."""
        return self._register(ColdHashIndex(name, extract, self))

    def activate(self, index: Any) -> None:
        """Start maintaining a cold index (a sorted one, or a ColdHashIndex): file
        every row in it (its `load`). O(n log n), or O(n) for an equality index."""
        extract = index.extract
        keys = self._keys
        entries = []
        # A large build allocates an entry per row: the collector would rescan the
        # whole heap several times over (it doubles a 200,000-run build's time).
        with no_gc() if len(self.rows) >= BULK_BUILD_ROWS else contextlib.nullcontext():
            for rec in self.rows.values():
                entry = extract(rec)
                entries.append(entry)
                old = keys[rec]
                if old.__class__ is list:
                    old.append(entry)
                else:  # a shared tuple: never mutate it
                    keys[rec] = old + (entry,)
            index.load(entries, self.rows.values())
        self.indexes.append(index)
        self._file_fn = self._refile_fn = None
        index.live = True

    # raw maintenance (no undo; Store wraps these) --------------------------------------
    def _file(self, rec: Any) -> None:
        """File a record (already in `rows`) under every live index. O(indexes),
        plus O(log n) per sorted index."""
        fn = self._file_fn
        if fn is None:
            fn = self._file_fn = self._bind_file()
        fn(rec)

    def _bind_file(self) -> Callable[[Any], None]:
        indexes = self.indexes
        if len(indexes) == 1 and indexes[0].__class__ is HashIndex:
            return _filer_sharing_keys(indexes[0], self._keys)
        return bind_file(self)  # engine/refile.py: the loop over indexes, unrolled

    def _unfile(self, rec: Any) -> None:
        # Tolerates a record inserted unfiled (`Store.insert(..., file=False)`).
        keys = self._keys.pop(rec, None)
        if keys is None:
            return
        for idx, key in zip(self.indexes, keys):
            idx.remove(key, rec)

    def _unfile_partly(self, rec: Any) -> None:
        """Take `rec` out of whichever live indexes hold it after a filing that
        failed midway (its keys never recorded). O(indexes · log n)."""
        self._keys.pop(rec, None)
        for idx in self.indexes:
            try:
                idx.remove(idx.extract(rec), rec)
            except Exception:  # not filed there (or its key fails again): nothing to take out
                pass

    def _refile(self, rec: Any) -> bool:
        """Move `rec` to its current keys (filing it if it was inserted unfiled);
        returns whether any key changed. O(indexes) when nothing moved, plus
        O(log n) per moved sorted entry."""
        fn = self._refile_fn
        if fn is None:
            fn = self._refile_fn = self._bind_refile()
        return fn(rec)

    def _places(self, rec: Any) -> tuple:
        """Where `rec` sits in each equality bucket holding it and, if the table's
        order shows everywhere, in `rows` and among the keys of a bucket it alone
        holds (else None for those). O(buckets' sizes), or O(n) everywhere."""
        everywhere = self.order_shown == "everywhere"
        spots = []
        for idx, keys in zip(self.indexes, self._keys.get(rec, ())):
            buckets = getattr(idx, "buckets", None)
            if buckets is None:  # a sorted index: its order is its keys'
                continue
            for key in (keys if isinstance(idx, MultiIndex) else (keys,)):
                bucket = buckets.get(key)
                if bucket is not None and rec in bucket:
                    # (a key's place costs O(keys): a run's inputs have one key each)
                    key_at = list(buckets).index(key) if everywhere and len(bucket) == 1 else None
                    spots.append((buckets, key, key_at, list(bucket).index(rec)))
        return (list(self.rows).index(rec.id) if everywhere else None), spots

    def _put_back(self, rec: Any, places: tuple) -> None:
        """Move `rec`, just filed again (so last everywhere), back to `places`."""
        at, spots = places
        if at is not None:
            _move_last_to(self.rows, at)
        for buckets, key, key_at, rec_at in spots:
            if key_at is not None:
                _move_last_to(buckets, key_at)
            _move_last_to(buckets[key], rec_at)

    def _bind_refile(self) -> Callable[[Any], bool]:
        # Generated per index layout (engine/refile.py): the hottest path of every
        # write, with the per-index loop unrolled. It files an unfiled record with
        # the table's file function, bound first.
        if self._file_fn is None:
            self._file_fn = self._bind_file()
        return bind_refile(self)

    def get(self, rec_id: Any) -> Any:
        return self.rows.get(rec_id)

    def existing(self, ids: Iterable[Any]) -> list[Any]:
        """The rows of `ids` that exist, each once, in the order first given: what
        ``WHERE id IN (...)`` selects. O(len(ids))."""
        rows = self.rows
        return [rows[i] for i in dict.fromkeys(ids) if i in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows.values())

    def clear(self) -> None:
        self.rows.clear()
        self._keys.clear()
        for idx in self.by_name.values():
            idx.clear()


def _move_last_to(mapping: dict, at: int) -> None:
    # A dict cannot insert at a position: rebuild it in place (others hold it).
    if at < len(mapping) - 1:
        items = list(mapping.items())
        items.insert(at, items.pop())
        mapping.clear()
        mapping.update(items)


class HistoryTable(Table):
    """A table with a single equality index whose key a record never changes (state
    rows by their run). No per-record keys are kept, since the key can always be
    extracted again: a stored state costs one dict entry and two id hashes less.

    `holds_time` answers whether a key's records include a timestamp, which keeps
    (run, timestamp) unique. A short history is scanned. For a long one (a task
    retried many times), `time_bounds[key]` is at least the `timestamp` of every
    record filed under the key, so a later time, the usual case, needs no scan.
    Filing raises a bound; removal and rollback leave it, as an upper bound it
    stays true."""

    __slots__ = ("time_bounds",)

    # A history this long keeps a bound on its times.
    LONG_HISTORY = 16

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.time_bounds: dict[Any, Any] = {}

    def holds_time(self, key: Any, timestamp: Any) -> bool:
        """Whether a record filed under `key` has this `timestamp`. O(1) when it is
        later than every one of a long history's; else O(records of the key)."""
        idx = self.indexes[0]
        bucket = idx.buckets.get(key)
        if not bucket:
            return False
        if len(bucket) >= self.LONG_HISTORY:
            bound = self.time_bounds.get(key)
            if bound is None:
                bound = self.time_bounds[key] = max(rec.timestamp for rec in bucket.values())
            if timestamp > bound:
                return False
        for rec in bucket.values():  # a plain loop: no generator per transition
            if rec.timestamp == timestamp:
                return True
        return False

    def clear(self) -> None:
        super().clear()
        self.time_bounds.clear()

    def hash_index(self, name: str, extract: Callable[[Any], Any], sparse: bool = False) -> HashIndex:
        if self.indexes or sparse:
            raise RuntimeError(f"{self.kind}: a history table has exactly one plain hash index")
        return super().hash_index(name, extract)

    def multi_index(self, name: str, extract: Callable[[Any], Any]) -> MultiIndex:
        raise RuntimeError(f"{self.kind}: a history table has exactly one plain hash index")

    def sorted_index(self, name: str, key: Callable[[Any], Any]) -> SortedIndex:
        raise RuntimeError(f"{self.kind}: a history table has exactly one plain hash index")

    def _file(self, rec: Any) -> None:
        _file_in_history(self.indexes[0], self.time_bounds, rec)

    def _unfile(self, rec: Any) -> None:
        bucket = _bucket_of(self.indexes[0], rec)
        if bucket is not None:  # tolerates a record inserted unfiled
            del bucket[rec]
            if not bucket:
                idx = self.indexes[0]
                key = idx.extract(rec)
                del idx.buckets[key]
                self.time_bounds.pop(key, None)

    def _bind_refile(self) -> Callable[[Any], bool]:
        # Over the index and the bounds, not the table (see Table.__init__).
        idx = self.indexes[0]
        bounds = self.time_bounds

        def refile(rec: Any) -> bool:
            if _bucket_of(idx, rec) is not None:
                return False  # filed already: the key never changes
            _file_in_history(idx, bounds, rec)
            return True

        return refile


def _bucket_of(idx: HashIndex, rec: Any) -> dict | None:
    """The bucket of the history index `idx` holding `rec`, or None if it is not filed."""
    bucket = idx.buckets.get(idx.extract(rec))
    return bucket if bucket is not None and bucket.get(rec) is rec else None


def _file_in_history(idx: HashIndex, bounds: dict, rec: Any) -> None:
    # File a state row under its run (and no keys kept), moving up a long
    # history's time bound.
    key = idx.extract(rec)
    idx.insert(key, rec)
    if bounds:
        bound = bounds.get(key)
        if bound is not None and rec.timestamp > bound:
            bounds[key] = rec.timestamp


@attrs.frozen(slots=True)
class Change:
    """One committed change: `op` is "upsert" or "delete"; `record` is live for upserts."""

    kind: str
    op: str
    record_id: Any
    record: Any


class Store:
    """All tables plus the transaction machinery. Not thread-safe by itself: the
    engine serialises calls with its lock.

    Savepoints cost no objects: each open level is an undo-log mark plus a serial
    number, and `_saved[record]` is the serial of the level that last saved the
    record's snapshot. A record needs a new snapshot when touched in a level other
    than that one; serials are never reused, so a closed level's marks can never be
    mistaken for an open one's.
    """

    def __init__(self, kinds: Iterable[str]) -> None:
        self.tables: dict[str, Table] = {k: Table(k) for k in kinds}
        self._undo: list[tuple] = []
        self._marks: list[int] = []  # undo-log length when each open level began
        self._serials: list[int] = []  # serial of each open level
        self._level = 0  # serial of the innermost open level (0: none)
        self._next_serial = 1
        self._saved: dict[Any, int] = {}
        # record -> (kind, record) touched since the transaction began; kept only
        # while someone listens (a backend), so a memory-only engine pays nothing.
        self._changed: dict[Any, tuple[str, Any]] = {}
        self.listeners: list[Callable[[list[Change]], None]] = []

    def use_history_table(self, kind: str) -> HistoryTable:
        """Make `kind` a HistoryTable (before any index or row is added)."""
        if self.tables[kind].indexes or self.tables[kind].by_name or self.tables[kind].rows:
            raise RuntimeError(f"{kind}: too late to make it a history table")
        table = self.tables[kind] = HistoryTable(kind)
        return table

    # transactions -------------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        return bool(self._marks)

    def begin(self) -> None:
        """Open a transaction, or a savepoint inside the current one. O(1)."""
        self._marks.append(len(self._undo))
        level = self._level = self._next_serial
        self._next_serial = level + 1
        self._serials.append(level)

    def commit(self) -> None:
        """Close the innermost level; the outermost one publishes its changes."""
        marks = self._marks
        if not marks:
            raise TransactionError("commit without an open transaction")
        if len(marks) > 1:
            # Records saved in the closed level are re-saved if touched again in the
            # outer one: redundant but correct, and nested levels are rare.
            marks.pop()
            serials = self._serials
            serials.pop()
            self._level = serials[-1]
            return
        if self._changed:
            changes = self._collect_changes()
            try:
                for listener in self.listeners:
                    listener(changes)
            except BaseException:
                self.rollback()
                raise
            self._changed.clear()
        marks.pop()
        self._serials.pop()
        self._level = 0
        self._undo.clear()
        if self._saved:
            self._saved.clear()

    def rollback(self) -> None:
        """Undo everything since the innermost level began, and close that level."""
        if not self._marks:
            raise TransactionError("rollback without an open transaction")
        mark = self._marks.pop()
        self._serials.pop()
        undo = self._undo
        while len(undo) > mark:
            entry = undo.pop()
            op = entry[0]
            if op == "restore":
                _, table, rec, snap = entry
                record_restore(rec, snap)
                if rec in table._keys:
                    table._refile(rec)
            elif op == "insert":
                _, table, rec = entry
                del table.rows[rec.id]
                table._unfile(rec)
            elif op == "delete":
                _, table, rec, places = entry
                table.rows[rec.id] = rec
                table._file(rec)
                if places is not None:
                    table._put_back(rec, places)
            else:  # "call": a side structure's own undo
                entry[1]()
        if self._serials:
            self._level = self._serials[-1]
        else:
            self._level = 0
            self._changed.clear()
            self._saved.clear()

    def _collect_changes(self) -> list[Change]:
        changes = []
        tables = self.tables
        for kind, rec in self._changed.values():
            rec_id = rec.id
            if tables[kind].rows.get(rec_id) is rec:
                changes.append(Change(kind, "upsert", rec_id, rec))
            else:
                changes.append(Change(kind, "delete", rec_id, None))
        return changes

    # writes (must run inside a transaction) -------------------------------------------------
    def insert(self, kind: str, rec: Any, file: bool = True) -> None:
        """Add a new record and file it in every index. O(indexes · log n).

        With `file=False` the record is only added to `rows`: the caller is about to
        set its indexed fields and will `reindex` it, which files it once instead of
        filing then moving it. Index-based reads do not see it until then."""
        if not self._level:
            raise TransactionError(f"insert of a {kind} outside a transaction")
        table = self.tables[kind]
        rec_id = rec.id
        if table.rows.setdefault(rec_id, rec) is not rec:  # one hash of the id, not two
            raise DuplicateIdError(f"a {kind.replace('_', ' ')} with id {rec_id} already exists")
        if file:
            try:
                table._file(rec)
            except BaseException:  # (an interrupt too) no undo entry yet: take it out here
                del table.rows[rec_id]
                table._unfile_partly(rec)
                raise
        self._undo.append(("insert", table, rec))
        # Rolling this level back removes the record whole, so later touches in the
        # same level need no snapshot of it.
        self._saved[rec] = self._level
        if self.listeners:
            self._changed[rec] = (kind, rec)

    def delete(self, kind: str, rec: Any) -> None:
        """Remove a record and unfile it. O(indexes · log n), plus saving its places
        for a rollback where the table's order shows (see Table)."""
        self.touch(kind, rec)  # its snapshot, and its change for the listeners
        table = self.tables[kind]
        places = table._places(rec) if table.order_shown else None
        del table.rows[rec.id]
        table._unfile(rec)
        self._undo.append(("delete", table, rec, places))

    def touch(self, kind: str, rec: Any) -> None:
        """Call before mutating `rec` in place; then `reindex` after. O(fields)."""
        level = self._level
        saved = self._saved
        if saved.get(rec) != level:
            if not level:
                raise TransactionError(f"touch of a {kind} outside a transaction")
            saved[rec] = level
            self._undo.append(("restore", self.tables[kind], rec, record_snapshot(rec)))
        if self.listeners:
            self._changed[rec] = (kind, rec)

    def reindex(self, kind: str, rec: Any) -> bool:
        """Re-file a touched record whose indexed fields may have changed (or file
        one inserted with `file=False`). O(indexes) when nothing moved,
        O(changed indexes · log n) otherwise."""
        table = self.tables[kind]
        fn = table._refile_fn  # Table._refile, inline: once per transition
        if fn is None:
            fn = table._refile_fn = table._bind_refile()
        return fn(rec)

    def set_null(self, kind: str, field: str, key: Any) -> None:
        """A foreign key's ON DELETE SET NULL: every `kind` record whose `field` is
        `key` (found through the hash index of that name) gets None there, undoably
        and refiled; `updated` stays, as the database leaves it. O(matches · indexes)."""
        for rec in list(self.tables[kind].by_name[field].get(key).values()):
            self.touch(kind, rec)
            setattr(rec, field, None)
            self.reindex(kind, rec)

    def delete_where(self, kind: str, field: str, key: Any) -> int:
        """A foreign key's ON DELETE CASCADE, one level: delete every `kind` record
        whose `field` is `key` (found through the hash index of that name),
        undoably; returns how many. O(matches · indexes)."""
        recs = list(self.tables[kind].by_name[field].get(key).values())
        for rec in recs:
            self.delete(kind, rec)
        return len(recs)

    def on_rollback(self, undo: Callable[[], None]) -> None:
        """Register an undo action for state kept outside the tables."""
        self._undo.append(("call", undo))

    # loading (no undo, no change log: used to rebuild from a backend) -------------------------
    def load(self, kind: str, rec: Any) -> None:
        table = self.tables[kind]
        table.rows[rec.id] = rec
        table._file(rec)

    def clear(self) -> None:
        for table in self.tables.values():
            table.clear()
