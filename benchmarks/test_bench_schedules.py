"""A scheduler pass (schedule_runs) for deployments with rrule, cron and interval
schedules, years after the rule's DTSTART.

Measure:  python -m pytest benchmarks/test_bench_schedules.py --benchmark-only

Each round makes the next 100 runs of one deployment, as Prefect's scheduler
service does every few seconds, then deletes them so the next round makes them
again. An rrule without DTSTART starts on 2020-01-01, so dateutil would walk every
minute (or second) from there to "now" if the engine expanded it whole.
"""
from __future__ import annotations

import datetime as dt

import pytest

from engine import Engine, ManualClock

NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("schedule", [
    {"rrule": "FREQ=MINUTELY;INTERVAL=5", "timezone": "Europe/Berlin"},
    {"rrule": "FREQ=SECONDLY;INTERVAL=30"},
    {"rrule": "RRULE:FREQ=HOURLY\nEXRULE:FREQ=HOURLY;BYDAY=SA,SU"},
    {"cron": "*/5 * * * *", "timezone": "Europe/Berlin"},
    {"interval": 300},
], ids=["rrule-minutely", "rrule-secondly", "rrule-set-hourly", "cron", "interval"])
def test_schedule_runs_of_one_deployment(benchmark, schedule):
    engine = Engine(ManualClock(NOW))
    flow = engine.create_flow("bench")
    dep = engine.create_deployment(flow.id, "d", schedules=[{"schedule": schedule}])

    def one_pass():
        made = engine.schedule_runs(dep.id, min_runs=100, max_runs=100, min_time=dt.timedelta(0))
        for run_id in made:
            engine.delete_flow_run(run_id)
        return made

    made = benchmark(one_pass)
    assert len(made) == 100
    first = engine.schedule_runs(dep.id, min_runs=100, max_runs=100, min_time=dt.timedelta(0))
    times = sorted(r.expected_start_time for r in engine.read_flow_runs(flow_run_filter={"id": {"any_": first}}))
    assert times[0] >= NOW and times[-1] - times[0] < dt.timedelta(days=14)
