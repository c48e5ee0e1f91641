"""Recording a rule benchmark's stream (engine/rulebench.py, `--record FILE`): each
operation as one JSON line that the replay reads back as the same operation, and the
file written whole or not at all.

Operations given from Python may hold the engine's own objects and types (states,
run policies, datetimes, UUIDs, ...): `encoded_op` writes them in the JSON forms the
replay's readers take back as they were, and refuses anything else, naming where it
is, before the benchmark does any work. `write_stream` writes into a new file beside
the target and renames it over it once complete, so a failure leaves what was there.
"""
from __future__ import annotations

import contextlib
import enum
import json
import os
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import attrs

from .errors import ValidationError, shown
from .records import ConcurrencyOptions, Constant, FlowRunPolicy, Parameter, TaskRunPolicy, TaskRunResult
from .serialization import CONVERTER
from .states import State, StateDetails

__all__ = ["check_writable", "encoded_op", "write_stream"]


# writing the file ----------------------------------------------------------------------------------------------
def check_writable(path: str) -> None:
    """Refuse, before a long run rather than after it, a path the stream could not
    be written to. Nothing is created there: a file's stream is written to a new
    file in the same folder and renamed over `path` (see write_stream), so what is
    checked is that the folder takes a new file and that an existing file may be
    replaced; a device or pipe (/dev/null) is written to as it is."""
    target = os.path.realpath(path)
    problem = None
    if os.path.isdir(target):
        problem = "Is a directory"
    elif os.path.exists(target) and not os.access(target, os.W_OK):
        problem = "Permission denied"
    elif _is_a_file_or_none(target):
        try:
            descriptor, temp = _new_file_beside(target)
            os.close(descriptor)
            os.unlink(temp)
        except OSError as exc:
            problem = exc.strerror or str(exc)
    if problem is not None:
        raise ValidationError(f"cannot write the stream to {path}: {problem}")


def _is_a_file_or_none(target: str) -> bool:
    # What a stream may be renamed over: not a device or a pipe, which would be
    # replaced by a file (/dev/null, for root) rather than written to.
    return os.path.isfile(target) or not os.path.exists(target)


def _new_file_beside(target: str) -> tuple[int, str]:
    # (descriptor, path) of a new, hidden file in target's folder; created with
    # O_EXCL and mode 0o666, so the umask gives it the permissions open() would.
    folder, name = os.path.split(target)
    temp = os.path.join(folder, f".{name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp


def write_stream(path: str, lines: Iterable[str]) -> None:
    """Write the recorded stream, one operation a line, whole or not at all (see
    _replace_whole); a device or pipe is written to as it is, there being nothing
    there to keep. An OSError is the ValidationError a path refused up front gets."""
    target = os.path.realpath(path)  # a symlink keeps pointing at the stream
    try:
        if _is_a_file_or_none(target):
            _replace_whole(target, lines)
        else:
            _write_lines(target, lines)
    except OSError as exc:
        raise ValidationError(f"cannot write the stream to {path}: {exc.strerror or exc}") from None


def _replace_whole(target: str, lines: Iterable[str]) -> None:
    """Write `lines` into a new file beside `target`, renamed over it once complete:
    a failure midway (a full disk, a line that raises) leaves whatever was at
    `target` before, and no stray file."""
    descriptor, temp = _new_file_beside(target)
    try:
        _write_lines(descriptor, lines)
        if os.path.exists(target):  # replacing a file: keep its permissions
            os.chmod(temp, os.stat(target).st_mode & 0o7777)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _write_lines(file: int | str, lines: Iterable[str]) -> None:
    with open(file, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")


# recording a stream given from Python -------------------------------------------------------------------------
# The engine's own classes a Python stream may hold, recorded field by field: the
# replay reads each back from that dict (as_state, the run fields' checks).
_RECORDED_CLASSES = (State, StateDetails, FlowRunPolicy, TaskRunPolicy, TaskRunResult, Parameter, Constant,
                     ConcurrencyOptions)
# An operation's names for runs and deployments: the replay looks them up in dicts.
_LABELS = ("id", "run", "deployment", "flow_run")
_RECORDABLE = ("JSON values and the engine's own types (states, state details, run policies, task inputs, "
               "concurrency options, datetimes, UUIDs, timedeltas, enums, sets)")


class _Unrecordable(Exception):
    """A value no line of a recorded stream can hold so that the replay reads it back
    as it was: where it is in its operation, and why."""

    def __init__(self, path: str, value: Any, why: str = "") -> None:
        kind = type(value)
        name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        super().__init__(f"{path or 'the operation'} is a {name} ({shown}): "
                         f"{why or 'a recorded stream holds ' + _RECORDABLE}")


def _child(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _json_key(key: Any, path: str) -> str:
    # JSON's own rule for the keys it takes (1 -> "1", None -> "null"), which is also
    # what the engine keeps of a nested free-form dict (a JSON copy).
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (int, float)):
        return json.dumps(key)
    raise _Unrecordable(f"{path}[{shown(key)}]", key, "a key of a recorded dict must be a string or a number")


def _json_form(value: Any, path: str) -> Any:
    """`value` as the JSON the replay reads back as it: JSON values as they are
    (tuples as lists, as the engine keeps them), the engine's scalar types as its
    converter writes them (serialization.CONVERTER: UUIDs and datetimes as text, in
    UTC, timedeltas as seconds, enums by value, sets as sorted lists) and its own
    records field by field. Anything else raises _Unrecordable naming `path`, rather
    than being written as something the replay would read otherwise. O(size)."""
    cls = value.__class__
    if value is None or cls is str or cls is int or cls is float or cls is bool:
        return value
    if isinstance(value, enum.Enum):  # before str and int: a str or int enum is written by value
        return _json_form(value.value, path)
    if isinstance(value, (str, int, float)):
        return value
    if isinstance(value, Mapping):
        return {_json_key(k, path): _json_form(v, _child(path, k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_form(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [_json_form(v, f"{path}[]") for v in value]
        try:
            return sorted(items)
        except TypeError:
            raise _Unrecordable(path, value, "a recorded set is a sorted list, and these values do not sort") from None
    if isinstance(value, datetime):
        return _datetime_text(value, path)
    if isinstance(value, timedelta):
        if path.rpartition(".")[2] == "pause_timeout":
            # Read back as a deadline (a datetime), so seconds would not be this value.
            raise _Unrecordable(path, value, "a pause timeout relative to when the state is proposed has no form "
                                "the replay reads back: give the deadline as a datetime")
        return CONVERTER.unstructure(value)
    if isinstance(value, uuid.UUID):
        return CONVERTER.unstructure(value)
    if isinstance(value, _RECORDED_CLASSES):
        return _record_form(value, path)
    raise _Unrecordable(path, value)


def _datetime_text(value: datetime, path: str) -> str:
    # The engine reads a datetime without an offset as UTC (validation.as_datetime);
    # the converter refuses one, so it is given that offset first.
    try:
        return CONVERTER.unstructure(value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc))
    except (OverflowError, ValueError) as exc:
        raise _Unrecordable(path, value, f"not a time in UTC ({exc})") from None


def _record_form(value: Any, path: str) -> dict:
    """One of the engine's records as the dict its reader takes (as_state, the
    policies' and task inputs' checks): each field by its argument name, those left
    at a default of None omitted, and a state's details only where they differ from
    their defaults, as the converter stores them (a line per proposal stays short)."""
    out = {}
    sparse = value.__class__ is StateDetails
    for field in attrs.fields(value.__class__):
        if not field.init:
            continue
        item = getattr(value, field.name)
        if (item is None and field.default is None) or (sparse and item == field.default):
            continue
        out[field.alias or field.name] = _json_form(item, _child(path, field.name))
    return out


def encoded_op(op: dict, where: str) -> str:
    """The JSON line recording `op`, which the replay reads back as the same
    operation (see _json_form); what no line can hold is a ValidationError naming
    the operation (`where` and its op), the value's path in it and its type."""
    op = dict(op)
    state = op.get("state")
    if state is not None and not isinstance(state, Mapping) and callable(getattr(state, "model_dump", None)):
        op["state"] = state.model_dump(exclude_unset=True)  # a pydantic state, as as_state reads it
    try:
        line = _json_form(op, "")
        for key in _LABELS:
            if isinstance(line.get(key), (list, dict)):
                raise _Unrecordable(key, op[key], "a run's or deployment's label is recorded only as a string "
                                    "or a number (the replay looks it up)")
    except _Unrecordable as exc:
        raise ValidationError(f"cannot record {where} ({op.get('op')}): {exc}") from None
    except RecursionError:
        raise ValidationError(f"cannot record {where} ({op.get('op')}): it holds itself, or is nested "
                              "too deeply") from None
    return json.dumps(line, sort_keys=True)
