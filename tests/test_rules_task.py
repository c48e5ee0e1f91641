"""Task-run rules, each applied alone or in a short list (spec orchestration.md §8.3,
§8.15-§8.24; conformance-cases.md B)."""
from __future__ import annotations

import uuid

import pytest

from engine.errors import ObjectNotFoundError, OrchestrationError
from engine.orchestration import (
    BackgroundTaskPolicy,
    BaseOrchestrationRule,
    CacheInsertion,
    CacheRetrieval,
    CopyTaskParametersID,
    CoreTaskPolicy,
    HandleTaskTerminalStateTransitions,
    PreventRunningTasksFromStoppedFlows,
    ReleaseTaskConcurrencySlots,
    RenameReruns,
    RetryFailedTasks,
    SecureTaskConcurrencySlots,
    UpdateFlowRunTrackerOnTasks,
    clamped_poisson_interval,
)
from engine.states import StateType
from test_orchestration_harness import (
    ABORT, ACCEPT, ALL_TYPES, PERSISTED, REJECT, SECOND, T0, TERMINAL, WAIT, Harness, policy_of,
    rejecting_to,
)

S = StateType


@pytest.fixture
def h() -> Harness:
    return Harness()


class Aborter(BaseOrchestrationRule):
    FROM_STATES = [None, *ALL_TYPES]
    TO_STATES = [None, *ALL_TYPES]

    def before_transition(self, initial_state, proposed_state, context):
        self.abort_transition("For testing purposes")


# terminal task runs ----------------------------------------------------------------------------
@pytest.mark.parametrize("initial", TERMINAL)
def test_terminal_task_runs_cannot_crash(h, initial):  # 74
    task = h.task_run(initial)
    result = h.set(task, S.CRASHED, policy_of(HandleTaskTerminalStateTransitions))
    assert (result.status, result.details.reason) == (ABORT, f"Run is already {initial.value}.")


@pytest.mark.parametrize("proposed", [S.FAILED, S.RUNNING, S.SCHEDULED])
def test_completed_task_with_a_result_is_final(h, proposed):  # 77 (any proposal, even final)
    task = h.task_run(h.state(S.COMPLETED, data=dict(PERSISTED)))
    result = h.set(task, proposed, policy_of(HandleTaskTerminalStateTransitions))
    assert (result.status, result.details.reason) == (REJECT, "This run is already completed.")


def test_rerunning_a_failed_task_resets_its_retry_budget(h):  # 59-62
    flow_run = h.flow_run(S.RUNNING, empirical_policy={"retries": 10})
    h.engine.update_flow_run(flow_run.id, empirical_policy={"retries": 10})
    flow_run.run_count = 4  # (a flow on its 4th attempt)
    task = h.task_run(S.FAILED, flow_run=flow_run, run_count=2, flow_run_run_count=2)
    rules = [HandleTaskTerminalStateTransitions, UpdateFlowRunTrackerOnTasks]
    result = h.set(task, S.RUNNING, policy_of(*rules))
    assert result.status is ACCEPT and result.state.name == "Retrying"
    assert (task.run_count, task.flow_run_run_count) == (1, 4)  # reset to 0, then the global +1
    # a later rule rejecting undoes the reset (cleanup) and the tracker never runs
    other = h.task_run(S.FAILED, flow_run=flow_run, run_count=2, flow_run_run_count=2)
    result = h.set(other, S.RUNNING, policy_of(*rules, rejecting_to(S.PENDING)))
    assert result.status is REJECT
    assert (other.run_count, other.flow_run_run_count) == (2, 2)


def test_same_attempt_rerun_keeps_the_name(h):  # 60
    flow_run = h.flow_run(S.RUNNING)
    task = h.task_run(S.FAILED, flow_run=flow_run, flow_run_run_count=flow_run.run_count)
    result = h.set(task, S.RUNNING, policy_of(HandleTaskTerminalStateTransitions))
    assert result.state.name == "Running"


# the enclosing flow run ----------------------------------------------------------------------------
@pytest.mark.parametrize("flow_type", [None, *ALL_TYPES])
def test_tasks_run_only_in_running_flows(h, flow_type):  # 111, 112
    flow_run = h.flow_run(flow_type)
    task = h.task_run(S.PENDING, flow_run=flow_run)
    result = h.set(task, S.RUNNING, policy_of(PreventRunningTasksFromStoppedFlows))
    if flow_type is S.RUNNING:
        assert result.status is ACCEPT
    elif flow_type is S.PAUSED:
        assert (result.status, result.state.type, result.state.name) == (REJECT, S.PAUSED, "NotReady")
        assert result.details.reason == (
            f"The flow is paused, new tasks can execute after resuming flow run: {flow_run.id}."
        )
    else:
        assert result.status is ABORT and task.state_type is S.PENDING
        assert result.details.reason == "The enclosing flow must be running to begin task execution."


def test_not_ready_copies_the_flow_pause(h):  # 113
    timeout = h.clock.now() + 600 * SECOND
    flow_run = h.flow_run(h.state(S.PAUSED, state_details={"pause_timeout": timeout, "pause_reschedule": True,
                                                            "pause_key": "k"}))
    task = h.task_run(S.PENDING, flow_run=flow_run)
    result = h.set(task, S.RUNNING, policy_of(PreventRunningTasksFromStoppedFlows))
    details = result.state.state_details
    assert result.state.id != flow_run.state_id
    assert (details.pause_timeout, details.pause_reschedule, details.pause_key) == (timeout, True, None)


def test_autonomous_tasks_need_no_flow_run(h):
    task = h.task_run(S.PENDING, flow_run=None)
    assert h.set(task, S.RUNNING, CoreTaskPolicy).status is ACCEPT


def test_tracker_fails_loudly_when_the_flow_run_vanished(h):  # 58
    task = h.task_run(S.PENDING, flow_run_run_count=1)
    h.engine._store.tables["flow_run"].rows.pop(task.flow_run_id)  # simulate a lost row
    with pytest.raises(ObjectNotFoundError, match="Unable to read flow run associated with task run"):
        h.set(task, S.RUNNING, policy_of(UpdateFlowRunTrackerOnTasks))
    assert task.flow_run_run_count == 1 and task.state_type is S.PENDING


# retries --------------------------------------------------------------------------------------------------
def running_task(h, run_count=1, **policy):
    task = h.task_run(S.PENDING, empirical_policy=policy)
    h.set(task, S.RUNNING)
    task.run_count = run_count
    return task


def test_task_with_retries_left_awaits_retry(h):  # 63, 68
    task = running_task(h, run_count=2, retries=2)
    result = h.set(task, h.state(S.FAILED, message="x"), policy_of(RetryFailedTasks))
    assert (result.status, result.details.reason, result.state.name) == (REJECT, "Retrying", "AwaitingRetry")
    assert result.state.message == "x"
    exhausted = running_task(h, run_count=3, retries=2)
    assert h.set(exhausted, S.FAILED, policy_of(RetryFailedTasks)).status is ACCEPT


@pytest.mark.parametrize("name", [None, "AwaitingRetry"])
def test_non_retriable_failures_are_final(h, name):  # 69, 70
    task = running_task(h, run_count=1, retries=2)
    state = h.state(S.FAILED, name=name, state_details={"retriable": False})
    assert h.set(task, state, policy_of(RetryFailedTasks)).status is ACCEPT


@pytest.mark.parametrize("delays, run_count, expected", [
    ([2, 3, 5, 7, 11], 3, 5), ([2, 3, 5, 7], 6, 7), ([4, 9], 0, 9), (10, 1, 10),
    ([], 1, 0),  # (Prefect raises IndexError on an empty list: no delay here)
    (None, 1, 0),
])
def test_retry_delay_by_attempt(h, delays, run_count, expected):  # 64-66
    task = running_task(h, run_count=run_count, retries=6, retry_delay=delays)
    result = h.set(task, S.FAILED, policy_of(RetryFailedTasks))
    waited = (result.state.state_details.scheduled_time - result.state.timestamp).total_seconds()
    assert waited == pytest.approx(expected, abs=0.01)


def test_jitter_is_reproducible_with_a_seeded_engine():
    delays = []
    for _ in range(2):
        h = Harness()  # seeds engine.random identically
        task = running_task(h, run_count=1, retries=1, retry_delay=10, retry_jitter_factor=9)
        state = h.set(task, S.FAILED, policy_of(RetryFailedTasks)).state
        delays.append((state.state_details.scheduled_time - state.timestamp).total_seconds())
    assert delays[0] == delays[1]
    assert 0 <= delays[0] <= 100


def test_a_rolled_back_call_gives_its_jitter_draw_back():
    # A failed call leaves the engine as it was, its generator included: the draw a
    # rolled-back retry took is drawn again by the next one.
    def retry_delay(h, task):
        state = h.set(task, S.FAILED, policy_of(RetryFailedTasks)).state
        return (state.state_details.scheduled_time - state.timestamp).total_seconds()

    untouched = Harness()
    expected = retry_delay(untouched, running_task(untouched, run_count=1, retries=1, retry_delay=10,
                                                   retry_jitter_factor=9))
    h = Harness()
    task = running_task(h, run_count=1, retries=1, retry_delay=10, retry_jitter_factor=9)
    before = h.engine.random.getstate()
    with pytest.raises(RuntimeError, match="undo"):
        with h.engine.transaction():
            retry_delay(h, task)
            raise RuntimeError("undo")
    assert h.engine.random.getstate() == before
    assert retry_delay(h, task) == expected


def test_clamped_poisson_interval_stays_in_bounds():
    import random

    rng = random.Random(7)
    draws = [clamped_poisson_interval(10, 0.5, rng) for _ in range(500)]
    assert all(0 <= d <= 15 + 1e-9 for d in draws)
    assert min(draws) < 10 < max(draws)


def test_jitter_with_zero_delay_means_no_delay(h):  # deliberate: Prefect divides by zero
    task = running_task(h, run_count=1, retries=1, retry_jitter_factor=2)
    result = h.set(task, S.FAILED, policy_of(RetryFailedTasks))
    assert result.state.state_details.scheduled_time == result.state.timestamp


@pytest.mark.parametrize("run_count, initial_name, expected", [(2, "Scheduled", "Rerunning"), (2, "AwaitingRetry", "Retrying"), (0, "Scheduled", "Running")])
def test_reruns_are_renamed(h, run_count, initial_name, expected):  # 71-73
    task = h.task_run(h.state(S.SCHEDULED, name=initial_name), run_count=run_count)
    assert h.set(task, S.RUNNING, policy_of(RenameReruns)).state.name == expected


def test_rerun_of_a_stateless_task_fails_the_call(h):
    # Prefect 3.1.0 crashes reading the missing state's name (checked against it):
    # the call fails and nothing changes. So does ours, with a documented error.
    task = h.task_run(None, flow_run=None, run_count=1)
    with pytest.raises(OrchestrationError, match="no state"):
        h.set(task, S.RUNNING, policy_of(RenameReruns))
    assert task.state_id is None and task.run_count == 1 and task.start_time is None
    fresh = h.task_run(None, flow_run=None)  # run_count 0: nothing to rename
    assert h.set(fresh, S.RUNNING, policy_of(RenameReruns)).state.name == "Running"

# caching ---------------------------------------------------------------------------------------------------
def complete_with_key(h, key="cache-hit", expires_in=None, data=None):
    producer = h.task_run(S.RUNNING)
    details = {"cache_key": key}
    if expires_in is not None:
        details["cache_expiration"] = h.clock.now() + expires_in * SECOND
    result = h.set(producer, h.state(S.COMPLETED, data=data, state_details=details), policy_of(CacheInsertion))
    return producer, result


@pytest.mark.parametrize("expires_in, status, name", [(-86400, ACCEPT, "Running"), (86400, REJECT, "Cached"), (None, REJECT, "Cached")])
def test_cache_hits_until_expiry(h, expires_in, status, name):  # 46-48
    _, produced = complete_with_key(h, expires_in=expires_in, data=dict(PERSISTED))
    consumer = h.task_run(S.PENDING)
    result = h.set(consumer, h.state(S.RUNNING, state_details={"cache_key": "cache-hit"}), policy_of(CacheRetrieval))
    assert (result.status, result.state.name) == (status, name)
    if status is REJECT:
        assert result.details.reason == "Retrieved state from cache"
        assert result.state.type is S.COMPLETED and result.state.id != produced.state.id
        assert result.state.data == PERSISTED
        assert result.state.state_details.task_run_id == consumer.id  # ids overwritten
        assert consumer.run_count == 0 and consumer.start_time is None


@pytest.mark.parametrize("proposed", [t for t in ALL_TYPES if t is not S.COMPLETED])
def test_only_completed_states_are_cached(h, proposed):  # 50
    producer = h.task_run(S.RUNNING)
    h.set(producer, h.state(proposed, state_details={"cache_key": "k"}), policy_of(CacheInsertion))
    assert not h.engine._store.tables["task_run_state_cache"].rows


def test_refresh_cache_skips_the_lookup_and_newest_entry_wins(h):
    complete_with_key(h, key="k", data={"value": 1})
    h.clock.advance(1)
    complete_with_key(h, key="k", data={"value": 2})
    consumer = h.task_run(S.PENDING)
    fresh = h.state(S.RUNNING, state_details={"cache_key": "k", "refresh_cache": True})
    assert h.set(consumer, fresh, policy_of(CacheRetrieval)).status is ACCEPT
    other = h.task_run(S.PENDING)
    result = h.set(other, h.state(S.RUNNING, state_details={"cache_key": "k"}), policy_of(CacheRetrieval))
    assert result.state.data == {"value": 2}


def test_cache_entries_written_out_of_time_order_newest_created_wins_until_it_expires(h):
    # The clock is set back between two writes of key k (a ManualClock may be):
    # the lookup takes the entry created last, not the one written last, and skips
    # it from the instant it expires (expiration <= now), as Prefect's query does.
    expiry = T0 + 3600 * SECOND
    h.clock.set(T0 + 600 * SECOND)
    newer = h.task_run(S.RUNNING)
    h.set(newer, h.state(S.COMPLETED, data={"v": "newer"}, state_details={"cache_key": "k", "cache_expiration": expiry}),
          policy_of(CacheInsertion))
    h.clock.set(T0 + 300 * SECOND)
    older = h.task_run(S.RUNNING)
    h.set(older, h.state(S.COMPLETED, data={"v": "older"}, state_details={"cache_key": "k"}), policy_of(CacheInsertion))

    def lookup_at(when):
        consumer = h.task_run(S.PENDING)
        proposed = h.state(S.RUNNING, state_details={"cache_key": "k"})
        h.clock.set(when)
        return h.set(consumer, proposed, policy_of(CacheRetrieval)).state.data

    assert lookup_at(T0 + 1800 * SECOND) == {"v": "newer"}
    assert lookup_at(expiry - SECOND / 1000) == {"v": "newer"}
    assert lookup_at(expiry) == {"v": "older"}


def test_cache_entry_whose_state_is_gone_is_a_miss(h):
    producer, produced = complete_with_key(h, key="k")
    h.engine.delete_task_run_state(produced.state.id)
    consumer = h.task_run(S.PENDING)
    result = h.set(consumer, h.state(S.RUNNING, state_details={"cache_key": "k"}), policy_of(CacheRetrieval))
    assert result.status is ACCEPT


def test_cache_hits_ignore_tag_limits(h):
    complete_with_key(h, key="k")
    h.engine.create_concurrency_limit("db", 0)
    consumer = h.task_run(S.PENDING, tags=["db"])
    result = h.set(consumer, h.state(S.RUNNING, state_details={"cache_key": "k"}), CoreTaskPolicy)
    assert (result.status, result.state.name) == (REJECT, "Cached")
    assert h.engine.read_concurrency_limit_by_tag("db").active_slots == []


# background tasks ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("initial", [S.SCHEDULED, S.PENDING])
@pytest.mark.parametrize("proposed, copied", [(S.PENDING, True), (S.RUNNING, True), (S.COMPLETED, False)])
def test_parameters_id_is_carried_forward(h, initial, proposed, copied):  # 44, 45
    pid = uuid.uuid4()
    task = h.task_run(h.state(initial, state_details={"task_parameters_id": pid}), flow_run=None)
    result = h.set(task, proposed, policy_of(CopyTaskParametersID))
    assert (result.state.state_details.task_parameters_id == pid) is copied


def test_deferred_scheduled_tasks_are_queued_by_task_key(h):
    task = h.task_run(None, flow_run=None, task_key="bg")
    h.set(task, h.state(S.SCHEDULED, state_details={"deferred": True}))
    assert h.engine.task_queues["bg"] == {"scheduled": [task.id], "retry": []}
    h.set(task, S.RUNNING, BackgroundTaskPolicy)
    # A retry rejected into AwaitingRetry is not enqueued (rules match the intended
    # RUNNING -> FAILED only); a proposed deferred AwaitingRetry goes to the retry queue.
    retry = h.state(S.SCHEDULED, name="AwaitingRetry", state_details={"deferred": True})
    h.set(task, retry, BackgroundTaskPolicy)
    assert h.engine.task_queues["bg"] == {"scheduled": [task.id], "retry": [task.id]}


def test_queue_entries_roll_back_with_the_transaction(h):
    task = h.task_run(None, flow_run=None, task_key="bg")
    with pytest.raises(RuntimeError):
        with h.engine.transaction():
            h.set(task, h.state(S.SCHEDULED, state_details={"deferred": True}))
            raise RuntimeError("undo")
    assert "bg" not in h.engine.task_queues and task.state_id is None
    # A queue that exists already: only the rolled-back entry goes.
    h.set(task, h.state(S.SCHEDULED, state_details={"deferred": True}))
    other = h.task_run(None, flow_run=None, task_key="bg")
    with pytest.raises(RuntimeError):
        with h.engine.transaction():
            h.set(other, h.state(S.SCHEDULED, state_details={"deferred": True}))
            raise RuntimeError("undo")
    assert h.engine.task_queues["bg"] == {"scheduled": [task.id], "retry": []} and other.state_id is None


# tag concurrency ----------------------------------------------------------------------------------------------
def slots(h, tag):
    return h.engine.read_concurrency_limit_by_tag(tag).active_slots


def test_zero_limit_aborts(h):  # 85
    h.engine.create_concurrency_limit("t", 0)
    task = h.task_run(S.PENDING, tags=["t"])
    result = h.set(task, S.RUNNING, policy_of(SecureTaskConcurrencySlots))
    assert result.status is ABORT
    assert result.details.reason == 'The concurrency limit on tag "t" is 0 and will deadlock if the task tries to run again.'


def test_slot_released_when_a_later_rule_rejects(h):  # 86
    h.engine.create_concurrency_limit("t", 1)
    task = h.task_run(S.PENDING, tags=["t"])
    result = h.set(task, S.RUNNING, policy_of(SecureTaskConcurrencySlots, ReleaseTaskConcurrencySlots, rejecting_to(S.FAILED)))
    assert result.status is REJECT and slots(h, "t") == []


@pytest.mark.parametrize("order", ["release_first", "mutator_first"])
def test_leaving_running_through_a_rejection_frees_the_slot(h, order):  # 94, 95
    h.engine.create_concurrency_limit("small", 1)
    task = h.task_run(S.PENDING, tags=["small"])
    h.set(task, S.RUNNING, CoreTaskPolicy)
    assert slots(h, "small") == [str(task.id)]
    rules = ([ReleaseTaskConcurrencySlots, SecureTaskConcurrencySlots, rejecting_to(S.COMPLETED)]
             if order == "release_first" else [rejecting_to(S.COMPLETED), SecureTaskConcurrencySlots, ReleaseTaskConcurrencySlots])
    result = h.set(task, S.PENDING, policy_of(*rules))
    assert result.status is REJECT and slots(h, "small") == []


@pytest.mark.parametrize("order", ["abort_last", "abort_first"])
def test_aborted_transition_keeps_the_slot(h, order):  # 96, 97
    h.engine.create_concurrency_limit("small", 1)
    task = h.task_run(S.PENDING, tags=["small"])
    h.set(task, S.RUNNING, CoreTaskPolicy)
    rules = ([ReleaseTaskConcurrencySlots, SecureTaskConcurrencySlots, Aborter]
             if order == "abort_last" else [Aborter, SecureTaskConcurrencySlots, ReleaseTaskConcurrencySlots])
    assert h.set(task, S.COMPLETED, policy_of(*rules)).status is ABORT
    assert slots(h, "small") == [str(task.id)]


def test_blocking_tag_releases_earlier_tags_but_leaks_later_ones(h):  # quirk 6
    for tag, limit in (("a", 5), ("b", 1), ("c", 5)):
        h.engine.create_concurrency_limit(tag, limit)
    holder = h.task_run(S.PENDING, tags=["b"])
    h.set(holder, S.RUNNING, CoreTaskPolicy)
    task = h.task_run(S.PENDING, tags=["c", "b", "a"])
    result = h.set(task, S.RUNNING, policy_of(SecureTaskConcurrencySlots))
    assert (result.status, result.details.reason) == (WAIT, "Concurrency limit for the b tag has been reached")
    assert result.details.delay_seconds == 30
    assert slots(h, "a") == [] and slots(h, "c") == [str(task.id)]


def test_last_blocking_tag_decides_the_answer(h):
    h.engine.create_concurrency_limit("a", 0)
    h.engine.create_concurrency_limit("b", 1, active_slots=["someone"])
    task = h.task_run(S.PENDING, tags=["a", "b"])
    result = h.set(task, S.RUNNING, policy_of(SecureTaskConcurrencySlots))
    assert result.status is WAIT  # b (after a) overrides a's abort


def test_duplicate_slots_from_an_override_go_on_the_next_write(h):
    # Prefect rewrites a tag limit's slots through a set on every add and removal, so
    # the duplicates only `slot_override` can store are counted until then, and a
    # released run leaves no copy behind.
    h.engine.create_concurrency_limit("t", 4)
    h.engine.reset_concurrency_limit_by_tag("t", slot_override=["h1", "h1", "h2"])
    first = h.task_run(S.PENDING, tags=["t"])
    assert h.set(first, S.RUNNING, CoreTaskPolicy).status is ACCEPT  # 3 stored < 4
    assert slots(h, "t") == ["h1", "h2", str(first.id)]
    second = h.task_run(S.PENDING, tags=["t"])
    assert h.set(second, S.RUNNING, CoreTaskPolicy).status is ACCEPT  # 3 again, not 4
    h.engine.reset_concurrency_limit_by_tag("t", slot_override=[str(second.id), "h1", str(second.id)])
    assert h.set(second, S.COMPLETED, CoreTaskPolicy).status is ACCEPT
    assert slots(h, "t") == ["h1"]


def test_duplicates_go_even_when_the_run_holds_none_or_holds_one_already(h):
    h.engine.create_concurrency_limit("t", 4)
    h.engine.reset_concurrency_limit_by_tag("t", slot_override=["h1", "h2", "h1"])
    task = h.task_run(S.PENDING, tags=["t"])  # lands outside RUNNING: a release holding none
    assert slots(h, "t") == ["h1", "h2"]
    h.engine.reset_concurrency_limit_by_tag("t", slot_override=[str(task.id), "h1", str(task.id)])
    assert h.set(task, S.RUNNING, CoreTaskPolicy).status is ACCEPT  # its slot is held: kept once
    assert slots(h, "t") == [str(task.id), "h1"]


def published_kinds(h) -> list[str]:
    """Kinds of the records each later commit publishes (what backends write)."""
    kinds: list[str] = []
    h.engine._store.listeners.append(lambda changes: kinds.extend(c.kind for c in changes))
    return kinds


def test_a_held_slot_is_taken_once_and_the_list_left_alone(h):
    h.engine.create_concurrency_limit("t", 3, active_slots=["other"])
    task = h.task_run(S.PENDING, tags=["t"])
    assert h.set(task, S.RUNNING, CoreTaskPolicy).status is ACCEPT
    held = slots(h, "t")
    assert held == ["other", str(task.id)]
    kinds = published_kinds(h)
    assert h.set(task, S.RUNNING, CoreTaskPolicy).status is ACCEPT  # 2 < 3: room, but no second slot
    assert slots(h, "t") is held and "concurrency_limit" not in kinds


def test_a_run_holding_no_slot_leaves_the_list_alone(h):
    h.engine.create_concurrency_limit("t", 2, active_slots=["a", "b"])
    before = slots(h, "t")
    task = h.task_run(S.PENDING, tags=["t"])
    kinds = published_kinds(h)
    assert h.set(task, S.CANCELLED, CoreTaskPolicy).status is ACCEPT
    assert slots(h, "t") is before and "concurrency_limit" not in kinds


def test_slots_are_released_in_place_and_the_others_kept_in_order(h):
    h.engine.create_concurrency_limit("t", 4, active_slots=["a", "b"])
    first, second = h.task_run(S.PENDING, tags=["t"]), h.task_run(S.PENDING, tags=["t"])
    for task in (first, second):
        assert h.set(task, S.RUNNING, CoreTaskPolicy).status is ACCEPT
    assert slots(h, "t") == ["a", "b", str(first.id), str(second.id)]
    assert h.set(first, S.COMPLETED, CoreTaskPolicy).status is ACCEPT
    assert slots(h, "t") == ["a", "b", str(second.id)]
    assert h.set(second, S.FAILED, CoreTaskPolicy).status is ACCEPT
    assert slots(h, "t") == ["a", "b"]


def test_a_rolled_back_transition_leaves_the_slots_as_they_were(h):
    h.engine.create_concurrency_limit("t", 3, active_slots=["a", "b"])
    task = h.task_run(S.PENDING, tags=["t"])
    with pytest.raises(RuntimeError):
        with h.engine.transaction():
            assert h.set(task, S.RUNNING, CoreTaskPolicy).status is ACCEPT
            assert slots(h, "t") == ["a", "b", str(task.id)]
            raise RuntimeError("undo")
    assert slots(h, "t") == ["a", "b"]
    # The restored list is used like any other: the slot is taken, then a rolled-back
    # release leaves it held, and a real one gives it back.
    assert h.set(task, S.RUNNING, CoreTaskPolicy).status is ACCEPT
    with pytest.raises(RuntimeError):
        with h.engine.transaction():
            assert h.set(task, S.COMPLETED, CoreTaskPolicy).status is ACCEPT
            assert slots(h, "t") == ["a", "b"]
            raise RuntimeError("undo")
    assert slots(h, "t") == ["a", "b", str(task.id)]
    assert h.set(task, S.COMPLETED, CoreTaskPolicy).status is ACCEPT
    assert slots(h, "t") == ["a", "b"]


class Raiser(BaseOrchestrationRule):
    FROM_STATES = [None, *ALL_TYPES]
    TO_STATES = [None, *ALL_TYPES]

    def before_transition(self, initial_state, proposed_state, context):
        raise RuntimeError("rule bug")


def test_a_rule_that_raises_after_the_slot_was_taken_leaves_the_slots_as_they_were(h):
    h.engine.create_concurrency_limit("t", 3, active_slots=["a", "b"])
    task = h.task_run(S.PENDING, tags=["t"])
    with pytest.raises(RuntimeError, match="rule bug"):
        h.set(task, S.RUNNING, policy_of(SecureTaskConcurrencySlots, Raiser))
    assert slots(h, "t") == ["a", "b"]


def test_deleting_a_running_task_run_keeps_its_slot(h):
    # As Prefect's delete_task_run (a plain DELETE): nothing gives a tag slot back, it
    # stays taken until a reset_concurrency_limit_by_tag.
    h.engine.create_concurrency_limit("t", 2)
    task = h.task_run(S.PENDING, tags=["t"])
    h.set(task, S.RUNNING, CoreTaskPolicy)
    assert h.engine.delete_task_run(task.id)
    assert slots(h, "t") == [str(task.id)]


def test_own_slot_is_not_exempt_from_the_check(h):
    h.engine.create_concurrency_limit("t", 1)
    task = h.task_run(S.PENDING, tags=["t"])
    h.set(task, S.RUNNING, CoreTaskPolicy)
    assert h.set(task, S.RUNNING, CoreTaskPolicy).status is WAIT


def test_forced_exit_from_running_releases_slots(h):
    h.engine.create_concurrency_limit("t", 1)
    task = h.task_run(S.PENDING, tags=["t"])
    h.set(task, S.RUNNING, CoreTaskPolicy)
    h.set(task, S.CRASHED, force=True)
    assert slots(h, "t") == []


def test_fizzled_secure_gives_slots_back(h):
    h.engine.create_concurrency_limit("t", 2)
    when = h.clock.now() + 60 * SECOND
    task = h.task_run(h.state(S.SCHEDULED, state_details={"scheduled_time": when}), tags=["t"])
    result = h.set(task, S.RUNNING, CoreTaskPolicy)  # WaitForScheduledTime delays after Secure ran
    assert result.status is WAIT and slots(h, "t") == []
