"""The deployment schedules a simulation leaves in the engine: those Prefect's database
would hold for the workload, with the dates of the runs the simulator made."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from engine.schedules import CronSchedule, IntervalSchedule
from sim_support import START, simulate

UTC = dt.timezone.utc
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
UNTIL = dt.timedelta(days=120)
# First Mondays and Fridays of the month (day_or false), 08:30 in New York.
FIRST_MON_FRI = "30 8 1-7 * MON,FRI"

WORKLOAD = {
    "simulation": {"seed": 3, "start": START.isoformat(), "until": "120d"},
    "services": {"late_runs": {"enabled": False}},
    "work_pools": [{"name": "p"}],
    "workers": [{"pool": "p"}],
    "flows": [{"name": "f", "tasks": [{"name": "a"}]}],
    "deployments": [
        {"name": "twice-daily", "flow": "f", "pool": "p", "schedule": {"interval": "12h", "anchor": "3h"}},
        {"name": "first-weekdays", "flow": "f", "pool": "p",
         "schedule": {"cron": FIRST_MON_FRI, "timezone": "America/New_York", "day_or": False}},
        {"name": "held", "flow": "f", "pool": "p", "paused": True, "schedule": {"cron": "0 0 * * *"}},
        {"name": "arrivals", "flow": "f", "pool": "p", "schedule": {"poisson": "1d"}},
        {"name": "fixed", "flow": "f", "pool": "p", "schedule": {"at": ["1h", "2d"]}},
        {"name": "by-hand", "flow": "f", "pool": "p"},
    ],
}


@pytest.fixture(scope="module")
def simulated():
    result, engine = simulate(WORKLOAD)
    return result, engine, {d.name: d for d in engine.read_deployments()}


def run_times(engine, deployment_id) -> list[dt.datetime]:
    runs = engine.read_flow_runs(flow_run_filter={"deployment_id": {"any_": [deployment_id]}}, limit=1000)
    return sorted(r.expected_start_time for r in runs)


def test_the_engine_holds_the_interval_and_cron_schedules_of_the_workload(simulated):
    _, engine, deps = simulated
    stored = {name: engine.read_deployment_schedules(dep.id) for name, dep in deps.items()}
    (interval,) = stored["twice-daily"]
    assert interval.active and interval.schedule == IntervalSchedule(
        dt.timedelta(hours=12), START + dt.timedelta(hours=3), "UTC")
    (cron,) = stored["first-weekdays"]
    assert cron.active and cron.schedule == CronSchedule(FIRST_MON_FRI, "America/New_York", day_or=False)
    # A paused deployment keeps its schedule (Prefect's pause leaves it active).
    (held,) = stored["held"]
    assert held.active and held.schedule == CronSchedule("0 0 * * *", None, day_or=True)
    # Poisson and `at` arrivals are no Prefect schedule.
    assert stored["arrivals"] == stored["fixed"] == stored["by-hand"] == []


@pytest.mark.parametrize("name", ["twice-daily", "first-weekdays"])
def test_the_stored_schedule_gives_the_dates_the_simulator_made_runs_for(simulated, name):
    result, engine, deps = simulated
    dep = deps[name]
    times = run_times(engine, dep.id)
    assert len(times) >= 7
    (stored,) = engine.read_deployment_schedules(dep.id)
    dates = [d.astimezone(UTC) for d in stored.schedule.get_dates(n=len(times) + 1, start=result.start)]
    # The same dates, and the next one is past the simulated period (none missed).
    assert dates[:-1] == times and dates[-1] > result.start + UNTIL
    # The engine's own scheduler finds every date taken: Prefect's idempotency keys
    # match those the simulator gave.
    assert engine.schedule_runs(dep.id, start_time=result.start, end_time=result.start + UNTIL, min_time=UNTIL,
                                max_runs=1000) == []


def test_day_or_false_fires_on_days_matching_both_day_fields(simulated):
    _, engine, deps = simulated
    local = [t.astimezone(NEW_YORK) for t in run_times(engine, deps["first-weekdays"].id)]
    assert {(t.strftime("%a"), t.day <= 7, t.hour, t.minute) for t in local} == {("Mon", True, 8, 30),
                                                                                ("Fri", True, 8, 30)}
    # Two a month: 120 days from January 1st hold four months of them.
    assert len(local) == 8
