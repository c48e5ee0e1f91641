"""Worker outages and the foreman service in the simulator, checked against the
engine's records and state histories."""
from __future__ import annotations

import copy

import attrs
import pytest

from engine import StateType
from engine.sim import WorkloadError, parse_workload
from engine.sim.report import build_report, summary_text
from sim_support import DYING, START, TERMINATED, flow_states, in_flight_at, pickups, seconds, simulate

OUTAGE_AT, OUTAGE_FOR = 30 * 60, 20 * 60

WORKLOAD = {
    "simulation": {"seed": 3, "until": "80m", "start": START.isoformat()},
    "work_pools": [{"name": "p", "concurrency_limit": 4}],
    "workers": [{"pool": "p", "poll_interval": "10s",
                 "outages": [{"at": f"{OUTAGE_AT}s", "duration": f"{OUTAGE_FOR}s"}]}],
    "flows": [{"name": "f", "tasks": [{"name": "t", "duration": "4m"}]}],
    "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"interval": "1m"}}],
}


# One run of DYING's deployment, at the start: as a deployments list, and as a setting.
ONE_RUN = [{"name": "d", "flow": "f", "pool": "p", "schedule": {"at": ["0s"]}}]
ONE_RUN_SETTING = 'deployments[0].schedule={ at = ["0s"] }'
# A flow that fails at once and retries once, 10 minutes later, in its process.
RETRY_ONCE = [{"name": "f", "retries": 1, "retry_delay": "10m",
               "tasks": [{"name": "t", "duration": "1m", "failure_probability": 1.0}]}]


def test_a_worker_in_an_outage_submits_nothing_and_its_runs_go_on():
    result, engine = simulate(WORKLOAD)
    picked = pickups(engine)
    assert not [t for t in picked if OUTAGE_AT <= t < OUTAGE_AT + OUTAGE_FOR]
    # It polls again as the outage ends: the runs that piled up are picked up at once.
    assert OUTAGE_AT + OUTAGE_FOR in picked
    # Runs it had submitted before the outage finished during it.
    finished = [seconds(s.timestamp) for _, s in flow_states(engine) if s.type is StateType.COMPLETED]
    assert [t for t in finished if OUTAGE_AT < t < OUTAGE_AT + OUTAGE_FOR]
    report = build_report(result)
    assert report["workers"]["outages"] == 1 and not report["workers"]["foreman"]
    assert report["events"]["late_marked"] >= OUTAGE_FOR // 60 - 2  # runs due in the outage went Late
    assert "Workers: 1 outages" in summary_text(report)
    # Without the foreman, polls leave queues and deployments as they were.
    [pool] = engine.read_work_pools()
    assert engine.read_work_queue(pool.default_queue_id).last_polled is None
    assert build_report(simulate(WORKLOAD)[0]) == report  # deterministic


def test_outages_of_a_group_take_each_of_its_workers_down():
    result, engine = simulate(WORKLOAD, "workers[0].count=3")
    assert build_report(result)["workers"]["outages"] == 3
    assert not [t for t in pickups(engine) if OUTAGE_AT <= t < OUTAGE_AT + OUTAGE_FOR]


def test_an_outage_from_the_start_keeps_the_worker_from_starting_until_it_ends():
    _, engine = simulate(WORKLOAD, 'workers[0].outages=[{ at = "0s", duration = "5m" }]')
    assert pickups(engine)[0] == 300


@pytest.mark.parametrize("until, down", [(OUTAGE_AT + 4 * 60, True), (OUTAGE_AT + OUTAGE_FOR + 60, False)])
def test_the_foreman_marks_a_silent_worker_its_pool_queue_and_deployment_and_polls_bring_them_back(until, down):
    result, engine = simulate(WORKLOAD, "services.foreman.enabled=true", f"simulation.until={until}s")
    [pool] = engine.read_work_pools()
    [worker] = engine.read_workers(pool.id)
    queue = engine.read_work_queue(pool.default_queue_id)
    [dep] = engine.read_deployments()
    assert worker.heartbeat_interval_seconds == 30  # Prefect's default, with the foreman
    assert (worker.status, pool.status, queue.status, dep.status) == (
        ("OFFLINE", "NOT_READY", "NOT_READY", "NOT_READY") if down else ("ONLINE", "READY", "READY", "READY"))
    wk = build_report(result)["workers"]
    assert (wk["marked_offline"], wk["pools_marked_not_ready"], wk["queues_marked_not_ready"],
            wk["deployments_marked_not_ready"]) == (1, 1, 1, 1)
    if down:
        # The last heartbeat came at most 30 s before the outage: OFFLINE after more
        # than 3 x 30 s of silence, at the next foreman pass (every 15 s), 60-105 s in.
        assert OUTAGE_AT + 60 < seconds(pool.last_transitioned_status_at) <= OUTAGE_AT + 105
        # The last poll came at most 10 s before it: the queue after more than 60 s.
        assert OUTAGE_AT + 50 < seconds(queue.updated) <= OUTAGE_AT + 75
    else:
        assert seconds(pool.last_transitioned_status_at) == OUTAGE_AT + OUTAGE_FOR  # its first heartbeat back
        assert until - 10 <= seconds(queue.last_polled) <= until


def test_foreman_settings_reach_the_engine():
    result, engine = simulate(WORKLOAD, "services.foreman.enabled=true", "services.foreman.loop=5s",
                              "services.foreman.inactivity_heartbeat_multiple=1", "workers[0].heartbeat=20s",
                         f"simulation.until={OUTAGE_AT + 60}s")
    [pool] = engine.read_work_pools()
    assert pool.status == "NOT_READY"
    assert OUTAGE_AT < seconds(pool.last_transitioned_status_at) <= OUTAGE_AT + 25


@pytest.mark.parametrize("setting, path", [
    ('workers[0].outages=[{ at = "10m", duration = "5m" }, { at = "12m", duration = "1m" }]', "workers[0].outages[1].at"),
    ('workers[0].outages=[{ at = "10m", duration = "0s" }]', "workers[0].outages[0].duration"),
    ('workers[0].outages=[{ at = "10m" }]', "workers[0].outages[0].duration"),
    ('workers[0].outages=[{ at = "-1m", duration = "1m" }]', "workers[0].outages[0].at"),
    ('workers[0].outages=[{ at = "1m", duration = "1m", why = "x" }]', "workers[0].outages[0].why"),
    ("workers[0].outages=3", "workers[0].outages"),
    ("services.foreman.fallback_heartbeat_interval=1.5", "services.foreman.fallback_heartbeat_interval"),
    ("services.foreman.inactivity_heartbeat_multiple=-1", "services.foreman.inactivity_heartbeat_multiple"),
    ("services.foreman.loop=0", "services.foreman.loop"),
    ('workers[0].failures={ repair = "5m" }', "workers[0].failures.mean_uptime"),
    ('workers[0].failures={ mean_uptime = "0s", repair = "5m" }', "workers[0].failures.mean_uptime"),
    ('workers[0].failures={ mean_uptime = "1h" }', "workers[0].failures.repair"),
    ('workers[0].failures={ mean_uptime = "1h", repair = "0s" }', "workers[0].failures.repair"),
    ('workers[0].failures={ mean_uptime = "1h", repair = { dist = "exponential" } }', "workers[0].failures.repair.mean"),
    ('workers[0].failures={ mean_uptime = "1h", repair = "5m", every = "1h" }', "workers[0].failures.every"),
    ("workers[0].failures=3", "workers[0].failures"),
    ('workers[0].failures={ mean_uptime = "1h", repair = "5m", runs = true }', "workers[0].failures.runs"),
    ('workers[0].outages=[{ at = "1m", duration = "1m", runs = "die" }]', "workers[0].outages[0].runs"),
    ("services.foreman.enabled=1", "services.foreman.enabled"),
    ("services.foreman.every=1", "services.foreman.every"),
])
def test_bad_outages_and_foreman_settings_name_their_key(setting, path):
    with pytest.raises(WorkloadError) as info:
        parse_workload(copy.deepcopy(WORKLOAD), settings=[setting])
    assert info.value.path == path


def test_the_foreman_only_watches_without_outages_nothing_simulated_changes():
    plain = build_report(simulate(WORKLOAD, "workers[0].outages=[]")[0])
    watched_result, engine = simulate(WORKLOAD, "workers[0].outages=[]", "services.foreman.enabled=true")
    watched = build_report(watched_result)
    assert "Workers: no outages or failures; the foreman marked 0 workers offline" in summary_text(watched)
    assert set(watched["workers"].pop("down_over_time")) == {0}
    assert watched["workers"] == {"outages": 0, "failures": 0, "runs_crashed": 0, "runs_lost": 0,
                                  "runs_requeued": 0, "downtime_seconds": 0.0, "availability": 1.0,
                                  "foreman": True, "marked_offline": 0, "pools_marked_not_ready": 0,
                                  "queues_marked_not_ready": 0, "deployments_marked_not_ready": 0}
    [pool] = engine.read_work_pools()
    assert pool.status == "READY" and engine.read_work_queue(pool.default_queue_id).status == "READY"
    for report in (plain, watched):
        for key in ("workers", "workload"):
            report.pop(key)
        report["simulated"].pop("events")
    assert plain == watched


def test_with_the_foreman_the_same_seed_gives_the_same_pools_queues_and_workers():
    def stored(engine):
        [pool] = engine.read_work_pools()
        records = [pool, *engine.read_work_queues(pool.id), *engine.read_workers(pool.id), *engine.read_deployments()]
        return [attrs.asdict(rec) for rec in records]  # (records compare by identity)

    settings = ("services.foreman.enabled=true", f"simulation.until={OUTAGE_AT + 4 * 60}s")
    first, second = stored(simulate(WORKLOAD, *settings)[1]), stored(simulate(WORKLOAD, *settings)[1])
    assert first[0]["last_status_event_id"] is not None  # the pool's status changed
    assert first == second  # status event ids included: they come from the seeded id generator


# Random failures: one worker, a run every 10 minutes, no scheduled outage.
FAILING = {**WORKLOAD, "simulation": {**WORKLOAD["simulation"], "until": "100h"},
           "workers": [{"pool": "p", "poll_interval": "10s",
                        "failures": {"mean_uptime": "1h", "repair": "10m"}}],
           "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"interval": "10m"}}]}


def test_random_failures_take_a_worker_down_for_its_repair_time_and_it_picks_up_nothing_meanwhile():
    result, engine = simulate(FAILING)
    windows = result.metrics.down_windows
    # Up about an hour, down ten minutes, over 100 h: some 86 failures.
    assert 60 <= len(windows) <= 115
    assert all(round(end - start, 6) == 600 for _, start, end in windows[:-1])
    assert all(a[2] <= b[1] for a, b in zip(windows, windows[1:]))   # one after the other
    picked = pickups(engine)
    assert not [t for t in picked for _, start, end in windows if start <= t < end - 0.001]  # (ms-rounded)
    # Back up, it polls at once: runs that came due while it was down go at the repair's end.
    assert sum(round(end, 3) in picked for _, _, end in windows) >= len(windows) // 2
    wk = build_report(result)["workers"]
    downtime = sum(end - start for _, start, end in windows)
    assert (wk["outages"], wk["failures"]) == (0, len(windows))
    assert wk["downtime_seconds"] == round(downtime, 3)
    assert wk["availability"] == round(1 - downtime / result.end_seconds, 6)
    assert f"Workers: {len(windows)} failures, " in summary_text(build_report(result))  # (no "0 outages")
    # Sampled beside the state counts: down at a sample's time iff a window covers it.
    rows = build_report(result)["state_counts_over_time"]["rows"]
    assert wk["down_over_time"] == [sum(start <= row[0] < end for _, start, end in windows) for row in rows]
    assert 0 < sum(wk["down_over_time"]) < len(rows)


def test_each_worker_fails_on_its_own_and_the_same_whatever_else_the_workload_changes():
    first, _ = simulate(FAILING, "workers[0].count=2")
    names = {name for name, _, _ in first.metrics.down_windows}
    assert names == {"p-worker-0-0", "p-worker-0-1"}
    by_worker = [[(s, e) for n, s, e in first.metrics.down_windows if n == name] for name in sorted(names)]
    assert by_worker[0] != by_worker[1]
    # Random task durations (drawn from the runs' streams) change what runs when, not
    # when workers fail: they draw from streams of their own.
    varied, _ = simulate(FAILING, "workers[0].count=2",
                         'flows[0].tasks[0].duration={ dist = "exponential", mean = "4m" }')
    assert varied.metrics.down_windows == first.metrics.down_windows
    assert build_report(varied)["task_run_time_seconds"] != build_report(first)["task_run_time_seconds"]
    # Nor do draws made before the workers start (a Poisson deployment's first
    # arrival) or their start offsets (drawn within the poll interval).
    arrivals, _ = simulate(FAILING, "workers[0].count=2", "workers[0].poll_interval=25s",
                           'deployments=[{ name = "d", flow = "f", pool = "p", schedule = { interval = "10m" } }, '
                      '{ name = "e", flow = "f", pool = "p", schedule = { poisson = "30m" } }]')
    assert arrivals.metrics.down_windows == first.metrics.down_windows
    reseeded, _ = simulate(FAILING, "workers[0].count=2", "simulation.seed=4")
    assert reseeded.metrics.down_windows != first.metrics.down_windows


@pytest.mark.parametrize("outage, back_at", [
    # An outage from 10 to 50 minutes falls in the first repair and outlasts it: up at its end.
    ({"at": "10m", "duration": "40m"}, 50 * 60),
    # One from 10 to 15 minutes ends inside the repair: up when the repair is done.
    ({"at": "10m", "duration": "5m"}, None),
])
def test_a_worker_down_for_a_failure_and_an_outage_at_once_starts_when_both_are_over(outage, back_at):
    # Fails a second or so into the run, for 30 minutes (an outage voids the failure
    # a worker had coming; the next is drawn when it starts again).
    result, engine = simulate(FAILING, 'workers[0].failures={ mean_uptime = "1s", repair = "30m" }',
                              f'workers[0].outages=[{{ at = "{outage["at"]}", duration = "{outage["duration"]}" }}]',
                         "simulation.until=3h")
    _, start, end = result.metrics.down_windows[0]
    assert start < 20   # (up times of 1 s on average, from the start)
    assert end == (back_at if back_at is not None else start + 1800)
    assert not [t for t in pickups(engine) if start <= t < end - 0.001]
    wk = build_report(result)["workers"]
    assert wk["outages"] == 1 and wk["failures"] >= 2


# Runs that die with their worker: runs start every 10 minutes and take 25, two at a
# time (the pool's limit); at 30 minutes, as the worker goes down, two are in flight.
def test_runs_that_get_a_termination_signal_with_their_worker_crash_and_the_worker_carries_on():
    plain, plain_engine = simulate(DYING)
    victims = {rec.id for rec in in_flight_at(plain_engine, 1800)}
    assert len(victims) == 2
    result, engine = simulate(DYING, 'workers[0].outages[0].runs="crash"')
    crashed = [rec for rec in engine.read_flow_runs() if rec.state_type is StateType.CRASHED]
    # The same two runs (everything before the outage is as without it), crashed as it began.
    assert {rec.id for rec in crashed} == victims
    for rec in crashed:
        last = engine.read_flow_run_states(rec.id)[-1]
        assert (last.message, seconds(last.timestamp)) == (TERMINATED, 1800)
        [task] = engine.read_task_runs(flow_run_filter={"id": {"any_": [rec.id]}})
        assert task.state_type is StateType.CRASHED and seconds(task.state.timestamp) == 1800
        assert task.end_time is not None and rec.end_time is not None
    report = build_report(result)
    assert report["workers"]["runs_crashed"] == 2 and report["events"]["crashes"] == 0
    assert "flow runs taken down with them: 2 crashed" in summary_text(report)
    # Their slots are free: back at 40 minutes, the worker takes two runs at once.
    assert [t for t in pickups(engine) if 2400 <= t < 2410] == [2400, 2400]
    assert report["flow_runs"]["by_state"]["COMPLETED"] >= build_report(plain)["flow_runs"]["by_state"]["COMPLETED"] - 2


def test_runs_crashed_with_their_worker_count_as_crashed_runs_not_as_injected_crashes():
    # The summary's crash figure used to read "0 crashes" here, two runs CRASHED.
    result, engine = simulate(DYING, 'workers[0].outages[0].runs="crash"')
    report = build_report(result)
    crashed = sum(rec.state_type is StateType.CRASHED for rec in engine.read_flow_runs())
    assert crashed == report["flow_runs"]["top_level_by_state"]["CRASHED"] == report["workers"]["runs_crashed"] == 2
    assert report["events"]["injected_crashes"] == 0
    text = summary_text(report)
    assert ("Crashes: 0 injected by crash_probability; flow runs CRASHED at the end, of any cause: "
            "2 top-level, 0 subflow runs") in text
    assert " crashes," not in text


def test_runs_lost_with_their_worker_keep_their_states_and_slots_for_good():
    result, engine = simulate(DYING, 'workers[0].outages[0].runs="lost"')
    lost = in_flight_at(engine, 1800)
    assert len(lost) == 2
    for rec in lost:
        # Nothing notices (Prefect 3.1.0 has no flow-run heartbeats): RUNNING to the end,
        # with its task run, and no state written after the worker went down.
        assert rec.state_type is StateType.RUNNING and rec.end_time is None
        assert seconds(engine.read_flow_run_states(rec.id)[-1].timestamp) < 1800
        [task] = engine.read_task_runs(flow_run_filter={"id": {"any_": [rec.id]}})
        assert task.state_type is StateType.RUNNING
    # They fill the pool's two slots: the worker is back at 40 minutes but takes nothing more.
    assert not [t for t in pickups(engine) if t >= 1800]
    report = build_report(result)
    assert report["workers"]["runs_lost"] == 2 and report["workers"]["runs_requeued"] == 0
    assert report["flow_runs"]["by_state"]["RUNNING"] == 2
    # Lost runs are not "finished": that counts final states only.
    finished = sum(rec.state_type is StateType.COMPLETED for rec in engine.read_flow_runs())
    assert report["flow_runs"]["finished"] == finished == sum(report["throughput"]["finished_per_hour"])
    assert "flow runs taken down with them: 2 lost" in summary_text(report)
    assert report["deployments"]["d"]["COMPLETED"] == finished
    assert report["events"]["late_marked"] > 0   # the runs due meanwhile went Late


def test_lost_runs_keep_their_deployment_concurrency_slots():
    result, engine = simulate(DYING, 'workers[0].outages[0].runs="lost"', "work_pools[0].concurrency_limit=9",
                              "deployments[0].concurrency_limit=2")
    [dep] = engine.read_deployments()
    assert engine.read_concurrency_limit_v2(dep.concurrency_limit_id).active_slots == 2
    # The worker keeps taking runs; the engine sends each back to wait for a slot.
    report = build_report(result)
    assert report["workers"]["runs_lost"] == 2 and report["concurrency"]["deployment_slot_waits"] > 0
    assert not [rec for rec in engine.read_flow_runs()
                for s in engine.read_flow_run_states(rec.id)
                if s.type is StateType.RUNNING and seconds(s.timestamp) > 1800]


def test_a_lost_run_waiting_for_its_retry_is_taken_again_from_its_queue():
    # One run that fails at once and retries after 10 minutes, in-process; the worker
    # dies (without a word) during the wait, back 1 minute later.
    data = {**DYING, "workers": [{"pool": "p", "poll_interval": "10s",
                                  "outages": [{"at": "5m", "duration": "1m", "runs": "lost"}]}],
            "flows": RETRY_ONCE,
            "deployments": ONE_RUN}
    for runs, pending in (("continue", 1), ("lost", 2)):
        result, engine = simulate(data, f'workers[0].outages[0].runs="{runs}"')
        [rec] = engine.read_flow_runs()
        history = engine.read_flow_run_states(rec.id)
        names = [s.name for s in history]
        assert "AwaitingRetry" in names and rec.state_type is StateType.FAILED and rec.run_count == 2
        # Continued, it retries in its own process; lost, a worker poll takes it again
        # once due (10 minutes after the failure), as any scheduled run of the queue.
        assert names.count("Pending") == pending
        retry = history[names.index("AwaitingRetry")]
        assert seconds(history[names.index("AwaitingRetry") + 1].timestamp) - seconds(retry.timestamp) \
            == pytest.approx(600, abs=10 if runs == "lost" else 0.01)
        wk = build_report(result)["workers"]
        assert (wk["runs_lost"], wk["runs_requeued"]) == ((0, 1) if runs == "lost" else (0, 0))


def test_a_run_being_cancelled_is_left_to_its_cancellation_when_its_worker_dies():
    # Cancelled at 29 minutes; the cancellation ends it 2 minutes later (the cancel
    # latency) and the outage at 30 leaves it to that: CANCELLED, not CRASHED.
    result, engine = simulate(DYING, 'workers[0].outages[0].runs="crash"', ONE_RUN_SETTING,
                              'flows[0].tasks[0].duration="1h"',
                         'flows[0].cancel={ probability = 1.0, after = "29m", latency = "2m" }')
    [rec] = engine.read_flow_runs()
    assert rec.state_type is StateType.CANCELLED
    assert build_report(result)["workers"]["runs_crashed"] == 0
    without = simulate(DYING, 'workers[0].outages[0].runs="crash"', ONE_RUN_SETTING,
                       'flows[0].tasks[0].duration="1h"')[1]
    assert [r.state_type for r in without.read_flow_runs()] == [StateType.CRASHED]


def test_failures_take_their_runs_down_too_and_the_same_way_each_time():
    settings = ('workers[0].outages=[]', 'workers[0].failures={ mean_uptime = "40m", repair = "5m", runs = "crash" }',
                "simulation.until=12h")
    first, second = build_report(simulate(DYING, *settings)[0]), build_report(simulate(DYING, *settings)[0])
    assert first == second
    assert first["workers"]["failures"] > 5 and first["workers"]["runs_crashed"] > 5
    assert first["flow_runs"]["by_state"]["CRASHED"] == first["workers"]["runs_crashed"]


@pytest.mark.parametrize("outage_at, state", [("2m", StateType.PENDING), ("6m", StateType.CRASHED)])
def test_a_run_whose_infrastructure_is_still_starting_dies_silently_even_with_crash(outage_at, state):
    # One run, picked up within 10 s; its infrastructure takes 5 minutes to start. At 2
    # minutes no flow engine runs yet to catch the signal: the run stays PENDING (lost);
    # at 6 minutes it is running and reports its crash.
    result, engine = simulate(DYING, f'workers[0].outages=[{{ at = "{outage_at}", duration = "1m", runs = "crash" }}]',
                              ONE_RUN_SETTING, 'workers[0].startup="5m"')
    [rec] = engine.read_flow_runs()
    assert rec.state_type is state
    wk = build_report(result)["workers"]
    assert (wk["runs_lost"], wk["runs_crashed"]) == ((1, 0) if state is StateType.PENDING else (0, 1))


def test_runs_taken_down_no_longer_count_against_the_workers_limit():
    # The worker's own limit (2), not the pool's: lost runs stay RUNNING, but the
    # worker back at 40 minutes no longer counts them and takes two runs at once.
    for runs in ("crash", "lost"):
        _, engine = simulate(DYING, f'workers[0].outages[0].runs="{runs}"', "work_pools[0].concurrency_limit=9",
                             "workers[0].limit=2")
        assert [t for t in pickups(engine) if 2400 <= t < 2410] == [2400, 2400]
        assert len(in_flight_at(engine, 2401)) == (2 if runs == "crash" else 4)


def test_a_lost_run_takes_its_subflow_down_with_it():
    data = {**DYING, "flows": [{"name": "f", "tasks": [{"name": "s", "subflow": "g"}]},
                               {"name": "g", "tasks": [{"name": "t", "duration": "25m"}]}],
            "deployments": ONE_RUN}
    result, engine = simulate(data, 'workers[0].outages=[{ at = "10m", duration = "1m", runs = "lost" }]')
    runs = engine.read_flow_runs()
    assert len(runs) == 2 and all(rec.state_type is StateType.RUNNING for rec in runs)
    assert all(tr.state_type is StateType.RUNNING for tr in engine.read_task_runs())
    assert max(seconds(s.timestamp) for rec in runs for s in engine.read_flow_run_states(rec.id)) < 600
    assert build_report(result)["workers"]["runs_lost"] == 1
    crashed = simulate(data, 'workers[0].outages=[{ at = "10m", duration = "1m", runs = "crash" }]')[1]
    assert {rec.state_type for rec in crashed.read_flow_runs()} == {StateType.CRASHED}
    assert {tr.state_type for tr in crashed.read_task_runs()} == {StateType.CRASHED}


def test_a_lost_paused_run_is_still_failed_by_the_pause_expiration_service():
    # Paused after its first task (about 1 minute in) for 20 minutes, with a 10-minute
    # timeout; lost at 3 minutes. The server's service fails it as the pause times out.
    data = {**DYING, "flows": [{"name": "f", "tasks": [{"name": "a", "duration": "1m"},
                                                       {"name": "b", "depends_on": ["a"], "duration": "1m"}],
                                "pause": {"probability": 1.0, "after": "a", "duration": "20m", "timeout": "10m"}}],
            "deployments": ONE_RUN}
    result, engine = simulate(data, 'workers[0].outages=[{ at = "3m", duration = "1m", runs = "lost" }]')
    [rec] = engine.read_flow_runs()
    states = engine.read_flow_run_states(rec.id)
    assert [s.type for s in states[-2:]] == [StateType.PAUSED, StateType.FAILED]
    assert 660 < seconds(states[-1].timestamp) < 700
    report = build_report(result)
    assert report["workers"]["runs_lost"] == 1 and report["events"]["pause_timeouts"] == 1
    # It reached a final state: counted as finished, in its deployment's row and per hour.
    assert report["flow_runs"]["finished"] == report["deployments"]["d"]["FAILED"] == 1
    assert sum(report["throughput"]["finished_per_hour"]) == 1


def test_a_requeued_run_is_starting_up_afresh_when_its_worker_dies_again():
    # Lost while waiting for its retry (outage at 5 minutes), the run is taken again
    # at about 13 minutes and starts up for 2 minutes: a termination signal at 14
    # minutes finds no flow engine running in the new process. It is lost, PENDING.
    data = {**DYING, "flows": RETRY_ONCE,
            "deployments": ONE_RUN}
    result, engine = simulate(data, 'workers[0].startup="2m"',
                              'workers[0].outages=[{ at = "5m", duration = "1m", runs = "lost" }, '
                         '{ at = "14m", duration = "1m", runs = "crash" }]')
    [rec] = engine.read_flow_runs()
    assert rec.state_type is StateType.PENDING
    assert [s.name for s in engine.read_flow_run_states(rec.id)].count("Pending") == 2
    wk = build_report(result)["workers"]
    assert (wk["runs_requeued"], wk["runs_lost"], wk["runs_crashed"]) == (1, 1, 0)


def test_runs_a_busy_worker_leaves_are_counted_and_shown_in_the_summary():
    # Two workers taking at most two runs each, and a run every 20 s of 90 s: the
    # workers' own limit holds runs back, which the summary and report say.
    from engine.sim.report import build_report, summary_text
    from sim_support import simulate

    data = {"simulation": {"seed": 2, "until": "1h"}, "work_pools": [{"name": "p"}],
            "workers": [{"pool": "p", "count": 2, "limit": 2, "poll_interval": "5s"}],
            "flows": [{"name": "f", "tasks": [{"name": "a", "duration": {"dist": "constant", "value": "90s"}}]}],
            "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"interval": "20s"}}]}
    result, _ = simulate(data)
    report = build_report(result)
    deferred = report["concurrency"]["worker_limit_deferrals"]
    assert deferred > 0 and report["concurrency"]["pool_or_queue_limit_deferrals"] == 0
    assert f"{deferred} worker-limit deferrals" in summary_text(report)


def test_a_run_whose_process_crashes_while_cancelling_frees_its_worker_slot_and_is_still_cancelled():
    # A worker of one slot. The first run is cancelled at 10 minutes (a 1-hour latency)
    # and its process crashes at 20 (refused: it is CANCELLING). Its process is gone, so
    # the worker takes the 25-minute run at once, not after the kill at 70 minutes; the
    # outage at 30 takes that one down but not the first, no longer the worker's, which
    # the kill still marks CANCELLED.
    result, engine = simulate(DYING, 'workers[0].outages[0].runs="lost"', "workers[0].limit=1",
                              'deployments[0].schedule={ at = ["0s", "25m"] }', "flows[0].crash_probability=1.0",
                              'flows[0].tasks[0].duration="20m"',
                              'flows[0].cancel={ probability = 1.0, after = "10m", latency = "1h" }')
    assert [t // 60 for t in pickups(engine)] == [0, 25]
    first, second = sorted(engine.read_flow_runs(), key=lambda r: r.expected_start_time)
    assert (first.state_type, second.state_type) == (StateType.CANCELLED, StateType.RUNNING)
    assert seconds(engine.read_flow_run_states(first.id)[-1].timestamp) == 70 * 60
    c = result.metrics.counters
    assert (c["cancellations"], c["worker_runs_lost"], c["flow_aborts"]) == (1, 1, 0)
