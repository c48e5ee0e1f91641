"""Common random numbers: every flow run, deployment and worker draws from a stream of
its own (engine/sim/streams.py), so two simulations of one workload and seed that
differ in one setting pair their runs: the same run draws the same numbers, however
the setting moves events about."""
from __future__ import annotations

import datetime as dt
import json

from engine import TERMINAL_STATES, StateType
from engine.__main__ import main
from sim_support import simulate

# Two deployments (a run a minute and Poisson bursts) of a fan-out flow with random
# durations, failures, jittered task retries, flow retries, crashes, pauses, a
# subflow and a first task cached under one of three keys for 90 s (so whether it
# is a cache hit, which draws no duration, depends on when other runs ran it), on
# one pool whose limit the tests change.
PAIRED = {
    "simulation": {"seed": 3, "until": "3h"},
    "work_pools": [{"name": "batch", "concurrency_limit": 8}],
    "workers": [{"pool": "batch", "count": 2, "poll_interval": "10s",
                 "startup": {"dist": "uniform", "min": "2s", "max": "8s"}}],
    "flows": [
        {"name": "batch", "retries": 1, "retry_delay": "20s", "crash_probability": 0.03,
         "pause": {"probability": 0.1, "after": "merge", "duration": {"dist": "exponential", "mean": "2m"},
                   "timeout": "1h"},
         "tasks": [
             {"name": "prepare", "duration": {"dist": "uniform", "min": "1s", "max": "2s"},
              "cache": {"key": "prepare-{choice}", "expiration": "90s", "choices": 3}},
             {"name": "shard", "count": 6, "depends_on": ["prepare"],
              "duration": {"dist": "lognormal", "mean": "40s", "std": "20s"}, "failure_probability": 0.1,
              "retries": 2, "retry_delay": "5s", "retry_jitter_factor": 0.5},
             {"name": "merge", "depends_on": ["shard"], "duration": {"dist": "uniform", "min": "10s", "max": "30s"},
              "failure_probability": 0.05},
             {"name": "enrich", "depends_on": ["merge"], "subflow": "enrich"},
         ]},
        {"name": "enrich", "tasks": [
            {"name": "lookup", "count": 2, "duration": {"dist": "exponential", "mean": "4s"},
             "failure_probability": 0.05},
        ]},
    ],
    "deployments": [
        {"name": "every-minute", "flow": "batch", "pool": "batch", "schedule": {"interval": "1m"}},
        {"name": "bursty", "flow": "batch", "pool": "batch", "schedule": {"poisson": "3m"}},
    ],
}
# The clock ticks 1 µs per engine reading, so a time read at a busy instant is a few
# µs later than the event's: run times of paired runs agree to well within this.
_SLACK = 0.005
# Whether this task run is a cache hit depends on other runs: only its state is
# paired (and the flow run's run time only when it ran as long in both).
_CACHED = ("batch.prepare", "0")


def _seconds(delta: dt.timedelta) -> float:
    return delta.total_seconds()


def _flow_outcome(engine, rec) -> dict:
    """What `rec`'s own draws decide, read off the engine: its final state, attempts,
    and per task run (by task and index) its final state, attempts and run time, a
    subflow's outcome in place of its parent task run's time."""
    tasks = {}
    for tr in engine.read_task_runs(flow_run_filter={"id": {"any_": [rec.id]}}):
        subflows = sorted(engine.read_flow_runs(flow_run_filter={"parent_task_run_id": {"any_": [tr.id]}}),
                          key=lambda sub: sub.created)   # (one per flow attempt that ran the task)
        tasks[(tr.task_key, tr.dynamic_key)] = (
            tr.state_type, tr.run_count, _seconds(tr.total_run_time),
            [_flow_outcome(engine, sub) for sub in subflows])
    return {"state": rec.state_type, "run_count": rec.run_count, "run_time": _seconds(rec.total_run_time),
            "tasks": tasks}


def _finished_by_slot(result) -> dict:
    """Top-level runs in a final state, by (deployment, scheduled start time)."""
    return {(run.dep.spec.name, run.rec.expected_start_time): run.rec for run in result.runs
            if run.rec.state_type in TERMINAL_STATES}


def _assert_same_outcome(mine: dict, other: dict, where: str) -> None:
    assert (mine["state"], mine["run_count"]) == (other["state"], other["run_count"]), where
    assert mine["tasks"].keys() == other["tasks"].keys(), where
    cached = mine["tasks"].get(_CACHED), other["tasks"].get(_CACHED)
    if cached[0] is None or abs(cached[0][2] - cached[1][2]) < _SLACK:  # type: ignore[index]
        assert abs(mine["run_time"] - other["run_time"]) < _SLACK, where
    for key, (state, count, run_time, subflows) in mine["tasks"].items():
        o_state, o_count, o_run_time, o_subflows = other["tasks"][key]
        assert state == o_state, (where, key)
        if key == _CACHED:
            continue
        assert count == o_count, (where, key)
        assert abs(run_time - o_run_time) < _SLACK, (where, key, run_time, o_run_time)
        assert len(subflows) == len(o_subflows), (where, key)
        for sub, o_sub in zip(subflows, o_subflows):
            _assert_same_outcome(sub, o_sub, f"{where} {key} subflow")


def test_a_pool_limit_moves_runs_in_time_but_each_run_draws_the_same():
    wide, wide_engine = simulate(PAIRED)
    narrow, narrow_engine = simulate(PAIRED, "work_pools[batch].concurrency_limit=3")
    # The same runs arrive: Poisson gaps come from the deployment's own stream.
    slots = {(r.dep.spec.name, r.rec.expected_start_time) for r in wide.runs}
    assert slots == {(r.dep.spec.name, r.rec.expected_start_time) for r in narrow.runs}
    assert {name for name, _ in slots} == {"every-minute", "bursty"}
    wide_runs, narrow_runs = _finished_by_slot(wide), _finished_by_slot(narrow)
    both = sorted(wide_runs.keys() & narrow_runs.keys())
    assert len(both) > 150
    # The narrower pool moved them: most start at another time ...
    moved = sum(wide_runs[k].start_time != narrow_runs[k].start_time for k in both)
    assert moved > len(both) // 2
    # ... yet each run's durations, failures, retries, crashes, pauses and subflows
    # (its whole outcome) are what they were.
    seen = {"retried": 0, "failed": 0, "crashed": 0, "paused": 0, "hit in one only": 0}
    for key in both:
        mine = _flow_outcome(wide_engine, wide_runs[key])
        other = _flow_outcome(narrow_engine, narrow_runs[key])
        _assert_same_outcome(mine, other, str(key))
        # (A cache hit draws no duration: the run's other task runs' draws do not
        # shift with it, as they were drawn when the attempt started.)
        seen["hit in one only"] += abs(mine["tasks"][_CACHED][2] - other["tasks"][_CACHED][2]) >= _SLACK
        seen["retried"] += any(count > 1 for _, count, _, _ in mine["tasks"].values())
        seen["failed"] += mine["state"] is StateType.FAILED
        seen["crashed"] += mine["state"] is StateType.CRASHED
        seen["paused"] += any(s.type is StateType.PAUSED for s in wide_engine.read_flow_run_states(wide_runs[key].id))
    assert all(seen.values()), seen   # (each kind of draw was exercised)
    # Run names are drawn from the runs' streams too.
    assert all(wide_runs[k].name == narrow_runs[k].name for k in both)


def test_a_sweep_over_a_setting_that_changes_nothing_gives_the_same_results(tmp_path, capsys):
    """A second pool no deployment uses, with one worker or three: the idle workers
    only poll. Every simulated figure is the same but the count of events (their
    polls) and the settings that name the variant."""
    data = json.loads(json.dumps(PAIRED))
    data["work_pools"].append({"name": "idle"})
    data["workers"].append({"pool": "idle", "poll_interval": "7s"})
    workload = tmp_path / "workload.json"
    workload.write_text(json.dumps(data))
    out = tmp_path / "out"
    assert main(["simulate", "--workload", str(workload), "--until", "1h", "--no-charts", "--report", str(out),
                 "--sweep", "workers[1].count=1,3"]) == 0
    capsys.readouterr()
    reports = [json.loads((out / f"variant-{k}" / "report.json").read_text()) for k in (1, 2)]
    assert [r["workload"]["settings"] for r in reports] == [["workers[1].count=1"], ["workers[1].count=3"]]
    assert reports[0]["simulated"]["events"] < reports[1]["simulated"]["events"]
    for report in reports:
        del report["workload"]["settings"], report["simulated"]["events"]
    assert reports[0] == reports[1]


def test_a_setting_of_one_pool_leaves_the_runs_of_another_as_they_were():
    """Two pools, each with its own deployment and worker: halving one pool's limit
    changes when its runs run, and nothing about the other pool's runs (which share
    nothing with the first pool's: no cache keys, no tag limits)."""
    data = json.loads(json.dumps(PAIRED))
    del data["flows"][0]["tasks"][0]["cache"]
    data["work_pools"].append({"name": "other", "concurrency_limit": 4})
    data["workers"].append({"pool": "other", "poll_interval": "5s", "startup": {"dist": "exponential", "mean": "3s"}})
    data["deployments"].append({"name": "elsewhere", "flow": "batch", "pool": "other",
                                "schedule": {"poisson": "4m"}})
    wide, wide_engine = simulate(data)
    narrow, narrow_engine = simulate(data, "work_pools[batch].concurrency_limit=2")

    def elsewhere(result, engine):
        runs = sorted((r.rec for r in result.runs if r.dep.spec.name == "elsewhere"),
                      key=lambda rec: rec.expected_start_time)
        return [(rec.expected_start_time, rec.start_time, rec.end_time, _flow_outcome(engine, rec)) for rec in runs]

    assert len(elsewhere(wide, wide_engine)) > 30
    assert elsewhere(wide, wide_engine) == elsewhere(narrow, narrow_engine)
    assert wide.metrics.by_deployment["elsewhere"] == narrow.metrics.by_deployment["elsewhere"]
    assert wide.metrics.by_deployment["bursty"] != narrow.metrics.by_deployment["bursty"]

