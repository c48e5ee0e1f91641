"""Cases of spec conformance-cases.md that the recorded corpus does not exercise.

The corpus (tests/test_conformance_orchestration.py) replays one run under test per
scenario. What it cannot show is checked here through the public Engine API, under
whole policies: several runs competing for one limit, limits changed mid-way, exact
bookkeeping values (run time, timestamps), state ids, result artifacts, and storage
failures. Case numbers refer to conformance-cases.md.
"""
from __future__ import annotations

import datetime as dt

import pytest

from engine import (
    Engine, ManualClock, UniquenessError, Completed, Failed, Pending, Running, Scheduled, Cancelled,
    Cancelling, Paused, StateType,
)

T = dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)
S = dt.timedelta(seconds=1)


def policy(name: str):
    # Imported per call: the module must still collect while orchestration is being built.
    from engine.orchestration import POLICIES

    return POLICIES[name]


def status(result) -> str:
    return getattr(result.status, "value", result.status)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T)


@pytest.fixture
def e(clock) -> Engine:
    return Engine(clock=clock)


@pytest.fixture
def flow(e):
    return e.create_flow("conformance")


class Driver:
    """Proposes states one second apart (distinct timestamps) under named policies."""

    def __init__(self, e: Engine, clock: ManualClock) -> None:
        self.e, self.clock = e, clock

    def flow(self, run, state, pol="CoreFlowPolicy", force=False, params=None):
        self.clock.advance(1)
        return self.e.set_flow_run_state(run.id, state, force=force, flow_policy=policy(pol),
                                         orchestration_parameters=params)

    def task(self, run, state, pol="CoreTaskPolicy", force=False):
        self.clock.advance(1)
        return self.e.set_task_run_state(run.id, state, force=force, task_policy=policy(pol),
                                         orchestration_parameters={})


@pytest.fixture
def d(e, clock) -> Driver:
    return Driver(e, clock)


def gcl_of(e, deployment):
    return e.read_concurrency_limit_v2(deployment.concurrency_limit_id)


def tag_slots(e, tag) -> int:
    return len(e.read_concurrency_limit_by_tag(tag).active_slots)


# --- A. validation and storage (cases 28-33) ---------------------------------------------------

def test_validated_state_is_the_proposed_state_by_id(e, d, flow):  # 28
    run = e.create_flow_run(flow_id=flow.id)
    proposed = Pending()
    r = d.flow(run, proposed)
    assert status(r) == "ACCEPT"
    assert r.state.id == proposed.id == e.read_flow_run(run.id).state_id


@pytest.mark.parametrize("kind", ["flow", "task"])
def test_result_data_is_kept_in_an_artifact(e, d, flow, kind):  # 29
    fr = e.create_flow_run(flow_id=flow.id)
    data = {"value": "some special data"}
    if kind == "flow":
        r = d.flow(fr, Completed(data=dict(data)), force=True)
        row = e._store.tables["flow_run_state"].rows[e.read_flow_run(fr.id).state_id]
    else:
        tr = e.create_task_run(flow_run_id=fr.id, task_key="my-key", dynamic_key="0")
        r = d.task(tr, Completed(data=dict(data)), force=True)
        row = e._store.tables["task_run_state"].rows[e.read_task_run(tr.id).state_id]
    assert r.state.data == data
    artifact = e._store.tables["artifact"].rows[row.result_artifact_id]
    assert artifact.data == data
    assert artifact.flow_run_id == fr.id
    assert artifact.task_run_id == (tr.id if kind == "task" else None)


def test_artifact_type_and_description_leave_the_result(e, d, flow):  # 30
    fr = e.create_flow_run(flow_id=flow.id)
    data = {"value": "x", "artifact_type": "a special type", "artifact_description": "it's so pretty"}
    r = d.flow(fr, Completed(data=data), force=True)
    assert r.state.data == {"value": "x"}
    row = e._store.tables["flow_run_state"].rows[r.state.id]
    artifact = e._store.tables["artifact"].rows[row.result_artifact_id]
    assert (artifact.type, artifact.description) == ("a special type", "it's so pretty")


def test_no_data_no_artifact(e, d, flow):  # 31
    fr = e.create_flow_run(flow_id=flow.id)
    r = d.flow(fr, Completed(), force=True)
    assert e._store.tables["flow_run_state"].rows[r.state.id].result_artifact_id is None
    assert not e._store.tables["artifact"].rows


def test_storage_failure_aborts_and_writes_nothing(e, d, flow):  # 32
    fr = e.create_flow_run(flow_id=flow.id)
    d.flow(fr, Pending())
    before = e.read_flow_run(fr.id).state_id

    def fail_once(*args, **kwargs):
        raise RuntimeError("One time error!")

    e._store_state = fail_once  # instance attribute: this engine only
    r = d.flow(fr, Running())
    del e._store_state
    assert status(r) == "ABORT"
    assert r.details.reason == "Error validating state: RuntimeError('One time error!')"
    run = e.read_flow_run(fr.id)
    assert run.state_id == before and run.state_type.value == "PENDING" and run.run_count == 0
    assert len(e.read_flow_run_states(fr.id)) == 1


def test_two_states_at_one_instant_raise_and_change_nothing(e, clock, flow):  # 33 (database error propagates)
    fr = e.create_flow_run(flow_id=flow.id)
    e.set_flow_run_state(fr.id, Pending(), force=True)
    with pytest.raises(UniquenessError):
        e.set_flow_run_state(fr.id, Running(), force=True)  # same clock reading as the PENDING state
    run = e.read_flow_run(fr.id)
    assert run.state_type.value == "PENDING" and run.run_count == 0 and run.start_time is None
    assert len(e.read_flow_run_states(fr.id)) == 1


# --- B. deployment concurrency with several runs (cases 128-138) ---------------------------------

def deployment_runs(e, d, flow, limit, n, strategy=None, name="dep"):
    options = {"collision_strategy": strategy} if strategy else None
    dep = e.create_deployment(flow.id, name, concurrency_limit=limit, concurrency_options=options)
    runs = []
    for _ in range(n):
        run = e.create_flow_run(flow_id=flow.id, deployment_id=dep.id)
        d.flow(run, Scheduled(scheduled_time=T), force=True)
        runs.append(run)
    return dep, runs


def test_full_deployment_limit_enqueues_with_a_30s_schedule(e, d, clock, flow):  # 128
    dep, (r1, r2, r3) = deployment_runs(e, d, flow, 2, 3)
    assert status(d.flow(r1, Pending())) == status(d.flow(r2, Pending())) == "ACCEPT"
    r = d.flow(r3, Pending())
    assert status(r) == "REJECT" and r.details.reason == "Deployment concurrency limit reached."
    assert (r.state.type.value, r.state.name) == ("SCHEDULED", "AwaitingConcurrencySlot")
    assert r.state.state_details.scheduled_time == clock.now() + 30 * S
    assert gcl_of(e, dep).active_slots == 2


@pytest.mark.parametrize("strategy", [None, "ENQUEUE"])
def test_released_slot_lets_the_queued_run_in(e, d, flow, strategy):  # 129, 131, 132
    dep, (r1, r2) = deployment_runs(e, d, flow, 1, 2, strategy)
    assert status(d.flow(r1, Pending())) == "ACCEPT"
    assert status(d.flow(r2, Pending())) == "REJECT"
    assert status(d.flow(r1, Running())) == "ACCEPT"
    assert gcl_of(e, dep).active_slots == 1
    assert status(d.flow(r1, Completed())) == "ACCEPT"
    assert gcl_of(e, dep).active_slots == 0
    assert status(d.flow(r2, Pending())) == "ACCEPT"
    assert gcl_of(e, dep).active_slots == 1


def test_cancel_new_cancels_the_extra_run(e, d, flow):  # 130
    dep, (r1, r2) = deployment_runs(e, d, flow, 1, 2, "CANCEL_NEW")
    d.flow(r1, Pending())
    r = d.flow(r2, Pending())
    assert status(r) == "REJECT" and r.details.reason == "Deployment concurrency limit reached."
    assert r.state.type.value == "CANCELLED" and r.state.message == "Deployment concurrency limit reached."
    assert e.read_flow_run(r2.id).state_type.value == "CANCELLED"
    assert gcl_of(e, dep).active_slots == 1


def test_zero_deployment_limit_aborts(e, d, flow):  # 133
    dep, (r1,) = deployment_runs(e, d, flow, 0, 1)
    r = d.flow(r1, Pending())
    assert status(r) == "ABORT"
    assert r.details.reason == "The deployment concurrency limit is 0. The flow will deadlock if submitted again."
    assert e.read_flow_run(r1.id).state_type.value == "SCHEDULED"


def test_deployment_limits_are_independent(e, d, flow):  # 136
    d1, (a1, a2) = deployment_runs(e, d, flow, 1, 2, name="d1")
    d2, (b1, b2, b3) = deployment_runs(e, d, flow, 2, 3, name="d2")
    assert [status(d.flow(r, Pending())) for r in (a1, a2)] == ["ACCEPT", "REJECT"]
    assert [status(d.flow(r, Pending())) for r in (b1, b2, b3)] == ["ACCEPT", "ACCEPT", "REJECT"]
    assert (gcl_of(e, d1).active_slots, gcl_of(e, d2).active_slots) == (1, 2)


def test_cancelling_keeps_the_slot_until_cancelled(e, d, flow):  # 137
    dep, (r1, r2) = deployment_runs(e, d, flow, 1, 2)
    d.flow(r1, Pending())
    d.flow(r1, Running())
    assert status(d.flow(r1, Cancelling())) == "ACCEPT"
    assert gcl_of(e, dep).active_slots == 1
    assert status(d.flow(r1, Cancelled())) == "ACCEPT"
    assert gcl_of(e, dep).active_slots == 0
    assert status(d.flow(r2, Pending())) == "ACCEPT"
    assert gcl_of(e, dep).active_slots == 1


def test_slot_taken_at_pending_and_freed_at_completion(e, d, flow):  # 138
    dep, (r1,) = deployment_runs(e, d, flow, 1, 1)
    counts = []
    for state in (Pending(), Running(), Completed()):
        assert status(d.flow(r1, state)) == "ACCEPT"
        counts.append(gcl_of(e, dep).active_slots)
    assert counts == [1, 1, 0]



def test_a_paused_run_gives_its_slot_back_and_resumes_without_one(e, d, flow):
    # Spec 8.8 with HandlePausingFlows/HandleResumingPausedFlows: RUNNING -> PAUSED
    # leaves the slot-holding states, so the slot goes back; PAUSED -> RUNNING is not
    # PENDING, so none is taken. Two runs then run at once under a limit of 1.
    dep, (r1, r2) = deployment_runs(e, d, flow, 1, 2)
    d.flow(r1, Pending())
    d.flow(r1, Running())
    assert status(d.flow(r1, Paused(pause_key="k"))) == "ACCEPT"
    assert gcl_of(e, dep).active_slots == 0
    assert status(d.flow(r2, Pending())) == "ACCEPT" and status(d.flow(r2, Running())) == "ACCEPT"
    assert status(e.resume_flow_run(r1.id)) == "ACCEPT"
    assert [e.read_flow_run(r.id).state_type for r in (r1, r2)] == [StateType.RUNNING] * 2
    assert gcl_of(e, dep).active_slots == 1
    assert status(d.flow(r1, Completed())) == "ACCEPT"   # gives back the slot r2 holds
    assert gcl_of(e, dep).active_slots == 0

# --- B. tag concurrency with several task runs (cases 83-93) ----------------------------------------

@pytest.fixture
def running_flow(e, d, flow):
    fr = e.create_flow_run(flow_id=flow.id)
    d.flow(fr, Running(), force=True)
    return fr


def pending_task(e, d, fr, key, tags):
    tr = e.create_task_run(flow_run_id=fr.id, task_key=key, dynamic_key="0", tags=tags)
    assert status(d.task(tr, Pending())) == "ACCEPT"
    return tr


def test_tag_limit_makes_the_second_task_wait(e, d, running_flow):  # 83
    e.create_concurrency_limit("some tag", 1)
    t1 = pending_task(e, d, running_flow, "a", ["some tag"])
    t2 = pending_task(e, d, running_flow, "b", ["some tag"])
    assert status(d.task(t1, Running())) == "ACCEPT"
    r = d.task(t2, Running())
    assert status(r) == "WAIT" and r.details.delay_seconds == 30
    assert r.details.reason == "Concurrency limit for the some tag tag has been reached"
    assert e.read_concurrency_limit_by_tag("some tag").active_slots == [str(t1.id)]
    assert status(d.task(t1, Completed())) == "ACCEPT"
    assert tag_slots(e, "some tag") == 0
    assert status(d.task(t2, Running())) == "ACCEPT"
    assert e.read_concurrency_limit_by_tag("some tag").active_slots == [str(t2.id)]


def test_tag_slot_kept_while_cancelling(e, d, running_flow):  # 84
    e.create_concurrency_limit("some tag", 1)
    t1 = pending_task(e, d, running_flow, "a", ["some tag"])
    t2 = pending_task(e, d, running_flow, "b", ["some tag"])
    d.task(t1, Running())
    assert status(d.task(t1, Cancelling())) == "ACCEPT"
    assert tag_slots(e, "some tag") == 1
    assert status(d.task(t1, Cancelled())) == "ACCEPT"
    assert tag_slots(e, "some tag") == 0
    assert status(d.task(t2, Running())) == "ACCEPT"
    assert tag_slots(e, "some tag") == 1


def test_running_again_holds_one_slot(e, d, running_flow):  # 87, 88
    e.create_concurrency_limit("t", 10)
    t1 = pending_task(e, d, running_flow, "a", ["t"])
    assert status(d.task(t1, Running())) == "ACCEPT"
    assert status(d.task(t1, Running())) == "ACCEPT"
    assert tag_slots(e, "t") == 1


def test_limit_created_while_a_task_runs(e, d, running_flow):  # 89
    e.create_concurrency_limit("primary tag", 2)
    tags = ["primary tag", "secondary tag"]
    t1 = pending_task(e, d, running_flow, "a", tags)
    t2 = pending_task(e, d, running_flow, "b", tags)
    d.task(t1, Running())
    e.create_concurrency_limit("secondary tag", 1)
    assert (tag_slots(e, "primary tag"), tag_slots(e, "secondary tag")) == (1, 0)
    assert status(d.task(t2, Running())) == "ACCEPT"
    assert (tag_slots(e, "primary tag"), tag_slots(e, "secondary tag")) == (2, 1)
    d.task(t1, Completed())
    assert (tag_slots(e, "primary tag"), tag_slots(e, "secondary tag")) == (1, 1)
    d.task(t2, Completed())
    assert (tag_slots(e, "primary tag"), tag_slots(e, "secondary tag")) == (0, 0)


def test_deleting_the_blocking_limit_unblocks(e, d, running_flow):  # 90
    e.create_concurrency_limit("big limit", 2)
    e.create_concurrency_limit("small limit", 1)
    tags = ["big limit", "small limit"]
    t1, t2, t3 = (pending_task(e, d, running_flow, k, tags) for k in "abc")
    assert status(d.task(t1, Running())) == "ACCEPT"
    assert status(d.task(t2, Running())) == "WAIT"
    assert tag_slots(e, "big limit") == 1  # taken before the full tag, then given back
    assert e.delete_concurrency_limit_by_tag("small limit")
    assert status(d.task(t3, Running())) == "ACCEPT"
    assert tag_slots(e, "big limit") == 2


@pytest.mark.parametrize("new_limit, second, slots", [(2, "ACCEPT", 2), (1, "WAIT", 1)])
def test_changing_a_limit_applies_to_the_next_task(e, d, running_flow, new_limit, second, slots):  # 91, 92
    e.create_concurrency_limit("t", 1 if new_limit == 2 else 2)
    t1 = pending_task(e, d, running_flow, "a", ["t"])
    t2 = pending_task(e, d, running_flow, "b", ["t"])
    d.task(t1, Running())
    e.create_concurrency_limit("t", new_limit)
    assert status(d.task(t2, Running())) == second
    assert tag_slots(e, "t") == slots


def test_limit_lowered_to_zero_still_releases(e, d, running_flow):  # 93
    e.create_concurrency_limit("t", 2)
    t1 = pending_task(e, d, running_flow, "a", ["t"])
    d.task(t1, Running())
    e.create_concurrency_limit("t", 0)
    assert tag_slots(e, "t") == 1
    assert status(d.task(t1, Completed())) == "ACCEPT"
    assert tag_slots(e, "t") == 0


# --- B. task retry delays and the flow-run tracker (cases 57, 65, 66) ----------------------------

@pytest.mark.parametrize("retries, run_count, expected", [(5, 1, 2), (5, 2, 3), (5, 3, 5), (5, 4, 7), (5, 5, 11),
                                                          (6, 6, 7)])
def test_retry_delay_list_is_indexed_by_attempt(e, d, clock, running_flow, retries, run_count, expected):
    delays = [2, 3, 5, 7, 11] if retries == 5 else [2, 3, 5, 7]
    tr = e.create_task_run(flow_run_id=running_flow.id, task_key="k", dynamic_key="0", run_count=run_count - 1,
                           empirical_policy={"retries": retries, "retry_delay": delays})
    d.task(tr, Pending(), force=True)
    d.task(tr, Running())
    assert e.read_task_run(tr.id).run_count == run_count
    r = d.task(tr, Failed())
    assert status(r) == "REJECT" and r.state.name == "AwaitingRetry"
    assert r.state.state_details.scheduled_time == clock.now() + expected * S


def test_task_records_the_flow_run_attempt(e, d, flow):  # 57
    fr = e.create_flow_run(flow_id=flow.id, run_count=41)
    d.flow(fr, Running(), force=True)
    assert e.read_flow_run(fr.id).run_count == 42
    tr = e.create_task_run(flow_run_id=fr.id, task_key="k", dynamic_key="0", flow_run_run_count=1)
    d.task(tr, Pending())
    assert status(d.task(tr, Running())) == "ACCEPT"
    assert e.read_task_run(tr.id).flow_run_run_count == 42


# --- C. global bookkeeping, exact values (cases 141-155) -------------------------------------------

def make_run(e, flow, kind, **fields):
    if kind == "flow":
        return e.create_flow_run(flow_id=flow.id, **fields)
    return e.create_task_run(task_key="k", dynamic_key="0", **fields)


def forced(d, kind, run, state):
    return d.flow(run, state, force=True) if kind == "flow" else d.task(run, state, force=True)


def read(e, kind, run):
    return e.read_flow_run(run.id) if kind == "flow" else e.read_task_run(run.id)


KINDS = ["flow", "task"]


@pytest.mark.parametrize("kind", KINDS)
def test_denormalised_columns_follow_the_state(e, d, clock, flow, kind):  # 141-143
    run = make_run(e, flow, kind)
    r = forced(d, kind, run, Pending(name="Almost"))
    row = read(e, kind, run)
    assert (row.state_type.value, row.state_name, row.state_timestamp) == ("PENDING", "Almost", clock.now())
    assert r.state.timestamp == clock.now()


@pytest.mark.parametrize("kind", KINDS)
def test_scheduled_times(e, d, clock, flow, kind):  # 144, 145, 147
    run = make_run(e, flow, kind)
    when = T + dt.timedelta(days=10)
    forced(d, kind, run, Scheduled(scheduled_time=when))
    row = read(e, kind, run)
    assert (row.next_scheduled_start_time, row.expected_start_time, row.start_time) == (when, when, None)
    forced(d, kind, run, Pending())
    row = read(e, kind, run)
    assert row.next_scheduled_start_time is None and row.expected_start_time == when


@pytest.mark.parametrize("kind", KINDS)
def test_run_time_start_end_and_count(e, d, clock, flow, kind):  # 146, 148-151, 153
    run = make_run(e, flow, kind, run_count=41)
    forced(d, kind, run, Pending())
    pending_at = clock.now()
    forced(d, kind, run, Running())
    started = clock.now()
    clock.advance(41)  # forced() adds one more second: 42 s in RUNNING
    forced(d, kind, run, Completed())
    row = read(e, kind, run)
    assert row.expected_start_time == pending_at
    assert row.start_time == started and row.end_time == clock.now()
    assert row.total_run_time == dt.timedelta(seconds=42)
    assert row.run_count == 42


@pytest.mark.parametrize("kind", KINDS)
def test_never_ran_has_no_run_time_or_end(e, d, flow, kind):  # 152
    run = make_run(e, flow, kind)
    forced(d, kind, run, Pending())
    forced(d, kind, run, Completed())
    row = read(e, kind, run)
    assert row.total_run_time == dt.timedelta(0) and row.end_time is None and row.start_time is None


@pytest.mark.parametrize("kind", KINDS)
def test_end_time_cleared_on_rerun_and_kept_between_final_states(e, d, clock, flow, kind):  # 154, 155
    run = make_run(e, flow, kind)
    forced(d, kind, run, Running())
    forced(d, kind, run, Completed())
    ended = clock.now()
    forced(d, kind, run, Failed())
    assert read(e, kind, run).end_time == ended
    forced(d, kind, run, Running())
    row = read(e, kind, run)
    assert row.end_time is None and row.run_count == 2


def test_retry_jitter_stays_in_the_clamped_interval(e, d, clock, running_flow):  # 64, 67 (range, not a mocked draw)
    # base 10 s, factor 0.5: k = 1.5, upper = 15 s, lower = 10 * log2(2**k / (2**k - 1)) ~ 6.3 s.
    import math

    lower = 10 * math.log2(2 ** 1.5 / (2 ** 1.5 - 1))
    e.random.seed(7)
    delays = []
    for i in range(25):
        tr = e.create_task_run(flow_run_id=running_flow.id, task_key="k", dynamic_key=str(i),
                               empirical_policy={"retries": 1, "retry_delay": 10, "retry_jitter_factor": 0.5})
        d.task(tr, Pending(), force=True)
        d.task(tr, Running())
        r = d.task(tr, Failed())
        assert status(r) == "REJECT" and r.details.reason == "Retrying"
        delays.append((r.state.state_details.scheduled_time - clock.now()).total_seconds())
    assert all(lower - 1e-6 <= x <= 15 + 1e-6 for x in delays), delays
    assert len(set(delays)) > 1  # jittered, not the fixed base
