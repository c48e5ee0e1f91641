import datetime as dt
import uuid

import pytest

import engine
from engine import (
    AwaitingRetry, CountByState, Failed, Late, Paused, Scheduled, State, StateDetails,
    StateType, Suspended, TERMINAL_STATES, ValidationError,
)
from engine.states import has_persisted_result

T = dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)


def test_state_types_and_terminal_set():
    assert [t.value for t in StateType] == [
        "SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED",
        "CANCELLED", "CRASHED", "PAUSED", "CANCELLING",
    ]
    assert TERMINAL_STATES == {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}
    # reason strings interpolate the enum as Python 3.11 does
    assert f"{StateType.PENDING}" == "StateType.PENDING"


def test_default_names_and_explicit_empty_name_kept():
    assert State(type="CANCELLING").name == "Cancelling"
    assert State(type=StateType.RUNNING, name="").name == ""
    with pytest.raises(ValidationError, match="BOGUS"):
        State(type="BOGUS")


@pytest.mark.parametrize("state_type", list(StateType))
def test_each_type_predicate_holds_for_its_own_type_only(state_type):
    state = State(type=state_type)
    predicates = {t: getattr(state, f"is_{t.value.lower()}")() for t in StateType}
    assert predicates == {t: t is state_type for t in StateType}
    assert state.is_final() is (state_type in TERMINAL_STATES)


def test_str_shows_the_message_and_a_type_the_name_hides():
    assert str(State(type="COMPLETED")) == "Completed()"
    assert str(Failed(message="boom")) == 'Failed("boom")'
    assert str(AwaitingRetry(T, message="again")) == 'AwaitingRetry("again", type=SCHEDULED)'
    assert str(State(type="RUNNING", name="running")) == "running()"  # (names compare case-blind)


def test_state_details_defaults():
    d = StateDetails()
    assert d.deferred is False and d.pause_reschedule is False and d.untrackable_result is False
    assert d.scheduled_time is None and d.retriable is None and d.refresh_cache is None
    # unknown keys are ignored, as Prefect does
    s = State(type="PENDING", state_details={"cache_key": "k", "traceparent": "x"})
    assert s.state_details.cache_key == "k"
    given = StateDetails(cache_key="c")
    assert State(type="PENDING", state_details=given).state_details is given
    with pytest.raises(ValidationError, match="state_details must be a StateDetails or a dict, got int 5"):
        State(type="PENDING", state_details=5)


def test_state_details_copy_does_not_share_the_input_keyset():
    d = StateDetails(run_input_keyset={"a": "k"})
    c = d.copy()
    c.run_input_keyset["b"] = "k2"
    assert d.run_input_keyset == {"a": "k"} and c.run_input_keyset == {"a": "k", "b": "k2"}


def test_equality_ignores_id():
    a = State(type="COMPLETED", timestamp=T, data={"x": 1})
    b = State(type="COMPLETED", timestamp=T, data={"x": 1})
    assert a.id != b.id and a == b and hash(a) == hash(b)
    assert a != State(type="COMPLETED", timestamp=T, data={"x": 2})
    assert a != "COMPLETED" and a not in [None, 1]  # other objects compare unequal, no error


def test_scheduled_helper_rules():
    s = Scheduled(scheduled_time=T)
    assert s.state_details.scheduled_time == T and s.name == "Scheduled"
    # without the argument, any scheduled_time in state_details is replaced (stamped later)
    assert Scheduled(state_details={"scheduled_time": T}).state_details.scheduled_time is None
    with pytest.raises(ValueError, match="An extra scheduled_time"):
        Scheduled(scheduled_time=T, state_details={"scheduled_time": T})
    assert Late(T).name == "Late" and AwaitingRetry(T).type is StateType.SCHEDULED


# spec states.md §4: every named helper's type and default name.
HELPERS = [
    ("Scheduled", "SCHEDULED"), ("Late", "SCHEDULED"), ("AwaitingRetry", "SCHEDULED"),
    ("AwaitingConcurrencySlot", "SCHEDULED"), ("Retrying", "RUNNING"), ("Cached", "COMPLETED"),
    ("Pending", "PENDING"), ("Running", "RUNNING"), ("Completed", "COMPLETED"), ("Failed", "FAILED"),
    ("Crashed", "CRASHED"), ("Cancelled", "CANCELLED"), ("Cancelling", "CANCELLING"),
    ("Paused", "PAUSED"), ("Suspended", "PAUSED"),
]


@pytest.mark.parametrize(("helper", "state_type"), HELPERS)
def test_each_named_helper_gives_its_type_and_name(helper, state_type):
    make = getattr(engine, helper)
    plain = make()
    assert (plain.type, plain.name) == (StateType(state_type), helper)
    # Passing fields through (details as a dict, a message) keeps the helper's name;
    # an explicit name wins.
    full = make(message="m", state_details={"cache_key": "k"})
    assert (full.type, full.name, full.message, full.state_details.cache_key) == (
        StateType(state_type), helper, "m", "k")
    assert make(name="Mine").name == "Mine"
    assert make().id != plain.id


def test_awaiting_concurrency_slot_takes_its_scheduled_time():
    s = engine.AwaitingConcurrencySlot(T)
    assert s.state_details.scheduled_time == T and s.name == "AwaitingConcurrencySlot"


def test_paused_helpers():
    p = Paused(timeout_seconds=60, pause_key="k", now=T)
    assert p.state_details.pause_timeout == T + dt.timedelta(seconds=60)
    assert p.state_details.pause_key == "k" and p.state_details.pause_reschedule is False
    s = Suspended(pause_expiration_time=T)
    assert s.name == "Suspended" and s.state_details.pause_reschedule is True
    assert s.state_details.pause_timeout == T
    assert Paused(pause_expiration_time=T).state_details.pause_timeout == T
    for bad in (float("inf"), float("nan"), 1e300):
        with pytest.raises(ValidationError, match="timeout_seconds is out of range"):
            Paused(timeout_seconds=bad, now=T)
    with pytest.raises(ValueError, match="Cannot supply both"):
        Paused(timeout_seconds=1, pause_expiration_time=T)
    with pytest.raises(ValueError, match="An extra pause timeout"):
        Paused(state_details={"pause_timeout": T})


@pytest.mark.parametrize("make", [Paused, Suspended])
def test_a_pause_timeout_without_now_counts_from_the_engines_clock(make):
    # (it used to be counted from the wall clock, so a pause on a manual clock in the
    # past never expired)
    from engine import Engine, ManualClock, Running

    pause = make(timeout_seconds=60)
    assert pause.state_details.pause_timeout == dt.timedelta(seconds=60)
    clock = ManualClock(T)
    engine = Engine(clock)
    flow = engine.create_flow("f")
    deployment = engine.create_deployment(flow.id, "d")  # a suspended run needs one
    run = engine.create_flow_run(flow_id=flow.id, deployment_id=deployment.id, state=Running())
    clock.advance(10)
    assert engine.set_flow_run_state(run.id, pause, flow_policy="CoreFlowPolicy").status == "ACCEPT"
    stored = engine.read_flow_run(run.id).state.state_details.pause_timeout
    assert stored == T + dt.timedelta(seconds=70)
    assert pause.state_details.pause_timeout == dt.timedelta(seconds=60)  # the caller's state is untouched
    clock.advance(61)
    result = engine.resume_flow_run(run.id)
    assert (result.status, result.details.reason) == ("REJECT", "The flow run pause has timed out and can no longer resume.")


def test_fresh_copy_is_deep_with_new_id_and_time():
    s = Failed(timestamp=T, data={"a": [1]}, state_details={"cache_key": "k"})
    later = T + dt.timedelta(seconds=5)
    c = s.fresh_copy(later)
    assert c.id != s.id and c.timestamp == later and c.name == "Failed"
    c.data["a"].append(2)
    c.state_details.cache_key = "other"
    assert s.data == {"a": [1]} and s.state_details.cache_key == "k"


def test_persisted_result():
    assert not has_persisted_result(State(type="COMPLETED"))
    assert has_persisted_result(State(type="COMPLETED", data="a result"))  # not a dict: persisted
    assert not has_persisted_result(State(type="COMPLETED", data={"type": "unpersisted"}))
    assert has_persisted_result(State(type="COMPLETED", data={"storage_key": "s"}))


def test_count_by_state_field_order():
    assert set(CountByState().as_dict().values()) == {0}
    assert list(CountByState().as_dict()) == [
        "COMPLETED", "PENDING", "RUNNING", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING", "SCHEDULED",
    ]


def test_new_ids_are_distinct_version4_uuids_across_batches_and_forks():
    import os

    from engine.states import _BATCH, new_id

    ids = [new_id() for _ in range(3 * _BATCH + 5)]  # several OS batches
    assert len(set(ids)) == len(ids)
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)
    assert all(uuid.UUID(str(i)) == i and hash(uuid.UUID(str(i))) == hash(i) for i in ids)
    # A forked child must not hand out the ids its parent is about to use.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.write(write, "".join(str(new_id()) for _ in range(8)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    os.close(write)
    child = os.read(read, 4096).decode()
    os.close(read)
    mine = "".join(str(new_id()) for _ in range(8))
    assert len(child) == len(mine) == 8 * 36 and child != mine


def test_seeded_ids_repeat():
    from engine.states import new_id, seed_ids

    seed_ids(11)
    first = [new_id() for _ in range(50)]
    seed_ids(11)
    try:
        assert [new_id() for _ in range(50)] == first
    finally:
        seed_ids(None)
    # Valid version-4 UUIDs, as the random ones are.
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 and uuid.UUID(str(i)) == i for i in first)


def test_new_ids_copy_and_pickle_like_any_uuid():
    import copy
    import pickle

    from engine.states import new_id

    i = new_id()
    assert i.is_safe is uuid.SafeUUID.unknown
    assert copy.deepcopy(i) == i and pickle.loads(pickle.dumps(i)) == i
