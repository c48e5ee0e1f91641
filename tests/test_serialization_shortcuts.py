"""The row encoder's shortcuts (remembered UUID texts, shared datetime texts, the
compiled StateDetails encoder) must give exactly what plain formatting gives."""
from __future__ import annotations

import datetime as _dt
import json
import uuid

from engine.records import FlowRun, FlowRunStateRow
from engine.serialization import _unstructure_details, codec
from engine.states import StateDetails, StateType

UTC = _dt.timezone.utc
T0 = _dt.datetime(2024, 1, 1, tzinfo=UTC)


def _state_row(run_id: uuid.UUID, details_run_id: uuid.UUID, ts: _dt.datetime) -> FlowRunStateRow:
    row = FlowRunStateRow(type=StateType.RUNNING, timestamp=ts, name="Running",
                          state_details=StateDetails(flow_run_id=details_run_id), flow_run_id=run_id)
    row.created = row.updated = ts
    return row


def test_a_state_rows_details_never_borrow_another_runs_id_text():
    c = codec("flow_run_state")
    cols = c.columns
    a, b = uuid.uuid4(), uuid.uuid4()
    # Same run on both sides, then a row whose details name another run than the row.
    for run_id, details_id in ((a, a), (a, b), (b, a), (b, b)):
        row = c.encode(_state_row(run_id, details_id, T0))
        assert row[cols.index("flow_run_id")] == str(run_id)
        assert json.loads(row[cols.index("state_details")]) == {"flow_run_id": str(details_id)}


def test_reference_columns_follow_the_row_not_the_previous_one():
    c = codec("flow_run")
    cols = c.columns
    flows = [uuid.uuid4(), uuid.uuid4()]
    shared = flows[0]
    for flow_id in (shared, shared, flows[1], uuid.UUID(str(shared)), None):
        run = FlowRun(flow_id=flow_id, name="r")
        row = c.encode(run)
        assert row[cols.index("flow_id")] == (None if flow_id is None else str(flow_id))
        assert row[cols.index("id")] == str(run.id)


def test_datetime_texts_are_shared_only_between_one_objects_columns():
    c = codec("flow_run_state")
    cols = c.columns
    other = _dt.datetime(2024, 1, 1, 2, tzinfo=_dt.timezone(_dt.timedelta(hours=2)))  # = T0 as an instant
    row = _state_row(uuid.uuid4(), uuid.uuid4(), T0)
    row.updated = other
    out = c.encode(row)
    assert out[cols.index("timestamp")] == out[cols.index("created")] == "2024-01-01T00:00:00+00:00"
    assert out[cols.index("updated")] == "2024-01-01T00:00:00+00:00"  # converted to UTC
    row.updated = T0 + _dt.timedelta(microseconds=1)
    assert c.encode(row)[cols.index("updated")] == "2024-01-01T00:00:00.000001+00:00"


def test_compiled_state_details_encoder_writes_only_non_defaults():
    assert _unstructure_details(StateDetails()) == {}
    run_id = uuid.uuid4()
    out = _unstructure_details(StateDetails(flow_run_id=run_id, deferred=None, untrackable_result=True,
                                            scheduled_time=T0, run_input_keyset={"k": "v"}))
    # `deferred` defaults to False, so None is written; the others differ from None/False.
    assert out == {"flow_run_id": str(run_id), "scheduled_time": "2024-01-01T00:00:00+00:00",
                   "deferred": None, "untrackable_result": True, "run_input_keyset": {"k": "v"}}
