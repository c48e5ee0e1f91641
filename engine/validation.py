"""Input checking and coercion for engine calls: a bad value raises ValidationError
naming the field, before anything is written."""
from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import json as _json
import math
import re
import sys
import uuid
from collections.abc import Mapping  # isinstance checks: typing's alias is 3x slower
from typing import Any, Callable

import attrs

from .errors import ValidationError, shown
from .timetext import TimeTextError, parse_duration_text, parse_time_text, round_half_up
from .records import (
    ConcurrencyOptions,
    Constant,
    Deployment,
    Flow,
    FlowRun,
    FlowRunPolicy,
    Parameter,
    TaskRun,
    TaskRunPolicy,
    TaskRunResult,
    WORK_STATUSES,
    WorkPool,
    WorkQueue,
)
from .states import (
    STATE_DETAILS_FIELDS,
    State,
    StateDetails,
    as_state_details,
    as_state_type,
    compile_checked_copier,
)

__all__ = [
    "DURATION_TYPES",
    "INT64_MIN",
    "INT64_MAX",
    "is_finite_number",
    "as_uuid",
    "as_optional_uuid",
    "as_uuid_list",
    "as_datetime",
    "as_str",
    "as_text",
    "as_name",
    "as_work_status",
    "as_int",
    "as_bool",
    "as_count",
    "as_field_mapping",
    "merged_fields",
    "as_str_list",
    "as_json_dict",
    "check_base_job_template",
    "coerce_fields",
    "as_state",
    "as_task_inputs",
    "checked_details",
    "as_json_value",
    "as_timedelta",
    "as_state_details",
    "as_state_type",
]


# The forms pydantic reads as a UUID (Python's constructor also takes hyphens anywhere,
# one brace, "urn:uuid:" before 32 digits and digits of other scripts; Prefect refuses those).
_HYPHENATED = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_UUID_TEXT = re.compile(rf"(?:[0-9a-fA-F]{{32}}|{_HYPHENATED}|urn:uuid:{_HYPHENATED}|\{{{_HYPHENATED}\}})\Z")


def uuid_from_text(text: str) -> uuid.UUID | None:
    """The UUID `text` spells as Prefect reads one (32 hex digits, hyphenated 8-4-4-4-12,
    that in braces or after "urn:uuid:"), or None. O(1)."""
    return uuid.UUID(text) if _UUID_TEXT.match(text) else None


def as_uuid(value: Any, what: str) -> uuid.UUID:
    """A UUID from a UUID or its string form; anything else is a ValidationError."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        parsed = uuid_from_text(value)
        if parsed is not None:
            return parsed
    raise ValidationError(f"{what} must be a UUID, got {type(value).__name__} {shown(value)}")


def as_optional_uuid(value: Any, what: str) -> uuid.UUID | None:
    return None if value is None else as_uuid(value, what)


def as_uuid_list(values: Any, what: str) -> list[uuid.UUID]:
    """A list of UUIDs from a list, tuple or set of UUIDs or their string forms."""
    if not isinstance(values, (list, tuple, set, frozenset)):
        raise ValidationError(f"{what} must be a list of ids, got {type(values).__name__} {shown(values)}")
    return [as_uuid(v, f"{what}[]") for v in values]


def as_slot_holders(values: Any, what: str) -> list[str]:
    """A tag limit's slot holders: a list, tuple or set of strings (task run ids as
    text, usually) or UUIDs, as text; None for none. O(k)."""
    if values is None:
        return []
    if not isinstance(values, (list, tuple, set, frozenset)) or not all(isinstance(v, (str, uuid.UUID)) for v in values):
        raise ValidationError(f"{what} must be a list of task run ids (strings or UUIDs), got {shown(values)}")
    return [storable_text(v, f"{what}[]") if isinstance(v, str) else str(v) for v in values]


# A number, or text that is one, where Prefect reads a datetime: pydantic's unix time.
_UNIX_TIME_TEXT = re.compile(r"[+-]?\d+(\.\d*)?\Z", re.ASCII)
# Beyond this many seconds either way, pydantic reads the number as milliseconds;
# it reads 1600-01-01 to the end of 9999.
_UNIX_MS_WATERSHED = 20_000_000_000
_UNIX_FIRST, _UNIX_LAST = -11_676_096_000, 253_402_300_799
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _decimal_text(text: str) -> float:
    # As pydantic adds up a number's decimals (each digit over a power of ten, in
    # floating point): its readings differ from float(text) in the last microsecond.
    body = text.lstrip("+-")
    whole, _, decimals = body.partition(".")
    value, scale = float(int(whole)), 10.0
    for digit in decimals:
        value += int(digit) / scale
        scale *= 10.0
    return -value if text[0] == "-" else value


def _decimal_number(value: _decimal.Decimal) -> int | float:
    """A Decimal as pydantic reads one: an int if it is whole, else a float (NaN for
    a signalling NaN, which float() refuses)."""
    if not value.is_finite():
        return math.nan if value.is_nan() else float(value)
    return int(value) if value == value.to_integral_value() else float(value)


def _from_unix_time(value: Any, what: str) -> _dt.datetime:
    """A unix time as pydantic reads one: whole numbers exactly (milliseconds beyond
    the watershed), others as seconds and microseconds rounded half away from zero."""
    given = value
    if value.__class__ is str:
        if len(value.partition(".")[0].lstrip("+-").lstrip("0")) > 18:
            # (pydantic refuses what does not fit 64 bits; anything this long is past 9999)
            raise ValidationError(f"{what} is out of range as a unix time (1600-01-01 to 9999-12-31): {shown(given)}")
        value = int(value) if "." not in value else _decimal_text(value)
    elif isinstance(value, _decimal.Decimal):
        value = _decimal_number(value)
    if value.__class__ is int:
        if -_UNIX_MS_WATERSHED <= value <= _UNIX_MS_WATERSHED:
            seconds, micros = value, 0
        else:
            seconds, millis = divmod(value, 1000)
            micros = millis * 1000
    elif not math.isfinite(value):
        raise ValidationError(f"{what} is out of range as a unix time: {shown(given)}")
    else:
        if abs(value) > _UNIX_MS_WATERSHED:
            value /= 1000.0  # (beyond 2e13, or a float, pydantic reads something else: README)
        seconds = math.floor(value)
        micros = round_half_up((value - seconds) * 1e6)
    if not _UNIX_FIRST <= seconds + micros // 1_000_000 <= _UNIX_LAST:
        raise ValidationError(f"{what} is out of range as a unix time (1600-01-01 to 9999-12-31): {shown(given)}")
    return _EPOCH + _dt.timedelta(seconds=seconds, microseconds=micros)


def as_datetime(value: Any, what: str, unix_times: bool = True) -> _dt.datetime | None:
    """`value` as an aware UTC datetime, read as Prefect's DateTime fields read it:
    text by timetext.parse_time_text (no offset: UTC), a date as its midnight in UTC,
    and, with `unix_times`, a number or numeric text as a unix time (seconds;
    milliseconds beyond 2e10, as pydantic does)."""
    if value is None:
        return None
    if isinstance(value, str):
        if unix_times and _UNIX_TIME_TEXT.match(value):
            return _from_unix_time(value, what)
        try:
            value = parse_time_text(value)
        except TimeTextError as exc:
            raise ValidationError(f"{what} is not an ISO-8601 datetime: {shown(value)}{exc.hint}") from None
    elif unix_times and (value.__class__ in (int, float) or isinstance(value, _decimal.Decimal)):   # (not bool)
        return _from_unix_time(value, what)
    elif isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):  # (pendulum's Date too)
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc)
    if not isinstance(value, _dt.datetime):
        raise ValidationError(f"{what} must be a datetime, got {type(value).__name__} {shown(value)}")
    if value.tzinfo is None:
        # As Prefect's DateTime fields read them: a time without an offset (or a bare
        # date, midnight) is UTC.
        return value.replace(tzinfo=_dt.timezone.utc)
    try:
        return value.astimezone(_dt.timezone.utc)
    except OverflowError:  # 9999-12-31T23:00-05:00, say: past the last datetime in UTC
        raise ValidationError(f"{what} is out of range once converted to UTC: {value.isoformat()}") from None


def as_str(value: Any, what: str, nullable: bool = True) -> str | None:
    if value.__class__ is str and value.isascii():
        return value
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__} {shown(value)}")
    return storable_text(value, what)


def unknown_keys(given: Any, allowed: Any) -> list:
    """The keys of `given` not in `allowed`, in order for an error message: strings
    sorted, then any other keys (a caller's mistake too) as messages show them. O(k log k)."""
    return sorted(set(given) - set(allowed), key=lambda k: (False, k) if k.__class__ is str else (True, shown(k)))


def storable_text(value: str, what: str) -> str:
    """`value` as a plain str (a subclass's own comparisons and hashing must not
    reach the indexes), unless it holds a lone surrogate (text decoded with
    errors="surrogateescape", say): no UTF-8 store can hold one, so it is refused
    here rather than failing a later save. O(len)."""
    if value.__class__ is not str:
        value = str.__str__(value)  # str's own copy, whatever the subclass overrides
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError(
                f"{what} must be valid Unicode text: {shown(value[exc.start])} at position {exc.start} is a lone "
                f"surrogate, which no store can hold (got {shown(value)})"
            ) from None
    return value


def as_text(value: Any, what: str) -> str:
    """A string (None refused)."""
    return as_str(value, what, False)  # type: ignore[return-value]


_BANNED_IN_NAMES = frozenset("/%&><")


def as_name(value: Any, what: str, allow_empty: bool = False) -> str:
    """Prefect's `Name`: a non-empty string (unless `allow_empty`: a deployment's
    name) without / % & > <."""
    if not isinstance(value, str) or not (value or allow_empty) or not _BANNED_IN_NAMES.isdisjoint(value):
        kind = "a string" if allow_empty else "a non-empty string"
        raise ValidationError(f"{what} must be {kind} without / % & > <, got {shown(value)}")
    return storable_text(value, what)


# An integer column holds what SQLite's INTEGER does: a signed 64-bit value.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an integer, got {type(value).__name__} {shown(value)}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValidationError(f"{what} must fit in a signed 64-bit integer, got {shown(value)}")
    return value


def as_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{what} must be a boolean, got {type(value).__name__} {shown(value)}")
    return value


def as_count(value: Any, what: str) -> int:
    """`value` if it is a non-negative integer (a limit, a number of slots)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{what} must be a non-negative integer, got {shown(value)}")
    if value > INT64_MAX:
        raise ValidationError(f"{what} must fit in a signed 64-bit integer, got {shown(value)}")
    return value


def as_field_mapping(value: Any, what: str) -> Mapping | None:
    """The positional form of create_*/update_* (Prefect's object as a mapping of
    fields), or None."""
    if value is not None and not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be a mapping of fields, got {type(value).__name__} {shown(value)}")
    return value


def merged_fields(given: Any, fields: Mapping[str, Any], what: str) -> dict:
    """The fields of an update_*(id, {"field": value}, field=value) call: the
    positional mapping (checked by as_field_mapping) under the keywords. O(fields)."""
    return {**dict(as_field_mapping(given, what) or {}), **fields}


_STR_ONLY = {str}


def as_str_list(value: Any, what: str) -> list[str]:
    """A new list from a list or tuple of strings (tags, names)."""
    if value.__class__ is list and (not value or set(map(type, value)) == _STR_ONLY):
        return list(value)  # the common case, without a generator
    if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        raise ValidationError(f"{what} must be a list of strings, got {shown(value)}")
    return [t if t.__class__ is str else str.__str__(t) for t in value]


def as_dict(value: Any, what: str, nullable: bool = False) -> dict | None:
    if value is None and nullable:
        return None
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a dict, got {type(value).__name__} {shown(value)}")
    return dict(value)


def _null_constant(_name: str) -> None:
    return None


def as_json_dict(value: Any, what: str, nullable: bool = False) -> dict | None:
    """A JSON column's dict as Prefect's JSON type stores it: a JSON round trip, so
    NaN and ±Infinity become None, tuples lists, nested non-string keys strings, and
    nothing is shared with the caller; the top-level keys must be strings. A value
    that is not JSON raises ValidationError. O(size of the value)."""
    if not value or not isinstance(value, dict):  # None, {} (bound as it is) or no dict
        return as_dict(value, what, nullable)
    _string_keys(value, what)
    return _json_copy(value, what)


def _string_keys(value: dict, what: str) -> None:
    for key in value:
        if not isinstance(key, str):
            raise ValidationError(f"{what} keys must be strings, got {shown(key)}")


# How deep a free-form JSON value may nest. Python's JSON codecs recurse once per
# level against the interpreter's recursion limit (1000), counted from wherever they
# are called: a value a deep caller could not encode, or one a store holds but a
# fresh process could not decode on open, is refused here, where it enters.
MAX_JSON_DEPTH = 256
# Everything but brackets (strings' contents included) goes before the depth count.
_NOT_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[^\[\]{}"]+')


def _json_copy(value: Any, what: str) -> Any:
    # The round trip is the copy (and turns NaN into None, tuples into lists).
    try:
        text = _json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} must hold JSON values: {exc}") from None
    except RecursionError:  # deeper than this caller's stack allows
        raise ValidationError(f"{what} nests too deep to encode (at most {MAX_JSON_DEPTH} levels are kept)") from None
    if len(text) > 2 * MAX_JSON_DEPTH:  # shorter text cannot nest that deep
        _check_depth(text, what)
    return _json.loads(text, parse_constant=_null_constant)


def _check_depth(text: str, what: str) -> None:
    """Refuse JSON `text` nesting deeper than MAX_JSON_DEPTH. O(len(text))."""
    depth = deepest = 0
    for bracket in _NOT_BRACKETS.sub("", text):
        if bracket in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise ValidationError(f"{what} nests {deepest} levels deep; at most {MAX_JSON_DEPTH} are kept")


def as_json_value(value: Any, what: str) -> Any:
    """Any JSON value as Prefect's JSON type stores it (see as_json_dict): a dict's
    top-level keys must be strings; NaN becomes None, tuples lists; a copy. O(size)."""
    if value is None or value.__class__ in (str, int, bool):
        return value
    if isinstance(value, dict):
        return as_json_dict(value, what) if value else {}
    return _json_copy(value, what)


def as_pull_steps(value: Any, what: str) -> list | None:
    """A deployment's pull steps: None, or a list of dicts with string keys (Prefect's
    list[dict[str, Any]]), kept as a JSON round trip gives them back. O(size)."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ValidationError(f"{what} must be a list of dicts, got {type(value).__name__} {shown(value)}")
    for i, step in enumerate(value):
        if not isinstance(step, dict):
            raise ValidationError(f"{what}[{i}] must be a dict, got {type(step).__name__} {shown(step)}")
        _string_keys(step, f"{what}[{i}]")
    return _json_copy(list(value), what)


# Prefect's templating placeholder: {{ name }}, the name of word characters . - [ ] $.
_PLACEHOLDER = re.compile(r"{{\s*([\w\.\-\[\]$]+)\s*}}")


def check_base_job_template(template: dict, what: str) -> None:
    """Refuse a pool's base job template that Prefect's validate_base_job_template
    refuses: it must be {} or have both `job_configuration` and `variables`, every
    {{ placeholder }} of the configuration (blocks, variables and $ENV ones too)
    declared among the variables' properties. O(size of the template)."""
    if not template:
        return
    config, variables = template.get("job_configuration"), template.get("variables")
    if not (config and variables):
        raise ValidationError(f"{what} must contain both a `job_configuration` key and a `variables` key")
    declared = variables.get("properties", {}) if isinstance(variables, dict) else None
    if not isinstance(config, dict) or not isinstance(declared, dict):
        raise ValidationError(f"{what}: `job_configuration` and `variables` (and its `properties`) must be dicts")
    used = {name for part in config.values() for name in _PLACEHOLDER.findall(_json.dumps(part))}
    undeclared = used - declared.keys()
    if undeclared:
        raise ValidationError(
            f"{what}: the job configuration uses undeclared variable(s) {sorted(undeclared)}; each must be a "
            "property of the variables schema")


# What as_timedelta reads (bool aside, though it is an int).
DURATION_TYPES = (_dt.timedelta, int, float, _decimal.Decimal, str)


def as_timedelta(value: Any, what: str) -> _dt.timedelta:
    """A timedelta, a number of seconds or duration text, read as pydantic reads them
    (a fraction's microseconds rounded half away from zero, where timedelta() rounds
    half to even; text by timetext.parse_duration_text)."""
    if isinstance(value, _dt.timedelta):
        return value
    if isinstance(value, _decimal.Decimal):
        value = _decimal_number(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            if isinstance(value, int):
                return _dt.timedelta(seconds=value)
            fraction, whole = math.modf(abs(value))
            micros = int(whole) * 1_000_000 + round_half_up(fraction * 1e6)
            return _dt.timedelta(microseconds=-micros if value < 0 else micros)
        except (OverflowError, ValueError):  # NaN, infinity, past 999999999 days
            raise ValidationError(f"{what} must be a finite number of seconds a timedelta can hold, got "
                                  f"{shown(value)}") from None
    if isinstance(value, str):
        try:
            return parse_duration_text(value)
        except ValueError:
            raise ValidationError(f"{what} is not a duration: {shown(value)} (give seconds, a timedelta, or text as "
                                  "Prefect reads it: 'PT1H30M', '1 day, 01:00:00', '01:30:00')") from None
    raise ValidationError(f"{what} must be seconds or a timedelta, got {type(value).__name__} {shown(value)}")


def as_route_seconds(value: Any, what: str) -> _dt.timedelta:
    """A timedelta, or a number of seconds as Prefect's routes read a float body
    (history_interval_seconds, schedule's min_time): timedelta(seconds=...), which
    rounds half to even. Numeric text ("3600"), which their lax float reads, is
    refused, as numbers are checked strictly everywhere (README: Stricter input)."""
    if isinstance(value, _dt.timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value.__class__ is not int and not math.isfinite(value):  # (isfinite of a huge int overflows)
            raise ValidationError(f"{what} must be a finite number of seconds, got {shown(value)}")
        try:
            return _dt.timedelta(seconds=value)
        except OverflowError:
            raise ValidationError(f"{what} is too large: {shown(value)} seconds") from None
    raise ValidationError(f"{what} must be a timedelta or a number of seconds, got {type(value).__name__} {shown(value)}")


def _as_policy(cls: type, value: Any, what: str) -> Any:
    if isinstance(value, cls):
        _check_policy(value, what)
        return _pydantic_numbers(value.copy(), what)  # a set of its pause keys, a list of its retry delays
    if isinstance(value, Mapping):
        known = {f.name for f in attrs.fields(cls)}
        unknown = unknown_keys(value, known)
        if unknown:
            raise ValidationError(f"{what} has unknown key(s) {unknown}; known: {sorted(known)}")
        try:
            policy = cls(**value)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{what}: {exc}") from None
        _check_policy(policy, what)
        return _pydantic_numbers(policy.copy(), what)  # pause keys given as a list become a set
    raise ValidationError(f"{what} must be a {cls.__name__} or a dict, got {shown(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_whole(value: Any) -> bool:
    # Prefect's retry delays are integers; pydantic takes a float without a fraction.
    return _is_int(value) or (value.__class__ is float and value.is_integer())


def _pydantic_numbers(policy: Any, what: str) -> Any:
    """`policy` with whole-float retry delays made ints and `retry_delay_seconds` a
    float, as pydantic makes them (a store gives the default policy back with 0.0)."""
    seconds = policy.retry_delay_seconds
    if seconds.__class__ is not float:
        try:
            policy.retry_delay_seconds = float(seconds)
        except OverflowError:
            raise ValidationError(f"{what}.retry_delay_seconds is too large for a float, got "
                                  f"{shown(seconds)}") from None
    delay = policy.retry_delay
    if delay.__class__ is float:
        policy.retry_delay = int(delay)
    elif delay.__class__ is list and float in set(map(type, delay)):
        policy.retry_delay = [int(d) for d in delay]
    return policy


def _pause_keys(value: Any) -> bool:
    return isinstance(value, (set, frozenset, list, tuple)) and all(isinstance(k, str) for k in value)


# Field -> (classes that pass as they are, test for any other value, what it must be):
# Prefect's types for the policies' fields (models.md §8, §9), checked on create and
# update so orchestration can rely on them.
_NONE = type(None)
_POLICY_FIELDS: dict[type, tuple[tuple[str, tuple[type, ...], Callable[[Any], bool], str], ...]] = {
    FlowRunPolicy: (
        ("max_retries", (int,), _is_int, "an integer"),
        ("retry_delay_seconds", (int, float), _is_number, "a number of seconds"),
        ("retries", (int, _NONE), _is_int, "an integer or null"),
        ("retry_delay", (int, _NONE), _is_whole, "a whole number of seconds or null"),
        ("pause_keys", (_NONE,), _pause_keys, "a set of strings or null"),
        ("resuming", (bool, _NONE), lambda v: False, "true, false or null"),
    ),
    TaskRunPolicy: (
        ("max_retries", (int,), _is_int, "an integer"),
        ("retry_delay_seconds", (int, float), _is_number, "a number of seconds"),
        ("retries", (int, _NONE), _is_int, "an integer or null"),
        ("retry_delay", (int, _NONE), lambda v: _is_whole(v) or (isinstance(v, list) and all(map(_is_whole, v))),
         "a whole number of seconds, a list of them, or null"),
        ("retry_jitter_factor", (int, float, _NONE), _is_number, "a number or null"),
    ),
}


def _check_policy(policy: Any, what: str) -> None:
    fields = _POLICY_FIELDS[FlowRunPolicy if isinstance(policy, FlowRunPolicy) else TaskRunPolicy]
    for name, as_is, ok, kind in fields:
        value = getattr(policy, name)
        if value.__class__ not in as_is and not ok(value):
            raise ValidationError(f"{what}.{name} must be {kind}, got {type(value).__name__} {shown(value)}")


_INPUT_CLASSES = {TaskRunResult, Parameter, Constant}


def _input_kind(entry: Mapping) -> str | None:
    """The kind of an input given without `input_type`, as Prefect's union of input
    models tells it: an exact match first (a UUID id, a string name, a string type, in
    that order), else an id that reads as a UUID. None when nothing fits."""
    ident, name, type_ = entry.get("id"), entry.get("name"), entry.get("type")
    if isinstance(ident, uuid.UUID):
        return "task_run"
    if isinstance(name, str):
        return "parameter"
    if isinstance(type_, str):
        return "constant"
    if isinstance(ident, str):
        return None if uuid_from_text(ident) is None else "task_run"
    return None


def as_task_inputs(value: Any, what: str = "task_inputs") -> dict[str, list]:
    if value.__class__ is dict and not value:
        return {}  # most task runs have no inputs
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be a dict of lists, got {shown(value)}")
    out: dict[str, list] = {}
    for key, entries in value.items():
        if not isinstance(key, str) or not isinstance(entries, (list, tuple)):
            raise ValidationError(f"{what}[{shown(key)}] must be a list of inputs")
        if set(map(type, entries)) <= _INPUT_CLASSES:  # already input objects (or none)
            out[key] = list(entries)
            continue
        items = []
        for i, entry in enumerate(entries):
            if isinstance(entry, (TaskRunResult, Parameter, Constant)):
                items.append(entry)
                continue
            if not isinstance(entry, Mapping):
                raise ValidationError(f"{what}[{shown(key)}][{i}] must be an input object, got {shown(entry)}")
            kind = entry["input_type"] if "input_type" in entry else _input_kind(entry)
            try:
                if kind == "task_run":
                    items.append(TaskRunResult(id=as_uuid(entry["id"], f"{what}[{key!r}][{i}].id")))
                elif kind == "parameter":
                    items.append(Parameter(name=as_str(entry["name"], "name", False)))
                elif kind == "constant":
                    items.append(Constant(type=as_str(entry["type"], "type", False)))
                else:
                    raise ValidationError(
                        f"{what}[{shown(key)}][{i}].input_type must be task_run, parameter or constant, got "
                        f"{shown(kind)}"
                        if "input_type" in entry else
                        f"{what}[{shown(key)}][{i}] must be a task run result ({{'id': uuid}}), a parameter "
                        f"({{'name': str}}) or a constant ({{'type': str}}), got {shown(dict(entry))}"
                    )
            except KeyError as exc:
                raise ValidationError(f"{what}[{shown(key)}][{i}] is missing {shown(exc.args[0])}") from None
        out[key] = items
    return out


_UUIDS = {
    "id", "flow_id", "deployment_id", "work_queue_id", "infrastructure_document_id", "storage_document_id",
    "parent_task_run_id", "flow_run_id", "work_pool_id", "concurrency_limit_id", "last_status_event_id",
}
_TIMES = {
    "expected_start_time", "next_scheduled_start_time", "start_time", "end_time",
    "cache_expiration", "last_polled", "last_transitioned_status_at",
}
_INTS = {"run_count", "flow_run_run_count"}
_BOOLS = {"auto_scheduled", "paused", "is_paused", "enforce_parameter_schema", "active"}
# Every dict field is a JSON column in Prefect's database (pydantic-typed or not), so
# each is kept as a JSON round trip gives it back: memory then holds what a store reopens.
_DICTS = {"parameters", "context", "base_job_template", "job_variables"}
_NULLABLE_DICTS = {"job_variables", "created_by", "updated_by", "filter", "parameter_openapi_schema"}


# A global (v2) concurrency limit's counters and rates: none is NULL or negative.
_LIMIT_V2_COUNTS = {"limit", "active_slots", "denied_slots"}
_LIMIT_V2_RATES = {"slot_decay_per_second", "avg_slot_occupancy_seconds"}


_MAX_FLOAT = sys.float_info.max


def is_finite_number(value: Any) -> bool:
    """An int or float a float holds finitely: not a bool, NaN, ±infinity, nor an int
    past float's range (which float() and division would overflow on)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and abs(value) <= _MAX_FLOAT


def _as_non_negative_number(value: Any, what: str) -> float:
    # NaN and infinity fail (as Prefect's ge=0 refuses NaN; a JSON snapshot cannot
    # hold infinity), and so does an int past float's range.
    if not is_finite_number(value) or value < 0:
        raise ValidationError(f"{what} must be a finite non-negative number, got {shown(value)}")
    return float(value) + 0.0  # -0.0 becomes 0.0, as SQLite gives it back


def _coercer(kind: str, name: str) -> Callable[[Any, str], Any] | None:
    """How `coerce_fields` checks field `name` of `kind` (None: taken as given)."""
    if kind == "concurrency_limit_v2":
        if name in _LIMIT_V2_COUNTS:
            return as_count
        if name in _LIMIT_V2_RATES:
            return _as_non_negative_number
        if name == "name":
            return as_name
    if name in _UUIDS:
        return as_uuid if name == "id" else as_optional_uuid
    if name in _TIMES:
        return as_datetime
    if name in _INTS:
        return as_int
    if name in _BOOLS:
        return as_bool
    if name == "tags":
        return as_str_list
    if name in _DICTS or name in _NULLABLE_DICTS:
        nullable = name in _NULLABLE_DICTS
        return lambda value, what: as_json_dict(value, what, nullable=nullable)
    if name == "pull_steps":
        return as_pull_steps
    if name == "total_run_time":
        return as_timedelta
    if name == "empirical_policy":
        cls = FlowRunPolicy if kind == "flow_run" else TaskRunPolicy
        return lambda value, what: _as_policy(cls, value, what)
    if name == "task_inputs":
        return as_task_inputs
    if name == "description" and kind == "work_queue":  # NOT NULL there (default "")
        return as_text
    if name in ("name", "description"):
        return as_str
    if name == "status" and kind == "work_pool":  # (a deployment's and queue's are not set by callers)
        return as_work_status
    if name == "concurrency_limit":  # a pool's or queue's (a v2 limit's `limit` is checked above)
        return _as_optional_limit
    if name == "priority":  # a work queue's
        return as_priority
    if name == "concurrency_options":  # a deployment's
        return _as_concurrency_options
    return _TEXT_FIELDS.get((kind, name))


# The other text columns (versions, queue names, idempotency keys, paths, ...): a
# string, or None where the column is nullable, read off the records' annotations.
# (An integer idempotency key, say, would be stored, then come back from a backend
# as text and no longer match.)
_TEXT_FIELDS: dict[tuple[str, str], Callable[[Any, str], Any]] = {
    (kind, f.name): as_str if f.type == "str | None" else as_text
    for kind, cls in (("flow", Flow), ("flow_run", FlowRun), ("task_run", TaskRun), ("deployment", Deployment),
                      ("work_pool", WorkPool), ("work_queue", WorkQueue))
    for f in attrs.fields(cls) if f.type in ("str", "str | None")
}


def as_work_status(value: Any, what: str) -> str:
    """A pool's or queue's status: one of WORK_STATUSES, or a Prefect status enum of one."""
    name = getattr(value, "value", value)
    if name not in WORK_STATUSES:
        raise ValidationError(f"{what} must be one of {list(WORK_STATUSES)}, got {shown(value)}")
    return name



def _as_concurrency_options(value: Any, what: str) -> ConcurrencyOptions | None:
    if value is None or isinstance(value, ConcurrencyOptions):
        return value
    if isinstance(value, Mapping):
        unknown = unknown_keys(value, ("collision_strategy",))
        if unknown:
            raise ValidationError(f"concurrency_options has unknown key(s) {unknown}")
        try:
            return ConcurrencyOptions(**value)
        except ValueError:
            raise ValidationError(
                f"concurrency_options.collision_strategy must be ENQUEUE or CANCEL_NEW, got "
                f"{shown(value.get('collision_strategy'))}"
            ) from None
    raise ValidationError(f"concurrency_options must be a dict or ConcurrencyOptions, got {shown(value)}")


def _as_optional_limit(value: Any, what: str) -> int | None:
    return None if value is None else as_count(as_int(value, what), what)


def as_priority(value: Any, what: str) -> int:
    """A work queue's priority: an integer from 1."""
    priority = as_int(value, what)
    if priority < 1:
        raise ValidationError(f"{what} must be > 0, got {priority}")
    return priority


# kind -> name -> (coercer or None, classes whose values need no coercion, the name
# errors use). Values of an immutable, already-right class pass as they are:
# creating a run checks each of its fields, once per run.
_FIELD_PLANS: dict[str, dict[str, tuple[Any, tuple, str]]] = {}
_AS_IS: dict[Any, tuple] = {
    as_uuid: (uuid.UUID,),
    as_optional_uuid: (uuid.UUID, type(None)),
    as_bool: (bool,),
    # (strings are not taken as they are: as_str checks them for lone surrogates)
}


def _field_plan(kind: str, name: str) -> tuple[Any, tuple, str]:
    coerce = _coercer(kind, name)
    plan = _FIELD_PLANS.setdefault(kind, {})[name] = (coerce, _AS_IS.get(coerce, ()), f"{kind}.{name}")
    return plan


def coerce_fields(kind: str, fields: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """Check that every key is allowed for `kind` and coerce each value to its type.
    O(fields)."""
    if not fields.keys() <= allowed:
        unknown = unknown_keys(fields, allowed)
        raise ValidationError(
            f"unknown field(s) for {kind}: {', '.join(k if k.__class__ is str else shown(k) for k in unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    out: dict[str, Any] = {}
    plans = _FIELD_PLANS.get(kind, _NO_PLANS)
    for name, value in fields.items():
        plan = plans.get(name) or _field_plan(kind, name)
        coerce = plan[0]
        if coerce is None or value.__class__ in plan[1]:
            out[name] = value
        else:
            out[name] = coerce(value, plan[2])
    return out


_NO_PLANS: dict = {}


def as_state(value: Any, what: str = "state") -> State:
    """A State from a State, the JSON shape a client posts, or a pydantic state
    (`model_dump(exclude_unset=True)`, so Prefect's states work too). Only the shape is
    checked here: the engine checks every field of a state it is given when the state
    is submitted (orchestration.pipeline._submitted, with checked_details)."""
    if isinstance(value, State):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, Mapping):
        # A pydantic state (Prefect's own): its explicitly set fields, as for the
        # state inside a run passed to create_* (the engine stamps what is unset).
        value = dump(exclude_unset=True)
    if isinstance(value, Mapping):
        allowed = {"type", "name", "timestamp", "message", "data", "state_details", "id"}
        unknown = unknown_keys(value, allowed)
        if unknown:
            raise ValidationError(f"{what} has unknown key(s) {unknown}")
        if "type" not in value:
            raise ValidationError(f"{what} needs a 'type'")
        data = dict(value)
        data["type"] = as_state_type(data["type"], f"{what}.type")
        if data.get("state_details") is not None:
            data["state_details"] = as_state_details(data["state_details"], f"{what}.state_details")
        return State(**data)
    raise ValidationError(f"{what} must be a State or a dict, got {type(value).__name__} {shown(value)}")


# Submitted state details --------------------------------------------------------------

def _not_a_flag(value: Any, what: str) -> None:
    raise ValidationError(f"{what} must be true or false, got {type(value).__name__} {shown(value)}")


def _keyset(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError(f"{what} must be a dict of strings, got {shown(value)}")
    return dict(value)


_UUID_CHECK = "if {v} is not None and {v}.__class__ is not UUID: {v} = as_uuid({v}, what + '.{field}')"
# (an offset other than UTC is converted too: stores hold UTC, as Prefect's do)
_TIME_CHECK = ("if {v} is not None and ({v}.__class__ is not DATETIME or {v}.tzinfo is not UTC): "
               "{v} = as_datetime({v}, what + '.{field}')")
# A pause timeout may also be a timedelta: Paused(timeout_seconds=…) without `now`,
# counted from the engine's now when submitted (orchestration.pipeline._submitted).
_PAUSE_TIMEOUT_CHECK = ("if {v} is not None and ({v}.__class__ is not DATETIME or {v}.tzinfo is not UTC) "
                        "and {v}.__class__ is not TIMEDELTA: {v} = as_datetime({v}, what + '.{field}')")
_STR_CHECK = ("if {v} is not None and ({v}.__class__ is not str or not {v}.isascii()): "
              "{v} = as_str({v}, what + '.{field}')")
_OPTIONAL_FLAG_CHECK = "if {v} is not None and {v}.__class__ is not bool: not_a_flag({v}, what + '.{field}')"
_FLAG_CHECK = "if {v}.__class__ is not bool: not_a_flag({v}, what + '.{field}')"

# One check per StateDetails field (Prefect's types: ids are UUIDs, times datetimes,
# keys strings, flags booleans, two of them not optional).
_DETAIL_CHECKS = {
    **dict.fromkeys(("flow_run_id", "task_run_id", "child_flow_run_id", "transition_id", "task_parameters_id"),
                    _UUID_CHECK),
    **dict.fromkeys(("scheduled_time", "cache_expiration"), _TIME_CHECK),
    "pause_timeout": _PAUSE_TIMEOUT_CHECK,
    **dict.fromkeys(("cache_key", "pause_key"), _STR_CHECK),
    **dict.fromkeys(("deferred", "refresh_cache", "retriable"), _OPTIONAL_FLAG_CHECK),
    **dict.fromkeys(("untrackable_result", "pause_reschedule"), _FLAG_CHECK),
    "run_input_keyset": "if {v} is not None: {v} = keyset({v}, what + '.{field}')",
}
assert _DETAIL_CHECKS.keys() == STATE_DETAILS_FIELDS, "a StateDetails field has no check"

checked_details: Callable[[StateDetails, str], StateDetails] = compile_checked_copier(
    StateDetails, _DETAIL_CHECKS,
    {"UUID": uuid.UUID, "DATETIME": _dt.datetime, "UTC": _dt.timezone.utc, "TIMEDELTA": _dt.timedelta, "as_uuid": as_uuid, "as_datetime": as_datetime,
     "as_str": as_str, "not_a_flag": _not_a_flag, "keyset": _keyset},
)
checked_details.__doc__ = """A copy of `details` with every field checked (`what` names them in errors):
ids given as text are parsed, times without an offset are UTC, and a value of the
wrong kind raises ValidationError. The mutable `run_input_keyset` is copied. O(fields)."""
