"""Secondary indexes kept by each table, updated incrementally on every write.

An index knows how to `extract` its key from a record; the table remembers the key
each record was filed under, so a mutated record can be moved in O(log n) without a
scan. Three shapes cover every query:

* `HashIndex`   key -> {record: record}; equality filters and counters (len of a
  bucket). Buckets are keyed by the records, which hash by identity (see Table).
* `SparseHashIndex` a HashIndex without the None bucket (optional references).
* `ColdHashIndex` a SparseHashIndex maintained only once first used (a `ColdIndex`,
  as SortedIndex is).
* `NewestIndex` a HashIndex that finds a key's newest unexpired record (caches).
* `MultiIndex`  like HashIndex, but a record is filed under several keys (tags).
* `ColumnView`  one column of a HashIndex on a composite key, answering like a
  HashIndex on that column (runs by state type, by state name: one index whose
  buckets are (type, name) pairs, so a transition moves a run once, not twice).
* `SortedIndex` a SortedList of (null-rank, key, id int, id); walks in sort order, NULLs placed
  as SQLite places them (first ascending, last descending).
"""
from __future__ import annotations

import functools
import weakref
from typing import Any, Callable, Hashable, Iterable, Iterator

from sortedcontainers import SortedList

__all__ = ["ColdHashIndex", "ColdIndex", "ColumnView", "HashIndex", "MultiIndex", "NewestIndex", "SortedIndex",
           "SparseHashIndex", "key_range", "sort_entry"]


class HashIndex:
    """Equality index: key -> {record: record}. Lookup O(1); bucket size O(1)."""

    __slots__ = ("name", "extract", "buckets", "shared", "last")

    def __init__(self, name: str, extract: Callable[[Any], Hashable], shared_keys: bool = False) -> None:
        self.name = name
        self.extract = extract
        self.buckets: dict[Hashable, dict[Any, Any]] = {}
        # `shared_keys`: a composite (tuple) key that many records hold at once, e.g.
        # (state type, state name). The store files a record under `last`, the key
        # it last filed, when equal, so such records share one tuple instead of
        # keeping one each for the garbage collector to walk (see Table._file).
        self.shared = shared_keys
        self.last: Any = None

    def insert(self, key: Hashable, rec: Any) -> None:
        bucket = self.buckets.get(key)
        if bucket is None:
            self.buckets[key] = {rec: rec}
        else:
            bucket[rec] = rec

    def remove(self, key: Hashable, rec: Any) -> None:
        bucket = self.buckets[key]
        del bucket[rec]
        if not bucket:
            del self.buckets[key]

    def get(self, key: Hashable) -> dict[Any, Any]:
        """The records filed under `key` (do not mutate). O(1)."""
        return self.buckets.get(key, _EMPTY)

    def count(self, key: Hashable) -> int:
        """Number of records filed under `key`. O(1)."""
        bucket = self.buckets.get(key)
        return len(bucket) if bucket else 0

    def counts(self) -> dict[Hashable, int]:
        """Number of records under each key that has any. O(keys)."""
        return {key: len(bucket) for key, bucket in self.buckets.items()}

    def clear(self) -> None:
        self.buckets.clear()


_EMPTY: dict = {}


class SparseHashIndex(HashIndex):
    """A HashIndex that files no record under None (no deployment, no work queue,
    no parent task run, no idempotency key). That bucket would hold most of the
    table, and every insert would write into the largest dict there is; it is
    asked for rarely, so it is computed then: `count(None)` in O(keys),
    `get(None)` by a scan in O(n)."""

    __slots__ = ("rows",)

    def __init__(self, name: str, extract: Callable[[Any], Hashable], rows: dict) -> None:
        super().__init__(name, extract)
        self.rows = rows  # the owning table's records by id

    def insert(self, key: Hashable, rec: Any) -> None:
        if key is not None:
            HashIndex.insert(self, key, rec)

    def remove(self, key: Hashable, rec: Any) -> None:
        if key is not None:
            HashIndex.remove(self, key, rec)

    def get(self, key: Hashable) -> dict[Any, Any]:
        """The records filed under `key`; for None, O(n), else O(1)."""
        if key is None:
            extract = self.extract
            return {rec: rec for rec in self.rows.values() if extract(rec) is None}
        return self.buckets.get(key, _EMPTY)

    def count(self, key: Hashable) -> int:
        """Number of records under `key`; for None, O(keys), else O(1)."""
        if key is None:
            return len(self.rows) - sum(map(len, self.buckets.values()))
        bucket = self.buckets.get(key)
        return len(bucket) if bucket else 0

    def counts(self) -> dict[Hashable, int]:
        """Number of records under each key that has any, None included. O(keys)."""
        out = HashIndex.counts(self)
        nulls = self.count(None)
        if nulls:
            out[None] = nulls
        return out


class ColdIndex:
    """Base of the indexes a table maintains only once first used: until then (`live`
    False) its writes pay nothing for them. Subclasses keep `table` (a weak proxy
    of the owning Table, which files every row when the index is warmed: a strong
    reference back to the table that holds the index would make every engine a
    reference cycle, freed only by the collector) and `live`."""

    __slots__ = ()

    def warm(self) -> None:
        """Build the index now (if cold) and keep it maintained from here on."""
        if not self.live:
            self.table.activate(self)


class ColdHashIndex(SparseHashIndex, ColdIndex):
    """A SparseHashIndex that starts *cold*, like a SortedIndex: its table does not
    maintain it until first used (`warm`, O(n)), so the writes of engines that never
    ask pay nothing. For counts only some engines need (a worker poll's PENDING and
    RUNNING runs per work queue)."""

    __slots__ = ("table", "live")

    def __init__(self, name: str, extract: Callable[[Any], Hashable], table: Any) -> None:
        super().__init__(name, extract, table.rows)
        self.table = weakref.proxy(table)  # (see ColdIndex)
        self.live = False

    def load(self, keys: Iterable[Hashable], records: Iterable[Any]) -> None:
        """File `records` under their `keys` (Table.activate). O(n)."""
        for key, rec in zip(keys, records):
            self.insert(key, rec)

    def count(self, key: Hashable) -> int:
        """Number of records under `key` (see SparseHashIndex); warms the index."""
        self.warm()
        return SparseHashIndex.count(self, key)

    def get(self, key: Hashable) -> dict[Any, Any]:
        """The records under `key` (see SparseHashIndex); warms the index."""
        self.warm()
        return SparseHashIndex.get(self, key)


class NewestIndex(HashIndex):
    """A HashIndex that also answers "the newest live record under a key" (task-run
    cache lookups: newest by `stamp`, later insert winning ties, among records whose
    `expiry` is None or after now), without scanning a key's whole history.

    Per key it keeps the largest stamp and expiry seen and whether stamps have come
    in order. In order (the engine's clock only moves forward), the newest live
    record is the first live one walking back from the last insert; a key whose
    records have all expired answers at once. Out of order, it scans the key.
    Removals leave the summary as it was, which only ever makes it err towards the
    scan: a summary is exact again once its key's bucket empties.
    """

    __slots__ = ("stamp", "expiry", "summary")

    def __init__(self, name: str, extract: Callable[[Any], Hashable], stamp: Callable[[Any], Any],
                 expiry: Callable[[Any], Any]) -> None:
        super().__init__(name, extract)
        self.stamp = stamp
        self.expiry = expiry
        # key -> [largest stamp, stamps in insert order, largest expiry, some record never expires]
        self.summary: dict[Hashable, list] = {}

    def insert(self, key: Hashable, rec: Any) -> None:
        HashIndex.insert(self, key, rec)
        stamp, expiry = self.stamp(rec), self.expiry(rec)
        summary = self.summary.get(key)
        if summary is None:
            self.summary[key] = [stamp, stamp is not None, expiry, expiry is None]
            return
        if stamp is None or summary[0] is None or stamp < summary[0]:
            summary[1] = False
        else:
            summary[0] = stamp
        if expiry is None:
            summary[3] = True
        elif summary[2] is None or expiry > summary[2]:
            summary[2] = expiry

    def remove(self, key: Hashable, rec: Any) -> None:
        HashIndex.remove(self, key, rec)
        if key not in self.buckets:
            del self.summary[key]

    def newest(self, key: Hashable, now: Any) -> Any:
        """The newest record under `key` not expired at `now`, or None. O(1) when
        stamps came in order and the newest record is live; O(records of key) at worst."""
        bucket = self.buckets.get(key)
        if not bucket:
            return None
        _, in_order, last_expiry, forever = self.summary[key]
        if not forever and last_expiry is not None and last_expiry <= now:
            return None  # every record of the key has expired
        expiry = self.expiry
        if in_order:
            for rec in reversed(bucket.values()):
                ends = expiry(rec)
                if ends is None or ends > now:
                    return rec
            return None
        stamp = self.stamp
        best = None
        for rec in bucket.values():
            ends = expiry(rec)
            if ends is not None and ends <= now:
                continue
            if best is None or stamp(rec) >= stamp(best):
                best = rec
        return best

    def clear(self) -> None:
        self.buckets.clear()
        self.summary.clear()


class ColumnView:
    """Read-only: the records of a composite-key HashIndex (keys are tuples) whose
    key has `key` at `position`, as a HashIndex on that column would give them.

    It keeps nothing of its own, so writes cost it nothing. Lookups visit every
    bucket key of the composite index: O(pairs), and the pairs are few when the
    columns go together (a state type has a handful of state names). `get` of a
    key spread over several buckets returns a new dict of their union, O(records).
    """

    __slots__ = ("name", "extract", "composite", "position")

    def __init__(self, name: str, extract: Callable[[Any], Hashable], composite: HashIndex, position: int) -> None:
        self.name = name
        self.extract = extract  # the column alone (what a plain index would file by)
        self.composite = composite
        self.position = position

    def _parts(self, key: Hashable) -> list[dict]:
        position = self.position
        return [bucket for pair, bucket in self.composite.buckets.items() if pair[position] == key]

    def get(self, key: Hashable) -> dict[Any, Any]:
        """The records whose column equals `key` (do not mutate). O(pairs), plus
        O(records) when they span several buckets."""
        parts = self._parts(key)
        if not parts:
            return _EMPTY
        if len(parts) == 1:
            return parts[0]
        merged: dict = {}
        for bucket in parts:
            merged.update(bucket)
        return merged

    def count(self, key: Hashable) -> int:
        """Number of records whose column equals `key`. O(pairs)."""
        return sum(map(len, self._parts(key)))

    def counts(self) -> dict[Hashable, int]:
        """Number of records under each column value that has any. O(pairs)."""
        out: dict = {}
        position = self.position
        for pair, bucket in self.composite.buckets.items():
            key = pair[position]
            out[key] = out.get(key, 0) + len(bucket)
        return out

    @property
    def buckets(self) -> dict[Hashable, dict[Any, Any]]:
        """Column value -> its records, as a HashIndex would hold them. O(n)."""
        out: dict = {}
        position = self.position
        for pair, bucket in self.composite.buckets.items():
            out.setdefault(pair[position], {}).update(bucket)
        return out

    def clear(self) -> None:
        pass  # nothing of its own: the composite index is cleared with its table


class MultiIndex(HashIndex):
    """Inverted index: `extract` returns a frozenset of keys (e.g. a run's tags)."""

    __slots__ = ()

    def insert(self, keys: Iterable[Hashable], rec: Any) -> None:  # type: ignore[override]
        for key in keys:
            HashIndex.insert(self, key, rec)

    def remove(self, keys: Iterable[Hashable], rec: Any) -> None:  # type: ignore[override]
        for key in keys:
            HashIndex.remove(self, key, rec)


def sort_entry(value: Any, rec_id: Any) -> tuple:
    """Entry of a SortedIndex: (null rank, value, id as int, id).

    NULLs rank below every value (SQLite ascending order). Ties break on the id's
    integer form, which orders like the UUID text but compares in C (UUID objects
    compare in Python, and ties are common: every NULL is one). The last element is
    the record id itself and is never reached by comparisons (the int is unique).
    """
    return (0, 0, rec_id.int, rec_id) if value is None else (1, value, rec_id.int, rec_id)


def key_range(after: Any = None, before: Any = None) -> tuple[tuple, tuple]:
    """(low, high) sort entries bracketing the non-NULL keys k with after <= k <= before
    (either bound optional): entries e in the range are those with low <= e <= high."""
    low = (1,) if after is None else (1, after)
    # (1, bound, inf) sorts after every entry (1, bound, id_int, id), so `before` is
    # inclusive; (2,) sorts after every entry at all.
    high = (2,) if before is None else (1, before, float("inf"))
    return low, high


def entries_in(entries: SortedList, bounds: tuple[tuple, tuple] | None, descending: bool) -> Iterator[tuple]:
    """The entries of a sorted list (within `bounds` from key_range, if given) in
    order. O(log n) to start, O(1) per entry."""
    if bounds is None:
        return reversed(entries) if descending else iter(entries)
    lo, hi = _positions(entries, bounds)
    return entries.islice(lo, hi, reverse=descending)


def _positions(entries: SortedList, bounds: tuple[tuple, tuple]) -> tuple[int, int]:
    # [lo, hi): the positions of the entries within `bounds` (empty when they cross).
    lo = entries.bisect_left(bounds[0])
    return lo, max(lo, entries.bisect_right(bounds[1]))


@functools.lru_cache(maxsize=None)
def entry_extractor(key: Callable[[Any], Any]) -> Callable[[Any], tuple]:
    """The sort-entry function for `key`, one per key function for the process
    (engine/refile.py caches generated code per layout of these objects)."""
    return lambda rec: sort_entry(key(rec), rec.id)


class SortedIndex(ColdIndex):
    """Records ordered by one key (ties by id). Insert/remove O(log n); a walk of k
    records from either end O(k + log n).

    A sorted index is *cold* until first walked: a table does not maintain it, so
    writers pay nothing for sort orders nobody reads. The first walk builds it in
    O(n log n); from then on it is maintained incrementally like every other index.
    """

    __slots__ = ("name", "extract", "entries", "table", "live")

    def __init__(self, name: str, key: Callable[[Any], Any], table: Any) -> None:
        self.name = name
        self.extract = entry_extractor(key)
        self.entries = SortedList()
        self.table = weakref.proxy(table)  # turns entries back into records (see ColdIndex)
        self.live = False

    def insert(self, entry: tuple, rec: Any) -> None:
        self.entries.add(entry)

    def remove(self, entry: tuple, rec: Any) -> None:
        self.entries.remove(entry)

    def load(self, entries: Iterable[tuple], records: Iterable[Any]) -> None:
        """File the `entries` of `records` (Table.activate): one sort, not n inserts."""
        self.entries.update(entries)

    def walk(self, descending: bool = False, bounds: tuple[tuple, tuple] | None = None) -> Iterator[Any]:
        """Records in key order (ascending NULLs first; descending NULLs last), only
        those whose key is within `bounds` (from key_range) if given. O(log n) to
        start, O(1) per record."""
        if not self.live:
            self.table.activate(self)
        rows = self.table.rows
        for entry in entries_in(self.entries, bounds, descending):
            yield rows[entry[3]]

    def span(self, bounds: tuple[tuple, tuple]) -> int:
        """How many records have a key within `bounds` (from key_range). O(log n)."""
        self.warm()
        lo, hi = _positions(self.entries, bounds)
        return hi - lo

    def clear(self) -> None:
        self.entries.clear()
