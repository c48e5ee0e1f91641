"""Typed filters for flow/task run reads (spec filters.md), parsed from Prefect's JSON.

Every filter is a slotted attrs class whose fields default to None ("not populated").
`parse_filter(FlowRunFilter, {"state": {"type": {"any_": ["COMPLETED"]}}}, "flow_runs")`
builds one from the JSON a Prefect client posts; unknown keys and badly typed values
raise ValidationError naming the JSON path. Typed objects built in Python are
checked and coerced the same way (ids may be given as strings), when built and
when a criterion is assigned later.

Evaluation is compiled: `flt.predicate(tables)` returns a plain function
`record -> bool` built once per query, so a scan costs one call per record. SQL NULL
semantics are reproduced exactly (a NULL column never satisfies `any_`, `not_any_`,
time bounds or `like_`); `any_ = []` matches nothing, `not_any_ = []` excludes
nothing. `tables` is the store's `{kind: Table}` map, used by the few criteria that
look at other entities (a flow's deployments, a task run's subflows, ...).
"""
from __future__ import annotations

import datetime as _dt
import enum
import re
import uuid
from operator import attrgetter
from collections.abc import Iterable, Mapping
from typing import Any, Callable, ClassVar

import attrs

from .errors import ValidationError, shown
from .states import StateType
from .validation import as_bool, as_int, as_str, as_datetime, as_uuid

__all__ = [
    "Operator",
    "parse_filter",
    "matching",
    "FlowFilter", "FlowFilterId", "FlowFilterDeployment", "FlowFilterName", "FlowFilterTags",
    "FlowRunFilter", "FlowRunFilterId", "FlowRunFilterName", "FlowRunFilterTags",
    "FlowRunFilterDeploymentId", "FlowRunFilterWorkQueueName", "FlowRunFilterFlowVersion",
    "FlowRunFilterState", "FlowRunFilterStateType", "FlowRunFilterStateName",
    "FlowRunFilterStartTime", "FlowRunFilterEndTime", "FlowRunFilterExpectedStartTime",
    "FlowRunFilterNextScheduledStartTime", "FlowRunFilterParentFlowRunId",
    "FlowRunFilterParentTaskRunId", "FlowRunFilterIdempotencyKey",
    "TaskRunFilter", "TaskRunFilterId", "TaskRunFilterName", "TaskRunFilterTags",
    "TaskRunFilterState", "TaskRunFilterStateType", "TaskRunFilterStateName",
    "TaskRunFilterStartTime", "TaskRunFilterExpectedStartTime", "TaskRunFilterSubFlowRuns",
    "TaskRunFilterFlowRunId",
    "DeploymentFilter", "DeploymentFilterId", "DeploymentFilterName", "DeploymentOrFlowNameFilter",
    "DeploymentFilterPaused", "DeploymentFilterTags", "DeploymentFilterWorkQueueName",
    "DeploymentFilterConcurrencyLimit",
    "WorkPoolFilter", "WorkPoolFilterId", "WorkPoolFilterName", "WorkPoolFilterType",
    "WorkQueueFilter", "WorkQueueFilterId", "WorkQueueFilterName",
    "DeploymentScheduleFilter", "DeploymentScheduleFilterActive",
    "WORKER_STATUSES", "WorkerFilter", "WorkerFilterLastHeartbeatTime", "WorkerFilterStatus",
]

Predicate = Callable[[Any], bool]
Tables = Mapping[str, Any]


class Operator(str, enum.Enum):
    """How an operator filter combines its populated criteria."""

    and_ = "and_"
    or_ = "or_"


# value coercion (idempotent: typed values pass through) ------------------------------------

def _list(value: Any, path: str) -> list:
    # As pydantic's list fields take them: any iterable (a tuple, a set, dict keys, a
    # generator) but text and mappings.
    if value.__class__ is not list and (
        isinstance(value, (str, bytes, bytearray, Mapping)) or not isinstance(value, Iterable)
    ):
        raise ValidationError(f"{path} must be a list, got {type(value).__name__} {shown(value)}")
    return list(value)


def _uuids(value: Any, path: str) -> list[uuid.UUID]:
    return [as_uuid(v, f"{path}[{i}]") for i, v in enumerate(_list(value, path))]


def _strs(value: Any, path: str) -> list[str]:
    items = _list(value, path)
    for i, v in enumerate(items):
        if not isinstance(v, str):
            raise ValidationError(f"{path}[{i}] must be a string, got {type(v).__name__} {shown(v)}")
    return items


def _state_types(value: Any, path: str) -> list[StateType]:
    out = []
    for i, v in enumerate(_list(value, path)):
        try:
            out.append(StateType(v))
        except ValueError:
            raise ValidationError(
                f"{path}[{i}]: unknown state type {shown(v)}; expected one of {[t.value for t in StateType]}"
            ) from None
    return out


def _operator(value: Any, path: str) -> Operator:
    try:
        return Operator(value)
    except ValueError:
        raise ValidationError(f"{path} must be 'and_' or 'or_', got {shown(value)}") from None


# compiled predicates ---------------------------------------------------------------------

def _true(rec: Any) -> bool:
    return True


def _false(rec: Any) -> bool:
    return False


def _absent(rec: Any) -> bool:
    # A criterion Prefect's SQL leaves out: an OR over an empty list (`startswith_=[]`)
    # is an empty clause that SQLAlchemy drops from whatever combines it. Alone (or at
    # the top) that is no constraint, so it answers TRUE, but `combine` drops it: in
    # an or_ it does not make the whole disjunction TRUE, as an empty filter `{}` does.
    return True


def combine(preds: list[Predicate], operator: Operator = Operator.and_) -> Predicate:
    """One predicate from several: all (and_) or any (or_); none at all is TRUE.
    Left-out criteria (`_absent`) are dropped; if nothing else is left, the
    combination is left out too."""
    if not preds:
        return _true
    if _absent in preds:
        preds = [p for p in preds if p is not _absent]
        if not preds:
            return _absent
    if len(preds) == 1:
        return preds[0]
    if operator is Operator.or_:
        if len(preds) == 2:
            a, b = preds
            return lambda r: a(r) or b(r)
        return lambda r: any(p(r) for p in preds)
    if len(preds) == 2:
        a, b = preds
        return lambda r: a(r) and b(r)
    return lambda r: all(p(r) for p in preds)


def like_matcher(value: str, prefix: bool = False) -> Callable[[str], bool]:
    """SQLite's `lower(x) LIKE lower('%value%')` (`'value%'` for a prefix) as a
    predicate on text: unescaped `%` / `_` are wildcards, case folding is ASCII-only.

    A regex with one `.*` per `%` backtracks exponentially in the number of `%`s
    (`%a%a%a%a%a%a%b` against sixty a's ran for seconds, holding the engine's lock).
    Instead each `%`-separated segment is found at its leftmost place after the
    previous one: segments have a fixed length, so the leftmost place is never worse
    for those that follow, and no search is retried. O(len(text) · len(value))."""
    flags = re.IGNORECASE | re.ASCII | re.DOTALL
    segments = [re.compile("".join("." if c == "_" else re.escape(c) for c in part), flags)
                for part in value.split("%")]
    first = segments[0].match if prefix else segments[0].search
    rest = [segment.search for segment in segments[1:] if segment.pattern]

    def matches(text: str) -> bool:
        found = first(text)
        if found is None:
            return False
        for search in rest:
            found = search(text, found.end())
            if found is None:
                return False
        return True

    return matches


def _any(get: Callable, values: list) -> Predicate:
    if not values:
        return _false
    allowed = frozenset(values)  # never contains None, so a NULL column cannot match
    return lambda r: get(r) in allowed


def _not_any(get: Callable, values: list) -> Predicate:
    if not values:
        return _true  # SQL `NOT IN ()` is rendered as TRUE, NULLs included
    banned = frozenset(values)
    return lambda r: (v := get(r)) is not None and v not in banned


def _like(get: Callable, value: str) -> Predicate:
    matches = like_matcher(value)
    return lambda r: (v := get(r)) is not None and matches(v)


def _startswith(get: Callable, values: list[str]) -> Predicate:
    if not values:
        return _absent  # an OR of nothing: dropped from the SQL (see _absent)
    matchers = [like_matcher(v, prefix=True) for v in values]
    return lambda r: (v := get(r)) is not None and any(matches(v) for matches in matchers)


def _before(get: Callable, bound: _dt.datetime) -> Predicate:
    return lambda r: (v := get(r)) is not None and v <= bound


def _after(get: Callable, bound: _dt.datetime) -> Predicate:
    return lambda r: (v := get(r)) is not None and v >= bound


def _is_null(get: Callable, flag: bool) -> Predicate:
    if flag:
        return lambda r: get(r) is None
    return lambda r: get(r) is not None


def _eq(get: Callable, value: Any) -> Predicate:
    return lambda r: get(r) == value


def _tags_all(get: Callable, values: list[str]) -> Predicate:
    wanted = frozenset(values)
    if not wanted:
        return _true
    return lambda r: wanted.issubset(get(r))


def _tags_empty(get: Callable, flag: bool) -> Predicate:
    if flag:
        return lambda r: not get(r)
    return lambda r: bool(get(r))


_BUILDERS: dict[str, Callable[[Callable, Any], Predicate]] = {
    "any_": _any,
    "not_any_": _not_any,
    "like_": _like,
    "startswith_": _startswith,
    "before_": _before,
    "after_": _after,
    "is_null_": _is_null,
    "eq_": _eq,
}

# On a tag list, `is_null_` asks whether the list is empty.
_TAG_BUILDERS: dict[str, Callable[[Callable, Any], Predicate]] = {
    "all_": _tags_all,
    "is_null_": _tags_empty,
}


# base classes ----------------------------------------------------------------------------

@attrs.define(slots=True)
class _Filter:
    """Common machinery. Subclasses declare `_spec` (field -> coercer or nested filter
    class, in evaluation order) and, for column criteria, `_column` (and `_builders`
    if a criterion means something else on that column)."""

    _spec: ClassVar[dict[str, Any]] = {}
    _column: ClassVar[str] = ""
    _builders: ClassVar[dict[str, Callable[[Callable, Any], Predicate]]] = _BUILDERS

    def __setattr__(self, name: str, value: Any) -> None:
        # Every criterion, given to the constructor (attrs' __init__ assigns it) or
        # assigned later, is checked and coerced here: a query trusts its filter's types.
        kind = self._spec.get(name)
        # (None means "no criterion", but `operator` is no criterion: Prefect refuses it)
        if kind is not None and (value is not None or kind is _operator):
            value = _coerce(kind, value, f"{type(self).__name__}.{name}")
        object.__setattr__(self, name, value)

    def populated(self) -> list[str]:
        """Names of the populated criteria (operator excluded), in evaluation order."""
        return [n for n in self._spec if n != "operator" and getattr(self, n) is not None]

    def criteria(self, tables: Tables) -> list[Predicate]:
        """One predicate per populated criterion, on the record's `_column`."""
        get = attrgetter(self._column)
        builders = self._builders
        return [builders[n](get, getattr(self, n)) for n in self.populated()]

    def predicate(self, tables: Tables) -> Predicate:
        """The whole filter as one function `record -> bool`. O(size of the filter)."""
        return combine(self.criteria(tables), getattr(self, "operator", Operator.and_))


def _coerce(kind: Any, value: Any, where: str) -> Any:
    """`value` (not None) checked and coerced by its `_spec` entry: a coercer or a nested filter class."""
    if isinstance(kind, type) and issubclass(kind, _Filter):
        return parse_filter(kind, value, where)
    return kind(value, where)


def parse_filter(cls: type, data: Any, path: str) -> Any:
    """A `cls` filter from a typed object, Prefect's JSON shape (a dict), or None.

    Unknown keys and badly typed values raise ValidationError naming `path`
    (e.g. ``flow_runs.state.type.any_``). O(size of the JSON).
    """
    if data is None or isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ValidationError(f"{path} must be an object ({cls.__name__}), got {type(data).__name__} {shown(data)}")
    spec = cls._spec
    unknown = [k for k in data if k not in spec]
    if unknown:
        raise ValidationError(
            f"{path}.{unknown[0]}: unknown filter key (allowed: {', '.join(spec)})"
        )
    # Built from the defaults, then given the JSON's values coerced once, under their
    # JSON path (`cls(**data)` would coerce them again, naming the class instead).
    flt = cls()
    for key, value in data.items():
        if value is not None or spec[key] is _operator:
            value = _coerce(spec[key], value, f"{path}.{key}")
        object.__setattr__(flt, key, value)
    return flt


def matching(cls: type, data: Any, path: str, records: list, tables: Tables) -> list:
    """The `records` that a `cls` filter (typed, its JSON shape, or None: all of
    them) keeps, in their order: for the small tables listed in full (pools,
    queues, workers, schedules). O(records)."""
    parsed = parse_filter(cls, data, path)
    if parsed is None:
        return records
    keep = parsed.predicate(tables)
    return [r for r in records if keep(r)]


class _EntityFilter(_Filter):
    """A whole entity's filter (flows, flow runs, ...): one predicate per populated
    sub-filter, combined with `operator` (an empty filter is TRUE)."""

    __slots__ = ()

    def criteria(self, tables: Tables) -> list[Predicate]:
        return [getattr(self, n).predicate(tables) for n in self.populated()]


_OP = {"operator": _operator}


@attrs.define(slots=True)
class _TagsFilter(_Filter):
    """Tag criteria, the same for flows, flow runs, task runs and deployments: `all_`
    keeps records carrying every listed tag; `is_null_` True those without tags,
    False those with some."""

    operator: Operator = Operator.and_
    all_: list[str] | None = None
    is_null_: bool | None = None
    _spec: ClassVar = {**_OP, "all_": _strs, "is_null_": as_bool}
    _column: ClassVar = "tags"
    _builders: ClassVar = _TAG_BUILDERS


# flows -----------------------------------------------------------------------------------

@attrs.define(slots=True)
class FlowFilterId(_Filter):
    any_: list[uuid.UUID] | None = None
    _spec: ClassVar = {"any_": _uuids}
    _column: ClassVar = "id"


@attrs.define(slots=True)
class FlowFilterDeployment(_Filter):
    """`is_null_`: True keeps flows without any deployment, False flows with one."""

    operator: Operator = Operator.and_
    is_null_: bool | None = None
    _spec: ClassVar = {**_OP, "is_null_": as_bool}

    def criteria(self, tables: Tables) -> list[Predicate]:
        if self.is_null_ is None:
            return []
        by_flow = tables["deployment"].by_name["flow_id"]
        if self.is_null_:
            return [lambda r: by_flow.count(r.id) == 0]
        return [lambda r: by_flow.count(r.id) > 0]


@attrs.define(slots=True)
class FlowFilterName(_Filter):
    any_: list[str] | None = None
    like_: str | None = None
    _spec: ClassVar = {"any_": _strs, "like_": as_str}
    _column: ClassVar = "name"


@attrs.define(slots=True)
class FlowFilterTags(_TagsFilter):
    pass


@attrs.define(slots=True)
class FlowFilter(_EntityFilter):
    operator: Operator = Operator.and_
    id: FlowFilterId | None = None
    deployment: FlowFilterDeployment | None = None
    name: FlowFilterName | None = None
    tags: FlowFilterTags | None = None
    _spec: ClassVar = {**_OP, "id": FlowFilterId, "deployment": FlowFilterDeployment,
                       "name": FlowFilterName, "tags": FlowFilterTags}


# flow runs -------------------------------------------------------------------------------

@attrs.define(slots=True)
class FlowRunFilterId(_Filter):
    any_: list[uuid.UUID] | None = None
    not_any_: list[uuid.UUID] | None = None
    _spec: ClassVar = {"any_": _uuids, "not_any_": _uuids}
    _column: ClassVar = "id"


@attrs.define(slots=True)
class FlowRunFilterName(_Filter):
    any_: list[str] | None = None
    like_: str | None = None
    _spec: ClassVar = {"any_": _strs, "like_": as_str}
    _column: ClassVar = "name"


@attrs.define(slots=True)
class FlowRunFilterTags(_TagsFilter):
    pass


@attrs.define(slots=True)
class FlowRunFilterDeploymentId(_Filter):
    operator: Operator = Operator.and_
    any_: list[uuid.UUID] | None = None
    is_null_: bool | None = None
    _spec: ClassVar = {**_OP, "any_": _uuids, "is_null_": as_bool}
    _column: ClassVar = "deployment_id"


@attrs.define(slots=True)
class FlowRunFilterWorkQueueName(_Filter):
    operator: Operator = Operator.and_
    any_: list[str] | None = None
    is_null_: bool | None = None
    _spec: ClassVar = {**_OP, "any_": _strs, "is_null_": as_bool}
    _column: ClassVar = "work_queue_name"


@attrs.define(slots=True)
class FlowRunFilterFlowVersion(_Filter):
    any_: list[str] | None = None
    _spec: ClassVar = {"any_": _strs}
    _column: ClassVar = "flow_version"


@attrs.define(slots=True)
class FlowRunFilterStateType(_Filter):
    any_: list[StateType] | None = None
    not_any_: list[StateType] | None = None
    _spec: ClassVar = {"any_": _state_types, "not_any_": _state_types}
    _column: ClassVar = "state_type"


@attrs.define(slots=True)
class FlowRunFilterStateName(_Filter):
    any_: list[str] | None = None
    not_any_: list[str] | None = None
    _spec: ClassVar = {"any_": _strs, "not_any_": _strs}
    _column: ClassVar = "state_name"


class _StateCriteria(_Filter):
    """Flow- and task-run state filters: the criteria of `type` and `name` are
    flattened into one list, combined with the state filter's own `operator`."""

    __slots__ = ()

    def criteria(self, tables: Tables) -> list[Predicate]:
        out: list[Predicate] = []
        for part in (self.type, self.name):
            if part is not None:
                out.extend(part.criteria(tables))
        return out


@attrs.define(slots=True)
class FlowRunFilterState(_StateCriteria):
    """Type and name criteria are flattened into one list combined with `operator`."""

    operator: Operator = Operator.and_
    type: FlowRunFilterStateType | None = None
    name: FlowRunFilterStateName | None = None
    _spec: ClassVar = {**_OP, "type": FlowRunFilterStateType, "name": FlowRunFilterStateName}


@attrs.define(slots=True)
class FlowRunFilterStartTime(_Filter):
    before_: _dt.datetime | None = None
    after_: _dt.datetime | None = None
    is_null_: bool | None = None
    _spec: ClassVar = {"before_": as_datetime, "after_": as_datetime, "is_null_": as_bool}
    _column: ClassVar = "start_time"


@attrs.define(slots=True)
class FlowRunFilterEndTime(_Filter):
    before_: _dt.datetime | None = None
    after_: _dt.datetime | None = None
    is_null_: bool | None = None
    _spec: ClassVar = {"before_": as_datetime, "after_": as_datetime, "is_null_": as_bool}
    _column: ClassVar = "end_time"


@attrs.define(slots=True)
class FlowRunFilterExpectedStartTime(_Filter):
    before_: _dt.datetime | None = None
    after_: _dt.datetime | None = None
    _spec: ClassVar = {"before_": as_datetime, "after_": as_datetime}
    _column: ClassVar = "expected_start_time"


@attrs.define(slots=True)
class FlowRunFilterNextScheduledStartTime(_Filter):
    before_: _dt.datetime | None = None
    after_: _dt.datetime | None = None
    _spec: ClassVar = {"before_": as_datetime, "after_": as_datetime}
    _column: ClassVar = "next_scheduled_start_time"


@attrs.define(slots=True)
class FlowRunFilterParentFlowRunId(_Filter):
    """`any_`: direct subflows of the listed flow runs (through the parent task run)."""

    operator: Operator = Operator.and_
    any_: list[uuid.UUID] | None = None
    _spec: ClassVar = {**_OP, "any_": _uuids}

    def criteria(self, tables: Tables) -> list[Predicate]:
        if self.any_ is None:
            return []
        by_flow_run = tables["task_run"].by_name["flow_run_id"]
        parents = {tr.id for fr_id in set(self.any_) for tr in by_flow_run.get(fr_id).values()}
        return [lambda r: r.parent_task_run_id in parents]


@attrs.define(slots=True)
class FlowRunFilterParentTaskRunId(_Filter):
    operator: Operator = Operator.and_
    any_: list[uuid.UUID] | None = None
    is_null_: bool | None = None
    _spec: ClassVar = {**_OP, "any_": _uuids, "is_null_": as_bool}
    _column: ClassVar = "parent_task_run_id"


@attrs.define(slots=True)
class FlowRunFilterIdempotencyKey(_Filter):
    any_: list[str] | None = None
    not_any_: list[str] | None = None
    _spec: ClassVar = {"any_": _strs, "not_any_": _strs}
    _column: ClassVar = "idempotency_key"


@attrs.define(slots=True)
class FlowRunFilter(_EntityFilter):
    operator: Operator = Operator.and_
    id: FlowRunFilterId | None = None
    name: FlowRunFilterName | None = None
    tags: FlowRunFilterTags | None = None
    deployment_id: FlowRunFilterDeploymentId | None = None
    work_queue_name: FlowRunFilterWorkQueueName | None = None
    flow_version: FlowRunFilterFlowVersion | None = None
    state: FlowRunFilterState | None = None
    start_time: FlowRunFilterStartTime | None = None
    end_time: FlowRunFilterEndTime | None = None
    expected_start_time: FlowRunFilterExpectedStartTime | None = None
    next_scheduled_start_time: FlowRunFilterNextScheduledStartTime | None = None
    parent_flow_run_id: FlowRunFilterParentFlowRunId | None = None
    parent_task_run_id: FlowRunFilterParentTaskRunId | None = None
    idempotency_key: FlowRunFilterIdempotencyKey | None = None
    _spec: ClassVar = {
        **_OP,
        "id": FlowRunFilterId,
        "name": FlowRunFilterName,
        "tags": FlowRunFilterTags,
        "deployment_id": FlowRunFilterDeploymentId,
        "work_queue_name": FlowRunFilterWorkQueueName,
        "flow_version": FlowRunFilterFlowVersion,
        "state": FlowRunFilterState,
        "start_time": FlowRunFilterStartTime,
        "end_time": FlowRunFilterEndTime,
        "expected_start_time": FlowRunFilterExpectedStartTime,
        "next_scheduled_start_time": FlowRunFilterNextScheduledStartTime,
        "parent_flow_run_id": FlowRunFilterParentFlowRunId,
        "parent_task_run_id": FlowRunFilterParentTaskRunId,
        "idempotency_key": FlowRunFilterIdempotencyKey,
    }

    def only_filters_on_id(self) -> bool:
        """True iff only `id.any_` (non-empty, no `not_any_`) is set: the task-run fast
        path. The operator is irrelevant."""
        fid = self.id
        return (
            fid is not None
            and bool(fid.any_)
            and not fid.not_any_
            and self.populated() == ["id"]
        )


# task runs -------------------------------------------------------------------------------

@attrs.define(slots=True)
class TaskRunFilterId(_Filter):
    any_: list[uuid.UUID] | None = None
    _spec: ClassVar = {"any_": _uuids}
    _column: ClassVar = "id"


@attrs.define(slots=True)
class TaskRunFilterName(_Filter):
    any_: list[str] | None = None
    like_: str | None = None
    _spec: ClassVar = {"any_": _strs, "like_": as_str}
    _column: ClassVar = "name"


@attrs.define(slots=True)
class TaskRunFilterTags(_TagsFilter):
    pass


@attrs.define(slots=True)
class TaskRunFilterStateType(_Filter):
    any_: list[StateType] | None = None
    _spec: ClassVar = {"any_": _state_types}
    _column: ClassVar = "state_type"


@attrs.define(slots=True)
class TaskRunFilterStateName(_Filter):
    any_: list[str] | None = None
    _spec: ClassVar = {"any_": _strs}
    _column: ClassVar = "state_name"


@attrs.define(slots=True)
class TaskRunFilterState(_StateCriteria):
    """Type and name criteria are flattened into one list combined with `operator`."""

    operator: Operator = Operator.and_
    type: TaskRunFilterStateType | None = None
    name: TaskRunFilterStateName | None = None
    _spec: ClassVar = {**_OP, "type": TaskRunFilterStateType, "name": TaskRunFilterStateName}


@attrs.define(slots=True)
class TaskRunFilterStartTime(_Filter):
    before_: _dt.datetime | None = None
    after_: _dt.datetime | None = None
    is_null_: bool | None = None
    _spec: ClassVar = {"before_": as_datetime, "after_": as_datetime, "is_null_": as_bool}
    _column: ClassVar = "start_time"


@attrs.define(slots=True)
class TaskRunFilterExpectedStartTime(_Filter):
    before_: _dt.datetime | None = None
    after_: _dt.datetime | None = None
    _spec: ClassVar = {"before_": as_datetime, "after_": as_datetime}
    _column: ClassVar = "expected_start_time"


@attrs.define(slots=True)
class TaskRunFilterSubFlowRuns(_Filter):
    """`exists_`: True keeps task runs that wrap a subflow run, False those that do not."""

    exists_: bool | None = None
    _spec: ClassVar = {"exists_": as_bool}

    def criteria(self, tables: Tables) -> list[Predicate]:
        if self.exists_ is None:
            return []
        by_parent = tables["flow_run"].by_name["parent_task_run_id"]
        if self.exists_:
            return [lambda r: by_parent.count(r.id) > 0]
        return [lambda r: by_parent.count(r.id) == 0]


@attrs.define(slots=True)
class TaskRunFilterFlowRunId(_Filter):
    """`is_null_` defaults to False, so an empty object means "has a flow run";
    `is_null_=True` wins over `any_`."""

    operator: Operator = Operator.and_
    any_: list[uuid.UUID] | None = None
    is_null_: bool | None = False
    _spec: ClassVar = {**_OP, "any_": _uuids, "is_null_": as_bool}

    def criteria(self, tables: Tables) -> list[Predicate]:
        get = attrgetter("flow_run_id")
        if self.is_null_ is True:
            return [_is_null(get, True)]
        if self.any_ is not None:
            return [_any(get, self.any_)]
        if self.is_null_ is False:
            return [_is_null(get, False)]
        return []


@attrs.define(slots=True)
class TaskRunFilter(_EntityFilter):
    operator: Operator = Operator.and_
    id: TaskRunFilterId | None = None
    name: TaskRunFilterName | None = None
    tags: TaskRunFilterTags | None = None
    state: TaskRunFilterState | None = None
    start_time: TaskRunFilterStartTime | None = None
    expected_start_time: TaskRunFilterExpectedStartTime | None = None
    subflow_runs: TaskRunFilterSubFlowRuns | None = None
    flow_run_id: TaskRunFilterFlowRunId | None = None
    _spec: ClassVar = {
        **_OP,
        "id": TaskRunFilterId,
        "name": TaskRunFilterName,
        "tags": TaskRunFilterTags,
        "state": TaskRunFilterState,
        "start_time": TaskRunFilterStartTime,
        "expected_start_time": TaskRunFilterExpectedStartTime,
        "subflow_runs": TaskRunFilterSubFlowRuns,
        "flow_run_id": TaskRunFilterFlowRunId,
    }


# deployments -----------------------------------------------------------------------------

@attrs.define(slots=True)
class DeploymentFilterId(_Filter):
    any_: list[uuid.UUID] | None = None
    _spec: ClassVar = {"any_": _uuids}
    _column: ClassVar = "id"


@attrs.define(slots=True)
class DeploymentFilterName(_Filter):
    any_: list[str] | None = None
    like_: str | None = None
    _spec: ClassVar = {"any_": _strs, "like_": as_str}
    _column: ClassVar = "name"


@attrs.define(slots=True)
class DeploymentOrFlowNameFilter(_Filter):
    """`like_`: the deployment's name or its flow's name contains the value."""

    like_: str | None = None
    _spec: ClassVar = {"like_": as_str}

    def criteria(self, tables: Tables) -> list[Predicate]:
        if self.like_ is None:
            return []
        matches = like_matcher(self.like_)
        flows = tables["flow"].rows

        def pred(dep: Any) -> bool:
            if matches(dep.name):
                return True
            flow = flows.get(dep.flow_id)
            return flow is not None and matches(flow.name)

        return [pred]


@attrs.define(slots=True)
class DeploymentFilterPaused(_Filter):
    eq_: bool | None = None
    _spec: ClassVar = {"eq_": as_bool}
    _column: ClassVar = "paused"


@attrs.define(slots=True)
class DeploymentFilterTags(_TagsFilter):
    pass


@attrs.define(slots=True)
class DeploymentFilterWorkQueueName(_Filter):
    any_: list[str] | None = None
    _spec: ClassVar = {"any_": _strs}
    _column: ClassVar = "work_queue_name"


@attrs.define(slots=True)
class DeploymentFilterConcurrencyLimit(_Filter):
    """Deprecated in Prefect 3.1.0: accepted, validated and ignored."""

    ge_: int | None = None
    le_: int | None = None
    is_null_: bool | None = None
    _spec: ClassVar = {"ge_": as_int, "le_": as_int, "is_null_": as_bool}

    def criteria(self, tables: Tables) -> list[Predicate]:
        return []


@attrs.define(slots=True)
class DeploymentFilter(_EntityFilter):
    operator: Operator = Operator.and_
    id: DeploymentFilterId | None = None
    name: DeploymentFilterName | None = None
    flow_or_deployment_name: DeploymentOrFlowNameFilter | None = None
    paused: DeploymentFilterPaused | None = None
    tags: DeploymentFilterTags | None = None
    work_queue_name: DeploymentFilterWorkQueueName | None = None
    concurrency_limit: DeploymentFilterConcurrencyLimit | None = None
    _spec: ClassVar = {
        **_OP,
        "id": DeploymentFilterId,
        "name": DeploymentFilterName,
        "flow_or_deployment_name": DeploymentOrFlowNameFilter,
        "paused": DeploymentFilterPaused,
        "tags": DeploymentFilterTags,
        "work_queue_name": DeploymentFilterWorkQueueName,
        "concurrency_limit": DeploymentFilterConcurrencyLimit,
    }

    def criteria(self, tables: Tables) -> list[Predicate]:
        # The deprecated concurrency_limit is left out entirely, not counted as TRUE.
        return [getattr(self, n).predicate(tables) for n in self.populated() if n != "concurrency_limit"]


# work pools and queues -------------------------------------------------------------------

@attrs.define(slots=True)
class WorkPoolFilterId(_Filter):
    any_: list[uuid.UUID] | None = None
    _spec: ClassVar = {"any_": _uuids}
    _column: ClassVar = "id"


@attrs.define(slots=True)
class WorkPoolFilterName(_Filter):
    any_: list[str] | None = None
    _spec: ClassVar = {"any_": _strs}
    _column: ClassVar = "name"


@attrs.define(slots=True)
class WorkPoolFilterType(_Filter):
    any_: list[str] | None = None
    _spec: ClassVar = {"any_": _strs}
    _column: ClassVar = "type"


@attrs.define(slots=True)
class WorkPoolFilter(_EntityFilter):
    operator: Operator = Operator.and_
    id: WorkPoolFilterId | None = None
    name: WorkPoolFilterName | None = None
    type: WorkPoolFilterType | None = None
    _spec: ClassVar = {**_OP, "id": WorkPoolFilterId, "name": WorkPoolFilterName, "type": WorkPoolFilterType}


@attrs.define(slots=True)
class WorkQueueFilterId(_Filter):
    any_: list[uuid.UUID] | None = None
    _spec: ClassVar = {"any_": _uuids}
    _column: ClassVar = "id"


@attrs.define(slots=True)
class WorkQueueFilterName(_Filter):
    any_: list[str] | None = None
    startswith_: list[str] | None = None
    _spec: ClassVar = {"any_": _strs, "startswith_": _strs}
    _column: ClassVar = "name"


@attrs.define(slots=True)
class WorkQueueFilter(_EntityFilter):
    operator: Operator = Operator.and_
    id: WorkQueueFilterId | None = None
    name: WorkQueueFilterName | None = None
    _spec: ClassVar = {**_OP, "id": WorkQueueFilterId, "name": WorkQueueFilterName}


# Deployment schedules (read_deployment_schedules) ------------------------------------------

@attrs.define(slots=True)
class DeploymentScheduleFilterActive(_Filter):
    """Schedules whose `active` is `eq_`."""

    eq_: bool | None = None
    _spec: ClassVar = {"eq_": as_bool}
    _column: ClassVar = "active"


@attrs.define(slots=True)
class DeploymentScheduleFilter(_EntityFilter):
    """Prefect 3.1.0's DeploymentScheduleFilter (its `active` criterion, combined by `operator`)."""

    operator: Operator = Operator.and_
    active: DeploymentScheduleFilterActive | None = None
    _spec: ClassVar = {**_OP, "active": DeploymentScheduleFilterActive}


# Workers (read_workers) ------------------------------------------------------------------

# Prefect's WorkerStatus. A heartbeat stores ONLINE; OFFLINE is the column default,
# and the foreman (engine/foreman.py) sets it for workers gone quiet.
WORKER_STATUSES = ("ONLINE", "OFFLINE")


def _worker_statuses(value: Any, path: str) -> list[str]:
    out = []
    for i, v in enumerate(_list(value, path)):
        v = getattr(v, "value", v)  # a status enum, or its name
        if not isinstance(v, str) or v not in WORKER_STATUSES:
            raise ValidationError(f"{path}[{i}]: unknown worker status {shown(v)}; expected one of "
                                  f"{list(WORKER_STATUSES)}")
        out.append(v)
    return out


@attrs.define(slots=True)
class WorkerFilterLastHeartbeatTime(_Filter):
    """Workers whose last heartbeat was at or before `before_` / at or after `after_`."""

    before_: _dt.datetime | None = None
    after_: _dt.datetime | None = None
    _spec: ClassVar = {"before_": as_datetime, "after_": as_datetime}
    _column: ClassVar = "last_heartbeat_time"


@attrs.define(slots=True)
class WorkerFilterStatus(_Filter):
    """Workers whose status is one of `any_` / none of `not_any_` ("ONLINE", "OFFLINE")."""

    any_: list[str] | None = None
    not_any_: list[str] | None = None
    _spec: ClassVar = {"any_": _worker_statuses, "not_any_": _worker_statuses}
    _column: ClassVar = "status"


@attrs.define(slots=True)
class WorkerFilter(_EntityFilter):
    """Prefect 3.1.0's WorkerFilter: its populated criteria combined by `operator`.
    (Prefect also defines a WorkerFilterWorkPoolId that WorkerFilter does not use:
    read_workers takes the pool as an argument.)"""

    operator: Operator = Operator.and_
    last_heartbeat_time: WorkerFilterLastHeartbeatTime | None = None
    status: WorkerFilterStatus | None = None
    _spec: ClassVar = {**_OP, "last_heartbeat_time": WorkerFilterLastHeartbeatTime, "status": WorkerFilterStatus}
