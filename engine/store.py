"""The in-memory core: tables of records, their indexes, and transactions.

Atomicity comes from an undo log. Before a record is mutated it is `touch`ed: its
field values (with copies of its mutable containers) are saved once per savepoint.
Rolling back replays the log backwards, restoring fields and re-filing indexes. A
committed top-level transaction hands its changes to the listeners (backends); a
listener that raises makes the commit fail and the transaction roll back, so memory
never gets ahead of what is durable.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Iterable, Iterator

import attrs

from .errors import TransactionError
from .indexes import HashIndex, MultiIndex, SortedIndex

__all__ = ["Table", "Store", "Change", "record_snapshot", "record_restore"]


_FIELD_CACHE: dict[type, tuple[tuple[str, ...], tuple[str, ...], bool]] = {}


def _layout(cls: type) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    layout = _FIELD_CACHE.get(cls)
    if layout is None:
        names = tuple(f.name for f in attrs.fields(cls))
        nested = tuple(getattr(cls, "_NESTED", ()))
        layout = (names, nested, bool(getattr(cls, "_POLICY", False)))
        _FIELD_CACHE[cls] = layout
    return layout


_SNAPSHOT_PLAN: dict[type, tuple[Any, tuple[int, ...]]] = {}


def _snapshot_plan(cls: type) -> tuple[Any, tuple[int, ...]]:
    # (one C-level getter for every field, positions of the values to copy): a
    # snapshot is taken on every touched record, so it must not loop in Python.
    names, nested, has_policy = _layout(cls)
    copied = [names.index(n) for n in nested]
    if has_policy:
        copied.append(names.index("empirical_policy"))
    getter = operator.attrgetter(*names) if len(names) > 1 else (lambda rec, n=names[0]: (getattr(rec, n),))
    plan = _SNAPSHOT_PLAN[cls] = (getter, tuple(copied))
    return plan


def record_snapshot(rec: Any) -> tuple:
    """Field values of `rec`, mutable containers copied one level deep. O(fields)."""
    plan = _SNAPSHOT_PLAN.get(type(rec)) or _snapshot_plan(type(rec))
    getter, copied = plan
    if not copied:
        return getter(rec)
    values = list(getter(rec))
    for i in copied:
        v = values[i]
        if v is not None:
            values[i] = v.copy()
    return tuple(values)


def record_restore(rec: Any, snap: tuple) -> None:
    names = _layout(type(rec))[0]
    for n, v in zip(names, snap):
        object.__setattr__(rec, n, v)


class Table:
    """Records of one kind by id, plus their indexes.

    `_keys[id]` is the tuple of keys a record is filed under, one per *live* index
    (`self.indexes`); cold sorted indexes join that list when first used.
    """

    __slots__ = ("kind", "rows", "indexes", "by_name", "_keys")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.rows: dict[Any, Any] = {}
        self.indexes: list[Any] = []
        self.by_name: dict[str, Any] = {}
        self._keys: dict[Any, tuple] = {}

    # index registration -------------------------------------------------------------
    def hash_index(self, name: str, extract: Callable[[Any], Any]) -> HashIndex:
        index = HashIndex(name, extract)
        self.indexes.append(index)
        return self._register(index)

    def multi_index(self, name: str, extract: Callable[[Any], Any]) -> MultiIndex:
        index = MultiIndex(name, extract)
        self.indexes.append(index)
        return self._register(index)

    def sorted_index(self, name: str, key: Callable[[Any], Any]) -> SortedIndex:
        return self._register(SortedIndex(name, key, self))

    def _register(self, index: Any) -> Any:
        if self.rows:
            raise RuntimeError("indexes must be registered before rows are added")
        self.by_name[index.name] = index
        return index

    def activate(self, index: SortedIndex) -> None:
        """Start maintaining a cold sorted index: file every row in it. O(n log n)."""
        extract = index.extract
        keys = self._keys
        entries = []
        for rec_id, rec in self.rows.items():
            entry = extract(rec)
            entries.append(entry)
            keys[rec_id] = keys[rec_id] + (entry,)
        index.entries.update(entries)
        self.indexes.append(index)
        index.live = True

    # raw maintenance (no undo; Store wraps these) --------------------------------------
    def _file(self, rec: Any) -> None:
        keys = tuple([idx.extract(rec) for idx in self.indexes])
        for idx, key in zip(self.indexes, keys):
            idx.insert(key, rec)
        self._keys[rec.id] = keys

    def _unfile(self, rec: Any) -> None:
        keys = self._keys.pop(rec.id)
        for idx, key in zip(self.indexes, keys):
            idx.remove(key, rec)

    def _refile(self, rec: Any) -> bool:
        """Move `rec` to its current keys; returns whether any key changed."""
        old = self._keys[rec.id]
        new = tuple([idx.extract(rec) for idx in self.indexes])
        if new == old:
            return False
        for idx, o, n in zip(self.indexes, old, new):
            if o != n:
                idx.remove(o, rec)
                idx.insert(n, rec)
        self._keys[rec.id] = new
        return True

    def get(self, rec_id: Any) -> Any:
        return self.rows.get(rec_id)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows.values())

    def clear(self) -> None:
        self.rows.clear()
        self._keys.clear()
        for idx in self.by_name.values():
            idx.clear()


@attrs.frozen(slots=True)
class Change:
    """One committed change: `op` is "upsert" or "delete"; `record` is live for upserts."""

    kind: str
    op: str
    record_id: Any
    record: Any


class _Savepoint:
    __slots__ = ("mark", "touched")

    def __init__(self, mark: int) -> None:
        self.mark = mark
        self.touched: set[int] = set()


class Store:
    """All tables plus the transaction machinery. Not thread-safe by itself: the
    engine serialises calls with its lock."""

    def __init__(self, kinds: Iterable[str]) -> None:
        self.tables: dict[str, Table] = {k: Table(k) for k in kinds}
        self._undo: list[tuple] = []
        self._savepoints: list[_Savepoint] = []
        # id(record) -> (kind, record) touched since the transaction began; kept only
        # while someone listens (a backend), so a memory-only engine pays nothing.
        self._changed: dict[int, tuple[str, Any]] = {}
        self.listeners: list[Callable[[list[Change]], None]] = []

    # transactions -------------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        return bool(self._savepoints)

    def begin(self) -> None:
        """Open a transaction, or a savepoint inside the current one."""
        self._savepoints.append(_Savepoint(len(self._undo)))

    def commit(self) -> None:
        """Close the innermost level; the outermost one publishes its changes."""
        if not self._savepoints:
            raise TransactionError("commit without an open transaction")
        if len(self._savepoints) > 1:
            self._savepoints.pop()
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
        self._savepoints.pop()
        self._undo.clear()

    def rollback(self) -> None:
        """Undo everything since the innermost level began, and close that level."""
        if not self._savepoints:
            raise TransactionError("rollback without an open transaction")
        sp = self._savepoints.pop()
        undo = self._undo
        while len(undo) > sp.mark:
            entry = undo.pop()
            op = entry[0]
            if op == "restore":
                _, table, rec, snap = entry
                record_restore(rec, snap)
                if rec.id in table._keys:
                    table._refile(rec)
            elif op == "insert":
                _, table, rec = entry
                del table.rows[rec.id]
                table._unfile(rec)
            elif op == "delete":
                _, table, rec = entry
                table.rows[rec.id] = rec
                table._file(rec)
            else:  # "call": a side structure's own undo
                entry[1]()
        if not self._savepoints:
            self._changed.clear()

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
    def insert(self, kind: str, rec: Any) -> None:
        """Add a new record and file it in every index. O(indexes · log n)."""
        table = self.tables[kind]
        if rec.id in table.rows:
            raise KeyError(f"{kind} {rec.id} already exists")
        table.rows[rec.id] = rec
        table._file(rec)
        self._undo.append(("insert", table, rec))
        # Rolling this savepoint back removes the record whole, so later touches in
        # the same savepoint need no snapshot of it.
        self._savepoints[-1].touched.add(id(rec))
        if self.listeners:
            self._changed[id(rec)] = (kind, rec)

    def delete(self, kind: str, rec: Any) -> None:
        """Remove a record and unfile it. O(indexes · log n)."""
        table = self.tables[kind]
        self._touch(table, rec)
        del table.rows[rec.id]
        table._unfile(rec)
        self._undo.append(("delete", table, rec))
        if self.listeners:
            self._changed[id(rec)] = (kind, rec)

    def touch(self, kind: str, rec: Any) -> None:
        """Call before mutating `rec` in place; then `reindex` after. O(fields)."""
        table = self.tables[kind]
        self._touch(table, rec)
        if self.listeners:
            self._changed[id(rec)] = (kind, rec)

    def _touch(self, table: Table, rec: Any) -> None:
        sp = self._savepoints[-1]
        key = id(rec)
        if key not in sp.touched:
            sp.touched.add(key)
            self._undo.append(("restore", table, rec, record_snapshot(rec)))

    def reindex(self, kind: str, rec: Any) -> bool:
        """Re-file a touched record whose indexed fields may have changed. O(indexes)
        when nothing moved, O(changed indexes · log n) otherwise."""
        return self.tables[kind]._refile(rec)

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
