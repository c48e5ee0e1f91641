"""Sort orders for flow/task run reads (spec filters.md §4) and for flow and
deployment listings, and the grouped sorted index that lets a state-filtered read
walk one state type's runs in sort order.

Orders follow Prefect on SQLite: NULLs first ascending and last descending,
START_TIME sorts by `coalesce(start_time, expected_start_time)`, names compare by
code point (= UTF-8 byte order, upper case before lower case) and ids by UUID text
order. Ties, which Prefect leaves unspecified, break on the id in the same direction.
"""
from __future__ import annotations

import enum
import functools
import heapq
import operator
import weakref
from typing import Any, Callable, Hashable, Iterable, Iterator

from sortedcontainers import SortedList

from .errors import ValidationError, shown
from .indexes import ColdIndex, entries_in, sort_entry

__all__ = [
    "FlowRunSort",
    "TaskRunSort",
    "FlowSort",
    "DeploymentSort",
    "as_catalog_sort",
    "sort_records",
    "as_flow_run_sort",
    "as_task_run_sort",
    "sort_spec",
    "GroupedSortedIndex",
]


class FlowRunSort(str, enum.Enum):
    """Flow run orders (default ID_DESC)."""

    ID_DESC = "ID_DESC"
    START_TIME_ASC = "START_TIME_ASC"
    START_TIME_DESC = "START_TIME_DESC"
    EXPECTED_START_TIME_ASC = "EXPECTED_START_TIME_ASC"
    EXPECTED_START_TIME_DESC = "EXPECTED_START_TIME_DESC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    NEXT_SCHEDULED_START_TIME_ASC = "NEXT_SCHEDULED_START_TIME_ASC"
    END_TIME_DESC = "END_TIME_DESC"


class TaskRunSort(str, enum.Enum):
    """Task run orders (default ID_DESC); there is no START_TIME order for task runs."""

    ID_DESC = "ID_DESC"
    EXPECTED_START_TIME_ASC = "EXPECTED_START_TIME_ASC"
    EXPECTED_START_TIME_DESC = "EXPECTED_START_TIME_DESC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    NEXT_SCHEDULED_START_TIME_ASC = "NEXT_SCHEDULED_START_TIME_ASC"
    END_TIME_DESC = "END_TIME_DESC"


# Flows and deployments offer the same orders (default NAME_ASC), under two enums as
# in Prefect; `sort_records` reads the column and direction off the member's name.
_LISTING_ORDERS = ("CREATED_DESC", "UPDATED_DESC", "NAME_ASC", "NAME_DESC")
FlowSort = enum.Enum("FlowSort", [(o, o) for o in _LISTING_ORDERS], type=str, module=__name__)
FlowSort.__doc__ = "Flow orders (default NAME_ASC)."
DeploymentSort = enum.Enum("DeploymentSort", [(o, o) for o in _LISTING_ORDERS], type=str, module=__name__)
DeploymentSort.__doc__ = "Deployment orders (default NAME_ASC)."


# sort value -> (name of the table's SortedIndex, descending?)
_SPEC: dict[str, tuple[str, bool]] = {
    "ID_DESC": ("id", True),
    "START_TIME_ASC": ("start_time", False),
    "START_TIME_DESC": ("start_time", True),
    "EXPECTED_START_TIME_ASC": ("expected_start_time", False),
    "EXPECTED_START_TIME_DESC": ("expected_start_time", True),
    "NAME_ASC": ("name", False),
    "NAME_DESC": ("name", True),
    "NEXT_SCHEDULED_START_TIME_ASC": ("next_scheduled_start_time", False),
    "END_TIME_DESC": ("end_time", True),
}


def _as_sort(enum_cls: type, value: Any, what: str) -> Any:
    if isinstance(value, enum_cls):
        return value
    if value is None:
        return enum_cls.ID_DESC
    if isinstance(value, enum.Enum) and type(value).__name__ != enum_cls.__name__:
        # (these enums are strings too: TaskRunSort.NAME_ASC would pass for a FlowRunSort's
        # name; Prefect's own enum of the same name is taken)
        raise ValidationError(f"{what}: {type(value).__name__}.{value.name} is not a {enum_cls.__name__}; "
                              f"expected one of {[m.value for m in enum_cls]}")
    if isinstance(value, str):
        name = value.split(".", 1)[1] if value.startswith(enum_cls.__name__ + ".") else value
        try:
            return enum_cls[name]
        except KeyError:
            pass
    raise ValidationError(f"{what}: unknown sort {shown(value)}; expected one of {[m.value for m in enum_cls]}")


def sort_records(records: Iterable[Any], sort: FlowSort | DeploymentSort) -> list:
    """Flows or deployments in `sort` order; ties (deployment names, equal times) by
    id in the same direction, as for runs. O(n log n)."""
    column, descending = sort.value.rsplit("_", 1)
    key = operator.attrgetter(column.lower(), "id")
    return sorted(records, key=key, reverse=descending == "DESC")


def as_catalog_sort(enum_cls: type, value: Any) -> Any:
    """A FlowSort/DeploymentSort from the enum, its name or Prefect's enum (None =
    NAME_ASC); else ValidationError."""
    return enum_cls.NAME_ASC if value is None else _as_sort(enum_cls, value, "sort")


def as_flow_run_sort(value: Any) -> FlowRunSort:
    """A FlowRunSort from the enum or its name (None = ID_DESC); else ValidationError."""
    return _as_sort(FlowRunSort, value, "sort")


def as_task_run_sort(value: Any) -> TaskRunSort:
    """A TaskRunSort from the enum or its name (None = ID_DESC); else ValidationError."""
    return _as_sort(TaskRunSort, value, "sort")


def sort_spec(sort: FlowRunSort | TaskRunSort) -> tuple[str, bool]:
    """(sorted index name, descending) for a sort value."""
    return _SPEC[sort.value]


@functools.lru_cache(maxsize=None)
def _grouped_extractor(group: Callable[[Any], Hashable], key: Callable[[Any], Any]) -> Callable[[Any], tuple]:
    # One per (group, key) for the process: engine/refile.py caches code per layout of these.
    return lambda rec: (group(rec), sort_entry(key(rec), rec.id))


class GroupedSortedIndex(ColdIndex):
    """One sorted list per group key (e.g. per state type), each ordered like a
    SortedIndex. A read filtered on a few groups merges just those lists, so its
    first k matches cost O(k + groups · log n) however the groups are spread over
    the global order. Insert/remove O(log n).

    Like a SortedIndex it starts *cold* (writers pay nothing) and is built by its
    table on first use (`warm`), then maintained incrementally.
    """

    __slots__ = ("name", "extract", "groups", "table", "live")

    def __init__(self, name: str, group: Callable[[Any], Hashable], key: Callable[[Any], Any], table: Any) -> None:
        self.name = name
        self.extract = _grouped_extractor(group, key)
        self.groups: dict[Hashable, SortedList] = {}
        self.table = weakref.proxy(table)  # (see ColdIndex)
        self.live = False

    def load(self, keys: Iterable[tuple], records: Iterable[Any]) -> None:
        """File the (group, entry) `keys` of `records` (Table.activate): one sort per
        group, not n inserts."""
        by_group: dict[Hashable, list] = {}
        for group, entry in keys:
            by_group.setdefault(group, []).append(entry)
        for group, entries in by_group.items():
            lst = self.groups.get(group)
            if lst is None:
                self.groups[group] = SortedList(entries)
            else:
                lst.update(entries)

    def insert(self, key: tuple, rec: Any) -> None:
        lst = self.groups.get(key[0])
        if lst is None:
            lst = self.groups[key[0]] = SortedList()
        lst.add(key[1])

    def remove(self, key: tuple, rec: Any) -> None:
        lst = self.groups[key[0]]
        lst.remove(key[1])
        if not lst:
            del self.groups[key[0]]

    def walk(self, groups: Iterable[Hashable], descending: bool = False,
             bounds: tuple[tuple, tuple] | None = None) -> Iterator[Any]:
        """Records of the given (distinct) groups in key order, only those whose key
        is within `bounds` (from indexes.key_range) if given. O(groups · log n) to
        start, O(log groups) per record."""
        self.warm()
        found = self.groups
        runs = [entries_in(found[g], bounds, descending) for g in groups if g in found]
        rows = self.table.rows
        if not runs:
            return
        if len(runs) == 1:
            entries: Iterable = runs[0]
        else:
            entries = heapq.merge(*runs, reverse=descending)
        for entry in entries:
            yield rows[entry[-1]]

    def clear(self) -> None:
        self.groups.clear()
