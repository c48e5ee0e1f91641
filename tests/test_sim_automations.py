"""Automations in the simulator (Prefect's proactive event triggers over flow-run
state events, and the change-flow-run-state action), checked against the
engine's state histories."""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
import pathlib
import re
import types
import uuid

import pytest

from engine import TERMINAL_STATES, State, StateType
from engine.sim import WorkloadError, parse_workload
from engine.sim.automations import Automations
from engine.sim.loop import EventLoop, SimClock
from engine.sim.report import build_report, summary_text
from engine.sim.sweep import comparison_text
from oracle_answers import load_oracle_script
import sim_support
from sim_support import START, flow_states, in_flight_at, pickups, seconds, simulate

MESSAGE = "no state change for an hour: presumed a zombie"
REAPER = {
    "name": "reaper",
    "trigger": {"posture": "Proactive", "after": ["prefect.flow-run.Running"], "expect": ["prefect.flow-run.*"],
                "for_each": ["prefect.resource.id"], "within": "1h"},
    "actions": [{"type": "change-flow-run-state", "state": "CRASHED", "message": MESSAGE}],
}
# sim_support's pool of two, a 25-minute run every 10 minutes, whose worker now
# dies without a word at 30 minutes (its two runs are lost) and is back at 40.
DYING = {**sim_support.DYING, "automations": [REAPER],
         "workers": [{"pool": "p", "poll_interval": "10s",
                      "outages": [{"at": "30m", "duration": "10m", "runs": "lost"}]}]}


def history(engine, rec) -> list:
    return engine.read_flow_run_states(rec.id)


def crashed_by_automation(engine) -> list:
    return [rec for rec in engine.read_flow_runs() if any(s.message == MESSAGE for s in history(engine, rec))]


def first_pass_after(t: float, every: float = 5.0) -> float:
    return math.ceil(t / every) * every


def test_the_zombie_recipe_crashes_runs_lost_with_their_worker_an_hour_after_they_went_running():
    result, engine = simulate(DYING)
    lost = crashed_by_automation(engine)
    report = build_report(result)
    assert len(lost) == 2 and report["workers"]["runs_lost"] == 2
    for rec in lost:
        states = history(engine, rec)
        running, crashed = states[-2], states[-1]
        assert running.type is StateType.RUNNING and crashed.type is StateType.CRASHED
        # On the service's first pass (every 5 s from the start) at or after the window's end.
        assert seconds(crashed.timestamp) == first_pass_after(seconds(running.timestamp) + 3600)
        assert rec.end_time is not None
        # Only the flow run changes: its task run stays RUNNING, as in Prefect.
        [task] = engine.read_task_runs(flow_run_filter={"id": {"any_": [rec.id]}})
        assert task.state_type is StateType.RUNNING
    # Runs that changed state within the hour were left alone.
    assert all(rec.state_type is StateType.COMPLETED for rec in engine.read_flow_runs()
               if rec not in lost and rec.state_type in (StateType.CRASHED, StateType.COMPLETED))
    assert report["automations"] == {"reaper": {"triggered": 2, "actions_executed": 2, "actions_failed": 0}}
    assert "Automation 'reaper': triggered 2 times, 2 actions executed, 0 failed" in summary_text(report)
    # Counted as finished once crashed; their pool slots are free again.
    assert report["flow_runs"]["by_state"]["CRASHED"] == 2 and report["deployments"]["d"]["CRASHED"] == 2
    freed = max(seconds(history(engine, rec)[-1].timestamp) for rec in lost)
    assert [t for t in pickups(engine) if freed <= t < freed + 15]
    assert build_report(simulate(DYING)[0]) == report   # deterministic


def test_without_the_automation_the_lost_runs_hold_the_pool_for_good():
    for setting in ("automations[reaper].enabled=false", "services.triggers.enabled=false", "automations=[]"):
        result, engine = simulate(DYING, setting)
        assert not crashed_by_automation(engine)
        without = build_report(result)
        assert without["flow_runs"]["by_state"]["RUNNING"] == 2
        assert without["automations"] == {}
    with_it = build_report(simulate(DYING)[0])
    rows = comparison_text(["with", "without"], [with_it, without]).splitlines()
    assert [row.split() for row in rows if "automations triggered" in row] == [["automations", "triggered", "2", "-"]]
    # Reports without automations get no such rows.
    rows = comparison_text(["a", "b"], [without, without]).splitlines()
    assert not [row for row in rows if "automations" in row or "actions failed" in row]


def test_a_run_alive_past_the_window_is_crashed_too_and_its_own_next_proposal_moves_it_on():
    # No worker dies; the runs simply run longer (25 minutes) than the window (10).
    result, engine = simulate(DYING, "workers[0].outages=[]", 'automations[reaper].trigger.within="10m"',
                              'simulation.until="70m"')
    crashed = crashed_by_automation(engine)
    for rec in crashed:
        kinds = [s.type for s in history(engine, rec)]
        at = kinds.index(StateType.CRASHED)
        assert kinds[at - 1] is StateType.RUNNING
        # Its process did not know: its task completed and it proposed COMPLETED,
        # which CoreFlowPolicy accepts from CRASHED (runs still running at the end
        # stay CRASHED).
        assert kinds[at + 1:] in ([], [StateType.COMPLETED])
    assert sum(rec.state_type is StateType.COMPLETED for rec in crashed) >= 3
    report = build_report(result)
    assert report["automations"]["reaper"]["triggered"] == len(crashed)
    # Each counted as finished once, in its final state.
    assert report["flow_runs"]["finished"] == sum(rec.state_type is StateType.COMPLETED
                                                  for rec in engine.read_flow_runs())


@pytest.mark.parametrize("within, expect, threshold, fires", [
    ("30m", ["prefect.flow-run.Completed"], 1, False),   # completes after 25 minutes: in time
    ("20m", ["prefect.flow-run.Completed"], 1, True),    # too late
    ("30m", ["prefect.flow-run.Completed"], 2, True),    # one Completed is below a threshold of 2
    ("30m", ["prefect.flow-run.Failed"], 1, True),       # the expected event never comes
    ("30m", [], 1, False),                               # no expect: every event is expected
])
def test_a_window_fires_only_when_fewer_expected_events_than_the_threshold_came(within, expect, threshold, fires):
    auto = copy.deepcopy(REAPER)
    auto["trigger"].update(within=within, expect=expect, threshold=threshold)
    auto["actions"][0]["state"] = "FAILED"
    data = {**DYING, "workers": [{"pool": "p", "poll_interval": "10s"}], "automations": [auto],
            "simulation": {**DYING["simulation"], "until": "40m"}}
    result, engine = simulate(data)
    outcome = build_report(result)["automations"]["reaper"]
    assert (outcome["triggered"] > 0) is fires
    if fires:
        # Each executed action left its message in one run's history.
        assert len(crashed_by_automation(engine)) == outcome["actions_executed"]


def slow_service(within: str) -> tuple:
    """The first run alone (29 minutes, no outage) under the reaper with window
    `within`, the triggers service passing every 30 minutes."""
    return simulate(DYING, "workers[0].outages=[]", 'simulation.until="29m"', 'services.triggers.loop="30m"',
                    f'automations[reaper].trigger.within="{within}"')


def test_an_expected_event_after_the_window_but_before_the_pass_fires_at_once_and_the_action_can_fail():
    # The window (24m30s) ends half a minute before the run completes (25 minutes),
    # and the next pass comes later still. (A minute after its end, the window would
    # have been swept: see the next test.)
    result, engine = slow_service("24m30s")
    [first] = [rec for rec in engine.read_flow_runs() if rec.state_type is StateType.COMPLETED]
    # The Completed event closed the window (no event counted in it): the automation
    # fired then, and its CRASHED proposal came too late for a COMPLETED run.
    assert StateType.CRASHED not in [s.type for s in history(engine, first)]
    assert not crashed_by_automation(engine)
    assert build_report(result)["automations"]["reaper"] == {"triggered": 1, "actions_executed": 0,
                                                           "actions_failed": 1}


def test_a_window_ended_a_minute_before_the_event_is_swept_and_nothing_fires():
    result, engine = slow_service("20m")
    assert engine.count_flow_runs(flow_run_filter={"state": {"type": {"any_": ["COMPLETED"]}}}) == 1
    assert build_report(result)["automations"]["reaper"]["triggered"] == 0


def test_match_related_restricts_an_automation_to_one_deployments_runs():
    data = copy.deepcopy(DYING)
    data["work_pools"][0]["concurrency_limit"] = 4
    data["deployments"].append({"name": "other", "flow": "f", "pool": "p", "schedule": {"interval": "10m"},
                                "tags": ["nightly"]})
    data["automations"][0]["trigger"]["match_related"] = {"prefect.resource.role": "deployment",
                                                           "prefect.resource.name": ["d"]}
    _, engine = simulate(data)
    deployments = {dep.id: dep.name for dep in engine.read_deployments()}
    crashed = crashed_by_automation(engine)
    # (the runs lost at 30 minutes, not those running at the end)
    lost = [rec for rec in engine.read_flow_runs() if rec.state_type is StateType.RUNNING
            and seconds(rec.state.timestamp) < 1800]
    assert crashed and lost
    assert {deployments[rec.deployment_id] for rec in crashed} == {"d"}
    assert {deployments[rec.deployment_id] for rec in lost} == {"other"}
    # A tag is a related resource too (prefect.tag.<tag>): the other deployment's runs carry it.
    data["automations"][0]["trigger"]["match_related"] = {"prefect.resource.id": "prefect.tag.nightly"}
    _, engine = simulate(data)
    assert {deployments[rec.deployment_id] for rec in crashed_by_automation(engine)} == {"other"}


@pytest.mark.parametrize("match, fires", [
    ({"prefect.state-type": "!RUNNING"}, False),   # its after event is a RUNNING one: never covered
    ({"prefect.state-type": "RUNNING"}, True),     # only RUNNING events: the window counts none
    ({"prefect.state-name": ["Late", "Running"], "prefect.resource.name": "*"}, True),
    ({"prefect.resource.id": "prefect.flow-run.*"}, True),
    ({"prefect.resource.id": "prefect.deployment.*"}, False),
])
def test_match_selects_the_events_of_the_run_itself(match, fires):
    data = copy.deepcopy(DYING)
    data["automations"][0]["trigger"]["match"] = match
    _, engine = simulate(data)
    assert len(crashed_by_automation(engine)) == (2 if fires else 0)


def test_an_action_that_ends_a_run_still_in_its_queue_finishes_it():
    # One slot, 25-minute runs every 10 minutes: runs pile up and go Late; an
    # automation cancels those still not taken 30 minutes after going Late.
    auto = {"name": "drop-late", "trigger": {"posture": "Proactive", "after": ["prefect.flow-run.Late"],
                                             "expect": ["prefect.flow-run.Pending"],
                                             "for_each": ["prefect.resource.id"], "within": "30m"},
            "actions": [{"type": "change-flow-run-state", "state": "CANCELLED"}]}
    data = {**DYING, "work_pools": [{"name": "p", "concurrency_limit": 1}],
            "workers": [{"pool": "p", "poll_interval": "10s"}], "automations": [auto]}
    result, engine = simulate(data, runs=30)
    finals = [rec for rec in engine.read_flow_runs() if rec.state_type in TERMINAL_STATES]
    cancelled = [rec for rec in finals if rec.state_type is StateType.CANCELLED]
    report = build_report(result)
    assert cancelled and report["automations"]["drop-late"]["actions_executed"] == len(cancelled)
    # Each counted once, and the simulation stopped at its 30 runs.
    assert report["flow_runs"]["finished"] == len(finals) == 30
    assert report["deployments"]["d"]["CANCELLED"] == len(cancelled)
    assert result.end_seconds < 12 * 3600


def test_cancelling_from_an_action_is_carried_out_by_the_worker_after_the_cancel_latency():
    auto = copy.deepcopy(REAPER)
    auto["trigger"].update(expect=["prefect.flow-run.Completed"], within="5m")
    auto["actions"][0] = {"type": "change-flow-run-state", "state": "CANCELLING"}
    data = {**DYING, "workers": [{"pool": "p", "poll_interval": "10s"}], "automations": [auto],
            "flows": [{**DYING["flows"][0], "cancel": {"probability": 0.0, "after": "1h", "latency": "7s"}}],
            "simulation": {**DYING["simulation"], "until": "1h"}}
    result, engine = simulate(data)
    cancelled = [rec for rec in engine.read_flow_runs() if rec.state_type is StateType.CANCELLED]
    assert len(cancelled) >= 4   # the pool's two slots turn over every 5 minutes or so
    for rec in cancelled:
        states = history(engine, rec)
        assert [s.type for s in states[-3:]] == [StateType.RUNNING, StateType.CANCELLING, StateType.CANCELLED]
        assert round(seconds(states[-1].timestamp) - seconds(states[-2].timestamp), 3) == 7.0
        assert states[-2].message.startswith("State changed by Automation ")
    report = build_report(result)
    assert report["events"]["cancellations"] == len(cancelled) == report["deployments"]["d"]["CANCELLED"]


def test_a_run_an_action_ended_that_is_then_lost_with_its_worker_counts_as_finished_not_lost():
    # Crashed by the automation 10 minutes in, still running its 25-minute task when
    # the worker dies at 30 minutes.
    result, engine = simulate(DYING, 'automations[reaper].trigger.within="10m"')
    report = build_report(result)
    # (crashed before 30 minutes and never COMPLETED: their process died with the worker)
    ended = [rec for rec in crashed_by_automation(engine)
             if rec.state_type is StateType.CRASHED and seconds(rec.state.timestamp) < 1800]
    assert ended
    # Every run no longer driven that is in a final state is counted once: those
    # among them too (a run crashed at the end, its process still going, is not).
    done = [sim for sim in result.runs if sim.final]
    assert report["flow_runs"]["finished"] == len(done)
    assert {sim.rec.id for sim in done} >= {rec.id for rec in ended}
    assert report["deployments"]["d"]["CRASHED"] == sum(sim.type is StateType.CRASHED for sim in done)
    # Not lost: only runs that were not final yet count as lost with the worker.
    in_flight = in_flight_at(engine, 1800)
    assert in_flight and report["workers"]["runs_lost"] == len(in_flight)


# Reactive triggers and the other actions ---------------------------------------------------------------
def breaker(threshold: int = 3) -> dict:
    """A circuit breaker: the pool is paused at `threshold` failed runs (any runs)
    within ten minutes."""
    return {"name": "breaker",
            "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.Failed"], "threshold": threshold,
                        "within": "10m"},
            "actions": [{"type": "pause-work-pool", "work_pool": "p"}]}


FLAKY = {**DYING, "simulation": {**DYING["simulation"], "until": "6h"},
         "workers": [{"pool": "p", "poll_interval": "10s"}],
         "work_pools": [{"name": "p", "concurrency_limit": 4}],
         "flows": [{"name": "f", "tasks": [{"name": "t", "duration": "2m", "failure_probability": 0.5}]}],
         "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"interval": "1m"}}],
         "automations": []}   # (not DYING's reaper)


def test_a_reactive_circuit_breaker_pauses_the_pool_at_a_third_failure_within_ten_minutes():
    result, engine = simulate({**FLAKY, "automations": [breaker()]})
    failures = sorted(seconds(s.timestamp) for _, s in flow_states(engine) if s.type is StateType.FAILED)
    pool = engine.read_work_pool_by_name("p")
    assert pool.is_paused and pool.status == "PAUSED"
    paused_at = seconds(pool.updated)
    # It fired at a failure, the third within ten minutes, and only once (then paused,
    # nothing runs to fail three more times).
    assert paused_at in failures and sum(paused_at - 600 < t <= paused_at for t in failures) >= 3
    assert result.automations == {"breaker": {"triggered": 1, "actions_executed": 1, "actions_failed": 0}}
    # The worker takes nothing from the paused pool: the runs since pile up, late.
    assert max(pickups(engine)) < paused_at + 10
    late = engine.count_flow_runs(flow_run_filter={"state": {"name": {"any_": ["Late"]}}})
    assert late > 100
    # Without the breaker the pool runs on.
    _, plain = simulate(FLAKY)
    assert max(pickups(plain)) > paused_at + 3600


def test_a_reactive_trigger_of_threshold_one_and_no_window_fires_at_every_event():
    # Every run is cancelled as it starts running; the worker carries it out.
    auto = {"name": "no-running", "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.Running"]},
            "actions": [{"type": "cancel-flow-run"}]}
    result, engine = simulate({**FLAKY, "automations": [auto], "simulation": {**FLAKY["simulation"], "until": "30m"}})
    started = [rec for rec in engine.read_flow_runs()
               if any(s.type is StateType.RUNNING for s in history(engine, rec))]
    assert started and all(rec.state_type in (StateType.CANCELLING, StateType.CANCELLED) for rec in started)
    for rec in started:
        cancelling = next(s for s in history(engine, rec) if s.type is StateType.CANCELLING)
        assert cancelling.message.startswith("Cancelled by Automation ")
    assert result.automations["no-running"]["triggered"] == len(started)


def test_a_queue_created_paused_is_resumed_by_the_action_its_late_runs_set_off():
    # Inferred from the event: the late run's own queue; the other queue is untouched.
    data = copy.deepcopy(FLAKY)
    data["work_pools"] = [{"name": "p", "concurrency_limit": 4,
                           "queues": [{"name": "held", "paused": True}, {"name": "other", "paused": True}]}]
    data["deployments"] = [{"name": "d", "flow": "f", "pool": "p", "queue": "held", "schedule": {"interval": "5m"}}]
    data["simulation"]["until"] = "1h"
    data["automations"] = [{"name": "unblock", "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.Late"],
                                                           "threshold": 2, "within": "1h"},
                            "actions": [{"type": "resume-work-queue", "source": "inferred"}]}]
    result, engine = simulate(data)
    late = sorted(seconds(s.timestamp) for _, s in flow_states(engine) if s.name == "Late")
    picked = pickups(engine)
    assert picked and min(picked) >= late[1]   # nothing before the second Late mark
    queues = {q.name: q for q in engine.read_work_queues(engine.read_work_pool_by_name("p").id)}
    assert not queues["held"].is_paused and queues["other"].is_paused
    assert result.automations["unblock"] == {"triggered": 1, "actions_executed": 1, "actions_failed": 0}


def test_an_action_with_no_run_to_act_on_fails_and_is_counted_so():
    # Proactive, one bucket for all runs (the service starts it): ten minutes without a
    # completion fires with no event, so no run to change the state of.
    auto = {"name": "quiet", "trigger": {"posture": "Proactive", "expect": ["prefect.flow-run.Completed"],
                                         "within": "10m"},
            "actions": [{"type": "change-flow-run-state", "state": "CANCELLED"}, {"type": "do-nothing"}]}
    data = {**FLAKY, "deployments": [{**FLAKY["deployments"][0], "schedule": {"interval": "1h"}}],
            "simulation": {**FLAKY["simulation"], "until": "3h"}, "automations": [auto]}
    result, engine = simulate(data)
    outcome = result.automations["quiet"]
    assert outcome["triggered"] >= 3
    assert outcome["actions_failed"] == outcome["actions_executed"] == outcome["triggered"]
    assert not engine.count_flow_runs(flow_run_filter={"state": {"type": {"any_": ["CANCELLED"]}}})


@pytest.mark.parametrize("event, action", [
    # Every Failed state fails the run again, at the same instant: virtual time would
    # stand still.
    ("prefect.flow-run.Failed", {"type": "change-flow-run-state", "state": "FAILED"}),
    # Every scheduled run schedules another (the guard's error was taken for the
    # action's own failure and swallowed: the simulation went on, counting it failed).
    ("prefect.flow-run.Scheduled", {"type": "run-deployment", "source": "inferred"}),
])
def test_an_automation_whose_actions_set_it_off_at_once_is_stopped_with_its_name(event, action):
    auto = {"name": "echo", "trigger": {"posture": "Reactive", "expect": [event]}, "actions": [action]}
    with pytest.raises(WorkloadError) as err:
        simulate({**FLAKY, "automations": [auto]})
    assert err.value.path == "automations[0]" and "'echo' fired over 10,000 times at one instant" in str(err.value)


@pytest.mark.parametrize("setting, path, words", [
    ('automations[reaper].trigger.posture="Sometimes"', "automations[0].trigger.posture",
     "one of Reactive, Proactive"),
    ('automations[reaper].trigger.for_each=["prefect.resource.colour"]', "automations[0].trigger.for_each[0]",
     "a label of the run"),
    ('automations[reaper].trigger.for_each=["related:flow-run:prefect.resource.id"]',
     "automations[0].trigger.for_each[0]", "related:<role>:<label>"),
    ('automations[reaper].trigger.after=["prefect.task-run.Running"]', "automations[0].trigger.after[0]",
     "matches no event"),
    ('automations[reaper].trigger.within="5s"', "automations[0].trigger.within", "at least 10 seconds"),
    ('automations[reaper].trigger.within="-5s"', "automations[0].trigger.within", "-5s"),
    ("automations[reaper].trigger.threshold=-1", "automations[0].trigger.threshold", ">= 0"),
    ('automations[reaper].trigger.match={ "prefect.resource.role" = "x" }',
     "automations[0].trigger.match.prefect.resource.role", "no label"),
    ('automations[reaper].actions[0].type="send-notification"', "automations[0].actions[0].type",
     "change-flow-run-state"),
    ('automations[reaper].actions=[{ type = "run-deployment" }]', "automations[0].actions[0].deployment",
     "required when the source is 'selected'"),
    ('automations[reaper].actions=[{ type = "pause-deployment", source = "inferred", deployment = "d" }]',
     "automations[0].actions[0].deployment", "not allowed when the source is 'inferred'"),
    ('automations[reaper].actions=[{ type = "resume-deployment", deployment = "e" }]',
     "automations[0].actions[0].deployment", "names no deployment: 'e'"),
    ('automations[reaper].actions=[{ type = "run-deployment", deployment = "d", parameters = 1 }]',
     "automations[0].actions[0].parameters", "must be a table"),
    ('automations[reaper].actions=[{ type = "pause-deployment", deployment = "d", parameters = {} }]',
     "automations[0].actions[0].parameters", "not a key of a 'pause-deployment' action"),
    ('automations[reaper].actions[0].type="cancel-flow-run"', "automations[0].actions[0].state",
     "not a key of a 'cancel-flow-run' action"),
    ('automations[reaper].actions=[{ type = "pause-work-pool" }]', "automations[0].actions[0].work_pool",
     "required when the source is 'selected'"),
    ('automations[reaper].actions=[{ type = "pause-work-pool", source = "inferred", work_pool = "p" }]',
     "automations[0].actions[0].work_pool", "not allowed when the source is 'inferred'"),
    ('automations[reaper].actions=[{ type = "pause-work-pool", source = "guessed" }]',
     "automations[0].actions[0].source", "'selected' or 'inferred'"),
    ('automations[reaper].actions=[{ type = "resume-work-pool", work_pool = "pool" }]',
     "automations[0].actions[0].work_pool", "names no work pool: 'pool'"),
    ('automations[reaper].actions=[{ type = "pause-work-queue", work_pool = "p", work_queue = "q" }]',
     "automations[0].actions[0].work_queue", "names no queue of pool 'p': 'q'"),
    ('automations[reaper].actions=[{ type = "pause-work-queue", work_pool = "p" }]',
     "automations[0].actions[0].work_queue", "required when the source is 'selected'"),
    ('automations[reaper].actions[0].state="ZOMBIE"', "automations[0].actions[0].state", "CRASHED"),
    ("automations[reaper].actions=[]", "automations[0].actions", "at least one"),
    ("automations[reaper].colour=1", "automations[0].colour", "unknown key"),
    ('automations[reaper].trigger.expect=["prefect.flow-run.running"]', "automations[0].trigger.expect[0]",
     "names no state"),
    ('services.triggers.loop="0s"', "services.triggers.loop", "positive"),
])
def test_bad_automations_name_their_key(setting, path, words):
    with pytest.raises(WorkloadError) as err:
        parse_workload(copy.deepcopy(DYING), settings=[setting])
    assert err.value.path == path and words in str(err.value)


def test_automation_names_are_unique():
    with pytest.raises(WorkloadError, match=r"automations\[1\]\.name.*duplicate"):
        parse_workload({**DYING, "automations": [REAPER, REAPER]})


def test_a_proactive_window_of_zero_is_prefects_ten_seconds():
    auto = copy.deepcopy(REAPER)
    auto["trigger"]["within"] = 0
    assert parse_workload({**DYING, "automations": [auto]}).automations[0].trigger.within == 10.0


# Deployment actions ---------------------------------------------------------------------------------
def on_completed(name: str, deployment: str, *actions: dict) -> dict:
    """An automation that runs `actions` at every completion of a run of `deployment`."""
    return {"name": name,
            "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.Completed"],
                        "match_related": {"prefect.resource.role": ["deployment"],
                                          "prefect.resource.name": [deployment]}},
            "actions": list(actions)}


CHAIN = {**FLAKY, "simulation": {**FLAKY["simulation"], "until": "2h"},
         "flows": [{"name": "f", "tasks": [{"name": "t", "duration": "2m", "failure_probability": 0.3}]},
                   {"name": "g", "tasks": [{"name": "u", "duration": "1m"}]}],
         "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"interval": "5m"},
                          "parameters": {"a": 1}},
                         {"name": "follow", "flow": "g", "pool": "p", "tags": ["x", "y", "x"],
                          "parameters": {"a": 1, "b": 2}}],
         "automations": [on_completed("chain", "d", {"type": "run-deployment", "deployment": "follow",
                                                     "parameters": {"b": 3}, "job_variables": {"image": "v2"}})]}


def runs_of(engine, deployment: str) -> list:
    return engine.read_flow_runs(deployment_filter={"name": {"any_": [deployment]}}, sort="EXPECTED_START_TIME_ASC")


def test_run_deployment_starts_a_run_of_the_named_deployment_at_each_firing():
    result, engine = simulate(CHAIN)
    completed = sorted(seconds(s.timestamp) for rec in runs_of(engine, "d")
                       for s in history(engine, rec) if s.type is StateType.COMPLETED)
    follow = runs_of(engine, "follow")
    assert len(completed) > 10 and len(follow) == len(completed)
    # Scheduled at the completion, through the deployment's route: its tags (once
    # each) and queue, the action's parameters over its own, not auto-scheduled.
    assert [seconds(rec.expected_start_time) for rec in follow] == completed
    first = history(engine, follow[0])[0]
    assert (first.type, first.name, first.message) == (StateType.SCHEDULED, "Scheduled", None)
    for rec in follow:
        assert (rec.parameters, rec.tags, rec.auto_scheduled) == ({"a": 1, "b": 3}, ["x", "y"], False)
        assert rec.job_variables == {"image": "v2"}
        assert rec.work_queue_id == engine.read_work_pool_by_name("p").default_queue_id
    # Keyed as Prefect keys an action's invocation, each run its own.
    keys = [rec.idempotency_key for rec in follow]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"automation [0-9a-f-]{36}, action 0, invocation [0-9a-f-]{36}", k) for k in keys)
    # The workers run them as any run of the deployment.
    done = [rec for rec in follow if rec.state_type is StateType.COMPLETED]
    assert len(done) >= len(follow) - 2
    report = build_report(result)
    assert report["deployments"]["follow"]["created"] == len(follow)
    assert result.automations["chain"] == {"triggered": len(follow), "actions_executed": len(follow),
                                           "actions_failed": 0}
    again, again_engine = simulate(CHAIN)   # deterministic, keys included
    assert build_report(again) == report
    assert [r.idempotency_key for r in runs_of(again_engine, "follow")] == keys



def test_run_deployment_hydrates_parameters_and_fails_the_action_where_the_route_refuses():
    # The action goes through the deployment's create_flow_run route: parameters in
    # Prefect's hydration syntax are hydrated, and ones that cannot be make the route
    # refuse, which fails the action (no run) as in Prefect.
    good = {"b": {"__prefect_kind": "json", "value": "[1, 2]"}}
    bad = {"b": {"__prefect_kind": "json", "value": "[1,"}}
    workload = copy.deepcopy(CHAIN)
    workload["automations"] = [on_completed("good", "d", {"type": "run-deployment", "deployment": "follow",
                                                          "parameters": good}),
                               on_completed("bad", "d", {"type": "run-deployment", "deployment": "follow",
                                                         "parameters": bad})]
    result, engine = simulate(workload)
    follow = runs_of(engine, "follow")
    assert follow and all(rec.parameters == {"a": 1, "b": [1, 2]} for rec in follow)
    good_stats, bad_stats = result.automations["good"], result.automations["bad"]
    assert good_stats["actions_executed"] == len(follow) == bad_stats["triggered"]
    assert bad_stats == {"triggered": len(follow), "actions_executed": 0, "actions_failed": len(follow)}

def test_run_deployment_inferred_reruns_the_deployment_of_a_failed_run_with_its_own_parameters():
    rerun = {"name": "rerun", "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.Failed"]},
             "actions": [{"type": "run-deployment", "source": "inferred"}]}
    data = copy.deepcopy(CHAIN)
    data["flows"][1]["tasks"][0]["failure_probability"] = 0.3
    data["deployments"][1]["schedule"] = {"interval": "7m"}
    result, engine = simulate({**data, "automations": [rerun]})
    triggered = result.automations["rerun"]["triggered"]
    for name, parameters in (("d", {"a": 1}), ("follow", {"a": 1, "b": 2})):
        runs = runs_of(engine, name)
        failed = [rec for rec in runs if rec.state_type is StateType.FAILED]
        reruns = [rec for rec in runs if not rec.auto_scheduled]
        # Each failure reruns its own deployment, with that deployment's parameters
        # and no job variables (Prefect's route stores None).
        assert failed and len(reruns) == len(failed)
        assert all((rec.parameters, rec.job_variables) == (parameters, None) for rec in reruns)
        triggered -= len(failed)
    assert triggered == 0


def test_deployment_actions_with_no_deployment_to_infer_fail():
    # Subflow runs have no deployment.
    data = copy.deepcopy(CHAIN)
    data["flows"][0]["tasks"] = [{"name": "child", "subflow": "g"}]
    data["automations"] = [{"name": "orphan", "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.Running"],
                                                         "match_related": {"prefect.resource.role": ["task-run"]}},
                            "actions": [{"type": "run-deployment", "source": "inferred"},
                                        {"type": "pause-deployment", "source": "inferred"}]}]
    result, engine = simulate(data)
    outcome = result.automations["orphan"]
    assert outcome["triggered"] > 5 and outcome["actions_failed"] == 2 * outcome["triggered"]
    assert all(rec.auto_scheduled for rec in runs_of(engine, "d")) and not engine.read_deployment(
        runs_of(engine, "d")[0].deployment_id).paused


# "pauser" completes its one run at about 20 minutes, "resumer" at about 50; they
# pause and resume "d" (every 5 minutes from 30 s), "poi" (Poisson arrivals) and
# "fix" (fixed arrivals).
SWITCHED = {**CHAIN, "flows": [*CHAIN["flows"], {"name": "ops", "tasks": [{"name": "o", "duration": "1s"}]}],
            "deployments": [{**CHAIN["deployments"][0], "schedule": {"interval": "5m", "anchor": "30s"}},
                            {"name": "poi", "flow": "g", "pool": "p", "schedule": {"poisson": "2m"}},
                            {"name": "pauser", "flow": "ops", "pool": "p", "schedule": {"at": ["20m"]}},
                            {"name": "resumer", "flow": "ops", "pool": "p", "schedule": {"at": ["50m"]}},
                            {"name": "fix", "flow": "g", "pool": "p", "schedule": {"at": ["10m", "30m", "1h"]}}],
            "automations": [
                on_completed("pause", "pauser",
                             *({"type": "pause-deployment", "deployment": d} for d in ("d", "poi", "fix"))),
                on_completed("resume", "resumer",
                             *({"type": "resume-deployment", "deployment": d} for d in ("d", "poi", "fix"))),
            ]}


def completed_at(engine, deployment: str) -> float:
    [rec] = runs_of(engine, deployment)
    return seconds(history(engine, rec)[-1].timestamp)


def test_a_paused_deployment_loses_its_waiting_auto_scheduled_runs_and_schedules_again_once_resumed():
    result, engine = simulate(SWITCHED)
    paused, resumed = completed_at(engine, "pauser"), completed_at(engine, "resumer")
    assert 1200 < paused < 1260 and 3000 < resumed < 3060
    # Interval schedule: the runs waiting at the pause are gone (those taken before stay);
    # Prefect's fast scheduler for updated deployments (every 5 s) schedules it again
    # from the resume on: 50m30s comes first, not a date after the main scheduler's
    # next tick (51m).
    starts = [seconds(rec.expected_start_time) for rec in runs_of(engine, "d")]
    assert [t for t in starts if t <= paused] == [30.0 + 300 * k for k in range(4)]
    assert [t for t in starts if t > paused] == [30.0 + 300 * k for k in range(10, 24)]   # 50m30s to the end, 2h
    report = build_report(result)
    created = report["deployments"]["d"]["created"]
    assert report["flow_runs"]["deleted"] == created - len(starts) > 10
    assert sum(report["flow_runs"]["by_state"].values()) == engine.count_flow_runs()
    assert "deleted by deployment pauses" in summary_text(report)
    # Deleted runs are in no state: the top-level states add up to the runs left.
    fr = report["flow_runs"]
    left = sum(fr["top_level_by_state"].values())
    assert left == fr["created"] - fr["deleted"]
    assert f"top-level by state ({left}: {fr['created']} created less {fr['deleted']} deleted)" in summary_text(report)
    plain = build_report(simulate(SWITCHED, "automations=[]")[0])
    rows = comparison_text(["with", "without"], [report, plain]).splitlines()
    deleted = str(report["flow_runs"]["deleted"])
    assert [row.split()[-2:] for row in rows if "runs deleted by pauses" in row] == [[deleted, "-"]]
    assert not [row for row in comparison_text(["a", "b"], [plain, plain]).splitlines() if "deleted" in row]
    # Poisson and fixed arrivals stop while paused (their runs are not auto-scheduled: kept).
    poi = [seconds(rec.created) for rec in runs_of(engine, "poi")]
    assert poi and not [t for t in poi if paused < t < resumed] and [t for t in poi if t > resumed]
    assert [seconds(rec.created) for rec in runs_of(engine, "fix")] == [600.0, 3600.0]
    # Runs are deleted whatever the polling (the engine's test covers Late ones), and
    # lateness counts only the runs that exist.
    assert build_report(simulate(SWITCHED, "workers[0].poll_interval=\"1m\"")[0])["flow_runs"]["deleted"] > 0
    assert report["lateness_seconds"]["max"] < 60
    assert not engine.read_deployment(runs_of(engine, "d")[0].deployment_id).paused
    assert result.automations["pause"] == {"triggered": 1, "actions_executed": 3, "actions_failed": 0}
    assert build_report(simulate(SWITCHED)[0]) == report   # deterministic


def test_a_deployment_created_paused_is_scheduled_once_resumed_and_can_be_run_meanwhile():
    data = copy.deepcopy(SWITCHED)
    for dep in data["deployments"][:2]:
        dep["paused"] = True
    # (Prefect's route creates runs of a paused deployment: only its schedule stops.)
    data["automations"] = [on_completed("run", "pauser", {"type": "run-deployment", "deployment": "d"}),
                           data["automations"][1]]
    _, engine = simulate(data)
    paused_run = completed_at(engine, "pauser")
    resumed = completed_at(engine, "resumer")
    runs = runs_of(engine, "d")
    assert [seconds(rec.expected_start_time) for rec in runs if not rec.auto_scheduled] == [paused_run]
    assert min(seconds(rec.expected_start_time) for rec in runs if rec.auto_scheduled) == 3030.0 > resumed
    assert min(seconds(rec.created) for rec in runs_of(engine, "poi")) > resumed


def test_a_pause_and_resume_at_one_instant_leave_poisson_arrivals_as_they_were():
    # The arrival booked before the pause still comes; the resume books no second one.
    both = on_completed("flip", "pauser", {"type": "pause-deployment", "deployment": "poi"},
                        {"type": "resume-deployment", "deployment": "poi"})
    _, engine = simulate({**SWITCHED, "automations": [both]})
    _, plain = simulate({**SWITCHED, "automations": []})
    created = [seconds(rec.created) for rec in runs_of(engine, "poi")]
    assert len(created) > 30 and created == [seconds(rec.created) for rec in runs_of(plain, "poi")]
    assert engine.read_deployment(runs_of(engine, "poi")[0].deployment_id).updated > runs_of(engine, "poi")[0].created


def test_a_run_lost_with_its_worker_and_deleted_by_a_pause_leaves_the_counts():
    # A worker dies with its run PENDING; an automation sends the run back to
    # SCHEDULED (no worker retakes it here), then the pause deletes it.
    data = {**SWITCHED, "workers": [{"pool": "p", "poll_interval": "10s", "startup": "5m",
                                     "outages": [{"at": "12m", "duration": "5m", "runs": "lost"}]}],
            "automations": [
                {"name": "resched", "trigger": {"posture": "Proactive", "after": ["prefect.flow-run.Pending"],
                                                "expect": ["prefect.flow-run.Running"], "within": "10m",
                                                "for_each": ["prefect.resource.id"]},
                 "actions": [{"type": "change-flow-run-state", "state": "SCHEDULED"}]},
                SWITCHED["automations"][0]]}
    result, engine = simulate(data)
    report = build_report(result)
    assert result.automations["resched"]["actions_executed"] > 0 and report["workers"]["runs_lost"] > 0
    assert sum(report["flow_runs"]["by_state"].values()) == engine.count_flow_runs()
    assert report["flow_runs"]["deleted"] == report["flow_runs"]["created"] - engine.count_flow_runs(
        flow_run_filter={"parent_task_run_id": {"is_null_": True}})


def test_actions_on_runs_a_pause_deleted_fail():
    # Runs scheduled at the start and not running a quarter of an hour later are
    # cancelled, but the pause at one minute deleted them all but the first.
    data = copy.deepcopy(SWITCHED)
    data["deployments"][2]["schedule"] = {"at": ["1m"]}
    data["automations"] = [on_completed("pause", "pauser", {"type": "pause-deployment", "deployment": "d"}),
                           {"name": "unstarted",
                            "trigger": {"posture": "Proactive", "after": ["prefect.flow-run.Scheduled"],
                                        "expect": ["prefect.flow-run.Running"], "within": "15m",
                                        "for_each": ["prefect.resource.id"],
                                        "match_related": {"prefect.resource.name": ["d"]}},
                            "actions": [{"type": "cancel-flow-run"}]}]
    result, engine = simulate(data)
    deleted = build_report(result)["flow_runs"]["deleted"]
    assert deleted > 10 and len(runs_of(engine, "d")) == 1
    assert result.automations["unstarted"] == {"triggered": deleted, "actions_executed": 0, "actions_failed": deleted}


# Rescheduling, suspending and resuming flow runs ------------------------------------------------------
RETRY_CRASHED = {"name": "retry-crashed",
                 "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.Crashed"]},
                 "actions": [{"type": "change-flow-run-state", "state": "SCHEDULED", "message": MESSAGE}]}


@pytest.mark.parametrize("recipe", ["reschedule zombies", "crash zombies, then retry crashed runs"])
def test_lost_runs_an_action_sends_back_to_scheduled_are_taken_again_and_counted_once(recipe):
    # The zombie recipe, rescheduling the two runs lost with the worker at 30 minutes
    # an hour after they went RUNNING: at once, or by way of CRASHED (counted
    # finished, then no longer). They wait in the queue, behind the older runs the
    # busy pool of two piled up, for the worker (back at 40 minutes) to run them again.
    if recipe == "reschedule zombies":
        automations = [{**REAPER, "actions": RETRY_CRASHED["actions"]}]
    else:
        automations = [REAPER, RETRY_CRASHED]
    data = {**DYING, "automations": automations}
    # Stop creating runs after 12 and go on until they are all finished.
    result, engine = simulate(data, runs=12, until=None)
    report = build_report(result)
    again = [rec for rec in engine.read_flow_runs() if MESSAGE in [s.message for s in history(engine, rec)]]
    assert len(again) == 2 and report["workers"]["runs_lost"] == 2
    for rec in again:
        states = history(engine, rec)
        at = [s.message for s in states].index(MESSAGE)
        after = [(s.type, s.name) for s in states[at - 1:]]
        detour = [(StateType.CRASHED, "Crashed")] if len(automations) == 2 else []
        # Late like any waiting run, then taken: PENDING, RUNNING (a second run
        # count), and COMPLETED 25 minutes on.
        assert after == [(StateType.RUNNING, "Running"), *detour, (StateType.SCHEDULED, "Scheduled"),
                         (StateType.SCHEDULED, "Late"), (StateType.PENDING, "Pending"),
                         (StateType.RUNNING, "Running"), (StateType.COMPLETED, "Completed")]
        assert rec.run_count == 2
        rescheduled = states[at + len(detour)]
        assert seconds(rescheduled.state_details.scheduled_time) == seconds(rescheduled.timestamp)
        # Its task run, left RUNNING by the lost process, runs again ("Rerunning": its
        # flow run's run count went up) and completes.
        [task] = engine.read_task_runs(flow_run_filter={"id": {"any_": [rec.id]}})
        assert [s.name for s in engine.read_task_run_states(task.id)] == ["Pending", "Running", "Rerunning",
                                                                            "Completed"]
    assert report["flow_runs"]["rescheduled"] == 2
    assert "2 sent back to their queues and taken again" in summary_text(report)
    without = build_report(simulate(data, "automations=[]", runs=12, until=None)[0])
    rows = comparison_text(["with", "without"], [report, without]).splitlines()
    assert [row.split()[-2:] for row in rows if "runs rescheduled" in row] == [["2", "-"]]
    # Every run finished, each counted once (the stop condition too: the simulation
    # ran until the rescheduled runs were done), in its final state.
    assert report["flow_runs"]["finished"] == 12 == report["deployments"]["d"]["COMPLETED"]
    assert all(rec.state_type is StateType.COMPLETED for rec in engine.read_flow_runs())
    assert sorted(round(t, 3) for t in result.metrics.completed_at) == sorted(
        seconds(rec.state.timestamp) for rec in engine.read_flow_runs())
    assert build_report(simulate(data, runs=12, until=None)[0]) == report   # deterministic


def test_a_run_rescheduled_in_its_queue_is_marked_late_again_from_its_new_time():
    # One slot, 25-minute runs every 10 minutes: runs wait and go Late; an automation
    # sends each Late run back to SCHEDULED (for now), once.
    auto = {"name": "unlate", "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.Late"],
                                          "for_each": ["prefect.resource.id"], "within": "3h"},
            "actions": [{"type": "change-flow-run-state", "state": "SCHEDULED"}]}
    data = {**DYING, "work_pools": [{"name": "p", "concurrency_limit": 1}],
            "workers": [{"pool": "p", "poll_interval": "10s"}], "automations": [auto]}
    result, engine = simulate(data)
    twice = 0
    for rec in engine.read_flow_runs():
        states = history(engine, rec)
        lates = [i for i, s in enumerate(states) if s.name == "Late"]
        if len(lates) < 2:
            continue
        twice += 1
        again = states[lates[0] + 1]
        assert (again.type, again.name) == (StateType.SCHEDULED, "Scheduled")
        due = seconds(again.state_details.scheduled_time)
        late_again = seconds(states[lates[1]].timestamp)
        # The late-runs service (every 5 s, 15 s grace) goes by the new scheduled time.
        assert due + 15 < late_again <= first_pass_after(due + 15) + 5
    assert twice >= 3
    assert build_report(result)["flow_runs"]["rescheduled"] == 0   # (never taken before: only re-filed)


def test_a_run_sent_back_while_its_infrastructure_starts_is_taken_again_before_it_runs():
    # Each run is sent back to SCHEDULED as it goes PENDING (once), while its
    # infrastructure takes 30 s to start: that start must not propose RUNNING for it.
    auto = {"name": "bounce", "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.Pending"],
                                          "for_each": ["prefect.resource.id"], "within": "3h"},
            "actions": [{"type": "change-flow-run-state", "state": "SCHEDULED"}]}
    data = {**DYING, "automations": [auto],
            "workers": [{"pool": "p", "poll_interval": "10s", "limit": 1, "startup": "30s"}]}
    result, engine = simulate(data)
    bounced = 0
    for rec in engine.read_flow_runs():
        kinds = [s.type for s in history(engine, rec)]
        # RUNNING only ever follows the PENDING of a worker that took the run.
        assert all(kinds[i - 1] is StateType.PENDING for i, k in enumerate(kinds) if k is StateType.RUNNING)
        if any(kinds[i - 1:i + 1] == [StateType.PENDING, StateType.SCHEDULED] for i in range(1, len(kinds))):
            bounced += 1
    assert bounced >= 5 and build_report(result)["flow_runs"]["rescheduled"] == bounced


SUSPENDER = {"name": "suspender",
             "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.Running"],
                         "for_each": ["prefect.resource.id"], "within": "3h"},
             "actions": [{"type": "suspend-flow-run"}]}
RESUMER = {"name": "resumer",
           "trigger": {"posture": "Proactive", "after": ["prefect.flow-run.Suspended"],
                       "expect": ["prefect.flow-run.Running"], "for_each": ["prefect.resource.id"], "within": "10m"},
           "actions": [{"type": "resume-flow-run"}]}
# A 2-minute task, then a 20-minute one; each run is suspended as it starts (once:
# the reactive bucket then waits out its 3 hours).
# The worker runs one flow run at a time: a suspended run's process must give its
# slot back when it exits, or nothing runs again.
SUSPENDED = {**DYING, "workers": [{"pool": "p", "poll_interval": "10s", "limit": 1}],
             "flows": [{"name": "f", "tasks": [{"name": "a", "duration": "2m"},
                                               {"name": "b", "duration": "20m", "depends_on": ["a"]}]}],
             "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"interval": "40m"}}],
             "simulation": {**DYING["simulation"], "until": "2h"}, "automations": [SUSPENDER, RESUMER]}


def test_a_suspended_run_resumed_by_an_automation_exits_and_is_run_again_by_a_worker():
    result, engine = simulate(SUSPENDED)
    report = build_report(result)
    done = [rec for rec in engine.read_flow_runs() if rec.state_type is StateType.COMPLETED]
    assert len(done) >= 2
    for rec in done:
        states = history(engine, rec)
        assert [(s.type, s.name) for s in states] == [
            (StateType.SCHEDULED, "Scheduled"), (StateType.PENDING, "Pending"), (StateType.RUNNING, "Running"),
            (StateType.PAUSED, "Suspended"), (StateType.SCHEDULED, "Resuming"), (StateType.PENDING, "Pending"),
            (StateType.RUNNING, "Running"), (StateType.COMPLETED, "Completed")]
        suspended, resuming = states[3], states[4]
        assert suspended.message.startswith("Suspended by Automation ")
        details = suspended.state_details
        assert details.pause_reschedule and seconds(details.pause_timeout) == round(seconds(suspended.timestamp) + 3600, 3)
        # Resumed at the proactive service's first pass 10 minutes on, for now.
        assert seconds(resuming.timestamp) == first_pass_after(seconds(suspended.timestamp) + 600)
        assert resuming.state_details.scheduled_time <= resuming.timestamp
        # A resumed run is not counted again, and its task runs are the same two.
        assert rec.run_count == 1
        a, b = sorted(engine.read_task_runs(flow_run_filter={"id": {"any_": [rec.id]}}), key=lambda t: t.name)
        # `b` waited for the resume: the flow was paused when it asked to run.
        assert ("PAUSED", "NotReady") in [(s.type.value, s.name) for s in engine.read_task_run_states(b.id)]
        assert a.state_type is b.state_type is StateType.COMPLETED
    assert report["flow_runs"]["rescheduled"] == report["automations"]["resumer"]["actions_executed"] >= len(done)
    assert report["events"]["task_not_ready"] >= len(done)
    assert report["automations"]["suspender"]["actions_failed"] == 0
    assert report["flow_runs"]["finished"] == len(done)


def test_a_suspended_run_nothing_resumes_is_failed_when_its_hour_is_up():
    result, engine = simulate(SUSPENDED, "automations[resumer].enabled=false", 'simulation.until="3h"')
    failed = [rec for rec in engine.read_flow_runs() if rec.state_type is StateType.FAILED]
    assert failed
    for rec in failed:
        states = history(engine, rec)
        suspended, last = states[-2], states[-1]
        assert suspended.name == "Suspended"
        assert last.message == "The flow was paused and never resumed."
        assert seconds(last.timestamp) == first_pass_after(seconds(suspended.timestamp) + 3600 + 0.001)
    report = build_report(result)
    assert report["events"]["pause_timeouts"] == len(failed) == report["deployments"]["d"]["FAILED"]
    assert report["flow_runs"]["rescheduled"] == 0


def test_resume_flow_run_lets_a_paused_run_go_on_and_fails_on_a_run_that_is_not_paused():
    # A blocking pause (change-flow-run-state PAUSED: no reschedule, no timeout).
    pauser = {**SUSPENDER, "name": "pauser", "actions": [{"type": "change-flow-run-state", "state": "PAUSED"}]}
    eager = {**RESUMER, "name": "eager", "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.Completed"]},
             "actions": [{"type": "resume-flow-run"}]}
    result, engine = simulate({**SUSPENDED, "automations": [pauser, RESUMER, eager]},
                              "automations[resumer].trigger.after=['prefect.flow-run.Paused']")
    done = [rec for rec in engine.read_flow_runs() if rec.state_type is StateType.COMPLETED]
    assert len(done) >= 2
    for rec in done:
        kinds = [s.type for s in history(engine, rec)]
        assert kinds == [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED,
                         StateType.RUNNING, StateType.COMPLETED]
        assert rec.run_count == 2   # a blocking resume counts a run, as in Prefect
    report = build_report(result)
    resumed = [rec for rec in engine.read_flow_runs()
               if [s.type for s in history(engine, rec)][3:5] == [StateType.PAUSED, StateType.RUNNING]]
    assert report["flow_runs"]["rescheduled"] == 0 and report["events"]["resumes"] == len(resumed) >= len(done)
    # Resuming a completed run: Prefect's route finds it not paused, the action fails.
    assert report["automations"]["eager"]["actions_failed"] == report["automations"]["eager"]["triggered"] >= len(done)


def test_a_run_paused_after_its_last_task_goes_on_when_an_automation_resumes_it():
    """The flow pauses after its only task, so no task run is held; an automation's
    resume (a RUNNING the process did not ask for) must still let it finish, and a
    state an action makes final must still end it."""
    flow = {"name": "f", "tasks": [{"name": "a", "duration": "2m"}],
            "pause": {"probability": 1.0, "after": "a", "duration": "5h", "timeout": "6h"}}
    quick = {**RESUMER, "name": "quick", "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.Paused"]}}
    failer = {**quick, "name": "failer", "actions": [{"type": "change-flow-run-state", "state": "FAILED"}]}
    for automation, last in ((quick, StateType.COMPLETED), (failer, StateType.FAILED)):
        result, engine = simulate({**SUSPENDED, "flows": [flow], "automations": [automation]})
        runs = engine.read_flow_runs()
        paused = [rec for rec in runs if StateType.PAUSED in [s.type for s in history(engine, rec)]]
        assert len(paused) >= 2
        assert all(rec.state_type is last for rec in paused[:-1]), [rec.state_type for rec in paused]
        # Long before the 5-hour pause would have ended: the worker (limit 1) was freed each time.
        assert build_report(result)["flow_runs"]["finished"] >= len(paused) - 1


# Prefect 3.1.0's own answers -----------------------------------------------------------------------
# tests/data/triggers_prefect_oracle.jsonl is what tests/oracle/prefect_triggers.py
# (Prefect's trigger code) answered for `triggers_scenarios.py 1 60`: the seconds at
# which each scenario's trigger fired, and the run a flow-run action would act on.
# Replayed here through the simulator's buckets, with scripted events instead of
# simulated runs.
ORACLE = pathlib.Path(__file__).parent / "data" / "triggers_prefect_oracle.jsonl"
ANSWERS = {case["id"]: case["firings"] for case in map(json.loads, ORACLE.read_text(encoding="utf-8").splitlines())}
SCENARIOS = load_oracle_script("triggers_scenarios").scenarios(1, 60)


class _ScriptedRun:
    """What the windows read of a run: its record's id, name and current state."""

    __slots__ = ("rec", "label")

    def __init__(self, label: str) -> None:
        self.label = label
        self.rec = types.SimpleNamespace(id=uuid.uuid4(), name=label, state=None)


class _Recording(Automations):
    """The automations, recording whom each firing's actions would act on, and when."""

    acted: list

    def _act(self, arg: tuple) -> None:
        _, run, event_run, _ = arg   # the run a flow-run action acts on; the firing event's
        self.acted.append([round(self.loop.now, 6), run.label if run is not None else None])
        self.events.append(event_run.label if event_run is not None else None)


def replay(scenario: dict) -> _Recording:
    """The scenario's events through a fresh set of automations, which recorded what
    fired (`acted`, `events`)."""
    loop = EventLoop(SimClock(start=START, tick=dt.timedelta(microseconds=1)), START)
    workload = parse_workload({"services": {"triggers": {"loop": scenario["every"]}}, "automations": [{
        "name": "oracle",
        "trigger": {"posture": scenario.get("posture", "Proactive"),
                    "for_each": scenario.get("for_each", ["prefect.resource.id"]), "after": scenario["after"],
                    "expect": scenario["expect"], "within": scenario["within"], "threshold": scenario["threshold"],
                    "match": {"prefect.resource.id": "prefect.flow-run.*"}},
        "actions": [{"type": "do-nothing"}]}]})
    automations = _Recording(types.SimpleNamespace(loop=loop, client=None, engine=None, workload=workload,
                                                       deployments=[]))
    automations.acted, automations.events = [], []
    runs = {label: _ScriptedRun(label) for _, _, label in scenario["events"]}

    def emit(arg: tuple) -> None:
        run, name = arg
        run.rec.state = State(type=StateType.RUNNING, name=name)   # (the type is not looked at)
        automations.flow_event(run)

    for t, name, label in scenario["events"]:   # booked first: at one second, before a pass
        loop.at(t, emit, (runs[label], name))
    automations.start()
    loop.run(scenario["until"])
    return automations


def in_order(firings: list) -> list:
    """Firings in time order, those at one instant by run: Prefect evaluates the
    buckets that started at one instant in its database's order (by their keys,
    random run ids in the oracle), the simulator in the order they started."""
    return sorted(firings, key=lambda firing: (firing[0], firing[1] or ""))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
def test_windows_fire_when_and_where_prefects_trigger_code_fires(scenario):
    assert in_order(replay(scenario).acted) == in_order(ANSWERS[scenario["id"]])


def test_a_bucket_replaced_after_firing_keeps_its_run_but_not_the_event():
    # Proactive, a bucket per run, no `after`: the run's one event fires its bucket at
    # the first pass; the replacements fire with no event. A flow-run action still
    # acts on the bucket's run; a pool or queue could only be inferred the first time.
    scenario = {"id": "replaced", "after": [], "expect": ["prefect.flow-run.*"], "within": 60, "threshold": 2,
                "every": 60, "until": 180, "events": [[0, "Running", "A"]]}
    made = replay(scenario)
    assert made.acted == [[60, "A"], [120, "A"], [180, "A"]]
    assert made.events == ["A", None, None]


def test_the_generator_still_writes_the_scenarios_prefect_answered():
    """The corpus keeps only ids and firings: a generator edit that kept the ids but
    changed a scenario would replay Prefect's answers against another question."""
    digest = hashlib.sha256(json.dumps(SCENARIOS, sort_keys=True).encode()).hexdigest()
    assert digest == "4e76d2e85a5d7af2b7c7d947f91a683d65bc1942b59cad71742bc0cae78963dd"


def test_the_oracle_answers_cover_firing_and_quiet_scenarios_of_both_postures():
    assert len(ANSWERS) == len(SCENARIOS) == 197
    fired = [firings for firings in ANSWERS.values() if firings]
    assert len(fired) == 90 and sum(len(firings) > 1 for firings in fired) == 52
    reactive = [ANSWERS[s["id"]] for s in SCENARIOS if s.get("posture") == "Reactive"]
    assert len(reactive) == 67 and sum(bool(firings) for firings in reactive) == 22
    # firings with no run to act on (a bucket the service started, for all runs)
    assert sum(any(label is None for _, label in firings) for firings in fired) == 16


def test_a_cancellation_an_action_carried_out_first_is_counted_once_as_the_action():
    # Each run is cancelled 30 s after its scheduled start, with a 10-minute latency
    # before its worker kills it; an automation cancels runs still CANCELLING a minute
    # later. Deployment d's run is running by then: the action cancels it, the worker's
    # kill finds it CANCELLED already and proposes nothing, and the run is not counted
    # a second time as the worker's cancellation. Deployment e's two runs are in a pool
    # no worker polls, still in their queue: cancelled at once, and counted.
    auto = {"name": "cancel-stuck", "trigger": {"posture": "Proactive", "after": ["prefect.flow-run.Cancelling"],
                                                "expect": ["prefect.flow-run.Cancelled"],
                                                "for_each": ["prefect.resource.id"], "within": "1m"},
            "actions": [{"type": "change-flow-run-state", "state": "CANCELLED", "message": "stuck cancelling"}]}
    data = {**sim_support.DYING, "workers": [{"pool": "p", "poll_interval": "10s"}], "automations": [auto],
            "work_pools": [{"name": "p", "concurrency_limit": 2}, {"name": "unpolled"}],
            "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"at": ["0s"]}},
                            {"name": "e", "flow": "f", "pool": "unpolled", "schedule": {"at": ["0s", "10m"]}}],
            "flows": [{"name": "f", "cancel": {"probability": 1.0, "after": "30s", "latency": "10m"},
                       "tasks": [{"name": "t", "duration": "25m"}]}]}
    result, engine = simulate(data)
    runs = {name: [r.rec for r in result.runs if r.dep.spec.name == name] for name in ("d", "e")}
    assert [rec.state_type for recs in runs.values() for rec in recs] == [StateType.CANCELLED] * 3
    states = history(engine, runs["d"][0])
    assert [s.type for s in states][-3:] == [StateType.RUNNING, StateType.CANCELLING, StateType.CANCELLED]
    assert states[-1].message == "stuck cancelling"   # and no second CANCELLED from the worker
    for rec in runs["e"]:   # SCHEDULED (Late, too, by then) -> CANCELLED
        assert {s.type for s in history(engine, rec)} == {StateType.SCHEDULED, StateType.CANCELLED}
    c = result.metrics.counters
    assert c["cancellations_requested"] == 3 and c["cancellations"] == 2
    assert c["flow_runs_finished"] == 3 and c["flow_aborts"] == 0
    report = build_report(result)
    assert report["automations"]["cancel-stuck"] == {"triggered": 1, "actions_executed": 1, "actions_failed": 0}
    assert report["events"]["cancellations"] == 2 and report["flow_runs"]["by_state"]["CANCELLED"] == 3
