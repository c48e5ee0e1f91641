"""engine/serialization.py: every record kind to JSON-able dicts and flat rows and back."""
from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import uuid

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_backends_support import make_clock, populate_all_kinds  # noqa: E402

from engine import Engine  # noqa: E402
from engine.records import FlowRunPolicy, TaskRunPolicy  # noqa: E402
from engine.serialization import (  # noqa: E402
    CONVERTER,
    RECORD_CLASSES,
    codec,
    format_datetime,
    parse_datetime,
    parse_uuid,
    stored_fields,
    structure_record,
    unstructure_record,
)
from engine.states import StateDetails  # noqa: E402
from engine.tables import KINDS  # noqa: E402

UTC = _dt.timezone.utc


@pytest.fixture(scope="module")
def engine() -> Engine:
    e = Engine(clock=make_clock())
    populate_all_kinds(e)
    return e


def _all_records(engine):
    for kind in KINDS:
        rows = list(engine._store.tables[kind].rows.values())
        assert rows, f"populate_all_kinds made no {kind}"
        for rec in rows:
            yield kind, rec


def test_every_kind_has_a_class_and_no_in_memory_field_is_stored():
    assert set(RECORD_CLASSES) == set(KINDS)
    for kind in ("flow_run", "task_run"):
        assert "state" not in [f.name for f in stored_fields(kind)]
        assert "state_id" in [f.name for f in stored_fields(kind)]


def test_dicts_round_trip_every_kind(engine):
    for kind, rec in _all_records(engine):
        data = unstructure_record(kind, rec)
        text = json.dumps(data)  # JSON-able, nothing else
        back = structure_record(kind, json.loads(text))
        assert type(back) is type(rec)
        assert unstructure_record(kind, back) == data, kind
        for f in stored_fields(kind):
            assert getattr(back, f.name) == getattr(rec, f.name), (kind, f.name)


@pytest.mark.parametrize("as_text", [True, False])
def test_rows_round_trip_every_kind(engine, as_text):
    for kind, rec in _all_records(engine):
        c = codec(kind, nested_as_text=as_text)
        row = c.encode(rec)
        assert len(row) == len(c.columns)
        if as_text:  # what SQLite can hold: scalars only
            assert all(v is None or isinstance(v, (str, int, float)) for v in row), (kind, row)
        else:
            row = json.loads(json.dumps(row))  # what a JSON snapshot holds
        back = c.decode(row)
        for f in stored_fields(kind):
            assert getattr(back, f.name) == getattr(rec, f.name), (kind, f.name)
        [again] = c.decode_many([row])
        assert c.encode(again) == c.encode(back)


def test_scalar_conventions(engine):
    run = engine._store.tables["flow_run"].rows
    rec = next(iter(run.values()))
    data = unstructure_record("flow_run", rec)
    assert data["id"] == str(rec.id)
    assert data["created"] == rec.created.isoformat() and data["created"].endswith("+00:00")
    assert data["total_run_time"] == rec.total_run_time.total_seconds()
    assert data["state_type"] == "SCHEDULED"
    assert data["empirical_policy"]["pause_keys"] == ["k1", "k2"]  # sets as sorted lists


def test_state_details_keep_only_what_differs_from_defaults():
    assert CONVERTER.unstructure(StateDetails()) == {}
    rid = uuid.uuid4()
    details = StateDetails(flow_run_id=rid, deferred=None, pause_reschedule=True)
    assert CONVERTER.unstructure(details) == {"flow_run_id": str(rid), "deferred": None, "pause_reschedule": True}
    assert CONVERTER.structure(CONVERTER.unstructure(details), StateDetails) == details
    # Unknown keys (a newer writer) are ignored, as Prefect ignores them.
    assert CONVERTER.structure({"flow_run_id": str(rid), "future_field": 1}, StateDetails) == StateDetails(flow_run_id=rid)


def test_datetimes_are_stored_in_utc():
    plus2 = _dt.timezone(_dt.timedelta(hours=2))
    local = _dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=plus2)
    text = format_datetime(local)
    assert text == "2024-05-01T10:00:00.123456+00:00"
    back = parse_datetime(text)
    assert back == local and back.tzinfo is UTC
    assert parse_datetime("2024-05-01T12:00:00+02:00").tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        format_datetime(_dt.datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="without a timezone"):
        parse_datetime("2024-01-01T00:00:00")


def test_uuid_parsing_matches_the_stdlib_and_rejects_garbage():
    for _ in range(100):
        u = uuid.uuid4()
        parsed = parse_uuid(str(u))
        assert parsed == u and hash(parsed) == hash(u) and str(parsed) == str(u)
        assert parsed.version == 4
    for bad in ("", "1234", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", str(uuid.uuid4()) + "0"):
        with pytest.raises(ValueError):
            parse_uuid(bad)


def test_unknown_task_input_type_is_an_error():
    c = codec("task_run")
    e = Engine(clock=make_clock())
    records = populate_all_kinds(e)
    row = list(c.encode(records["task_run"]))
    row[c.columns.index("task_inputs")] = json.dumps({"x": [{"input_type": "mystery"}]})
    with pytest.raises(ValueError, match="unknown task input type 'mystery'"):
        c.decode(row)


def test_values_json_cannot_hold_are_refused():
    e = Engine(clock=make_clock())
    records = populate_all_kinds(e)
    run = records["flow_run"]
    c = codec("flow_run")
    run.parameters["bad"] = {1, 2}
    with pytest.raises(TypeError):
        c.encode(run)
    run.parameters["bad"] = float("inf")
    with pytest.raises(ValueError):
        c.encode(run)


_aware = st.datetimes(
    min_value=_dt.datetime(1970, 1, 2), max_value=_dt.datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, _dt.timezone(_dt.timedelta(hours=-7)), _dt.timezone(_dt.timedelta(hours=5, minutes=30))]),
)
_opt = lambda s: st.none() | s  # noqa: E731

state_details = st.builds(
    StateDetails,
    flow_run_id=_opt(st.uuids()), task_run_id=_opt(st.uuids()), child_flow_run_id=_opt(st.uuids()),
    scheduled_time=_opt(_aware), cache_key=_opt(st.text()), cache_expiration=_opt(_aware),
    deferred=_opt(st.booleans()), untrackable_result=st.booleans(), pause_timeout=_opt(_aware),
    pause_reschedule=st.booleans(), pause_key=_opt(st.text()),
    run_input_keyset=_opt(st.dictionaries(st.text(), st.text(), max_size=3)),
    refresh_cache=_opt(st.booleans()), retriable=_opt(st.booleans()), transition_id=_opt(st.uuids()),
    task_parameters_id=_opt(st.uuids()),
)


@settings(max_examples=150, deadline=None)
@given(state_details)
def test_state_details_round_trip(details):
    text = json.dumps(CONVERTER.unstructure(details))
    back = CONVERTER.structure(json.loads(text), StateDetails)
    assert back == details
    for name in ("scheduled_time", "cache_expiration", "pause_timeout"):
        value = getattr(back, name)
        assert value is None or value.tzinfo is UTC


policies = st.one_of(
    st.builds(FlowRunPolicy, max_retries=st.integers(0, 5), retry_delay_seconds=st.floats(0, 100),
              retries=_opt(st.integers(0, 9)), retry_delay=_opt(st.integers(0, 60)),
              pause_keys=_opt(st.sets(st.text(max_size=5), max_size=3)), resuming=_opt(st.booleans())),
    st.builds(TaskRunPolicy, max_retries=st.integers(0, 5), retry_delay_seconds=st.floats(0, 100),
              retries=_opt(st.integers(0, 9)),
              retry_delay=_opt(st.integers(0, 60) | st.lists(st.integers(0, 60), max_size=5)),
              retry_jitter_factor=_opt(st.floats(0, 10))),
)


@settings(max_examples=150, deadline=None)
@given(policies)
def test_policies_round_trip(policy):
    back = CONVERTER.structure(json.loads(json.dumps(CONVERTER.unstructure(policy))), type(policy))
    assert attrs.asdict(back) == attrs.asdict(policy)
