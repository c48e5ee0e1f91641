"""Flow-run inputs (Prefect 3.1.0 models/flow_run_input.py and the flow-run input
routes), and the part of the resume route that uses them: a pause that waits for
input names two keys in its `run_input_keyset`; "schema" is an input the paused run
wrote (a JSON schema), "response" is where the resume route stores the answer once
the run input has been hydrated, validated against that schema, and the resume
accepted.

Functions take the Engine and run inside the caller's transaction; the Engine's
methods of the same names are the public API.
"""
from __future__ import annotations

import json
import re
import uuid
from operator import attrgetter
from typing import Any, Iterable

from .errors import UniquenessError, ValidationError, shown
from .filters import like_matcher
from .queries import check_window
from .records import FlowRunInput
from .schema_tools import HydrationError, InvalidSchemaError, hydrate, validation_failure
from .validation import as_str, as_uuid

__all__ = [
    "create_flow_run_input", "read_flow_run_input", "filter_flow_run_input", "delete_flow_run_input",
    "run_input_refusal", "store_run_input_answer",
]

# Prefect's key rule: lowercase letters, digits and dashes (an empty key passes).
_KEY = re.compile(r"[a-z0-9-]*")


def _key(value: Any, what: str = "key") -> str:
    key = as_str(value, what, nullable=False)
    if _KEY.fullmatch(key) is None:
        raise ValidationError(f"{what} must only contain lowercase letters, numbers, and dashes, got {shown(key)}")
    return key


def _text(value: Any) -> str:
    # The route takes the body's bytes and decodes them.
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError as exc:
            raise ValidationError(f"value must be UTF-8 text, got undecodable bytes ({exc.reason})") from None
    return as_str(value, "value", nullable=False)


def create_flow_run_input(engine: Any, flow_run_id: Any, key: Any, value: Any,
                          sender: Any = None) -> FlowRunInput:
    """Store `value` (text, or UTF-8 bytes) under `key` for the flow run.
    ObjectNotFoundError for an unknown run, UniquenessError if the run already has
    an input with this key. O(1)."""
    run_id = as_uuid(flow_run_id, "flow_run_id")
    key = _key(key)
    value = _text(value)
    sender = as_str(sender, "sender")
    engine._require("flow_run", run_id, "Flow run")
    if engine._unique("flow_run_input", "run_key", (run_id, key)) is not None:
        raise UniquenessError(f"flow run {run_id} already has an input with key {shown(key)}")
    rec = FlowRunInput(flow_run_id=run_id, key=key, value=value, sender=sender)
    engine._stamp(rec, engine._clock.now())
    return engine._insert("flow_run_input", rec)


def read_flow_run_input(engine: Any, flow_run_id: Any, key: Any) -> FlowRunInput | None:
    """The flow run's input under `key`, or None. O(1)."""
    return engine._unique("flow_run_input", "run_key", (as_uuid(flow_run_id, "flow_run_id"), as_str(key, "key", False)))


def filter_flow_run_input(engine: Any, flow_run_id: Any, prefix: Any, limit: Any = 1,
                          exclude_keys: Iterable[str] = ()) -> list[FlowRunInput]:
    """The flow run's inputs whose key starts with `prefix`, less `exclude_keys`,
    oldest first, at most `limit` (None: all). As Prefect's SQL `key LIKE prefix%`
    on SQLite, the prefix is matched case-insensitively and an unescaped `%` or `_`
    in it is a wildcard. O(k log k) for the run's k inputs."""
    run_id = as_uuid(flow_run_id, "flow_run_id")
    matches = like_matcher(as_str(prefix, "prefix", False), prefix=True)
    _, limit = check_window(0, limit)
    if isinstance(exclude_keys, str) or not isinstance(exclude_keys, Iterable):
        raise ValidationError(f"exclude_keys must be a list of strings, got {shown(exclude_keys)}")
    excluded = {as_str(k, "exclude_keys[]", False) for k in exclude_keys}
    bucket = engine._store.tables["flow_run_input"].by_name["flow_run_id"].get(run_id)
    found = [r for r in bucket.values() if r.key not in excluded and matches(r.key)] if bucket else []
    found.sort(key=attrgetter("created"))  # stable: equal stamps stay in the order written
    return found if limit is None else found[:limit]


def delete_flow_run_input(engine: Any, flow_run_id: Any, key: Any) -> bool:
    """Delete the flow run's input under `key`; True iff there was one. O(1)."""
    rec = read_flow_run_input(engine, flow_run_id, key)
    if rec is None:
        return False
    engine._store.delete("flow_run_input", rec)
    return True


# The resume route ------------------------------------------------------------------------------


def run_input_refusal(engine: Any, run_id: uuid.UUID, keyset: dict, run_input: Any) -> tuple[str | None, str | None]:
    """For a pause that waits for input: (the reason the resume is refused, or None;
    the hydrated run input as the compact JSON to store, None when it is empty). The
    steps and reasons are the route's: hydration ("Error hydrating run input: ..."),
    the schema input ("Run input schema not found.", "... is not valid JSON."),
    validation ("Reason: Validation failed ..."). A value JSON cannot hold raises
    ValidationError here, before the state changes. O(size of the input and schema)."""
    try:
        run_input = hydrate(run_input or {}) or {}
    except HydrationError as exc:
        return f"Error hydrating run input: {exc}", None
    schema_input = engine._unique("flow_run_input", "run_key", (run_id, keyset.get("schema")))
    if schema_input is None:
        return "Run input schema not found.", None
    try:
        schema = json.loads(schema_input.value, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # (nesting no decoder reaches is no schema either)
        return "Run input schema is not valid JSON.", None
    try:
        failure = validation_failure(run_input, schema)
    except InvalidSchemaError as exc:
        return str(exc), None
    if failure is not None:
        return f"Reason: {failure}", None
    if not run_input:
        return None, None
    if "response" not in keyset:
        return "Run input keyset has no 'response' key.", None
    return None, _dumps(run_input)


def store_run_input_answer(engine: Any, run_id: uuid.UUID, keyset: dict, answer: str) -> None:
    """After an accepted resume: the answer (run_input_refusal's JSON) under the
    keyset's "response" key. O(size of the answer)."""
    create_flow_run_input(engine, run_id, keyset["response"], answer)


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"run_input must be JSON-serialisable: {exc}") from None


def _no_constant(name: str) -> Any:
    # orjson, which Prefect parses the schema with, has no NaN or Infinity.
    raise ValueError(f"{name} is not JSON")
