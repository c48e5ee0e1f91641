"""The storage schema: one cattrs converter for every record kind.

Everything a backend writes goes through `CONVERTER` (JSON-able dicts) or through a
`RowCodec` derived from it (flat rows, one value per stored field, the layout of both
the SQLite tables and the JSON snapshot). Conventions:

* UUIDs as canonical text, datetimes as ISO-8601 text in UTC, timedeltas as float
  seconds, enums by value, sets as sorted lists;
* nested values (StateDetails, policies, task_inputs, dicts, lists, `Any` data) as
  JSON values; a SQLite row holds them as JSON text (`nested_as_text=True`);
* StateDetails keep only the fields that differ from their defaults (most are None),
  which keeps 400,000 state rows small and quick to read back;
* `run.state` is not stored: it is rebuilt from the run's current state row.

Free-form fields (state data, parameters, context, ...) must hold JSON values: a
backend refuses anything else, and tuples come back as lists.
"""
from __future__ import annotations

import datetime as _dt
import enum
import json
import types
import typing
import uuid
from typing import Any, Callable, Iterable

import attrs
import cattrs

from . import records as _records
from . import states as _states
from .errors import shown
from .isoformat import parse_isoformat
from .records import (
    Artifact,
    ArtifactCollection,
    ConcurrencyLimit,
    ConcurrencyLimitV2,
    Constant,
    Deployment,
    DeploymentSchedule,
    Flow,
    FlowRun,
    FlowRunInput,
    FlowRunStateRow,
    Parameter,
    TaskRun,
    TaskRunResult,
    TaskRunStateCache,
    TaskRunStateRow,
    WorkPool,
    Worker,
    WorkQueue,
)
from .schedules import Schedule, as_schedule
from .states import StateDetails

__all__ = [
    "CONVERTER",
    "RECORD_CLASSES",
    "RowCodec",
    "codec",
    "stored_fields",
    "unstructure_record",
    "structure_record",
    "parse_uuid",
    "parse_datetime",
    "format_datetime",
]

UTC = _dt.timezone.utc

RECORD_CLASSES: dict[str, type] = {
    "flow": Flow,
    "deployment": Deployment,
    "deployment_schedule": DeploymentSchedule,
    "work_pool": WorkPool,
    "work_queue": WorkQueue,
    "worker": Worker,
    "concurrency_limit": ConcurrencyLimit,
    "concurrency_limit_v2": ConcurrencyLimitV2,
    "flow_run": FlowRun,
    "task_run": TaskRun,
    "flow_run_state": FlowRunStateRow,
    "task_run_state": TaskRunStateRow,
    "task_run_state_cache": TaskRunStateCache,
    "artifact": Artifact,
    "artifact_collection": ArtifactCollection,
    "flow_run_input": FlowRunInput,
}

# Fields that live in memory only.
_NOT_STORED = frozenset({"state"})


# Scalars -----------------------------------------------------------------------------------

_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown
_set_uuid_int = uuid.UUID.__dict__["int"].__set__  # UUID refuses plain assignment
_set_uuid_safety = uuid.UUID.__dict__["is_safe"].__set__


def parse_uuid(text: str) -> uuid.UUID:
    """A UUID from its text form. About twice as fast as `uuid.UUID(text)` (it skips
    the constructor's argument juggling), which matters when opening 500,000 rows. O(1)."""
    digits = text.replace("-", "")
    if len(digits) != 32:
        raise ValueError(f"badly formed UUID {shown(text)}")
    value = _new(uuid.UUID)
    _set_uuid_int(value, int(digits, 16))
    _set_uuid_safety(value, _UNKNOWN)
    return value


def parse_datetime(text: str) -> _dt.datetime:
    """A timezone-aware UTC datetime from ISO-8601 text. O(1)."""
    value = parse_isoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"datetime without a timezone: {shown(text)}")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value


def format_datetime(value: _dt.datetime) -> str:
    """ISO-8601 text in UTC (microseconds kept). O(1)."""
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {shown(value)} cannot be stored")
        value = value.astimezone(UTC)
    return value.isoformat()


def _seconds(value: _dt.timedelta) -> float:
    return value.total_seconds()


def _from_seconds(value: float) -> _dt.timedelta:
    return _dt.timedelta(seconds=value)


def _identity(value: Any, _type: Any = None) -> Any:
    return value


# The converter -----------------------------------------------------------------------------

# detailed_validation off: plain ValueError/TypeError/KeyError (which backends turn into
# BackendError) instead of exception groups, and faster generated code.
CONVERTER = cattrs.Converter(
    unstruct_collection_overrides={typing.AbstractSet: lambda s: sorted(s)}, detailed_validation=False
)
"""The one place that knows how every stored type becomes JSON and back."""

_c = CONVERTER
_c.register_unstructure_hook(uuid.UUID, str)
_c.register_structure_hook(uuid.UUID, lambda v, _t: parse_uuid(v))
_c.register_unstructure_hook(_dt.datetime, format_datetime)
_c.register_structure_hook(_dt.datetime, lambda v, _t: parse_datetime(v))
_c.register_unstructure_hook(_dt.timedelta, _seconds)
_c.register_structure_hook(_dt.timedelta, lambda v, _t: _from_seconds(v))
_c.register_unstructure_hook_func(lambda t: isinstance(t, type) and issubclass(t, enum.Enum), lambda e: e.value)
# Numbers come back exactly as JSON holds them: a policy's `retry_delay` is typed int
# but may hold the float copied from `retry_delay_seconds`, and int() would truncate it.
_c.register_structure_hook(int, _identity)
_c.register_structure_hook(float, _identity)
_c.register_structure_hook_func(lambda t: isinstance(t, type) and issubclass(t, enum.Enum), lambda v, t: t(v))


def _is_free_json(t: Any) -> bool:
    """dict[str, Any] / list[Any] / Any: already JSON values, passed through as they are."""
    if t is Any:
        return True
    origin = typing.get_origin(t)
    if origin in (dict, list):
        args = typing.get_args(t)
        return bool(args) and args[-1] is Any
    return False


_c.register_structure_hook_func(_is_free_json, _identity)
_c.register_unstructure_hook_func(_is_free_json, _identity)

# task_inputs entries: a union tagged by `input_type`.
_TASK_INPUT_CLASSES = {"task_run": TaskRunResult, "parameter": Parameter, "constant": Constant}


def _structure_task_input(value: dict, _t: Any) -> Any:
    kind = value.get("input_type")
    if kind == "task_run":
        return TaskRunResult(id=parse_uuid(value["id"]))
    if kind == "parameter":
        return Parameter(name=value["name"])
    if kind == "constant":
        return Constant(type=value["type"])
    raise ValueError(f"unknown task input type {shown(kind)}")


def _unstructure_task_input(value: Any) -> dict:
    if isinstance(value, TaskRunResult):
        return {"input_type": "task_run", "id": str(value.id)}
    if isinstance(value, Parameter):
        return {"input_type": "parameter", "name": value.name}
    return {"input_type": "constant", "type": value.type}


_c.register_structure_hook_func(lambda t: t == _records.TaskInput, _structure_task_input)
_c.register_unstructure_hook_func(lambda t: t == _records.TaskInput, _unstructure_task_input)

# TaskRunPolicy.retry_delay is int | float | list[int] | None: JSON already says which.
_RETRY_DELAY = typing.Union[int, float, list[int], None]
_c.register_structure_hook_func(
    lambda t: t == _RETRY_DELAY, lambda v, _t: list(v) if isinstance(v, list) else v
)


# A deployment's schedule: Prefect's JSON shape of its kind ({"interval": seconds,
# "anchor_date", "timezone"}, {"cron", ...}, {"rrule", ...}); the key names the kind.
_c.register_unstructure_hook_func(lambda t: t == Schedule, lambda s: s.to_json())
_c.register_structure_hook_func(lambda t: t == Schedule, lambda v, _t: as_schedule(v, "stored schedule"))


# Record classes use string annotations (postponed evaluation): resolve them once.
for _cls in (*RECORD_CLASSES.values(), StateDetails, _records.FlowRunPolicy, _records.TaskRunPolicy,
             _records.ConcurrencyOptions, TaskRunResult, Parameter, Constant):
    attrs.resolve_types(_cls, globalns={**vars(_records), **vars(_states), "Schedule": Schedule})


# StateDetails: only the non-default fields are written (a typical row keeps one or two).
def _optional_inner(t: Any) -> Any:
    """X for `X | None`; t itself otherwise."""
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return t


_DETAIL_FIELDS = attrs.fields(StateDetails)
_DETAIL_DEFAULTS = {f.name: f.default for f in _DETAIL_FIELDS}
_DETAIL_IN: dict[str, Callable[[Any], Any]] = {}
_DETAIL_OUT: dict[str, Callable[[Any], Any]] = {}
for _f in _DETAIL_FIELDS:
    _inner = _optional_inner(_f.type)
    if _inner is uuid.UUID:
        _DETAIL_IN[_f.name], _DETAIL_OUT[_f.name] = parse_uuid, str
    elif _inner is _dt.datetime:
        _DETAIL_IN[_f.name], _DETAIL_OUT[_f.name] = parse_datetime, format_datetime
    elif _inner is dict or typing.get_origin(_inner) is dict:
        _DETAIL_IN[_f.name], _DETAIL_OUT[_f.name] = dict, dict
    else:  # str, bool
        _DETAIL_IN[_f.name], _DETAIL_OUT[_f.name] = _identity, _identity


# (uuid, text) of the last UUID column a row encoder formatted. A state row's details
# repeat its run id, encoded just after: one identity test instead of a second str().
# A tuple in a list, so readers on other threads always see a matching pair.
_UUID_MEMO: list[tuple[Any, Any]] = [(None, None)]


def _compile_unstructure_details() -> Callable[[StateDetails], dict]:
    """A straight-line `_unstructure_details`: every state row written goes through it,
    and a loop with getattr over 16 fields cost as much as the rest of the row."""
    ns: dict[str, Any] = {"memo": _UUID_MEMO}
    lines = ["def unstructure_details(details):", "    out = {}", "    m = memo[0]"]
    for name, conv in _DETAIL_OUT.items():
        default = _DETAIL_DEFAULTS[name]
        if conv is str:  # a UUID: most often the run id its row's encoder just formatted
            val = "(m[1] if v is m[0] else str(v))"
        else:
            val = "v" if conv is _identity else f"out_{name}(v)"
        ns[f"out_{name}"] = conv
        lines.append(f"    v = details.{name}")
        if default is None:
            lines.append(f"    if v is not None: out[{name!r}] = {val}")
        else:
            # Written when it differs from the default; None (where the default is
            # not None) is written as null.
            ns[f"default_{name}"] = default
            lines.append(f"    if v is None: out[{name!r}] = None")
            lines.append(f"    elif v != default_{name}: out[{name!r}] = {val}")
    lines.append("    return out")
    exec(compile("\n".join(lines) + "\n", "<runstate unstructure StateDetails>", "exec"), ns)
    return ns["unstructure_details"]


_unstructure_details = _compile_unstructure_details()
_unstructure_details.__doc__ = "StateDetails as a JSON-able dict of its non-default fields. O(fields)."


# How `_details_interned` converts each key: 1 a UUID, 2 a datetime (both shared
# through the load's cache), 0 through `_DETAIL_IN`.
_DETAIL_KIND = {k: 1 if c is parse_uuid else 2 if c is parse_datetime else 0 for k, c in _DETAIL_IN.items()}


def _details_interned(value: dict, cache: dict) -> StateDetails:
    """Like `_structure_details`, sharing UUID and datetime objects through `cache`
    (a state's flow_run_id is its run's id; bulk loads pass one cache). A load runs
    this once per state row, so the interning is inlined."""
    kwargs = {}
    kinds = _DETAIL_KIND
    get = cache.get
    for k, v in value.items():
        kind = kinds.get(k)
        if kind is None:
            continue  # unknown keys are ignored, as Prefect ignores them
        if v is not None:
            if kind:
                x = get(v)
                if x is None:
                    x = cache[v] = parse_uuid(v) if kind == 1 else parse_datetime(v)
                v = x
            else:
                v = _DETAIL_IN[k](v)
        kwargs[k] = v
    return StateDetails(**kwargs)


def _structure_details(value: dict, _t: Any = None) -> StateDetails:
    conv = _DETAIL_IN
    kwargs = {}
    for k, v in value.items():
        c = conv.get(k)
        if c is not None:  # unknown keys are ignored, as Prefect ignores them
            kwargs[k] = None if v is None else c(v)
    return StateDetails(**kwargs)


_c.register_unstructure_hook(StateDetails, _unstructure_details)
_c.register_structure_hook(StateDetails, _structure_details)


# Whole records -----------------------------------------------------------------------------

def stored_fields(kind: str) -> tuple[attrs.Attribute, ...]:
    """The persisted fields of a record kind, in column order."""
    return tuple(f for f in attrs.fields(RECORD_CLASSES[kind]) if f.name not in _NOT_STORED)


def unstructure_record(kind: str, rec: Any) -> dict:
    """A record as a JSON-able dict of its stored fields."""
    return {f.name: CONVERTER.unstructure(getattr(rec, f.name), f.type) for f in stored_fields(kind)}


def structure_record(kind: str, data: dict) -> Any:
    """The record of `kind` described by `data` (as `unstructure_record` made it)."""
    cls = RECORD_CLASSES[kind]
    values = {}
    for f in stored_fields(kind):
        value = data[f.name]
        values[f.name] = None if value is None else CONVERTER.structure(value, _optional_inner(f.type))
    return cls(**values)


# Flat rows ---------------------------------------------------------------------------------

_SQL_TYPES = {str: "TEXT", int: "INTEGER", float: "REAL", bool: "INTEGER"}


class RowCodec:
    """Records of one kind as flat tuples, one value per stored field.

    Scalars (str, int, float, bool) pass as they are; UUIDs, datetimes, timedeltas and
    enums become text/numbers; nested values go through CONVERTER and, with
    `nested_as_text`, through JSON text (for SQLite). `encode` and `decode` are
    O(fields + size of nested values).
    """

    __slots__ = ("kind", "cls", "columns", "sql_types", "_enc", "_dec", "_types", "_as_text", "encode",
                 "_decode_into")

    def __init__(self, kind: str, nested_as_text: bool) -> None:
        self.kind = kind
        self.cls = RECORD_CLASSES[kind]
        fields = stored_fields(kind)
        self.columns = tuple(f.name for f in fields)
        self._types = tuple(_optional_inner(f.type) for f in fields)
        self._as_text = nested_as_text
        enc: list[tuple[int, Callable[[Any], Any]]] = []
        dec: list[tuple[int, Callable[[Any], Any]]] = []
        sql_types = []
        for i, f in enumerate(fields):
            t = _optional_inner(f.type)
            if t in (str, int, float):
                sql_types.append(_SQL_TYPES[t])
                continue
            if t is bool:
                sql_types.append("INTEGER")
                dec.append((i, bool))  # SQLite hands back 0/1
                continue
            if t is uuid.UUID:
                enc.append((i, str))
                dec.append((i, parse_uuid))
                sql_types.append("TEXT")
            elif t is _dt.datetime:
                enc.append((i, format_datetime))
                dec.append((i, parse_datetime))
                sql_types.append("TEXT")
            elif t is _dt.timedelta:
                enc.append((i, _seconds))
                dec.append((i, _from_seconds))
                sql_types.append("REAL")
            elif isinstance(t, type) and issubclass(t, enum.Enum):
                enc.append((i, _enum_value))
                dec.append((i, t._value2member_map_.__getitem__))
                sql_types.append("TEXT")
            else:
                sql_types.append("TEXT")
                un, st = _nested_hooks(t)
                if nested_as_text:
                    enc.append((i, _text_encoder(t, un)))
                    dec.append((i, _text_decoder(t, st)))
                else:
                    enc.append((i, un))
                    dec.append((i, _object_decoder(t, st)))
        self.sql_types = tuple(sql_types)
        self._enc = tuple(enc)
        self._dec = tuple(dec)
        # encode(rec) -> row; raises TypeError/ValueError on a value JSON cannot hold.
        self.encode: Callable[[Any], tuple] = self._compile_encoder()
        self._decode_into = self._compile_decoder()

    def decode(self, row: Iterable[Any]) -> Any:
        """The record for `row`. Raises ValueError/TypeError/KeyError on a bad value."""
        return self._decode_into(row, {})

    def decode_many(self, rows: Iterable[Iterable[Any]], cache: dict | None = None) -> list:
        """Decode many rows, sharing equal UUID and datetime objects through `cache`
        (pass one cache for all kinds of a load: run ids repeat on every state row, and
        a state's timestamp, created and updated are usually one instant), which saves
        both parsing time and memory. O(total size)."""
        if cache is None:
            cache = {}
        decode = self._decode_into
        return [decode(row, cache) for row in rows]

    # Straight-line code per kind: a generic loop over 31 columns costs about twice as
    # much, and encoding is most of a write-through commit's CPU time.
    def _compile_encoder(self) -> Callable[[Any], tuple]:
        ns: dict[str, Any] = {"UTC": UTC, "format_datetime": format_datetime, "memo": _UUID_MEMO}
        convs = dict(self._enc)
        body, parts = [], []
        uuid_cols = [i for i, t in enumerate(self._types) if t is uuid.UUID]
        earlier: list[int] = []  # datetime columns before this one, nearest first
        for i, name in enumerate(self.columns):
            conv = convs.get(i)
            if conv is None:
                parts.append(f"rec.{name}")
                continue
            body.append(f"    v{i} = rec.{name}")
            if conv is format_datetime:
                # A row's instants are often one object (a state row's created and
                # updated, a run's updated and state_timestamp): reuse the text made
                # for it. Otherwise inline the common case, already UTC.
                reuse = "".join(f"s{j} if v{i} is v{j} else " for j in earlier)
                body.append(f"    s{i} = None if v{i} is None else {reuse}"
                            f"(v{i}.isoformat() if v{i}.tzinfo is UTC else format_datetime(v{i}))")
                parts.append(f"s{i}")
                earlier.insert(0, i)
                continue
            if conv is _enum_value:  # the member's own attribute: `.value` is a descriptor call
                parts.append(f"(None if v{i} is None else v{i}._value_)")
            elif conv is str and name != "id":
                # A reference: consecutive rows mostly name the same flow, run,
                # deployment..., so each column remembers its last (uuid, text) pair
                # and formats only a new object. The last one also feeds _UUID_MEMO.
                ns[f"last{i}"] = [(None, None)]
                keep = f"\n        memo[0] = (v{i}, s{i})" if i == uuid_cols[-1] else ""
                body.append(f"    if v{i} is None:\n        s{i} = None\n    else:\n"
                            f"        p{i} = last{i}[0]\n"
                            f"        if v{i} is p{i}[0]:\n            s{i} = p{i}[1]\n"
                            f"        else:\n            s{i} = str(v{i})\n            last{i}[0] = (v{i}, s{i})"
                            f"{keep}")
                parts.append(f"s{i}")
            else:
                ns[f"c{i}"] = conv
                parts.append(f"(None if v{i} is None else c{i}(v{i}))")
        src = "def encode(rec):\n" + "\n".join(body) + ("\n" if body else "") + f"    return ({', '.join(parts)},)\n"
        exec(compile(src, f"<runstate encode {self.kind}>", "exec"), ns)
        return ns["encode"]

    def _compile_decoder(self) -> Callable[[Iterable[Any], dict], Any]:
        ns: dict[str, Any] = {"cls": self.cls, "intern_uuid": _intern_uuid, "intern_datetime": _intern_datetime,
                              "details_text": lambda v, cache: _details_interned(_parse_json(v), cache),
                              "details_obj": _details_interned}
        convs = dict(self._dec)
        names = [f"a{i}" for i in range(len(self.columns))]
        args = []
        plain = _plain_record_class(self.cls)
        dt_cols: list[int] = []  # datetime columns so far, nearest first
        col_value: dict[int, str] = {}  # where a decoded datetime column is read back
        for i, name in enumerate(self.columns):
            conv = convs.get(i)
            if conv is None:
                args.append(f"{name}=a{i}")
            # A cache hit (common: run ids on state rows, one instant for a row's
            # timestamps) costs a dict lookup, no call. UUIDs and datetimes are truthy.
            elif conv is parse_uuid:
                args.append(f"{name}=(None if a{i} is None else get(a{i}) or intern_uuid(cache, a{i}))")
            elif conv is parse_datetime:
                # A row's instants often share one text (a state's timestamp, created
                # and updated): comparing with the nearest earlier ones skips hashing
                # the text for the cache.
                same = "".join(f"{col_value[j]} if a{i} == a{j} else " for j in dt_cols[:2])
                value = f"({same}(None if a{i} is None else get(a{i}) or intern_datetime(cache, a{i})))"
                if plain:  # slots filled in column order: earlier ones are readable
                    col_value[i] = f"rec.{name}"
                    dt_cols.insert(0, i)
                args.append(f"{name}={value}")
            elif self._types[i] is StateDetails:
                fn = "details_text" if self._as_text else "details_obj"
                args.append(f"{name}=(None if a{i} is None else {fn}(a{i}, cache))")
            else:
                ns[f"c{i}"] = conv
                args.append(f"{name}=(None if a{i} is None else c{i}(a{i}))")
        head = f"def decode(row, cache):\n    {', '.join(names)}, = row\n    get = cache.get\n"
        if plain:
            # Fill the slots directly: a 31-keyword __init__ call costs more than the
            # rest of decoding. Safe for classes whose __init__ only assigns (checked
            # above); fields that are not stored get their plain default.
            ns["new"] = object.__new__
            lines = ["    rec = new(cls)"]
            lines += [f"    rec.{a.split('=', 1)[0]} = {a.split('=', 1)[1]}" for a in args]
            stored = set(self.columns)
            for f in attrs.fields(self.cls):
                if f.name not in stored:
                    ns[f"default_{f.name}"] = f.default
                    lines.append(f"    rec.{f.name} = default_{f.name}")
            src = head + "\n".join(lines) + "\n    return rec\n"
        else:
            src = head + f"    return cls({', '.join(args)})\n"
        exec(compile(src, f"<runstate decode {self.kind}>", "exec"), ns)
        return ns["decode"]


def _plain_record_class(cls: type) -> bool:
    """True if building `cls` through __init__ does nothing but assign its fields:
    no post-init hook, no validators or converters, no factory default on a field
    that is not stored (which __init__ would have to call)."""
    if hasattr(cls, "__attrs_post_init__") or hasattr(cls, "__attrs_pre_init__"):
        return False
    for f in attrs.fields(cls):
        if f.validator is not None or f.converter is not None or not f.init:
            return False
        if f.name in _NOT_STORED and isinstance(f.default, attrs.Factory):
            return False
    return True


def _intern_datetime(cache: dict, text: str) -> _dt.datetime:  # datetimes are immutable: safe to share
    value = cache.get(text)
    if value is None:
        value = cache[text] = parse_datetime(text)
    return value


def _intern_uuid(cache: dict, text: str) -> uuid.UUID:
    value = cache.get(text)
    if value is None:
        value = cache[text] = parse_uuid(text)
    return value


_PLAIN = (str, int, float, bool, Any)


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_encoder() -> Callable[[Any], str]:
    """Compact JSON text, NaN refused. Uses the C encoder directly when there is one:
    JSONEncoder.encode rebuilds it on every call, which doubles the cost of the small
    values a row holds."""
    c_make = getattr(json.encoder, "c_make_encoder", None)
    if c_make is None:  # pragma: no cover (pure-Python json)
        return json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    chunks = c_make(None, _not_json, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False)
    join = "".join
    return lambda value: join(chunks(value, 0))


_ENCODE = _make_encoder()


def _nested_hooks(t: Any) -> tuple[Callable[[Any], Any], Callable[[Any, Any], Any]]:
    """(unstructure, structure) for a nested type; containers of plain JSON values are
    passed through (cattrs would copy them element by element)."""
    origin = typing.get_origin(t)
    if origin in (list, dict) and all(a in _PLAIN for a in typing.get_args(t)):
        return _identity, (lambda v, _t: v)
    return CONVERTER.get_unstructure_hook(t), CONVERTER.get_structure_hook(t)


def _text_encoder(t: Any, un: Callable[[Any], Any]) -> Callable[[Any], str]:
    """JSON text for a nested value, with shortcuts for the common cases: empty
    containers and attrs values equal to their defaults (a run's policy, mostly),
    which skip the encoder entirely. Every write re-encodes the whole row, so this is
    most of the cost of a write-through transition."""
    encode = _ENCODE
    origin = typing.get_origin(t) or t
    if origin in (list, dict):
        empty = "[]" if origin is list else "{}"
        return lambda v: encode(un(v)) if v else empty
    if t is StateDetails:  # never the default on a state row (it names its run): skip the comparison
        return lambda v: encode(un(v))
    default = _default_of(t)
    if default is not None:
        default_text = encode(un(default))
        return lambda v: default_text if v == default else encode(un(v))
    return lambda v: encode(un(v))


def _default_of(t: Any) -> Any:
    """`t()` for an attrs type that has all-default fields (a run's policy), else None:
    the value the codecs' shortcuts compare against."""
    if not attrs.has(t):
        return None
    try:
        return t()
    except TypeError:
        return None


_scan_once = json.decoder.JSONDecoder().scan_once


def _parse_json(text: str) -> Any:
    """json.loads for the compact text we write, minus two Python-level wrappers
    (opening 500,000 rows parses a few hundred thousand of these)."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        raise ValueError(f"not JSON: {shown(text[:80])}") from None
    if end != len(text):
        return json.loads(text)  # surrounding whitespace, or garbage: let json decide
    return value


def _text_decoder(t: Any, st: Callable[[Any, Any], Any]) -> Callable[[str], Any]:
    """The inverse of `_text_encoder`, with the same shortcuts: an empty container
    or an attrs value's default text skips the parser."""
    origin = typing.get_origin(t) or t
    if origin is list:
        return lambda v: [] if v == "[]" else st(_parse_json(v), t)
    if origin is dict:
        return lambda v: {} if v == "{}" else st(_parse_json(v), t)
    default = _default_of(t)
    if default is not None:
        default_text = _ENCODE(CONVERTER.unstructure(default, t))
        return lambda v: t() if v == default_text else st(_parse_json(v), t)
    return lambda v: st(_parse_json(v), t)


def _object_decoder(t: Any, st: Callable[[Any, Any], Any]) -> Callable[[Any], Any]:
    """Structure a nested value already parsed from JSON, with `_text_decoder`'s
    shortcut for attrs values: one equal to its default's form (a run's policy,
    mostly) is built directly, skipping the structuring hook."""
    default = _default_of(t)
    if default is not None:
        default_form = CONVERTER.unstructure(default, t)
        return lambda v: t() if v == default_form else st(v, t)
    return lambda v: st(v, t)


def _enum_value(value: enum.Enum) -> Any:
    return value.value


_CODECS: dict[tuple[str, bool], RowCodec] = {}


def codec(kind: str, nested_as_text: bool = True) -> RowCodec:
    """The (cached) row codec of a record kind."""
    key = (kind, nested_as_text)
    c = _CODECS.get(key)
    if c is None:
        if kind not in RECORD_CLASSES:
            raise KeyError(f"unknown record kind {shown(kind)}")
        c = _CODECS[key] = RowCodec(kind, nested_as_text)
    return c
