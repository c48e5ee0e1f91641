"""Workload loading and validation: every bad input names the offending key's path."""
from __future__ import annotations

import copy
import datetime as dt
import json
import pathlib

import pytest

from engine.errors import ValidationError
from engine.sim import DEFAULT_WORKLOAD_TOML, WorkloadError, default_workload, load_workload, parse_workload
from engine.sim.cron import Cron
from engine.sim.durations import parse_dist, parse_duration
from engine.sim.workload import _toml

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

BASE = {
    "work_pools": [{"name": "pool"}],
    "workers": [{"pool": "pool"}],
    "tag_limits": [{"tag": "db", "limit": 2}],
    "flows": [
        {"name": "a", "tasks": [{"name": "x"}, {"name": "y", "depends_on": ["x"], "duration": "2s"}]},
        {"name": "b", "tasks": [{"name": "x"}]},
        {"name": "c", "tasks": [{"name": "p"}, {"name": "q", "duration": {"dist": "exponential", "mean": "3s"}}]},
    ],
    "deployments": [{"name": "d", "flow": "a", "pool": "pool", "schedule": {"interval": "1h"}}],
}


def bad(mutate) -> WorkloadError:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(WorkloadError) as info:
        parse_workload(data)
    return info.value


def _task0(d) -> dict:
    return d["flows"][0]["tasks"][0]


@pytest.mark.parametrize("mutate, path, message", [
    (lambda d: d["flows"][0].update(name="a/b"), "flows[0].name", "must be a non-empty name without / % & > <, got 'a/b'"),
    (lambda d: d["deployments"][0].update(tags="x"), "deployments[0].tags", "must be a list of strings, got str 'x'"),
    (lambda d: d.update(simulation={"start": "yesterday"}), "simulation.start",
     "is not an ISO-8601 date-time: 'yesterday'"),
    (lambda d: d.update(simulation={"start": 5}), "simulation.start", "must be an ISO-8601 date-time, got int 5"),
    (lambda d: d.update(policies={"task": "module:"}), "policies.task",
     "must be a policy name (e.g. CoreFlowPolicy) or 'module:Class', got 'module:'"),
    (lambda d: _task0(d).update(cache={"key": "{oops"}), "flows[0].tasks[0].cache.key", "is not a valid template"),
    (lambda d: _task0(d).update(cache={"key": ""}), "flows[0].tasks[0].cache.key", "must not be empty"),
    (lambda d: _task0(d).update(retries=1, retry_delay=[1] * 51), "flows[0].tasks[0].retry_delay",
     "can list at most 50 retry delays, got 51"),
    (lambda d: _task0(d).update(retry_jitter_factor=-0.5), "flows[0].tasks[0].retry_jitter_factor",
     "must be >= 0, got -0.5"),
    (lambda d: _task0(d).update(subflow="nope"), "flows[0].tasks[0].subflow", "names no flow: 'nope'"),
    (lambda d: d["deployments"][0].update(schedule={"cron": "0 * * * *", "anchor": "1m"}),
     "deployments[0].schedule.anchor", "only applies to an interval schedule"),
    (lambda d: d["deployments"][0].update(schedule={"at": "5m"}), "deployments[0].schedule.at",
     "must be a list of durations, got str '5m'"),
    (lambda d: d["deployments"][0].update(collision_strategy="QUEUE"), "deployments[0].collision_strategy",
     "must be ENQUEUE or CANCEL_NEW, got 'QUEUE'"),
    (lambda d: d.update(automations=[{"name": "x", "trigger": {"type": "compound", "posture": "Reactive"},
                                      "actions": [{"type": "cancel-flow-run"}]}]),
     "automations[0].trigger.type", "only event triggers are simulated: must be 'event', got 'compound'"),
])
def test_each_bad_value_is_named_at_its_path(mutate, path, message):
    err = bad(mutate)
    assert err.path == path and str(err).startswith(f"{path}: ") and message in str(err)


@pytest.mark.parametrize("start", [dt.datetime(2024, 1, 1, 12), "2024-01-01T12:00:00", "2024-01-01T14:00:00+02:00",
                                   dt.datetime(2024, 1, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2)))])
def test_a_start_is_read_in_utc_when_it_gives_no_offset(start):
    data = copy.deepcopy(BASE)
    data["simulation"] = {"start": start}
    assert parse_workload(data).simulation.start == dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)


def test_base_workload_is_valid_and_defaults_apply():
    wl = parse_workload(copy.deepcopy(BASE))
    assert wl.simulation.until == 86400.0 and wl.simulation.runs is None
    assert [q.name for q in wl.work_pools[0].queues] == ["default"]
    assert wl.flows[0].tasks[1].duration.sample(None) == 2.0


def test_default_and_example_workloads_validate():
    assert default_workload().name == "default"
    assert _toml.loads(DEFAULT_WORKLOAD_TOML)["name"] == "default"
    files = sorted(EXAMPLES.rglob("*.toml")) + sorted(EXAMPLES.rglob("*.json"))
    assert len(files) >= 2
    for path in files:
        assert load_workload(path).flows, path


def test_unknown_key_reports_its_path():
    err = bad(lambda d: d["flows"][0]["tasks"][1].update(durration="1s"))
    assert err.path == "flows[0].tasks[1].durration"
    assert "unknown key" in str(err) and "duration" in str(err)


def test_unknown_top_level_key():
    err = bad(lambda d: d.update(flowz=[]))
    assert err.path == "flowz"


def test_wrong_type_reports_its_path():
    err = bad(lambda d: d["flows"][1]["tasks"][0].update(count="3"))
    assert err.path == "flows[1].tasks[0].count"
    assert "integer" in str(err)


def test_negative_duration_in_distribution():
    err = bad(lambda d: d["flows"][2]["tasks"][1]["duration"].update(mean=-3))
    assert err.path == "flows[2].tasks[1].duration.mean"
    assert str(err).startswith("flows[2].tasks[1].duration.mean: ")


def test_negative_string_duration_and_garbage_duration():
    assert bad(lambda d: d["flows"][0]["tasks"][0].update(duration="-5s")).path == "flows[0].tasks[0].duration"
    assert bad(lambda d: d["flows"][0]["tasks"][0].update(duration="5 parsecs")).path == "flows[0].tasks[0].duration"


def test_limit_below_zero():
    assert bad(lambda d: d["tag_limits"][0].update(limit=-1)).path == "tag_limits[0].limit"
    assert bad(lambda d: d["work_pools"][0].update(concurrency_limit=-2)).path == "work_pools[0].concurrency_limit"
    assert bad(lambda d: d["deployments"][0].update(concurrency_limit=-1)).path == "deployments[0].concurrency_limit"



def test_retry_delays_are_whole_seconds_as_prefects_integers():
    # Prefect's retry_delay is an integer (a list of them for tasks): a fraction would
    # make the engine refuse the run mid-simulation, so the workload refuses it first.
    err = bad(lambda d: d["flows"][0]["tasks"][0].update(retry_delay="1.5s"))
    assert err.path == "flows[0].tasks[0].retry_delay" and "whole number of seconds" in str(err)
    assert bad(lambda d: d["flows"][0]["tasks"][0].update(retry_delay=["1s", "250ms"])).path == \
        "flows[0].tasks[0].retry_delay[1]"
    assert bad(lambda d: d["flows"][0].update(retry_delay="2.5s")).path == "flows[0].retry_delay"
    data = copy.deepcopy(BASE)
    data["flows"][0].update(retry_delay="1m")
    data["flows"][0]["tasks"][0].update(retry_delay=["1s", "2m"])
    wl = parse_workload(data)
    assert (wl.flows[0].retry_delay, wl.flows[0].tasks[0].retry_delay) == (60.0, [1.0, 120.0])


def test_foreman_timeouts_are_whole_seconds_as_ints():
    # The engine's run_foreman_once takes integers (a float 30.0 is refused there).
    data = copy.deepcopy(BASE)
    data["services"] = {"foreman": {"enabled": True, "fallback_heartbeat_interval": "30s",
                                    "deployment_last_polled_timeout": 60, "work_queue_last_polled_timeout": "2m"}}
    foreman = parse_workload(data).foreman
    got = (foreman.fallback_heartbeat_interval, foreman.deployment_last_polled_timeout,
           foreman.work_queue_last_polled_timeout)
    assert got == (30, 60, 120) and all(type(v) is int for v in got)
    data["services"]["foreman"]["fallback_heartbeat_interval"] = "1.5s"
    with pytest.raises(WorkloadError) as info:
        parse_workload(data)
    assert info.value.path == "services.foreman.fallback_heartbeat_interval"

def test_queue_priorities_are_optional_positive_integers():
    data = copy.deepcopy(BASE)
    data["work_pools"][0]["queues"] = [{"name": "a"}, {"name": "b", "priority": 3}]
    queues = parse_workload(data).work_pools[0].queues
    # Not given: None, so the engine picks the first free number when creating it.
    assert [(q.name, q.priority) for q in queues] == [("default", None), ("a", None), ("b", 3)]
    for value in (0, -1, 1.5, "1", True):
        err = bad(lambda d: d["work_pools"][0].update(queues=[{"name": "a", "priority": value}]))
        assert err.path == "work_pools[0].queues[0].priority", value
    # The pool's own default queue exists before the simulation creates any: it
    # cannot be given a priority (the others' priorities place it).
    err = bad(lambda d: d["work_pools"][0].update(queues=[{"name": "default", "priority": 2}]))
    assert err.path == "work_pools[0].queues[0].priority" and "default" in str(err)
    parse_workload({**copy.deepcopy(BASE), "work_pools": [{"name": "pool", "queues": [
        {"name": "default", "concurrency_limit": 2}]}]})


def test_pause_expiration_service_settings():
    wl = parse_workload(copy.deepcopy(BASE))
    assert (wl.pause_expirations.enabled, wl.pause_expirations.loop) == (True, 5.0)
    data = copy.deepcopy(BASE)
    data["services"] = {"pause_expirations": {"enabled": False, "loop": "30s"}}
    wl = parse_workload(data)
    assert (wl.pause_expirations.enabled, wl.pause_expirations.loop) == (False, 30.0)
    assert bad(lambda d: d.update(services={"pause_expirations": {"loop": "0s"}})).path == \
        "services.pause_expirations.loop"
    assert bad(lambda d: d.update(services={"pause_expirations": {"every": "5s"}})).path == \
        "services.pause_expirations.every"


def test_probability_out_of_range():
    err = bad(lambda d: d["flows"][0]["tasks"][0].update(failure_probability=1.5))
    assert err.path == "flows[0].tasks[0].failure_probability"


def test_dependency_cycle():
    def make_cycle(d):
        d["flows"][0]["tasks"][0]["depends_on"] = ["y"]
    err = bad(make_cycle)
    assert err.path.startswith("flows[0].tasks[")
    assert "cycle" in str(err) and "x" in str(err) and "y" in str(err)


def test_self_dependency_is_a_cycle():
    err = bad(lambda d: d["flows"][1]["tasks"][0].update(depends_on=["x"]))
    assert "cycle" in str(err)


def test_unknown_dependency():
    err = bad(lambda d: d["flows"][0]["tasks"][1].update(depends_on=["nope"]))
    assert err.path == "flows[0].tasks[1].depends_on[0]"


def test_subflow_cycle():
    def loop(d):
        d["flows"][0]["tasks"][0]["subflow"] = "b"
        d["flows"][1]["tasks"][0]["subflow"] = "a"
    err = bad(loop)
    assert "subflow cycle" in str(err)


def test_cross_references():
    assert bad(lambda d: d["deployments"][0].update(flow="zzz")).path == "deployments[0].flow"
    assert bad(lambda d: d["deployments"][0].update(pool="zzz")).path == "deployments[0].pool"
    assert bad(lambda d: d["deployments"][0].update(queue="zzz")).path == "deployments[0].queue"
    assert bad(lambda d: d["workers"][0].update(pool="zzz")).path == "workers[0].pool"


def test_duplicate_names():
    err = bad(lambda d: d["flows"].append({"name": "a"}))
    assert err.path == "flows[3].name" and "duplicate" in str(err)


def test_schedule_needs_exactly_one_kind_and_valid_cron():
    assert bad(lambda d: d["deployments"][0].update(schedule={})).path == "deployments[0].schedule"
    err = bad(lambda d: d["deployments"][0].update(schedule={"cron": "61 * * * *"}))
    assert err.path == "deployments[0].schedule.cron"
    assert bad(lambda d: d["deployments"][0].update(schedule={"interval": 0})).path == "deployments[0].schedule.interval"


@pytest.mark.parametrize("interval", ["0s", "-5m", -300, 0])
def test_a_duration_that_must_be_positive_says_so_for_zero_and_negative_alike(interval):
    err = bad(lambda d: d["deployments"][0].update(schedule={"interval": interval}))
    assert err.path == "deployments[0].schedule.interval" and "must be a positive duration" in str(err)


@pytest.mark.parametrize("mutate, path, says", [
    # numbers past float's range (an int math.isfinite and float() refuse) or past 64 bits
    (lambda d: _task0(d).update(duration=10**400), "flows[0].tasks[0].duration",
     "must be a non-negative duration, got 1000000"),
    (lambda d: _task0(d).update(duration="9" * 400 + "s"), "flows[0].tasks[0].duration",
     "must be a finite duration"),
    (lambda d: _task0(d).update(failure_probability=10**400), "flows[0].tasks[0].failure_probability",
     "must be a number"),
    (lambda d: _task0(d).update(retry_jitter_factor=-10**400),
     "flows[0].tasks[0].retry_jitter_factor", "must be a number"),
    (lambda d: _task0(d).update(count=2**63), "flows[0].tasks[0].count",
     "must fit in a signed 64-bit integer, got 9223372036854775808"),
    (lambda d: d["tag_limits"][0].update(limit=-10**5000), "tag_limits[0].limit", "must be >= 0, got <int of"),
    # a distribution's name that is not a string; a lognormal whose spread overflows
    (lambda d: d["flows"][2]["tasks"][1]["duration"].update(dist=["exponential"]), "flows[2].tasks[1].duration.dist",
     "unknown distribution ['exponential']"),
    (lambda d: d["flows"][2]["tasks"][1].update(duration={"dist": "lognormal", "mean": 1e-300, "std": 1e300}),
     "flows[2].tasks[1].duration.std", "is too large for a lognormal distribution of mean 1e-300"),
])
def test_values_a_check_used_to_trip_on_are_named(mutate, path, says):
    """Each of these escaped as a bare OverflowError, ValueError or TypeError."""
    err = bad(mutate)
    assert err.path == path and says in str(err)


def test_cache_template_placeholders_checked():
    err = bad(lambda d: d["flows"][0]["tasks"][0].update(cache={"key": "{nope}"}))
    assert err.path == "flows[0].tasks[0].cache.key"


def test_pause_must_name_a_task():
    err = bad(lambda d: d["flows"][0].update(pause={"probability": 0.5, "after": "zz", "duration": "1m"}))
    assert err.path == "flows[0].pause.after"


def test_workload_error_is_a_validation_error():
    assert issubclass(WorkloadError, ValidationError)


def test_json_workload_and_unreadable_files(tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(BASE))
    assert load_workload(path).deployments[0].name == "d"
    broken = tmp_path / "w.toml"
    broken.write_text("flows = [")
    with pytest.raises(WorkloadError, match="not valid TOML"):
        load_workload(broken)
    with pytest.raises(WorkloadError, match="cannot read"):
        load_workload(tmp_path / "missing.toml")


def test_durations_and_distributions():
    assert parse_duration("1h30m", "x") == 5400.0
    assert parse_duration("250ms", "x") == 0.25
    assert parse_duration(7, "x") == 7.0
    with pytest.raises(WorkloadError):
        parse_duration(True, "x")
    import random

    rng = random.Random(1)
    d = parse_dist({"dist": "uniform", "min": "1s", "max": "2s"}, "d")
    assert all(1.0 <= d.sample(rng) <= 2.0 for _ in range(100))
    d = parse_dist({"dist": "normal", "mean": "1s", "std": "5s"}, "d")
    assert all(d.sample(rng) >= 0.0 for _ in range(200))
    with pytest.raises(WorkloadError) as info:
        parse_dist({"dist": "uniform", "min": 3, "max": 1}, "d")
    assert info.value.path == "d.min"


def test_cron_next_after():
    t = dt.datetime(2024, 1, 6, 23, 59, tzinfo=dt.timezone.utc)  # a Saturday
    assert Cron("0 9 * * 1-5").next_after(t) == dt.datetime(2024, 1, 8, 9, 0, tzinfo=dt.timezone.utc)
    assert Cron("*/20 * * * *").next_after(t) == dt.datetime(2024, 1, 7, 0, 0, tzinfo=dt.timezone.utc)


def test_the_documented_workload_format_is_a_valid_workload_that_shows_every_table():
    # examples/README.md's format block is meant to be copied: it must stay loadable,
    # and show each section and spec field (a new key documented nowhere fails here).
    import re

    import attrs

    from engine.sim import workload as schema

    text = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```toml\n(.*?)```", text, re.S)
    wl = parse_workload(_toml.loads(block))
    assert wl.foreman.enabled is False and wl.workers[0].outages == [schema.OutageSpec(at=7200.0, duration=1800.0)]
    assert wl.workers[0].failures.mean_uptime == 12 * 3600 and wl.workers[0].failures.repair.mean == 900
    documented = (set(re.findall(r"^#? ?(\w+) *=", block, re.M)) | set(re.findall(r"[{,] (\w+) =", block))
                  | set(re.findall(r"^\[\[?(?:\w+\.)*(\w+)\]", block, re.M)))
    for spec in (schema.SimulationSpec, schema.SchedulerSpec, schema.LateRunsSpec, schema.ForemanSpec,
                 schema.WorkerSpec, schema.OutageSpec, schema.FailureSpec, schema.TaskSpec, schema.FlowSpec, schema.DeploymentSpec):
        missing = {f.name for f in attrs.fields(spec)} - documented
        assert not missing, (spec.__name__, missing)


def test_json_workloads_refuse_a_key_given_twice_as_toml_ones_do(tmp_path):
    path = tmp_path / "w.json"
    # Named by the repeated key's path, as any workload error is.
    path.write_text('{"work_pools": [{"name": "pool", "concurrency_limit": 2, "concurrency_limit": 8}]}')
    with pytest.raises(WorkloadError, match=r"^work_pools\[0\]\.concurrency_limit: given more than once in "):
        load_workload(path)
    path.write_text('{"simulation": {"seed": 1, "seed": 2}}')
    with pytest.raises(WorkloadError, match=r"^simulation\.seed: given more than once"):
        load_workload(path)
    # The first repeat in the document, however deep, and a repeat at the top level.
    path.write_text('{"flows": [{"name": "f", "tasks": [{"name": "t", "duration": {"dist": "constant", '
                    '"value": "1s", "value": "2s"}}]}], "name": "a", "name": "b"}')
    with pytest.raises(WorkloadError, match=r"^flows\[0\]\.tasks\[0\]\.duration\.value: given more than once"):
        load_workload(path)
    path.write_text('{"name": "a", "name": "b"}')
    with pytest.raises(WorkloadError, match=r"^name: given more than once"):
        load_workload(path)
    twice = tmp_path / "w.toml"
    twice.write_text("[simulation]\nseed = 1\nseed = 2\n")
    with pytest.raises(WorkloadError, match="not valid TOML"):
        load_workload(twice)


def test_a_cron_schedule_may_name_its_timezone_and_only_a_cron_one():
    ok = copy.deepcopy(BASE)
    ok["deployments"][0]["schedule"] = {"cron": "0 9 * * *", "timezone": "Europe/Paris"}
    assert parse_workload(ok).deployments[0].schedule.cron.zone.key == "Europe/Paris"
    err = bad(lambda d: d["deployments"][0].update(schedule={"cron": "0 9 * * *", "timezone": "Mars/Olympus"}))
    assert err.path == "deployments[0].schedule.timezone" and "IANA" in str(err)
    err = bad(lambda d: d["deployments"][0].update(schedule={"cron": "0 9 * * *", "timezone": 1}))
    assert err.path == "deployments[0].schedule.timezone"
    err = bad(lambda d: d["deployments"][0].update(schedule={"interval": "1h", "timezone": "UTC"}))
    assert err.path == "deployments[0].schedule.timezone" and "only applies to a cron" in str(err)


def test_a_cron_schedule_takes_day_or_and_only_a_cron_one():
    from engine.schedules import CronSchedule

    ok = copy.deepcopy(BASE)
    ok["deployments"][0]["schedule"] = {"cron": "0 9 1-7 * MON", "timezone": "Europe/Paris", "day_or": False}
    cron = parse_workload(ok).deployments[0].schedule.cron
    assert cron.day_or is False and cron.schedule == CronSchedule("0 9 1-7 * MON", "Europe/Paris", day_or=False)
    ok["deployments"][0]["schedule"] = {"cron": "0 9 1-7 * MON"}
    assert parse_workload(ok).deployments[0].schedule.cron.day_or is True   # Prefect's default
    for schedule in ({"interval": "1h", "day_or": False}, {"poisson": "1h", "day_or": True}, {"at": [], "day_or": False}):
        err = bad(lambda d: d["deployments"][0].update(schedule=schedule))
        assert err.path == "deployments[0].schedule.day_or" and "only applies to a cron" in str(err)
    err = bad(lambda d: d["deployments"][0].update(schedule={"cron": "0 9 1-7 * MON", "day_or": "false"}))
    assert err.path == "deployments[0].schedule.day_or" and "true or false" in str(err)


@pytest.mark.parametrize("cron", ["0 9 1-7 * MON", "30 8 1-7 * MON,FRI", "0 9 13 * FRI", "0 9 */2 * MON-FRI",
                                  "0 0 29 2 MON", "*/30 1-3 1-10 * SUN", "0 9 1-7 * *", "0 9 * * MON"])
@pytest.mark.parametrize("zone", [None, "America/New_York"])
def test_day_or_false_gives_the_dates_of_the_engines_cron_schedule(cron, zone):
    from engine.schedules import CronSchedule

    begin = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    n = 6 if cron.startswith("0 0 29 2") else 60   # (Feb 29th on a Monday: 2044, 2072, 2112, ...)
    expected = [d.astimezone(dt.timezone.utc) for d in
                CronSchedule(cron, timezone=zone, day_or=False).get_dates(n=n, start=begin)]
    ours, t = [], begin - dt.timedelta(microseconds=1)
    schedule = Cron(cron, zone, day_or=False)
    while len(ours) < len(expected):
        t = schedule.next_after(t)
        ours.append(t)
    assert len(ours) == n and ours == expected


def test_day_or_false_ands_the_day_fields_and_true_ors_them():
    begin = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

    def dates(day_or: bool) -> list[dt.datetime]:
        schedule, t, out = Cron("0 9 1-7 * MON", day_or=day_or), begin - dt.timedelta(microseconds=1), []
        while t < dt.datetime(2024, 4, 1, tzinfo=dt.timezone.utc):
            t = schedule.next_after(t)
            out.append(t)
        return out[:-1]

    assert [(d.month, d.day) for d in dates(False)] == [(1, 1), (2, 5), (3, 4)]   # the first Mondays
    days_or = {(d.month, d.day) for d in dates(True)}   # every Monday, and the 1st to the 7th
    assert all((m, d) in days_or for m in (1, 2, 3) for d in range(1, 8))
    assert {(1, 29), (2, 26), (3, 25)} <= days_or and (1, 30) not in days_or


@pytest.mark.parametrize("cron, start", [
    ("0 9 1-31 * */2", (2024, 1, 1)),     # every day named, beside a field with a `*`: read as `*`
    ("0 9 */2 * 0-6", (2024, 1, 1)),      # ... either way round: only the odd days
    ("0 9 1 * MON-MON", (2024, 1, 1)),    # a day-of-week range a-a is the whole week (croniter's)
    ("0 9 1 * 5/1", (2024, 1, 1)),        # a/n runs to the field's end: Fridays and Saturdays
    ("0 0 */3 * *", (2024, 2, 20)),       # from February 29th, the 31st is March 2nd: March 1st passed over
    ("0 0 1,30 2,3 *", (2023, 2, 20)),    # ... and from February 28th, the 30th is March 2nd
])
@pytest.mark.parametrize("day_or", [True, False])
def test_the_day_fields_are_read_and_walked_as_croniter_does(cron, start, day_or):
    # What Prefect's CronSchedule gives (croniter 4), quirks included, where a plain
    # reading of the fields would give other dates.
    from engine.schedules import CronSchedule

    begin = dt.datetime(*start, tzinfo=dt.timezone.utc)
    expected = [d.astimezone(dt.timezone.utc) for d in CronSchedule(cron, day_or=day_or).get_dates(n=40, start=begin)]
    ours, t = [], begin - dt.timedelta(microseconds=1)
    schedule = Cron(cron, day_or=day_or)
    while len(ours) < len(expected):
        t = schedule.next_after(t)
        ours.append(t)
    assert len(ours) == 40 and ours == expected


def test_a_cron_prefects_cron_schedule_refuses_is_refused():
    # croniter 4 reads no day of week 7; a cron whose day of the month never comes
    # has no date even where the day of the week would do.
    err = bad(lambda d: d["deployments"][0].update(schedule={"cron": "0 9 * * 7"}))
    assert err.path == "deployments[0].schedule.cron" and "outside 0-6 in the day of week field" in str(err)
    err = bad(lambda d: d["deployments"][0].update(schedule={"cron": "0 0 31 2 MON"}))
    assert err.path == "deployments[0].schedule.cron" and "never fires" in str(err)


@pytest.mark.parametrize("cron, reason", [
    ("*/0 * * * *", "bad step '0' in the minute field"),
    ("0 */x * * *", "bad step 'x' in the hour field"),
    ("5-x * * * *", "bad range '5-x' in the minute field"),
    ("0 9 20-10 * *", "range '20-10' runs backwards in the day of month field"),
    ("0 9 * foo *", "bad value 'foo' in the month field"),
    ("0 25 * * *", "'25' is outside 0-23 in the hour field"),
    ("0 9 * *", "expected 5 fields (minute hour day month weekday), got 4"),
])
def test_a_refused_cron_names_the_field_at_fault(cron, reason):
    err = bad(lambda d: d["deployments"][0].update(schedule={"cron": cron}))
    assert err.path == "deployments[0].schedule.cron" and reason in str(err)


@pytest.mark.parametrize("cron, start", [
    ("30 1 * * *", (2024, 3, 8)),      # 01:30 daily over New York's spring and autumn changes
    ("30 1 * * *", (2024, 11, 1)),
    ("30 2 * * *", (2024, 3, 8)),      # a time the spring change skips: moved back by the gap
    ("*/30 * * * *", (2024, 11, 2)),   # the repeated hour: each local time once
    ("0 * * * *", (2024, 3, 9)),
])
def test_a_cron_in_a_timezone_gives_the_dates_of_the_engines_cron_schedule(cron, start):
    from engine.schedules import CronSchedule

    begin = dt.datetime(*start, tzinfo=dt.timezone.utc)
    expected = [d.astimezone(dt.timezone.utc) for d in
                CronSchedule(cron, timezone="America/New_York").get_dates(n=120, start=begin)]
    ours, t = [], begin - dt.timedelta(microseconds=1)
    schedule = Cron(cron, "America/New_York")
    while len(ours) < len(expected):
        t = schedule.next_after(t)
        ours.append(t)
    assert ours == expected


@pytest.mark.parametrize("cron", ["0 9 * * MON-FRI", "0 9 * jan,Mar sun", "@daily", "@hourly", "@weekly",
                                  "@monthly", "@yearly", "0 9 L * *", "0 9 * * 1#2"])
@pytest.mark.parametrize("zone", [None, "America/New_York"])
def test_a_workload_takes_every_cron_a_deployment_takes_with_the_same_dates(cron, zone):
    # Names and macros are walked by the simulator's own cron, what only croniter
    # reads (L, #) by the engine's CronSchedule: the dates are CronSchedule's.
    from engine.schedules import CronSchedule

    ok = copy.deepcopy(BASE)
    ok["deployments"][0]["schedule"] = {"cron": cron, **({"timezone": zone} if zone else {})}
    schedule = parse_workload(ok).deployments[0].schedule.cron
    begin = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    expected = [d.astimezone(dt.timezone.utc) for d in CronSchedule(cron, timezone=zone).get_dates(n=30, start=begin)]
    ours, t = [], begin - dt.timedelta(microseconds=1)
    while len(ours) < len(expected):
        t = schedule.next_after(t)
        ours.append(t)
    assert ours == expected


def test_a_cron_neither_reads_is_refused_naming_the_field():
    err = bad(lambda d: d["deployments"][0].update(schedule={"cron": "0 9 * * FUNDAY"}))
    assert err.path == "deployments[0].schedule.cron" and "day of week field" in str(err)
    err = bad(lambda d: d["deployments"][0].update(schedule={"cron": "0 9 L 2/0 *"}))
    assert err.path == "deployments[0].schedule.cron"


def test_a_cron_that_names_no_date_is_refused_and_a_search_stops_at_the_end_of_dates():
    err = bad(lambda d: d["deployments"][0].update(schedule={"cron": "0 0 31 2 *"}))
    assert err.path == "deployments[0].schedule.cron" and "never fires" in str(err)
    assert bad(lambda d: d["deployments"][0].update(schedule={"cron": "0 0 30,31 2 *"})).path.endswith("cron")
    # The 29th of February fires, in leap years, across a century year that is not one.
    leap = Cron("0 0 29 2 *").next_after(dt.datetime(2097, 1, 1, tzinfo=dt.timezone.utc))
    assert leap == dt.datetime(2104, 2, 29, tzinfo=dt.timezone.utc)
    late = dt.datetime(9999, 12, 31, 23, 30, tzinfo=dt.timezone.utc)
    assert Cron("0 0 1 1 *").next_after(late) is None
    assert Cron("59 23 31 12 *").next_after(late) == dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone.utc)
    assert Cron("0 0 1 1 *", "Pacific/Kiritimati").next_after(late) is None
