"""Each state-setup helper against the states (and side effects) it promises."""
from __future__ import annotations

from datetime import timedelta

import pytest

import uuid

from engine import (
    Completed, Engine, ManualClock, ObjectNotFoundError, Paused, Pending, Running, StateType, SystemClock,
    ValidationError,
)
from engine.orchestration import CoreFlowPolicy, CoreTaskPolicy
from engine.testing.helpers import (
    SetupError,
    cached_task_run,
    completed_flow_run,
    completed_task_run,
    failed_flow_run,
    failed_task_run,
    full_deployment,
    full_tag_limit,
    history,
    late_flow_run,
    paused_flow_run,
    pending_task_run,
    propose,
    running_flow_run,
    running_task_run,
    scheduled_flow_run,
)

SLACK = timedelta(milliseconds=1)  # the fixture clock ticks 1 µs per reading


def test_scheduled_flow_run(runstate_engine, runstate_clock):
    when = runstate_clock.now() + timedelta(hours=1)
    run = scheduled_flow_run(runstate_engine, scheduled_time=when, tags=["a"])
    assert run.state_type is StateType.SCHEDULED
    assert run.expected_start_time == when == run.next_scheduled_start_time
    assert run.tags == ["a"] and run.run_count == 0


def test_running_flow_run_went_through_pending(runstate_engine):
    run = running_flow_run(runstate_engine)
    assert history(runstate_engine, run) == [("SCHEDULED", "Scheduled"), ("PENDING", "Pending"), ("RUNNING", "Running")]
    assert run.run_count == 1 and run.start_time == run.state_timestamp


def test_completed_flow_run_has_exact_times(runstate_engine):
    run = completed_flow_run(runstate_engine, duration=timedelta(minutes=3), result={"storage_key": "k"})
    assert run.state_type is StateType.COMPLETED
    assert timedelta(minutes=3) <= run.total_run_time < timedelta(minutes=3) + SLACK
    assert run.end_time - run.start_time == run.total_run_time
    assert runstate_engine.read_flow_run_states(run.id)[-1].data == {"storage_key": "k"}


def test_failed_flow_run_with_retries_left_awaits_retry(runstate_engine, runstate_clock):
    run = failed_flow_run(runstate_engine, attempt=2, retries=3, retry_delay=10)
    assert (run.state_type, run.state_name, run.run_count) == (StateType.SCHEDULED, "AwaitingRetry", 2)
    assert [name for _, name in history(runstate_engine, run)].count("AwaitingRetry") == 2
    assert run.empirical_policy.retries == 3
    # the second retry waits out the delay like the first one did
    scheduled = run.state.state_details.scheduled_time
    assert timedelta(seconds=9) < scheduled - runstate_clock.now() <= timedelta(seconds=10)
    wait = runstate_engine.set_flow_run_state(run.id, Running(), flow_policy=CoreFlowPolicy)
    assert wait.status == "WAIT" and wait.details.delay_seconds == 10


def test_failed_flow_run_out_of_retries_is_failed(runstate_engine):
    run = failed_flow_run(runstate_engine, attempt=4, retries=3)
    assert run.state_type is StateType.FAILED and run.run_count == 4
    assert run.end_time is not None
    assert timedelta(seconds=4) <= run.total_run_time < timedelta(seconds=4) + SLACK


@pytest.mark.parametrize("attempt,retries", [(0, 3), (3, 1), (2, None), (True, 3)])
def test_failed_flow_run_rejects_impossible_attempts(runstate_engine, attempt, retries):
    with pytest.raises(ValidationError, match="attempt"):
        failed_flow_run(runstate_engine, attempt=attempt, retries=retries)
    assert runstate_engine.read_flows() == []


def test_cached_task_run_is_hit_then_expires(runstate_engine, runstate_clock):
    cached = cached_task_run(runstate_engine, cache_key="K", expires_in=timedelta(minutes=5))
    assert cached.state_type is StateType.COMPLETED
    rows = list(runstate_engine._store.tables["task_run_state_cache"].rows.values())
    assert [(r.cache_key, r.task_run_state_id) for r in rows] == [("K", cached.state_id)]
    assert timedelta(minutes=5) - SLACK < rows[0].cache_expiration - runstate_clock.now() <= timedelta(minutes=5)

    hit = pending_task_run(runstate_engine)
    result = runstate_engine.set_task_run_state(
        hit.id, Running(state_details={"cache_key": "K"}), task_policy=CoreTaskPolicy
    )
    assert (result.status, result.state.name) == ("REJECT", "Cached")
    assert result.state.data == cached.state.data and hit.run_count == 0

    runstate_clock.advance(timedelta(minutes=6))
    miss = pending_task_run(runstate_engine)
    result = runstate_engine.set_task_run_state(
        miss.id, Running(state_details={"cache_key": "K"}), task_policy=CoreTaskPolicy
    )
    assert result.status == "ACCEPT"


def test_paused_flow_run_blocks_tasks_and_refires(runstate_engine, runstate_clock):
    run = paused_flow_run(runstate_engine, pause_key="K", timeout=timedelta(minutes=10))
    assert (run.state_type, run.state_name) == (StateType.PAUSED, "Paused")
    assert "K" in run.empirical_policy.pause_keys
    assert run.state.state_details.pause_timeout > runstate_clock.now() + timedelta(minutes=9)
    task = pending_task_run(runstate_engine, flow_run=run)
    blocked = runstate_engine.set_task_run_state(task.id, Running(), task_policy=CoreTaskPolicy)
    assert (blocked.status, blocked.state.name) == ("REJECT", "NotReady")
    runstate_engine.set_flow_run_state(run.id, Running(), flow_policy=CoreFlowPolicy)
    again = runstate_engine.set_flow_run_state(run.id, Paused(pause_key="K"), flow_policy=CoreFlowPolicy)
    assert again.status == "REJECT" and again.details.reason == "This pause has already fired."


def test_suspended_flow_run_gets_a_deployment(runstate_engine):
    run = paused_flow_run(runstate_engine, pause_key="S", reschedule=True)
    assert run.state_name == "Suspended" and run.state.state_details.pause_reschedule
    assert runstate_engine.read_deployment(run.deployment_id) is not None


def test_late_flow_run(runstate_engine, runstate_clock):
    run = late_flow_run(runstate_engine, late_by=timedelta(minutes=7))
    assert (run.state_type, run.state_name) == (StateType.SCHEDULED, "Late")
    assert runstate_engine.estimated_start_time_delta(run) >= timedelta(minutes=7)


@pytest.mark.parametrize("strategy,expected", [("ENQUEUE", "AwaitingConcurrencySlot"), ("CANCEL_NEW", "Cancelled")])
def test_full_deployment_holds_every_slot(runstate_engine, strategy, expected):
    setup = full_deployment(runstate_engine, limit=2, collision_strategy=strategy)
    assert setup.limit.active_slots == 2 and setup.limit.limit == 2
    assert [r.state_type for r in setup.runs] == [StateType.RUNNING] * 2
    extra = scheduled_flow_run(runstate_engine, deployment_id=setup.deployment.id)
    result = runstate_engine.set_flow_run_state(extra.id, Pending(), flow_policy=CoreFlowPolicy)
    assert (result.status, result.state.name) == ("REJECT", expected)
    assert setup.limit.active_slots == 2


def test_full_deployment_frees_a_slot_when_a_run_finishes(runstate_engine):
    setup = full_deployment(runstate_engine, limit=1)
    runstate_engine.set_flow_run_state(setup.runs[0].id, Completed(), flow_policy=CoreFlowPolicy)
    assert setup.limit.active_slots == 0
    extra = scheduled_flow_run(runstate_engine, deployment_id=setup.deployment.id)
    assert runstate_engine.set_flow_run_state(extra.id, Pending(), flow_policy=CoreFlowPolicy).status == "ACCEPT"


def test_full_tag_limit_makes_the_next_task_wait(runstate_engine):
    setup = full_tag_limit(runstate_engine, tag="db", limit=2)
    assert sorted(setup.limit.active_slots) == sorted(str(r.id) for r in setup.runs)
    task = pending_task_run(runstate_engine, tags=["db"])
    result = runstate_engine.set_task_run_state(task.id, Running(), task_policy=CoreTaskPolicy)
    assert result.status == "WAIT" and result.details.delay_seconds == 30


def test_helpers_used_together_never_share_a_deployment_or_a_tag_limit(runstate_engine):
    first = full_deployment(runstate_engine, limit=2)
    suspended = paused_flow_run(runstate_engine, reschedule=True)
    second, third = full_deployment(runstate_engine, limit=1), full_deployment(runstate_engine, limit=1)
    deployments = {first.deployment.id, suspended.deployment_id, second.deployment.id, third.deployment.id}
    assert len(deployments) == 4 and first.limit.limit == 2 and first.limit.active_slots == 2
    assert suspended.state_name == "Suspended"
    tags = full_tag_limit(runstate_engine), full_tag_limit(runstate_engine)
    assert tags[0].limit.tag != tags[1].limit.tag
    assert [len(t.limit.active_slots) for t in tags] == [1, 1]
    # a name given is used as given (and so is shared on purpose)
    named = full_deployment(runstate_engine, limit=1, name="mine")
    assert named.deployment.name == "mine"


def test_propose_takes_one_status_or_several(runstate_engine):
    run = pending_task_run(runstate_engine)
    blocked = running_flow_run(runstate_engine)
    assert propose(runstate_engine, run, Running(), expect="ACCEPT").status == "ACCEPT"
    assert propose(runstate_engine, blocked, Pending(), expect=("REJECT", "ABORT")).status in ("REJECT", "ABORT")
    with pytest.raises(SetupError, match="gave ACCEPT .*; expected ABORT$"):
        propose(runstate_engine, run, Completed(), expect="ABORT")
    with pytest.raises(ValidationError, match=r"expect must name statuses .*got \['ACCEPTED'\]"):
        propose(runstate_engine, run, Completed(), expect="ACCEPTED")


def test_propose_honours_a_wait_by_moving_the_manual_clock_and_proposing_again(runstate_engine, runstate_clock):
    start = runstate_clock.now()
    run = scheduled_flow_run(runstate_engine, scheduled_time=start + timedelta(seconds=90))
    result = propose(runstate_engine, run, Running())  # WaitForScheduledTime: WAIT 90 s, then ACCEPT
    assert result.status == "ACCEPT" and run.state_type is StateType.RUNNING
    assert runstate_clock.now() - start >= timedelta(seconds=90)
    # expect="WAIT" (or wait=False) hands the WAIT back instead
    later = scheduled_flow_run(runstate_engine, scheduled_time=runstate_clock.now() + timedelta(seconds=60))
    assert propose(runstate_engine, later, Running(), expect="WAIT").details.delay_seconds in (59, 60)
    with pytest.raises(SetupError, match="gave WAIT"):
        propose(runstate_engine, later, Running(), wait=False)


def test_propose_gives_up_on_a_wait_that_never_ends(runstate_engine, runstate_clock):
    # The slot is never given back: every retry 30 s later WAITs again. The error
    # says why (the last WAIT's reason and delay) and the 50 min waited are undone.
    full = full_tag_limit(runstate_engine)
    waiting = pending_task_run(runstate_engine, tags=[full.limit.tag])
    start = runstate_clock.now()
    with pytest.raises(SetupError, match=r"proposing 'Running' kept being delayed: 100 WAITs .*the last "
                                         r"'Concurrency limit for the runstate-test-tag-1 tag has been reached' "
                                         r"with delay_seconds=30$"):
        propose(runstate_engine, waiting, Running())
    assert timedelta(0) <= runstate_clock.now() - start < SLACK
    assert waiting.state_type is StateType.PENDING


def test_propose_cannot_wait_on_a_system_clock():
    engine = Engine(SystemClock())
    run = scheduled_flow_run(engine, scheduled_time=engine.now() + timedelta(hours=1))
    with pytest.raises(SetupError, match="needs the clock to move by .*use a ManualClock"):
        propose(engine, run, Running())
    assert run.state_type is StateType.SCHEDULED


def test_failed_task_run_uses_the_retry_delay_list(runstate_engine, runstate_clock):
    run = failed_task_run(runstate_engine, attempt=2, retries=2, retry_delay=[2, 30])
    assert (run.state_name, run.run_count) == ("AwaitingRetry", 2)
    assert [n for _, n in history(runstate_engine, run)] == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry"]
    delay = run.state.state_details.scheduled_time - runstate_clock.now()
    assert timedelta(seconds=29) < delay <= timedelta(seconds=30)
    final = failed_task_run(runstate_engine, attempt=3, retries=2)
    assert final.state_type is StateType.FAILED and final.run_count == 3


def test_completed_task_run_in_a_running_flow(runstate_engine):
    flow_run = running_flow_run(runstate_engine)
    task = completed_task_run(runstate_engine, flow_run=flow_run, duration=timedelta(seconds=5))
    assert task.flow_run_id == flow_run.id and task.flow_run_run_count == 1
    assert timedelta(seconds=5) <= task.total_run_time < timedelta(seconds=5) + SLACK


def test_helper_reports_a_refused_transition(runstate_engine):
    not_running = scheduled_flow_run(runstate_engine)
    with pytest.raises(SetupError, match="ABORT.*enclosing flow must be running"):
        running_task_run(runstate_engine, flow_run=not_running)


def test_waits_need_a_manual_clock_durations_do_not():
    engine = Engine(clock=SystemClock())
    run = completed_flow_run(engine, duration=timedelta(seconds=1))
    assert run.state_type is StateType.COMPLETED and run.total_run_time < timedelta(seconds=1)
    assert failed_flow_run(engine, attempt=2, retries=1).run_count == 2  # no retry delay: no wait
    with pytest.raises(SetupError, match="ManualClock"):
        failed_flow_run(engine, attempt=2, retries=1, retry_delay=10)


def _everything(engine) -> tuple:
    return (engine.count_flow_runs(), engine.count_task_runs(), len(engine.read_deployments()),
            len(engine.read_concurrency_limits()))


def test_a_helper_that_fails_leaves_nothing_behind(runstate_engine):
    engine = runstate_engine
    flow_run = scheduled_flow_run(engine)  # not running: its tasks cannot start
    before = _everything(engine)
    with pytest.raises(SetupError, match="enclosing flow must be running"):
        running_task_run(engine, flow_run=flow_run)  # (the PENDING task run went too)
    with pytest.raises(SetupError, match="enclosing flow must be running"):
        full_tag_limit(engine, flow_run=flow_run)  # (and the tag limit)
    assert _everything(engine) == before
    system = Engine(clock=SystemClock())
    with pytest.raises(SetupError, match="ManualClock"):
        failed_flow_run(system, attempt=2, retries=1, retry_delay=10)
    assert _everything(system) == (0, 0, 0, 0)


@pytest.mark.parametrize("call, message", [
    (lambda e: paused_flow_run(e, timeout=None), "timeout must be seconds or a timedelta, got NoneType None"),
    (lambda e: paused_flow_run(e, timeout=timedelta(0)), "timeout must be more than zero"),
    (lambda e: late_flow_run(e, late_by=timedelta(minutes=-5)), "late_by must be more than zero"),
    (lambda e: completed_flow_run(e, duration=timedelta(seconds=-5)), "duration must be zero or more"),
    (lambda e: failed_task_run(e, duration=-1), "duration must be zero or more"),
    (lambda e: cached_task_run(e, expires_in="soon"), "expires_in is not a duration: .soon."),
])
def test_a_helpers_bad_time_is_named_and_nothing_is_made(runstate_engine, call, message):
    with pytest.raises(ValidationError, match=message):
        call(runstate_engine)
    assert _everything(runstate_engine) == (0, 0, 0, 0)


def test_durations_may_be_seconds(runstate_engine):
    run = completed_flow_run(runstate_engine, duration=5)
    assert timedelta(seconds=5) <= run.total_run_time < timedelta(seconds=5) + SLACK
    assert paused_flow_run(runstate_engine, timeout=60).state_type is StateType.PAUSED


def test_helper_names_are_numbered_per_engine():
    # Whatever ran before (another engine's helpers), a fresh engine's first
    # deployment, tag and task key are the same: tests may assert on them.
    def first_names(engine):
        return (full_deployment(engine, limit=1).deployment.name, full_tag_limit(engine).limit.tag,
                pending_task_run(engine).dynamic_key)

    first = first_names(Engine())
    assert first == first_names(Engine()) == ("runstate-test-deployment-1", "runstate-test-tag-1", "1")


def test_names_and_keys_skip_what_a_reopened_store_holds(tmp_path):
    """A reopened store's deployments, tag limits and task runs were named by another
    engine's counters: the helpers skip them instead of upserting one (a full
    deployment's or tag limit's runs would then be a second set on the same limit)."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with Engine.open(url) as first:
        dep, tags = full_deployment(first, limit=1), full_tag_limit(first, limit=1)
        flow_run = running_flow_run(first)
        task_run = running_task_run(first, flow_run=flow_run)
    with Engine.open(url) as reopened:
        dep2, tags2 = full_deployment(reopened, limit=1), full_tag_limit(reopened, limit=1)
        task_run2 = running_task_run(reopened, flow_run=reopened.read_flow_run(flow_run.id))
        assert dep2.deployment.id != dep.deployment.id and dep2.limit.active_slots == 1
        assert tags2.limit.tag != tags.limit.tag and len(tags2.limit.active_slots) == 1
        assert task_run2.id != task_run.id and task_run2.dynamic_key != task_run.dynamic_key
        assert len(reopened.read_deployments()) == 2


# A failed propose is one transaction too --------------------------------------------------------------------
def test_a_failed_propose_leaves_the_run_its_states_and_slots_as_they_were(runstate_engine):
    engine = runstate_engine
    deployment, tags = full_deployment(engine, limit=1), full_tag_limit(engine, limit=1)
    for run in (deployment.runs[0], tags.runs[0]):
        before = history(engine, run)
        with pytest.raises(SetupError, match="gave ACCEPT .*; expected REJECT$"):
            propose(engine, run, Completed(), expect="REJECT")  # accepted, so refused: undone
        assert run.state_type is StateType.RUNNING and run.end_time is None
        assert history(engine, run) == before
    assert engine.read_concurrency_limit_v2(deployment.limit.id).active_slots == 1
    assert engine.read_concurrency_limit_by_tag(tags.limit.tag).active_slots == [str(tags.runs[0].id)]


def test_a_failed_propose_moves_the_clock_back_by_the_waits_it_advanced(runstate_engine, runstate_clock):
    run = scheduled_flow_run(runstate_engine, scheduled_time=runstate_clock.now() + timedelta(seconds=90))
    start = runstate_clock.now()
    with pytest.raises(SetupError, match="gave ACCEPT"):  # WAIT 90 s (clock moved), then ACCEPT: not expected
        propose(runstate_engine, run, Running(), expect="REJECT")
    assert timedelta(0) <= runstate_clock.now() - start < SLACK
    assert run.state_type is StateType.SCHEDULED and run.run_count == 0


def test_a_helper_that_fails_after_advancing_the_clock_moves_it_back(runstate_engine, runstate_clock):
    start = runstate_clock.now()
    with pytest.raises(ValidationError, match="cache_key must be a string"):
        cached_task_run(runstate_engine, cache_key=5, duration=timedelta(minutes=1))  # ran 1 min, then refused
    assert timedelta(0) <= runstate_clock.now() - start < SLACK
    assert runstate_engine.count_task_runs() == 0


# Runs, flows and states as the engine takes them ------------------------------------------------------------
@pytest.mark.parametrize("as_id", [lambda run: run.id, lambda run: str(run.id)], ids=["uuid", "str"])
def test_propose_and_history_take_run_ids_and_dict_states(runstate_engine, as_id):
    engine = runstate_engine
    flow_run = running_flow_run(engine)
    task_run = pending_task_run(engine, flow_run=flow_run)
    assert propose(engine, as_id(task_run), {"type": "RUNNING"}).status == "ACCEPT"
    assert propose(engine, as_id(flow_run), {"type": "COMPLETED", "name": "Done", "message": "ok"}).status == "ACCEPT"
    assert (flow_run.state_name, flow_run.state.message) == ("Done", "ok")
    assert history(engine, as_id(task_run)) == [("PENDING", "Pending"), ("RUNNING", "Running")]
    assert history(engine, as_id(flow_run))[-1] == ("COMPLETED", "Done")


def test_helpers_take_flow_and_flow_run_ids(runstate_engine):
    engine = runstate_engine
    flow = engine.create_flow(name="mine")
    flow_run = running_flow_run(engine, flow=str(flow.id))
    assert flow_run.flow_id == flow.id
    assert full_deployment(engine, limit=1, flow=flow.id).deployment.flow_id == flow.id
    for given in ({"flow": flow.id}, {"flow_id": flow.id}):  # a suspended run's deployment is its flow's
        suspended = paused_flow_run(engine, reschedule=True, **given)
        assert engine.read_deployment(suspended.deployment_id).flow_id == flow.id == suspended.flow_id
    assert running_task_run(engine, flow_run=flow_run.id).flow_run_id == flow_run.id
    assert full_tag_limit(engine, flow_run=str(flow_run.id)).runs[0].flow_run_id == flow_run.id


@pytest.mark.parametrize("call, error, message", [
    (lambda e, r: propose(e, uuid.UUID(int=7), Running()), ObjectNotFoundError,
     "run: no flow run or task run with id 00000000-0000-0000-0000-000000000007"),
    (lambda e, r: history(e, str(uuid.UUID(int=7))), ObjectNotFoundError, "run: no flow run or task run"),
    (lambda e, r: propose(e, 7, Running()), ValidationError,
     "run must be a FlowRun, a TaskRun or a run id, got int 7"),
    (lambda e, r: history(e, "run-1"), ValidationError, "run must be a UUID, got str 'run-1'"),
    (lambda e, r: propose(e, r, "RUNNING"), ValidationError, "state must be a State or a dict, got str 'RUNNING'"),
    (lambda e, r: propose(e, r, {"type": "RUNNNG"}), ValidationError, "state.type: unknown state type 'RUNNNG'"),
    (lambda e, r: pending_task_run(e, flow_run=uuid.UUID(int=7)), ObjectNotFoundError, "flow_run: no flow run with id"),
    (lambda e, r: pending_task_run(e, flow_run=r.flow_id), ObjectNotFoundError, "flow_run: no flow run with id"),
    (lambda e, r: full_tag_limit(e, flow_run=3), ValidationError,
     "flow_run must be a FlowRun or a flow run id, got int 3"),
    (lambda e, r: completed_flow_run(e, flow=uuid.UUID(int=7)), ObjectNotFoundError, "flow: no flow with id"),
    (lambda e, r: full_deployment(e, flow="etl"), ValidationError, "flow must be a UUID, got str 'etl'"),
], ids=["propose-unknown-id", "history-unknown-id", "propose-int", "history-bad-text", "state-str", "state-bad-type",
        "flow_run-unknown", "flow_run-a-flow-id", "flow_run-int", "flow-unknown", "flow-bad-text"])
def test_a_helpers_unknown_or_bad_run_flow_or_state_is_named(runstate_engine, call, error, message):
    run = scheduled_flow_run(runstate_engine)
    before = _everything(runstate_engine)
    with pytest.raises(error, match=message):
        call(runstate_engine, run)
    assert _everything(runstate_engine) == before and run.state_type is StateType.SCHEDULED


# Exact durations -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tick", [timedelta(microseconds=1), timedelta(0), timedelta(milliseconds=3)],
                         ids=["1us", "0", "3ms"])
def test_helper_durations_are_exact_whatever_the_clocks_tick(tick):
    engine = Engine(ManualClock(tick=tick))
    thirty = timedelta(seconds=30)
    runs = [completed_flow_run(engine, duration=thirty), completed_task_run(engine, duration=thirty),
            cached_task_run(engine, duration=thirty, expires_in=timedelta(minutes=5))]
    for run in runs:
        assert run.total_run_time == thirty == run.end_time - run.start_time
    cache = next(iter(engine._store.tables["task_run_state_cache"].rows.values()))
    assert cache.cache_expiration == runs[2].end_time + timedelta(minutes=5)
    failed = [failed_flow_run(engine, attempt=3, retries=2, retry_delay=10, duration=2),
              failed_task_run(engine, attempt=3, retries=2, retry_delay=10, duration=2)]
    assert [r.total_run_time for r in failed] == [timedelta(seconds=6)] * 2
    for run in runs + failed:
        states = (engine.read_flow_run_states if hasattr(run, "flow_id") else engine.read_task_run_states)(run.id)
        stamps = [s.timestamp for s in states]
        assert stamps == sorted(set(stamps))  # unique and increasing
        assert engine.now() > stamps[-1] or (not tick and engine.now() == stamps[-1])
    assert completed_flow_run(engine, duration=0).total_run_time == timedelta(microseconds=1)  # no shared stamp
