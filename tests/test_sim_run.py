"""Simulation semantics, checked against the engine's own records and state histories."""
from __future__ import annotations

import copy
import gc
import heapq
import datetime as dt
import json
import pathlib
import weakref

import pytest

from engine import TERMINAL_STATES, Engine, ManualClock, StateType
from engine.sim import Simulation, WorkloadError, load_workload, parse_workload
from engine.sim.durations import format_duration
from engine.sim.report import build_report, dumps, summary_text
from engine.sim.sweep import comparison_text
from sim_support import simulate

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
# What Prefect's worker query counts against pool and queue limits (not CANCELLING).
OCCUPYING = {StateType.PENDING, StateType.RUNNING}


def all_flow_runs(engine: Engine):
    return list(engine._store.tables["flow_run"].rows.values())


def all_task_runs(engine: Engine):
    return list(engine._store.tables["task_run"].rows.values())


def intervals(engine: Engine, run, kind: str, types: set) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) stretches during which `run` was in one of `types`."""
    states = engine.read_flow_run_states(run.id) if kind == "flow" else engine.read_task_run_states(run.id)
    out = []
    for k, state in enumerate(states):
        if state.type in types:
            end = states[k + 1].timestamp if k + 1 < len(states) else dt.datetime.max.replace(tzinfo=dt.timezone.utc)
            out.append((state.timestamp, end))
    return out


def max_overlap(spans: list[tuple[dt.datetime, dt.datetime]]) -> int:
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    best = cur = 0
    for _, step in events:
        cur += step
        best = max(best, cur)
    return best


SEMANTICS = {
    "simulation": {"seed": 5, "until": "3h"},
    "tag_limits": [{"tag": "db", "limit": 2}],
    "work_pools": [{"name": "p", "concurrency_limit": 3,
                    "queues": [{"name": "narrow", "priority": 1, "concurrency_limit": 1}]}],
    "workers": [{"pool": "p", "count": 2, "poll_interval": "7s", "prefetch": "10s",
                 "startup": {"dist": "uniform", "min": "1s", "max": "4s"}}],
    "flows": [{"name": "f", "tasks": [
        {"name": "a", "count": 4, "tags": ["db"], "duration": {"dist": "exponential", "mean": "5s"}},
        {"name": "b", "depends_on": ["a"], "duration": "2s"},
    ]}],
    "deployments": [
        {"name": "limited", "flow": "f", "pool": "p", "schedule": {"interval": "1m"}, "concurrency_limit": 2},
        {"name": "narrow", "flow": "f", "pool": "p", "queue": "narrow", "schedule": {"poisson": "2m"}},
    ],
}


@pytest.fixture(scope="module")
def semantics():
    return simulate(SEMANTICS)


def test_runs_start_no_earlier_than_scheduled(semantics):
    # Workers prefetch runs 10 s ahead; WaitForScheduledTime then makes the flow wait.
    # Its delay is rounded to the nearest second (as in Prefect 3.1.0), so a RUNNING
    # proposal less than half a second early is accepted: that is the only slack.
    result, engine = semantics
    slack = dt.timedelta(seconds=0.5)
    started = 0
    for run in result.runs:
        rec = run.rec
        states = engine.read_flow_run_states(rec.id)
        scheduled = states[0].state_details.scheduled_time
        assert states[0].type is StateType.SCHEDULED and scheduled is not None
        running = [s for s in states if s.type is StateType.RUNNING]
        if running:
            started += 1
            assert running[0].timestamp >= scheduled - slack
            assert rec.start_time == running[0].timestamp and rec.expected_start_time == scheduled
    assert started > 100
    assert result.metrics.counters["scheduled_time_waits"] > 0


def test_concurrency_limits_never_exceeded(semantics):
    result, engine = semantics
    runs = [r.rec for r in result.runs]
    # Tag limit: task runs tagged "db" RUNNING at once.
    db = [s for tr in all_task_runs(engine) if "db" in tr.tags for s in intervals(engine, tr, "task", {StateType.RUNNING})]
    assert max_overlap(db) == 2  # reached, never exceeded
    # Work pool limit, queue limit and deployment limit: flow runs PENDING/RUNNING.
    pool = [s for r in runs for s in intervals(engine, r, "flow", OCCUPYING)]
    assert 1 <= max_overlap(pool) <= 3
    narrow = [s for r in result.runs if r.queue.spec.name == "narrow" for s in intervals(engine, r.rec, "flow", OCCUPYING)]
    assert max_overlap(narrow) == 1
    limited = [s for r in result.runs if r.dep.spec.name == "limited" for s in intervals(engine, r.rec, "flow", OCCUPYING)]
    assert max_overlap(limited) <= 2
    counters = result.metrics.counters
    assert counters["tag_slot_waits"] > 0


def test_report_peaks_are_the_most_runs_at_once_in_the_store(semantics):
    # Recomputed from the stored state histories: each population's largest overlap.
    result, engine = semantics
    peaks = build_report(result)["concurrency"]["peak"]
    tagged = [s for tr in all_task_runs(engine) if "db" in tr.tags for s in intervals(engine, tr, "task", {StateType.RUNNING})]
    assert peaks["tags"] == {"db": {"limit": 2, "peak": max_overlap(tagged)}}

    def most(runs, types=OCCUPYING):
        return max_overlap([s for r in runs for s in intervals(engine, r.rec, "flow", types)])
    assert peaks["work_pools"] == {"p": {"limit": 3, "peak": most(result.runs)}}
    by_queue = {name: most([r for r in result.runs if r.queue.spec.name == name]) for name in ("narrow", "default")}
    assert peaks["work_queues"] == {"p": {"narrow": {"limit": 1, "peak": by_queue["narrow"]},
                                          "default": {"limit": None, "peak": by_queue["default"]}}}
    holding = {StateType.PENDING, StateType.RUNNING, StateType.CANCELLING}
    by_deployment = {name: most([r for r in result.runs if r.dep.spec.name == name], holding)
                     for name in ("limited", "narrow")}
    assert peaks["deployments"] == {"limited": {"limit": 2, "peak": by_deployment["limited"]},
                                    "narrow": {"limit": None, "peak": by_deployment["narrow"]}}
    assert min(by_queue["narrow"], by_deployment["limited"], peaks["tags"]["db"]["peak"]) >= 1
    summary = summary_text(build_report(result))
    assert "  tags         db 2 of 2" in summary and f"p {peaks['work_pools']['p']['peak']} of 3" in summary
    assert "can outnumber" not in summary


def test_a_paused_run_gives_its_deployment_slot_back_so_runs_outnumber_the_limit():
    # Prefect 3.1.0 releases a deployment slot when a run leaves RUNNING for PAUSED and
    # takes none when it runs again: with a limit of 1, a run that paused and resumed
    # runs beside the one that took the slot meanwhile. The report shows it, and says why.
    workload = {
        "simulation": {"until": "1h"},
        "work_pools": [{"name": "p"}],
        "workers": [{"pool": "p", "poll_interval": "5s"}],
        "flows": [{"name": "f", "tasks": [{"name": "a", "duration": "10s"}, {"name": "b", "depends_on": ["a"], "duration": "10m"}],
                   "pause": {"probability": 1.0, "after": "a", "duration": "1m"}}],
        "deployments": [{"name": "d", "flow": "f", "pool": "p", "concurrency_limit": 1,
                         "schedule": {"at": ["0s", "30s"]}}],
    }
    result, engine = simulate(workload)
    report = build_report(result)
    assert report["concurrency"]["peak"]["deployments"] == {"d": {"limit": 1, "peak": 2}}
    holding = {StateType.PENDING, StateType.RUNNING, StateType.CANCELLING}
    assert max_overlap([s for r in result.runs for s in intervals(engine, r.rec, "flow", holding)]) == 2
    assert "  deployments  d 2 of 1" in summary_text(report)
    assert "can outnumber a pool's, queue's or deployment's limit, as in Prefect 3.1.0" in summary_text(report)


def _two_limited_tags(runs: int, held: tuple = ("a",)) -> dict:
    # A task per `held` tag keeps it (limit 1) for a minute; "both" needs a and b
    # (limit 1 each). Told to wait for a, Prefect's server rule still takes b if free
    # and keeps it.
    holders = [{"name": f"hold-{tag}", "tags": [tag], "duration": "60s"} for tag in held]
    return {
        "simulation": {"until": "2h"},
        "tag_limits": [{"tag": "a", "limit": 1}, {"tag": "b", "limit": 1}],
        "work_pools": [{"name": "p"}],
        "workers": [{"pool": "p", "poll_interval": "5s"}],
        "flows": [{"name": "f", "tasks": [*holders, {"name": "both", "tags": ["a", "b"], "duration": "1s"}]}],
        "deployments": [{"name": "d", "flow": "f", "pool": "p",
                         "schedule": {"at": [f"{10 * k}m" for k in range(runs)]}}],
    }


def test_a_task_with_two_limited_tags_does_not_wait_on_a_slot_it_holds():
    # The client takes a task's tag slots all or nothing, as Prefect's does: the slot
    # the rule kept on b is given back at each WAIT, so "both" runs once a frees
    # (it would otherwise wait on its own b slot until the end).
    result, engine = simulate(_two_limited_tags(runs=3))
    assert all(r.rec.state_type is StateType.COMPLETED for r in result.runs)
    counters = result.metrics.counters
    assert counters["tag_slot_waits"] == counters["tag_slots_given_back"] == 6   # two per run, at 0 s and 30 s
    for tag in ("a", "b"):
        assert engine.read_concurrency_limit_by_tag(tag).active_slots == []
    both = [tr for tr in all_task_runs(engine) if tr.task_key == "f.both"]
    assert len(both) == 3
    for tr in both:
        running = [s for s in engine.read_task_run_states(tr.id) if s.type is StateType.RUNNING]
        started = running[0].timestamp - engine.read_flow_run(tr.flow_run_id).start_time
        assert 60 <= started.total_seconds() <= 61   # right after "hold-a" gave back a


def test_a_rule_that_delays_twice_in_a_call_counts_one_wait():
    # With a and b both full, the tag rule delays for each in one call; the proposal
    # gets one WAIT, and the report counts one.
    result, engine = simulate(_two_limited_tags(runs=3, held=("a", "b")))
    counters = result.metrics.counters
    assert counters["tag_slot_waits"] == 6 and counters["tag_slots_given_back"] == 0
    rule = build_report(result)["rules"]["SecureTaskConcurrencySlots"]
    assert rule["calls"] == rule["accept"] + rule["reject"] + rule["wait"] + rule["abort"]
    assert rule["wait"] == counters["tag_slot_waits"]


def test_state_counts_match_the_engine(semantics):
    result, engine = semantics
    for kind, rows, counts in (("flow", all_flow_runs(engine), result.metrics.flow_counts),
                               ("task", all_task_runs(engine), result.metrics.task_counts)):
        scanned = {t: 0 for t in StateType}
        for rec in rows:
            scanned[rec.state_type] += 1
        assert {t: counts[t] for t in StateType} == scanned, kind
    report = build_report(result)
    assert report["flow_runs"]["created"] == len(result.runs) == engine.count_flow_runs()
    assert report["task_runs"]["created"] == engine.count_task_runs()
    # The tag waits seen by the client are the WAITs the rule reported.
    assert report["rules"]["SecureTaskConcurrencySlots"]["wait"] == report["concurrency"]["tag_slot_waits"]


def test_throughput_has_one_bucket_per_simulated_hour(semantics):
    """A 3 h run reports three hourly buckets (no empty fourth one), and each holds the
    top-level runs the engine keeps in a final state with a timestamp in that hour."""
    result, engine = semantics
    start = result.workload.simulation.start
    expected = [0, 0, 0]
    for rec in all_flow_runs(engine):
        if rec.parent_task_run_id is None and rec.state_type in TERMINAL_STATES:
            expected[min(2, int((rec.state_timestamp - start).total_seconds() // 3600))] += 1
    assert build_report(result)["throughput"]["finished_per_hour"] == expected
    assert sum(expected) > 0


def test_retries_are_counted_right():
    data = {
        "simulation": {"until": "2h"},
        "work_pools": [{"name": "p"}],
        "workers": [{"pool": "p", "poll_interval": "5s"}],
        "flows": [{"name": "r", "retries": 1, "retry_delay": "30s", "tasks": [
            {"name": "t", "failure_probability": 1.0, "retries": 2, "retry_delay": "10s"},
        ]}],
        "deployments": [{"name": "d", "flow": "r", "pool": "p", "schedule": {"at": ["0s", "1m", "2m"]}}],
    }
    result, engine = simulate(data)
    c = result.metrics.counters
    # Per run: 2 attempts of the flow, each with 1 + 2 task attempts.
    assert (c["task_retries"], c["flow_retries"], c["task_attempts"]) == (12, 3, 18)
    task_states = [s for tr in all_task_runs(engine) for s in engine.read_task_run_states(tr.id)]
    assert sum(s.name == "AwaitingRetry" for s in task_states) == 12
    # 12 task retries, plus the 3 re-runs in the flows' second attempt (renamed
    # "Retrying" because the task's flow_run_run_count trails the flow's run_count).
    assert sum(s.name == "Retrying" for s in task_states) == 15
    flow_states = [s for r in result.runs for s in engine.read_flow_run_states(r.rec.id)]
    assert sum(s.name == "AwaitingRetry" for s in flow_states) == 3
    assert all(r.rec.state_type is StateType.FAILED and r.rec.run_count == 2 for r in result.runs)
    # The delays were honoured: each retry started no earlier than its AwaitingRetry time.
    for tr in all_task_runs(engine):
        states = engine.read_task_run_states(tr.id)
        for prev, nxt in zip(states, states[1:]):
            if prev.name == "AwaitingRetry":
                assert nxt.timestamp >= prev.state_details.scheduled_time


def test_cache_hits_are_counted_right():
    data = {
        "simulation": {"until": "1h"},
        "work_pools": [{"name": "p", "concurrency_limit": 1}],
        "workers": [{"pool": "p", "poll_interval": "5s"}],
        "flows": [{"name": "c", "tasks": [
            {"name": "forever", "cache": {"key": "fixed"}},
            {"name": "brief", "cache": {"key": "brief", "expiration": "5m"}},
        ]}],
        "deployments": [{"name": "d", "flow": "c", "pool": "p", "schedule": {"at": ["0s", "10m", "20m", "30m"]}}],
    }
    result, engine = simulate(data)
    assert result.metrics.counters["cache_hits"] == 3  # "forever" hits after the first run; "brief" expires
    cached = [tr for tr in all_task_runs(engine) if tr.state_name == "Cached"]
    assert len(cached) == 3 and all(tr.task_key == "c.forever" for tr in cached)
    assert all(tr.run_count == 0 for tr in cached)


# Two runs, at 0 s and 50 s, that no worker takes, for one simulated minute.
UNPICKED = {
    "simulation": {"until": "1m"},
    "work_pools": [{"name": "p"}],
    "flows": [{"name": "f", "tasks": [{"name": "t"}]}],
    "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"at": ["0s", "50s"]}}],
}


def test_late_runs_service_marks_unpicked_runs():
    result, _ = simulate(UNPICKED)
    assert result.metrics.counters["late_marked"] == 1  # the second run is not 15 s overdue yet
    assert [r.rec.state_name for r in result.runs] == ["Late", "Scheduled"]


def test_late_runs_service_goes_by_the_runs_next_scheduled_start():
    # As Prefect's query: a run is late by its next scheduled start time, not by when
    # the service was first told to watch it (a run re-filed for a later time, e.g. by
    # an automation, leaves its earlier entry behind).
    sim = Simulation(parse_workload(copy.deepcopy(UNPICKED)))
    result = sim.run()
    later = result.runs[1]
    assert later.rec.state_name == "Scheduled"
    heapq.heappush(sim.services.late_heap, (0.0, -1, later))   # an entry from an earlier filing
    sim.services.late_runs_tick()
    assert later.rec.state_name == "Scheduled"   # 50 s is not 15 s overdue at 60 s
    assert (50.0, later) in [(t, run) for t, _, run in sim.services.late_heap]


def _one_flow(flow: dict, runs: int = 3, **sim) -> dict:
    return {
        "simulation": {"until": "6h", **sim},
        "work_pools": [{"name": "p"}],
        "workers": [{"pool": "p", "poll_interval": "5s"}],
        "flows": [flow, {"name": "child", "tasks": [{"name": "c1"}, {"name": "c2", "depends_on": ["c1"]}]}],
        "deployments": [{"name": "d", "flow": flow["name"], "pool": "p",
                         "schedule": {"at": [f"{10 * k}m" for k in range(runs)]}}],
    }


def test_pause_and_resume():
    flow = {"name": "f", "pause": {"probability": 1.0, "after": "a", "duration": "5m", "timeout": "1h"},
            "tasks": [{"name": "a"}, {"name": "b", "depends_on": ["a"]}]}
    result, engine = simulate(_one_flow(flow))
    c = result.metrics.counters
    assert c["pauses"] == c["resumes"] == 3 and c["pause_timeouts"] == 0
    for run in result.runs:
        types = [s.type for s in engine.read_flow_run_states(run.rec.id)]
        assert StateType.PAUSED in types and run.rec.state_type is StateType.COMPLETED


def test_pause_timeout_fails_the_run():
    flow = {"name": "f", "pause": {"probability": 1.0, "after": "a", "duration": "2h", "timeout": "1h"},
            "tasks": [{"name": "a"}, {"name": "b", "depends_on": ["a"]}]}
    result, _ = simulate(_one_flow(flow, runs=2))
    assert result.metrics.counters["pause_timeouts"] == 2
    assert all(r.rec.state_type is StateType.FAILED for r in result.runs)


def test_crashes_and_cancellations():
    flow = {"name": "f", "crash_probability": 1.0, "tasks": [{"name": "a"}, {"name": "b", "depends_on": ["a"]}]}
    result, _ = simulate(_one_flow(flow))
    assert result.metrics.counters["crashes"] == 3
    assert all(r.rec.state_type is StateType.CRASHED for r in result.runs)
    flow = {"name": "g", "cancel": {"probability": 1.0, "after": "0s"}, "tasks": [{"name": "a"}]}
    result, engine = simulate(_one_flow(flow))
    assert result.metrics.counters["cancellations"] == 3
    assert all(r.rec.state_type is StateType.CANCELLED for r in result.runs)


def test_a_cancellation_counts_from_the_scheduled_start_of_a_run_made_ahead():
    # An interval schedule makes runs an hour or more ahead: "2m" after is two minutes
    # into the run (which is RUNNING then, so it goes CANCELLING, and its worker kills
    # it a latency later), not two minutes after the scheduler made it.
    flow = {"name": "f", "cancel": {"probability": 1.0, "after": "2m", "latency": "5s"},
            "tasks": [{"name": "t", "duration": "10m"}]}
    data = _one_flow(flow)
    data["simulation"]["until"] = "2h"
    data["deployments"][0]["schedule"] = {"interval": "10m"}
    result, engine = simulate(data)
    cancelled = [r for r in result.runs if r.rec.state_type is StateType.CANCELLED]
    assert len(cancelled) >= 10 and result.metrics.counters["cancellations"] == len(cancelled)
    for run in cancelled:
        states = engine.read_flow_run_states(run.rec.id)
        types = [s.type for s in states]
        assert types[-3:] == [StateType.RUNNING, StateType.CANCELLING, StateType.CANCELLED]
        asked = (states[-2].timestamp - run.rec.expected_start_time).total_seconds()
        assert asked == pytest.approx(120, abs=1)
        assert (states[-1].timestamp - states[-2].timestamp).total_seconds() == pytest.approx(5, abs=1)


def test_subflows_mirror_onto_their_parent_task():
    flow = {"name": "f", "tasks": [{"name": "pre"}, {"name": "call", "depends_on": ["pre"], "subflow": "child"}]}
    result, engine = simulate(_one_flow(flow, runs=2))
    assert result.metrics.counters["subflow_runs_created"] == 2
    for child in result.subflow_runs:
        parent = engine.read_task_run(child.rec.parent_task_run_id)
        assert child.rec.state_type is parent.state_type is StateType.COMPLETED
    assert all(r.rec.state_type is StateType.COMPLETED for r in result.runs)


# Three top-level runs whose subflow run crashes (injected): a subflow runs in its
# parent's process, so the crash takes both, and both end CRASHED.
CRASHING_SUBFLOWS = _one_flow(
    {"name": "f", "tasks": [{"name": "pre"}, {"name": "call", "depends_on": ["pre"], "subflow": "child"}]})
CRASHING_SUBFLOWS["flows"][1]["crash_probability"] = 1.0


def _states_of(engine: Engine, runs) -> dict[str, int]:
    counts = dict.fromkeys((t.value for t in StateType), 0)
    for run in runs:
        counts[engine.read_flow_run(run.rec.id).state_type.value] += 1
    return counts


def _table(text: str) -> dict[str, list[str]]:
    # A comparison table's cells by row label (labels take the first 30 columns; the
    # "p90"-style rows repeat, and are not read here).
    return {line[:30].strip(): line[30:].split() for line in text.splitlines()}


def test_the_report_counts_top_level_and_subflow_runs_apart():
    result, engine = simulate(CRASHING_SUBFLOWS)
    report = build_report(result)
    fr = report["flow_runs"]
    top, sub = fr["top_level_by_state"], fr["subflow_runs_by_state"]
    # Each group as the engine stores it, each adding up to its "created" figure.
    assert {k: v for k, v in _states_of(engine, result.runs).items() if v} == {"CRASHED": 3}
    assert {k: v for k, v in top.items() if v} == {"CRASHED": 3} and sum(top.values()) == fr["created"] == 3
    assert {k: v for k, v in _states_of(engine, result.subflow_runs).items() if v} == {"CRASHED": 3}
    assert {k: v for k, v in sub.items() if v} == {"CRASHED": 3} and sum(sub.values()) == fr["subflow_runs"] == 3
    # The older key, every flow run, is kept: their sum.
    assert fr["by_state"] == {state: top[state] + sub[state] for state in top}
    assert sum(fr["by_state"].values()) == engine.count_flow_runs() == 6
    text = summary_text(report)
    assert "Flow runs: 3 top-level + 3 subflow runs created" in text
    assert "  top-level by state (3): crashed 3\n  subflow runs by state (3): crashed 3\n" in text
    # A sweep's table puts top-level runs under "flow runs created", as the summary does.
    rows = _table(comparison_text(["x"], [report]))
    assert (rows["flow runs created"], rows["failed"], rows["crashed"]) == (["3"], ["0"], ["3"])


def test_a_sweep_reads_an_older_reports_top_level_states_only_where_it_had_no_subflow_runs():
    result, _ = simulate(CRASHING_SUBFLOWS)
    report = build_report(result)
    for key in ("top_level_by_state", "subflow_runs_by_state"):
        report["flow_runs"].pop(key, None)   # as written before they were counted apart
    plain = copy.deepcopy(report)
    plain["flow_runs"]["subflow_runs"] = 0
    rows = _table(comparison_text(["x", "y"], [report, plain]))
    # Its by_state counts every flow run: the top-level ones' only without subflow runs.
    assert rows["crashed"] == ["-", "6"] and rows["failed"] == ["-", "0"]
    assert "by state (all 6, subflow runs included): crashed 6" in summary_text(report)


def test_crashes_injected_into_subflow_runs_are_counted_and_named_as_such():
    result, _ = simulate(CRASHING_SUBFLOWS)
    report = build_report(result)
    assert report["events"]["injected_crashes"] == report["events"]["crashes"] == 3
    assert ("Crashes: 3 injected by crash_probability; flow runs CRASHED at the end, of any cause: "
            "3 top-level, 3 subflow runs") in summary_text(report)


def test_a_crash_injected_into_a_subflow_takes_its_parents_process_with_it():
    # The parent would retry a failure, and has a minute-long task beside the subflow:
    # the crash ends both runs at once, CRASHED, and a crash is not retried.
    flow = {"name": "f", "retries": 1, "retry_delay": "10s",
            "tasks": [{"name": "call", "subflow": "child"}, {"name": "other", "duration": "60s"}]}
    data = _one_flow(flow, runs=1)
    data["flows"][1]["crash_probability"] = 1.0
    result, engine = simulate(data)
    assert result.metrics.counters["flow_retries"] == 0
    (parent,), (child,) = result.runs, result.subflow_runs
    for run in (parent, child):
        last = engine.read_flow_run_states(run.rec.id)[-1]
        assert (last.type, last.message) == (StateType.CRASHED, "simulated infrastructure crash")
    parent_rec = engine.read_flow_run(parent.rec.id)
    assert (parent_rec.end_time - parent_rec.start_time).total_seconds() < 60   # "other" never finished
    other, = [tr for tr in all_task_runs(engine) if tr.flow_run_id == parent.rec.id and tr.task_key == "f.other"]
    assert other.state_type is StateType.CRASHED


def test_an_injected_crash_the_engine_refuses_is_not_counted():
    # The crash comes as the task ends, a minute in; the run is CANCELLING by then
    # (cancelled at 30 s, a 10-minute latency), and CANCELLING may only become
    # CANCELLED: the engine rejects the crash, and no run crashed.
    flow = {"name": "f", "crash_probability": 1.0, "cancel": {"probability": 1.0, "after": "30s", "latency": "10m"},
            "tasks": [{"name": "a", "duration": "1m"}]}
    result, engine = simulate(_one_flow(flow, runs=2))
    assert not [s for r in result.runs for s in engine.read_flow_run_states(r.rec.id) if s.type is StateType.CRASHED]
    report = build_report(result)
    assert report["events"]["injected_crashes"] == report["events"]["crashes"] == 0
    assert result.metrics.counters["crashes"] == 0
    assert "Crashes:" not in summary_text(report)  # nothing crashed: no line for it


def test_cache_key_day_and_hour_count_whole_days_and_hours_from_the_simulation_start():
    # Started at 18:00: {day} and {hour} count from then, not by the calendar. A run at
    # 7 h (01:00 the next calendar day) is still in day 0, hour 7; one at 25 h is in
    # day 1, hour 25 ({hour} does not wrap at 24). The task fails once and retries
    # 2 h later, in another hour, under the key its attempt began with.
    start = dt.datetime(2024, 1, 1, 18, tzinfo=dt.timezone.utc)
    flow = {"name": "f", "retries": 0, "tasks": [
        {"name": "a", "cache": {"key": "k-{day}-{hour}"}, "retries": 1, "retry_delay": "2h",
         "failure_probability": 1.0}]}
    data = _one_flow(flow, start=start.isoformat(), until="30h")
    data["deployments"][0]["schedule"] = {"at": ["0s", "5h", "7h", "25h"]}
    result, engine = simulate(data)
    keys = {}
    for run in result.runs:
        hours = (run.rec.expected_start_time - start).total_seconds() / 3600
        [task] = engine.read_task_runs(flow_run_filter={"id": {"any_": [run.rec.id]}})
        running = [s for s in engine.read_task_run_states(task.id) if s.type is StateType.RUNNING]
        assert len(running) == 2   # the first try and its retry, 2 h later
        assert len({s.state_details.cache_key for s in running}) == 1
        keys[hours] = running[0].state_details.cache_key
    assert keys == {0: "k-0-0", 5: "k-0-5", 7: "k-0-7", 25: "k-1-25"}


def test_a_simulated_week_runs_in_virtual_time():
    data = {
        "simulation": {"until": "7d", "sample_interval": "1h"},
        "work_pools": [{"name": "p"}],
        "workers": [{"pool": "p", "poll_interval": "30s"}],
        "flows": [{"name": "f", "tasks": [{"name": "t", "duration": "10m"}]}],
        "deployments": [{"name": "hourly", "flow": "f", "pool": "p", "schedule": {"interval": "1h"}}],
    }
    result, engine = simulate(data)
    assert result.end_seconds == 7 * 86400
    assert engine.now() >= dt.datetime(2024, 1, 8, tzinfo=dt.timezone.utc)
    assert 168 <= len(result.runs) <= 169
    completed = [r for r in result.runs if r.rec.state_type is StateType.COMPLETED]
    assert len(completed) >= 167
    assert len(result.metrics.samples) == 7 * 24 + 2  # every hour from 0 to 7d, plus the final sample


def test_runs_mode_stops_after_n_runs():
    result, _ = simulate(SEMANTICS, runs=25)
    assert len(result.runs) == 25 and result.metrics.counters["flow_runs_finished"] == 25
    assert all(r.final for r in result.runs)


def _store_dump(engine: Engine) -> str:
    from engine.serialization import unstructure_record

    out = {}
    for kind, table in engine._store.tables.items():
        rows = [unstructure_record(kind, rec) for rec in table.rows.values()]
        out[kind] = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return json.dumps(out, sort_keys=True)


def test_same_seed_same_report_and_store():
    wl = load_workload(EXAMPLES / "retries-caching-subflows" / "workload.json").with_overrides(until=4 * 3600.0)
    first = Simulation(wl).run()
    second = Simulation(wl).run()
    assert dumps(build_report(first)) == dumps(build_report(second))
    assert _store_dump(first.engine) == _store_dump(second.engine)
    other = Simulation(wl.with_overrides(seed=99)).run()
    assert dumps(build_report(other)) != dumps(build_report(first))


def test_ctrl_c_stops_cleanly_and_leaves_the_store_consistent():
    from engine.sim import default_workload

    calls = []

    def interrupt(sim):
        calls.append(sim.loop.now)
        if len(calls) == 2:
            raise KeyboardInterrupt

    wl = default_workload().with_overrides(until=6 * 3600.0)
    result = Simulation(wl).run(on_progress=interrupt)
    engine = result.engine
    assert result.interrupted and 0 < result.end_seconds < 6 * 3600
    for kind in ("flow", "task"):
        runs = all_flow_runs(engine) if kind == "flow" else all_task_runs(engine)
        for rec in runs:
            states = engine.read_flow_run_states(rec.id) if kind == "flow" else engine.read_task_run_states(rec.id)
            assert states and states[-1].id == rec.state_id and states[-1].type is rec.state_type
    engine.create_flow(name="still-usable")  # no transaction left open


def test_sqlite_store_keeps_the_result(tmp_path):
    if not hasattr(Engine, "open"):
        pytest.skip("durability backends not available")
    wl = parse_workload(copy.deepcopy(SEMANTICS)).with_overrides(until=1800.0)
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    sim = Simulation(wl, store_url=url)
    result = sim.run()
    created = len(result.runs)
    expected = _store_dump(result.engine)
    result.engine.close()
    with Engine.open(url) as reopened:
        assert reopened.count_flow_runs() == created
        assert _store_dump(reopened) == expected


CUSTOM_POLICY = '''
from engine.orchestration import POLICIES, BaseOrchestrationRule
from engine.states import StateType

class EveryOtherStartWaits(BaseOrchestrationRule):
    FROM_STATES = [StateType.PENDING]
    TO_STATES = [StateType.RUNNING]
    seen = 0

    def before_transition(self, initial_state, proposed_state, context):
        type(self).seen += 1
        if type(self).seen % 2:
            self.delay_transition(7, "warming up")

class PatientTaskPolicy(POLICIES["CoreTaskPolicy"]):
    @staticmethod
    def priority():
        return [EveryOtherStartWaits, *POLICIES["CoreTaskPolicy"].priority()]
'''


def test_a_users_own_policy_from_the_workload(tmp_path, monkeypatch):
    (tmp_path / "my_policies.py").write_text(CUSTOM_POLICY)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = _one_flow({"name": "f", "tasks": [{"name": "a", "count": 3}]}, runs=4)
    data["policies"] = {"task": "my_policies:PatientTaskPolicy"}
    result, engine = simulate(data)
    rules = result.rule_stats.outcomes()
    assert rules["EveryOtherStartWaits"]["calls"] == 24 and rules["EveryOtherStartWaits"]["wait"] == 12
    assert all(r.rec.state_type is StateType.COMPLETED for r in result.runs)
    data["policies"] = {"task": "my_policies:Nope"}
    with pytest.raises(Exception, match="policies.task"):
        simulate(data)
    # a policy of the other kind is named at its key, before anything runs
    data["policies"] = {"task": "CoreFlowPolicy"}
    with pytest.raises(WorkloadError, match="policies.task: CoreFlowPolicy is a flow-run policy"):
        simulate(data)


# Work-queue priorities ---------------------------------------------------------------------------

def _pending_order(engine: Engine) -> list[str]:
    """Work queue names of the flow runs in the order they became PENDING."""
    rows = []
    for fr in all_flow_runs(engine):
        pending = [s.timestamp for s in engine.read_flow_run_states(fr.id) if s.type is StateType.PENDING]
        if pending:
            rows.append((pending[0], fr.work_queue_name))
    return [name for _, name in sorted(rows)]


def test_workers_poll_queues_in_the_priority_order_the_engine_stored():
    # No priority given: each queue takes the first free number after the pool's
    # "default" (1); a given one is taken and pushes the queues at or after it down.
    data = {
        "simulation": {"until": "10m"},
        "work_pools": [{"name": "p", "concurrency_limit": 1,
                        "queues": [{"name": "b"}, {"name": "a"}, {"name": "z", "priority": 2}]}],
        "workers": [{"pool": "p", "poll_interval": "10s", "prefetch": "0s", "startup": "1s"}],
        "flows": [{"name": "f", "tasks": [{"name": "t", "duration": "60s"}]}],
        "deployments": [{"name": f"in-{q}", "flow": "f", "pool": "p", "queue": q, "schedule": {"at": ["0s"]}}
                        for q in ("a", "b", "z", "default")],
    }
    wl = parse_workload(copy.deepcopy(data))
    assert [q.priority for q in wl.work_pools[0].queues] == [None, None, None, 2]  # "default" first, added
    sim = Simulation(wl)
    result = sim.run()
    engine = result.engine
    pool = sim.pools["p"]
    stored = [(q.priority, q.name) for q in engine.read_work_queues(pool.id)]
    assert stored == [(1, "default"), (2, "z"), (3, "b"), (4, "a")]
    assert [q.spec.name for q in pool.queues] == [name for _, name in stored]  # polled in that order
    # One slot in the pool: the runs, all due at once, start in that order.
    assert _pending_order(engine) == ["default", "z", "b", "a"]


# Subflows on flow retries ------------------------------------------------------------------------

def _retrying_parent(**child) -> dict:
    """A parent flow with one retry whose last task always fails, after a subflow call."""
    return {
        "simulation": {"until": "1h"},
        "work_pools": [{"name": "p"}],
        "workers": [{"pool": "p", "poll_interval": "5s", "prefetch": "0s"}],
        "flows": [
            {"name": "parent", "retries": 1, "retry_delay": "30s", "tasks": [
                {"name": "a", "duration": "5s"},
                {"name": "sub", "depends_on": ["a"], "subflow": "child"},
                {"name": "b", "depends_on": ["sub"], "duration": "5s", "failure_probability": 1.0},
            ]},
            {"name": "child", "tasks": [{"name": "c", "duration": "3s", **child}]},
        ],
        "deployments": [{"name": "d", "flow": "parent", "pool": "p", "schedule": {"at": ["0s", "10m"]}}],
    }


def test_a_flow_retry_loads_the_completed_subflow_run_instead_of_creating_one():
    result, engine = simulate(_retrying_parent())
    c = result.metrics.counters
    assert c["flow_retries"] == 2 and c["subflow_runs_created"] == 2 and c["subflow_runs_loaded"] == 2
    subflows = [fr for fr in all_flow_runs(engine) if fr.parent_task_run_id is not None]
    assert len(subflows) == 2 and len({fr.parent_task_run_id for fr in subflows}) == 2
    for fr in subflows:
        # Loaded and proposed RUNNING again: with no persisted result the engine lets
        # it run again, in the same flow run (as Prefect 3.1.0 does).
        names = [s.name for s in engine.read_flow_run_states(fr.id)]
        assert names == ["Pending", "Running", "Completed", "Running", "Completed"]
        assert engine.read_task_run(fr.parent_task_run_id).state_type is StateType.COMPLETED
    assert build_report(result)["flow_runs"]["subflow_runs_loaded"] == 2


def test_a_flow_retry_creates_a_new_subflow_run_when_the_earlier_one_failed():
    result, engine = simulate(_retrying_parent(failure_probability=1.0))
    c = result.metrics.counters
    assert c["flow_retries"] == 2 and c["subflow_runs_created"] == 4 and c["subflow_runs_loaded"] == 0
    by_parent: dict = {}
    for fr in all_flow_runs(engine):
        if fr.parent_task_run_id is not None:
            by_parent.setdefault(fr.parent_task_run_id, []).append(fr)
    assert sorted(len(v) for v in by_parent.values()) == [2, 2]
    assert all(fr.state_type is StateType.FAILED for runs in by_parent.values() for fr in runs)


KEEP_COMPLETED_POLICY = '''
from engine.orchestration import POLICIES, BaseOrchestrationRule
from engine.states import StateType

class KeepCompletedRuns(BaseOrchestrationRule):
    """What HandleFlowTerminalStateTransitions does for a run with a persisted result."""
    FROM_STATES = [StateType.COMPLETED]
    TO_STATES = [StateType.RUNNING]

    def before_transition(self, initial_state, proposed_state, context):
        self.reject_transition(None, "Run is already COMPLETED.")

class KeepCompletedFlowPolicy(POLICIES["CoreFlowPolicy"]):
    @staticmethod
    def priority():
        return [KeepCompletedRuns, *POLICIES["CoreFlowPolicy"].priority()]
'''


def test_a_loaded_subflow_run_the_engine_keeps_completed_is_not_run_again(tmp_path, monkeypatch):
    (tmp_path / "keep_policies.py").write_text(KEEP_COMPLETED_POLICY)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = _retrying_parent()
    data["policies"] = {"flow": "keep_policies:KeepCompletedFlowPolicy"}
    result, engine = simulate(data)
    c = result.metrics.counters
    assert c["subflow_runs_created"] == 2 and c["subflow_runs_loaded"] == 2
    for child in result.subflow_runs:
        assert [s.name for s in engine.read_flow_run_states(child.rec.id)] == ["Pending", "Running", "Completed"]
        assert [s.name for tr in child.trs for s in engine.read_task_run_states(tr.id)] == [
            "Pending", "Running", "Completed"]
    # The parents went on with the subflow's earlier result: "b" ran (and failed) again.
    assert all(r.rec.state_type is StateType.FAILED and r.rec.run_count == 2 for r in result.runs)
    assert c["task_attempts"] == 2 * (2 + 2 + 1)   # a and b twice per run, c once


# Pause timeouts ----------------------------------------------------------------------------------

def _pausing(timeout: str, duration: str, **services) -> dict:
    data = {
        "simulation": {"until": "3h"},
        "work_pools": [{"name": "p"}],
        # A paused run keeps its process (an in-process pause), so its worker slot.
        "workers": [{"pool": "p", "poll_interval": "10s", "prefetch": "0s", "startup": "1s", "limit": 1}],
        "flows": [{"name": "f", "pause": {"probability": 1.0, "after": "a", "duration": duration, "timeout": timeout},
                   "tasks": [{"name": "a", "duration": "5s"}, {"name": "b", "depends_on": ["a"], "duration": "5s"}]}],
        "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"at": ["0s", "1m"]}}],
    }
    if services:
        data["services"] = services
    return data


def _seconds(result, when) -> float:
    return (when - result.start).total_seconds()


def test_the_pause_expiration_service_fails_a_run_on_its_first_pass_after_the_timeout():
    result, engine = simulate(_pausing("10m", "30m"))
    c = result.metrics.counters
    assert c["pauses"] == c["pause_timeouts"] == 2 and c["resumes"] == 0
    first, second = sorted(result.runs, key=lambda r: r.rec.expected_start_time)
    for run in (first, second):
        states = engine.read_flow_run_states(run.rec.id)
        paused, failed = states[-2], states[-1]
        assert paused.type is StateType.PAUSED and failed.type is StateType.FAILED
        assert failed.message == "The flow was paused and never resumed."
        # The service passes every 5 s from the start; it fails a run on the first
        # pass after its pause timeout, long before the drawn resume (30 min).
        timeout = _seconds(result, paused.state_details.pause_timeout)
        assert _seconds(result, failed.timestamp) == pytest.approx((timeout // 5 + 1) * 5, abs=1e-3)
        held = [tr for tr in run.trs if tr is not None and tr.task_key == "f.b"]
        assert held[0].state_type is StateType.CANCELLED
    # The failed run gave back its worker slot: the second run started then.
    second_running = [s for s in engine.read_flow_run_states(second.rec.id) if s.type is StateType.RUNNING]
    first_failed = engine.read_flow_run_states(first.rec.id)[-1].timestamp
    assert 0 < (second_running[0].timestamp - first_failed).total_seconds() <= 12


def test_pause_expirations_follow_the_service_settings():
    result, engine = simulate(_pausing("10m", "30m", pause_expirations={"loop": "1m"}))
    for run in result.runs:
        states = engine.read_flow_run_states(run.rec.id)
        timeout = _seconds(result, states[-2].state_details.pause_timeout)
        assert _seconds(result, states[-1].timestamp) == pytest.approx((timeout // 60 + 1) * 60, abs=1e-3)
    # Without the service the timeout is only noticed when the resume comes: the
    # engine (HandleResumingPausedFlows) rejects RUNNING with a Failed state (whose
    # message, as in Prefect, names the proposed state).
    result, engine = simulate(_pausing("10m", "30m", pause_expirations={"enabled": False}))
    assert result.metrics.counters["pause_timeouts"] == 2
    for run in result.runs:
        states = engine.read_flow_run_states(run.rec.id)
        assert states[-1].message == "The flow was running and never resumed."
        waited = (states[-1].timestamp - states[-2].timestamp).total_seconds()
        assert waited == pytest.approx(1800, abs=1)   # the drawn 30 min resume


def test_a_resume_after_the_service_failed_the_run_asks_the_engine_nothing():
    result, engine = simulate(_pausing("10m", "30m"))
    rules = result.rule_stats.outcomes()
    # No RUNNING proposal ever reached a paused (or failed) run: the resumes found
    # the runs no longer paused, as Prefect's resume_flow_run does (NotPausedError).
    assert rules.get("HandleResumingPausedFlows", {}).get("calls", 0) == 0
    assert result.metrics.counters["resumes"] == 0
    for run in result.runs:
        assert [s.type for s in engine.read_flow_run_states(run.rec.id)][-1] is StateType.FAILED


def test_a_pause_resumed_in_time_is_left_alone_by_the_service():
    result, engine = simulate(_pausing("10m", "2m"))
    c = result.metrics.counters
    assert c["pauses"] == c["resumes"] == 2 and c["pause_timeouts"] == 0
    assert all(r.rec.state_type is StateType.COMPLETED for r in result.runs)


# Pool and queue limits -------------------------------------------------------------------------------

def test_a_cancelling_run_does_not_hold_its_pool_slot():
    data = {
        "simulation": {"until": "10m"},
        "work_pools": [{"name": "p", "concurrency_limit": 1}],
        "workers": [{"pool": "p", "poll_interval": "10s", "prefetch": "0s", "startup": "1s"}],
        "flows": [{"name": "long", "cancel": {"probability": 1.0, "after": "20s", "latency": "2m"},
                   "tasks": [{"name": "a", "duration": "5m"}]},
                  {"name": "short", "tasks": [{"name": "a", "duration": "5s"}]}],
        "deployments": [{"name": "d1", "flow": "long", "pool": "p", "schedule": {"at": ["0s"]}},
                        {"name": "d2", "flow": "short", "pool": "p", "schedule": {"at": ["5s"]}}],
    }
    result, engine = simulate(data)
    long_run, short_run = sorted(result.runs, key=lambda r: r.rec.expected_start_time)
    long_states = engine.read_flow_run_states(long_run.rec.id)
    assert [s.type for s in long_states][-2:] == [StateType.CANCELLING, StateType.CANCELLED]
    cancelling, cancelled = long_states[-2].timestamp, long_states[-1].timestamp
    pending = next(s.timestamp for s in engine.read_flow_run_states(short_run.rec.id) if s.type is StateType.PENDING)
    # Picked up on the first poll after the long run went CANCELLING, not after it was CANCELLED.
    assert cancelling < pending < cancelled
    assert (pending - cancelling).total_seconds() <= 10
    assert short_run.rec.state_type is StateType.COMPLETED


# Scheduler -------------------------------------------------------------------------------------------

def test_auto_scheduled_runs_look_like_prefects_scheduler_made_them():
    data = {
        "simulation": {"until": "2h"},   # no workers: the runs stay SCHEDULED
        "services": {"late_runs": {"enabled": False}},
        "work_pools": [{"name": "p"}],
        "flows": [{"name": "f", "tasks": [{"name": "a"}]}],
        "deployments": [
            {"name": "every-7m", "flow": "f", "pool": "p", "schedule": {"interval": "7m"}, "tags": ["team-a"]},
            {"name": "on-the-hour", "flow": "f", "pool": "p", "schedule": {"interval": "10m"}},
            {"name": "by-hand", "flow": "f", "pool": "p", "schedule": {"at": ["0s"]}, "tags": ["team-b"]},
        ],
    }
    result, engine = simulate(data)
    deps = {d.name: d.id for d in engine.read_deployments()}
    runs = {}
    for fr in all_flow_runs(engine):
        if (fr.created - result.start).total_seconds() < 1:   # the scheduler's first pass, at the start
            runs.setdefault(fr.deployment_id, []).append(fr)
    for rs in runs.values():
        rs.sort(key=lambda r: r.next_scheduled_start_time)
    seven = runs[deps["every-7m"]]
    first = seven[0]
    assert first.idempotency_key == f"scheduled {deps['every-7m']} 2024-01-01 00:00:00+00:00"
    assert seven[1].idempotency_key == f"scheduled {deps['every-7m']} 2024-01-01 00:07:00+00:00"
    assert first.tags == ["auto-scheduled", "team-a"] and first.auto_scheduled
    state = engine.read_flow_run_states(first.id)[0]
    assert (state.name, state.message) == ("Scheduled", "Flow run scheduled")
    # Dates from now until the first one at least min_scheduled_time (1 h) ahead,
    # that one included: 0, 7, ..., 63 min (Prefect's scheduler makes the same 10).
    offsets = [(r.next_scheduled_start_time - result.start).total_seconds() / 60 for r in seven]
    assert offsets == [7.0 * k for k in range(10)]
    ten = runs[deps["on-the-hour"]]
    assert [(r.next_scheduled_start_time - result.start).total_seconds() / 60 for r in ten] == [
        10.0 * k for k in range(7)]   # 60 min is exactly 1 h ahead: the last one
    by_hand = runs[deps["by-hand"]][0]
    assert by_hand.tags == ["team-b"] and not by_hand.auto_scheduled and by_hand.idempotency_key is None
    assert engine.read_flow_run_states(by_hand.id)[0].message is None


def test_a_cron_in_a_timezone_keys_its_runs_as_prefects_scheduler_does():
    # The date in the key is the schedule's own local time, as the engine's (Prefect's)
    # schedule_runs prints it, across a daylight-saving change (2024-03-10, New York).
    schedule = {"cron": "30 2 * * *", "timezone": "America/New_York"}
    data = {"simulation": {"start": "2024-03-09T12:00:00Z", "until": "2d"},
            "services": {"late_runs": {"enabled": False}}, "work_pools": [{"name": "p"}],
            "flows": [{"name": "f", "tasks": [{"name": "a"}]}],
            "deployments": [{"name": "nightly", "flow": "f", "pool": "p", "schedule": schedule}]}
    result, engine = simulate(data)
    dep = engine.read_deployments()[0]
    simulated = sorted((r.next_scheduled_start_time, r.idempotency_key) for r in all_flow_runs(engine))
    reference = Engine(ManualClock(result.start))
    ref_dep = reference.create_deployment(reference.create_flow("f").id, "nightly", schedules=[{"schedule": schedule}])
    expected = sorted((r.next_scheduled_start_time, r.idempotency_key.replace(str(ref_dep.id), str(dep.id)))
                      for r in map(reference.read_flow_run, reference.schedule_runs(ref_dep.id, max_runs=2)))
    assert simulated[:2] == expected
    assert simulated[0][1].endswith("2024-03-10 01:30:00-05:00") and simulated[1][1].endswith("-04:00")


def test_the_scheduler_tops_up_only_when_prefects_would():
    def dates_by_creation(**scheduler):
        data = {
            "simulation": {"until": "1h"},   # the simulation makes no run for a date past its end
            "services": {"scheduler": {"min_runs": 3, "min_scheduled_time": "20m", **scheduler},
                         "late_runs": {"enabled": False}},
            "work_pools": [{"name": "p"}],
            "flows": [{"name": "f", "tasks": [{"name": "a"}]}],
            "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"interval": "4m"}}],
        }
        result, engine = simulate(data)
        return sorted(((r.next_scheduled_start_time - result.start).total_seconds() / 60,
                       int((r.created - result.start).total_seconds() // 60)) for r in all_flow_runs(engine))

    rows = dates_by_creation()
    # The first pass (at 0) walks 0, 4, ..., 20: 20 min is min_scheduled_time ahead.
    assert [d for d, m in rows if m == 0] == [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]
    # A pass at minute m adds dates until one is at least m + 20 ahead, so a date
    # d > 20 is made by the first pass after d - 24 (when the one before it is no
    # longer 20 min ahead), one minute later: d - 23.
    assert [(d, m) for d, m in rows if d > 20] == [(d, d - 23) for d in range(24, 61, 4)]
    # max_runs caps the walk (dates already made count).
    assert [d for d, m in dates_by_creation(max_runs=4) if m == 0] == [0.0, 4.0, 8.0, 12.0]


def test_workers_with_a_heartbeat_are_stored_online_and_ready_their_pools():
    from engine.sim import default_workload

    spans = {"simulation.until=1h", "simulation.seed=5"}
    quiet = Simulation(default_workload(sorted(spans))).run()
    beating = Simulation(default_workload(sorted(spans | {"workers[0].heartbeat=30s", "workers[1].heartbeat=45"}))).run()
    end = beating.start + dt.timedelta(seconds=beating.end_seconds)
    for pool in beating.engine.read_work_pools():
        workers = beating.engine.read_workers(pool.id)
        count = sum(w.count for w in beating.workload.workers if w.pool == pool.name)
        assert len(workers) == count >= 1 and all(w.name.startswith(f"{pool.name}-worker-") for w in workers)
        interval = 30 if pool.name == "default-pool" else 45
        for worker in workers:
            assert worker.status == "ONLINE" and worker.heartbeat_interval_seconds == interval
            assert dt.timedelta(0) <= end - worker.last_heartbeat_time < dt.timedelta(seconds=interval)
        assert pool.status == "READY"
    for pool in quiet.engine.read_work_pools():
        assert quiet.engine.read_workers(pool.id) == [] and pool.status == "NOT_READY"
    # Heartbeats draw no random numbers: everything simulated is the same but the event count.
    a, b = build_report(quiet), build_report(beating)
    for report in (a, b):
        report["workload"].pop("settings")
        report["simulated"].pop("events")
    assert a == b


def test_a_worker_heartbeat_must_be_a_positive_duration():
    from engine.sim import WorkloadError, default_workload

    for bad in ("0", "-5s", "'soon'"):
        with pytest.raises(WorkloadError) as info:
            default_workload([f"workers[0].heartbeat={bad}"])
        assert info.value.path == "workers[0].heartbeat"


def test_ctrl_c_inside_an_engine_call_lets_the_call_finish_and_stops_at_the_next_tick(monkeypatch):
    import signal

    from engine.sim import default_workload

    original = Engine.set_task_run_state
    finished = []

    def interrupted_call(self, *args, **kwargs):
        if not finished:
            signal.raise_signal(signal.SIGINT)  # lands inside the call, as a real Ctrl-C may
        result = original(self, *args, **kwargs)
        finished.append(result)
        return result

    monkeypatch.setattr(Engine, "set_task_run_state", interrupted_call)
    sim = Simulation(default_workload(["simulation.until=2h"]), rule_stats=False)
    before = signal.getsignal(signal.SIGINT)
    result = sim.run()
    assert result.interrupted and finished  # the call the signal landed in completed
    assert len(finished) < 2100  # ... and the loop stopped at its next tick (every 2,048 events)
    assert signal.getsignal(signal.SIGINT) is before
    engine = result.engine
    assert not engine._store.in_transaction
    for rec in engine._store.tables["task_run"].rows.values():
        assert engine.read_task_run_states(rec.id)[-1].id == rec.state_id


# What the audit found ------------------------------------------------------------------------------

def test_the_workloads_settings_of_a_pools_default_queue_reach_the_engine():
    queues = [{"name": "default", "concurrency_limit": 3, "paused": True}, {"name": "other", "priority": 1}]
    data = {
        "simulation": {"until": "10m"},
        "work_pools": [{"name": "p", "queues": queues}, {"name": "q", "queues": [{"name": "default",
                                                                                   "concurrency_limit": 5}]}],
        "workers": [{"pool": "p"}],
        "flows": [{"name": "f", "tasks": [{"name": "t"}]}],
        "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"interval": "1m"}}],
    }
    result, engine = simulate(data)
    pools = {pool.name: pool for pool in engine.read_work_pools()}
    paused = engine.read_work_queue(pools["p"].default_queue_id)
    assert (paused.concurrency_limit, paused.is_paused, paused.status, paused.priority) == (3, True, "PAUSED", 2)
    limited = engine.read_work_queue(pools["q"].default_queue_id)
    assert (limited.concurrency_limit, limited.is_paused, limited.status) == (5, False, "NOT_READY")
    # the workers, as before, take nothing from the paused queue
    assert result.runs and all(r.rec.state_type is StateType.SCHEDULED for r in result.runs)


ABORT_SUBMISSIONS_POLICY = '''
from engine.orchestration import POLICIES, BaseOrchestrationRule
from engine.states import StateType

class RefuseSubmissions(BaseOrchestrationRule):
    FROM_STATES = [StateType.SCHEDULED]
    TO_STATES = [StateType.PENDING]

    def before_transition(self, initial_state, proposed_state, context):
        self.abort_transition("no submissions")

class NoSubmissionsFlowPolicy(POLICIES["CoreFlowPolicy"]):
    @staticmethod
    def priority():
        return [RefuseSubmissions, *POLICIES["CoreFlowPolicy"].priority()]
'''


def test_the_late_runs_service_marks_a_run_whose_submission_was_aborted_as_prefects_query_finds_it(
        tmp_path, monkeypatch):
    (tmp_path / "abort_submissions.py").write_text(ABORT_SUBMISSIONS_POLICY)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = copy.deepcopy(UNPICKED)
    data["workers"] = [{"pool": "p", "poll_interval": "5s"}]
    data["policies"] = {"flow": "abort_submissions:NoSubmissionsFlowPolicy"}
    result, engine = simulate(data)
    counters = result.metrics.counters
    assert counters["flow_aborts"] == 2 and all(run.dead for run in result.runs)
    # Still SCHEDULED in the store, so Late once 15 s overdue: the first (due at 0 s);
    # the second (50 s) is not overdue yet at 60 s.
    assert [r.rec.state_name for r in result.runs] == ["Late", "Scheduled"]
    assert counters["late_marked"] == 1 and result.done == 2


def test_a_period_past_the_end_of_pythons_dates_is_refused_before_anything_is_opened(tmp_path):
    from engine.sim import WorkloadError

    store = tmp_path / "runs.db"

    def refused(*settings, **overrides):
        wl = parse_workload(copy.deepcopy(UNPICKED), settings=settings)
        with pytest.raises(WorkloadError) as info:
            Simulation(wl.with_overrides(**overrides), store_url=f"sqlite:///{store}")
        assert info.value.path == "simulation" and "9999-12-31" in str(info.value)
        return str(info.value)

    assert "lasts 2d00h (simulation.until" in refused('simulation.start="9999-12-31T00:00:00Z"', until=2 * 86400)
    refused(until=99999999 * 7 * 86400.0)
    # a run target: its time limit and the scheduler's look-ahead past it
    assert "services.scheduler.max_scheduled_time" in refused('simulation.start="9999-09-01T00:00:00Z"', runs=3)
    assert "flows[0].retry_delay" in refused("flows[f].retries=1", "flows[f].retry_delay=999999999999")
    huge = "flows[f].tasks[t].retry_delay=[1, 999999999999]"
    assert "flows[0].tasks[0].retry_delay" in refused("flows[f].tasks[t].retries=2", huge)
    # a cache entry's expiration is a time too (it failed part way, on the first cached task)
    assert "flows[0].tasks[0].cache.expiration" in refused('flows[f].tasks[t].cache={key="k", expiration=1e300}')
    # an interval schedule's anchor and interval are stored as datetime and timedelta (they failed at setup)
    for schedule in ('{interval=1e300}', '{interval="1h", anchor="99999999w"}'):
        deployments = f'deployments=[{{name="d", flow="f", pool="p", schedule={schedule}}}]'
        with pytest.raises(WorkloadError, match=r"^deployments\[0\]\.schedule: its anchor .* past Python's dates"):
            Simulation(parse_workload(copy.deepcopy(UNPICKED), settings=[deployments]))
    assert not store.exists()
    simulate(UNPICKED, huge)   # (without retries the delay is never added to anything)
    # Near the end, but room enough: it runs.
    result, _ = simulate(UNPICKED, 'simulation.start="9999-12-29T00:00:00Z"', "simulation.until=1d")
    assert result.end_seconds == 86400 and result.runs[0].rec.state_name == "Late"


def test_a_run_target_not_reached_says_so_and_why_in_the_report_and_summary():
    from engine.sim.report import summary_text

    picked = {**UNPICKED, "workers": [{"pool": "p", "poll_interval": "5s"}]}
    result, _ = simulate(picked, "simulation.max_time=2m", runs=5)
    assert result.stopped_by == "max_time" and len(result.runs) == 2
    report = build_report(result)
    assert report["simulated"]["stopped_by"] == "max_time"
    assert (report["workload"]["runs"], report["workload"]["max_time_seconds"]) == (5, 120.0)
    assert (report["flow_runs"]["created"], report["flow_runs"]["done"]) == (2, 2)
    [warning] = report["warnings"]
    assert warning.startswith("the run target was not reached: 2 of 5 flow runs created and 2 done")
    assert "simulation.max_time (2m00s here, 30 days unless set)" in warning
    assert "--set simulation.max_time=1d" in warning
    assert summary_text(report).endswith("\nWARNING: " + warning)
    # a file giving both a duration and a target stops at the first; the other is named
    both = copy.deepcopy(picked)
    both["simulation"] = {"until": "2m", "runs": 5}
    result, _ = simulate(both)
    assert result.stopped_by == "until"
    assert "the simulated duration, simulation.until (2m00s), ran out" in result.warnings[0]
    # reached: no warning
    result, _ = simulate(picked, runs=2)
    assert (result.stopped_by, result.warnings, build_report(result)["workload"]["max_time_seconds"]) == \
        ("runs", [], 30 * 86400.0)
    result, _ = simulate(picked)
    assert (result.stopped_by, result.warnings, build_report(result)["workload"]["max_time_seconds"]) == \
        ("until", [], None)


@pytest.mark.parametrize("change", [
    lambda d: d.update(deployments=[]),
    lambda d: d["deployments"][0].pop("schedule"),
    lambda d: d["deployments"][0].update(schedule={"at": []}),
    # (after the hour simulated, and after the 30 days a run target gives)
    lambda d: d["deployments"][0].update(schedule={"at": ["40d"]}),
    lambda d: d["deployments"][0].update(schedule={"interval": "1h", "anchor": "40d"}),
    lambda d: d["deployments"][0].update(schedule={"cron": "0 0 1 6 *"}),
    lambda d: d["deployments"][0].update(paused=True),
])
def test_a_workload_that_creates_no_runs_is_refused_a_run_target_and_warned_of_otherwise(change):
    from engine.sim import WorkloadError

    data = copy.deepcopy(UNPICKED)
    data["simulation"] = {"until": "1h"}
    change(data)
    wl = parse_workload(data)
    with pytest.raises(WorkloadError, match="the target of 5 flow runs .* can never be reached: nothing in this "
                                            "workload creates flow runs") as info:
        Simulation(wl.with_overrides(runs=5))
    assert info.value.path == "simulation.runs"
    result = Simulation(wl).run()
    assert result.runs == [] and result.stopped_by == "until"
    [warning] = result.warnings
    assert warning.startswith("nothing in this workload creates flow runs (")


def test_what_may_create_runs_is_no_reason_for_a_warning():
    from engine.sim.simulation import no_run_source

    data = copy.deepcopy(UNPICKED)
    assert no_run_source(parse_workload(data)) is None
    data["deployments"][0]["paused"] = True
    assert no_run_source(parse_workload(data)) is not None
    for kind in ("run-deployment", "resume-deployment"):
        data["automations"] = [{"name": "a", "trigger": {"posture": "Reactive", "expect": ["prefect.flow-run.*"]},
                                "actions": [{"type": kind, "deployment": "d"}]}]
        assert no_run_source(parse_workload(data)) is None
        assert no_run_source(parse_workload(data, settings=["services.triggers.enabled=false"])) is not None
    data["deployments"][0].update(paused=False, schedule={"poisson": "1d"})
    assert no_run_source(parse_workload(data, settings=["services.triggers.enabled=false"])) is None


def test_a_report_folder_keeps_nothing_of_an_earlier_report_but_what_is_not_the_simulators(tmp_path):
    from engine.sim.report import write_report

    result, _ = simulate(UNPICKED)
    folder = tmp_path / "out"
    (folder / "variant-1").mkdir(parents=True)
    (folder / "variant-2").mkdir()
    (folder / "variant-x").mkdir()
    for name in ("rules.png", "latency.png", "sweep.json", "notes.txt", "variant-1/report.json",
                 "variant-1/throughput.png", "variant-2/report.json", "variant-2/mine.txt", "variant-x/report.json"):
        (folder / name).write_text("old")
    paths = write_report(result, str(folder), charts=False)
    assert sorted(p.name for p in folder.iterdir()) == \
        ["notes.txt", "report.json", "timings.json", "variant-2", "variant-x"]
    assert sorted(p.name for p in (folder / "variant-2").iterdir()) == ["mine.txt"]
    assert (folder / "variant-x" / "report.json").read_text() == "old"
    assert [pathlib.Path(p).name for p in paths] == ["report.json", "timings.json"]


def test_a_report_folder_is_checked_without_being_created(tmp_path):
    from engine.sim.report import report_folder_problem

    assert report_folder_problem(str(tmp_path / "a" / "b")) is None
    assert not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("")
    assert report_folder_problem(str(tmp_path / "file")) == "not a directory"
    assert report_folder_problem(str(tmp_path / "file" / "sub")) == f"not a directory ({tmp_path / 'file'})"


def test_flow_retries_take_a_deployment_past_its_concurrency_limit_as_in_prefect():
    # RUNNING -> AwaitingRetry gives the deployment slot back (ReleaseFlowConcurrencySlots)
    # and AwaitingRetry -> RUNNING takes none (SecureFlowConcurrencySlots guards PENDING
    # only), as in Prefect 3.1.0: a retry comes back on top of the runs that took the slot.
    data = {
        "simulation": {"seed": 3, "until": "1h"},
        "work_pools": [{"name": "p"}],
        "workers": [{"pool": "p", "poll_interval": "5s"}],
        "flows": [{"name": "f", "retries": 3, "retry_delay": "20s",
                   "tasks": [{"name": "t", "duration": "60s", "failure_probability": 0.5}]}],
        "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"interval": "30s"},
                         "concurrency_limit": 2}],
    }

    def most_active(result, engine) -> int:
        return max_overlap([span for run in result.runs
                            for span in intervals(engine, run.rec, "flow", OCCUPYING)])

    result, engine = simulate(data)
    assert result.metrics.counters["flow_retries"] > 0 and most_active(result, engine) > 2
    result, engine = simulate(data, "flows[f].retries=0")
    assert most_active(result, engine) == 2


def test_a_run_whose_infrastructure_crashes_while_cancelling_is_still_cancelled_after_the_latency():
    # Cancelled at 30 s with a 10-minute latency, its infrastructure crashes a minute in
    # (the engine refuses the crash: CANCELLING may only become CANCELLED). The process
    # is gone, but the cancellation goes on: the worker's kill finds no process and marks
    # the run CANCELLED, as Prefect's worker does (InfrastructureNotFound). No run is
    # left CANCELLING, and nothing counts as an abort.
    flow = {"name": "f", "crash_probability": 1.0, "cancel": {"probability": 1.0, "after": "30s", "latency": "10m"},
            "tasks": [{"name": "a", "duration": "1m"}]}
    result, engine = simulate(_one_flow(flow, runs=2))
    assert [r.state_type for r in engine.read_flow_runs()] == [StateType.CANCELLED] * 2
    for run in result.runs:
        states = engine.read_flow_run_states(run.rec.id)
        assert [s.type for s in states][-2:] == [StateType.CANCELLING, StateType.CANCELLED]
        # The kill comes the cancel latency after the request, not at the crash (in
        # whole seconds: the clock ticks 1 µs per reading).
        assert round((states[-1].timestamp - states[-2].timestamp).total_seconds()) == 600
        [task] = engine.read_task_runs(flow_run_filter={"id": {"any_": [run.rec.id]}})
        assert task.state_type is StateType.COMPLETED   # it ended just before the crash
    c = result.metrics.counters
    assert c["cancellations_requested"] == c["cancellations"] == 2
    assert c["flow_aborts"] == c["crashes"] == 0
    assert c["flow_runs_finished"] == 2 and all(r.final and not r.dead for r in result.runs)
    assert build_report(result)["flow_runs"]["by_state"]["CANCELLED"] == 2


def test_a_pause_takes_a_deployment_past_its_concurrency_limit_as_in_prefect():
    # RUNNING -> PAUSED gives the deployment slot back and PAUSED -> RUNNING takes none:
    # while one run is paused another takes the slot, and the resumed run runs beside it.
    data = {
        "simulation": {"seed": 3, "until": "2h"},
        "work_pools": [{"name": "p"}],
        "workers": [{"pool": "p", "poll_interval": "5s"}],
        "flows": [{"name": "f", "pause": {"probability": 1.0, "after": "a", "duration": "5m", "timeout": "1h"},
                   "tasks": [{"name": "a", "duration": "1m"}, {"name": "b", "duration": "10m", "depends_on": ["a"]}]}],
        "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"interval": "2m"},
                         "concurrency_limit": 1}],
    }

    def most_running(engine) -> int:
        return max_overlap([span for rec in engine.read_flow_runs()
                            for span in intervals(engine, rec, "flow", {StateType.RUNNING})])

    result, engine = simulate(data)
    assert result.metrics.counters["resumes"] > 0 and most_running(engine) > 1
    data["flows"][0].pop("pause")
    result, engine = simulate(data)
    assert most_running(engine) == 1


ANSWER_FINALS_POLICY = '''
from engine.orchestration import POLICIES, BaseOrchestrationRule
from engine.states import Failed, StateType

ANSWER = {"flow": None, "task": None}


class AnswerCompletion(BaseOrchestrationRule):
    """Answers a run's COMPLETED proposal as ANSWER[kind] says (a WAIT only once per run)."""
    FROM_STATES = [StateType.RUNNING]
    TO_STATES = [StateType.COMPLETED]
    kind = None
    waited = set()

    def before_transition(self, initial_state, proposed_state, context):
        answer = ANSWER[self.kind]
        if answer == "wait" and context.run.id not in self.waited:
            self.waited.add(context.run.id)
            self.delay_transition(30, "not yet")
        elif answer == "abort":
            self.abort_transition("no completions")
        elif answer == "reject":
            self.reject_transition(Failed(message="rejected by the rule"), "failed instead")


class FlowAnswer(AnswerCompletion):
    kind = "flow"


class TaskAnswer(AnswerCompletion):
    kind = "task"


class AnsweringFlowPolicy(POLICIES["CoreFlowPolicy"]):
    @staticmethod
    def priority():
        return [FlowAnswer, *POLICIES["CoreFlowPolicy"].priority()]


class AnsweringTaskPolicy(POLICIES["CoreTaskPolicy"]):
    @staticmethod
    def priority():
        return [TaskAnswer, *POLICIES["CoreTaskPolicy"].priority()]
'''


@pytest.mark.parametrize("kind", ["flow", "task"])
@pytest.mark.parametrize("answer", ["wait", "reject", "abort"])
def test_a_users_policy_answering_completions_is_followed_as_a_client_would(tmp_path, monkeypatch, kind, answer):
    (tmp_path / "answer_finals.py").write_text(ANSWER_FINALS_POLICY)
    monkeypatch.syspath_prepend(str(tmp_path))
    import answer_finals
    monkeypatch.setitem(answer_finals.ANSWER, kind, answer)
    monkeypatch.setattr(answer_finals.AnswerCompletion, "waited", set())
    data = _one_flow({"name": "f", "tasks": [{"name": "a", "duration": "10s"}]}, runs=2)
    data["policies"] = {"flow": "answer_finals:AnsweringFlowPolicy", "task": "answer_finals:AnsweringTaskPolicy"}
    result, engine = simulate(data)
    counters = result.metrics.counters
    runs = sorted(result.runs, key=lambda r: r.rec.expected_start_time)
    assert len(runs) == 2 and result.done == 2
    tasks = [tr for run in runs for tr in run.trs]
    flow_types = [run.rec.state_type for run in runs]
    task_types = [engine.read_task_run(tr.id).state_type for tr in tasks]
    if answer == "wait":
        assert flow_types == [StateType.COMPLETED] * 2 and task_types == [StateType.COMPLETED] * 2
        for run in runs:  # the waited proposal was made again 30 s later
            states = engine.read_flow_run_states(run.rec.id) if kind == "flow" else [
                s for tr in run.trs for s in engine.read_task_run_states(tr.id)]
            running, completed = states[-2], states[-1]
            # (the simulation's clock ticks 1 µs per reading: whole milliseconds say when)
            assert round((completed.timestamp - running.timestamp).total_seconds(), 3) >= 10 + 30
    elif answer == "reject":
        assert flow_types == [StateType.FAILED] * 2
        assert task_types == [StateType.FAILED if kind == "task" else StateType.COMPLETED] * 2
        if kind == "flow":
            assert [run.rec.state.message for run in runs] == ["rejected by the rule"] * 2
    elif kind == "flow":  # an aborted completion: the client stops driving the run, left RUNNING
        assert counters["flow_aborts"] == 2 and all(run.dead for run in runs)
        assert flow_types == [StateType.RUNNING] * 2 and task_types == [StateType.COMPLETED] * 2
    else:  # an aborted task completion: that task failed, as the flow run sees it
        assert counters["task_aborts"] == 2
        assert flow_types == [StateType.FAILED] * 2 and task_types == [StateType.RUNNING] * 2


@pytest.mark.parametrize("example", [None, "retries-caching-subflows/workload.json", "worker-outage/workload.toml",
                                     "tag-limit-fanout/workload.toml"])
def test_a_finished_simulation_is_freed_when_let_go(example):
    # Its parts reach back to it weakly (a subflow to its parent too) and what still
    # waits at the end (events, queued runs, runs on a worker) is dropped: no
    # reference cycle keeps the simulation, its engine and its runs alive until a
    # full collection (which the next simulation's freezes would put off).
    from engine.sim import default_workload

    workload = default_workload() if example is None else load_workload(EXAMPLES / example)
    gc.collect()
    gc.disable()
    try:
        simulation = Simulation(workload.with_overrides(until=3 * 3600.0))
        result = simulation.run()
        assert result.metrics.counters["flow_runs_created"] > 0
        kept = [simulation, result.engine, *result.engine.read_flow_runs(), *result.runs, *result.subflow_runs]
        refs = [weakref.ref(obj) for obj in kept]
        del simulation, result, kept
        assert [ref() for ref in refs if ref() is not None] == []
    finally:
        gc.enable()


def test_the_summary_shows_state_counts_over_time_as_sampled():
    from engine.sim import default_workload

    result = Simulation(default_workload().with_overrides(runs=60)).run()
    report = build_report(result)
    series = report["state_counts_over_time"]
    columns, rows = series["columns"], series["rows"]
    lines = summary_text(report).splitlines()
    for prefix, title in (("flow_", "flow runs, top-level and subflow"), ("task_", "task runs")):
        start = next(i for i, line in enumerate(lines) if line.startswith(f"State counts over time ({title};"))
        header = lines[start + 1].split()
        table = [line.split() for line in lines[start + 2:start + 8]]
        # A column for each state some sample holds, none for the others.
        held = [name[len(prefix):].lower() for j, name in enumerate(columns)
                if name.startswith(prefix) and any(row[j] for row in rows)]
        assert header == ["time", *held] and "completed" in held
        # Six samples from the first to the last, each row what was sampled then.
        assert len(rows) > 6 and all(len(row) == len(header) for row in table)
        sampled = {format_duration(row[0]): row for row in rows}
        assert (table[0][0], table[-1][0]) == (format_duration(rows[0][0]), format_duration(rows[-1][0]))
        for shown in table:
            row = sampled[shown[0]]
            assert [int(v) for v in shown[1:]] == [row[columns.index(prefix + s.upper())] for s in held]
    # The last row is the end of the run: every task run counted in its final state.
    last = dict(zip(header, table[-1]))
    assert int(last["completed"]) == report["task_runs"]["by_state"]["COMPLETED"]


@pytest.mark.parametrize("samples", [1, 2, 3, 6, 7, 40])
def test_the_state_table_spreads_its_rows_over_every_sample(samples):
    # Fewer samples than rows: each once; more: six, the first and the last among them.
    from engine.sim.report import _state_table

    rows = [[60.0 * i, i + 1] for i in range(samples)]
    lines = _state_table({"state_counts_over_time": {"columns": ["t", "flow_RUNNING"], "rows": rows}}, "flow_", "x")
    shown = [int(line.split()[1]) for line in lines[3:]]
    assert len(shown) == min(6, samples) == len(set(shown))
    assert (shown[0], shown[-1]) == (1, samples)


def test_each_deployments_lateness_is_that_of_its_runs_in_the_store():
    from engine import DeploymentFilter
    from engine.sim import default_workload
    from engine.sim.report import percentiles

    result = Simulation(default_workload().with_overrides(runs=200)).run()
    engine, report = result.engine, build_report(result)
    end = dt.datetime.fromisoformat(report["simulated"]["end"])
    rows = report["deployments"]
    assert len(rows) > 1
    for name, row in rows.items():
        runs = engine.read_flow_runs(deployment_filter=DeploymentFilter(name={"any_": [name]}))
        runs = [r for r in runs if r.parent_task_run_id is None and r.expected_start_time is not None]
        late = [max(0.0, (r.start_time - r.expected_start_time).total_seconds()) if r.start_time is not None
                else (end - r.expected_start_time).total_seconds()
                for r in runs if r.start_time is not None or (r.state_type not in TERMINAL_STATES
                                                              and r.expected_start_time < end)]
        assert row["lateness_seconds"] == percentiles(late) and row["lateness_seconds"]["count"] == len(runs)
    # Split by deployment, the same population as the whole run's lateness.
    assert sum(row["lateness_seconds"]["count"] for row in rows.values()) == report["lateness_seconds"]["count"]
    slowest = max(rows, key=lambda name: rows[name]["lateness_seconds"]["max"])
    assert rows[slowest]["lateness_seconds"]["max"] == report["lateness_seconds"]["max"]
    text = summary_text(report)
    for name, row in rows.items():
        assert f"lateness p50 {format_duration(row['lateness_seconds']['p50'])}" in text
