#!/usr/bin/env python
"""Write random deployment-schedule scenarios (standard library only; no Prefect).

usage: python tests/oracle/schedules_scenarios.py SEED COUNT OUT.json

A scenario: `deployments` [{name, tags, paused, version, parameters, schedules}]
(created in order on flow "f"; `schedules` are core DeploymentSchedule entries
{schedule, active}), `queues` [{name, tags, deployments}] (work queues of pool "p"
whose legacy filter holds those tags and the ids of those deployments; None leaves
the key out), and `steps`, run in order on a manual clock that starts at T0
(2024-03-09T12:00Z, the day before the US DST change) and moves only by `advance`:

  {op: advance, seconds}
  {op: create_deployment_schedules, deployment, schedules: [DeploymentScheduleCreate JSON]}
  {op: read_deployment_schedules, deployment, filter (DeploymentScheduleFilter JSON or None)}
  {op: update_deployment_schedule, deployment, index, fields}   (index: into the current
      read order; an index past the end, or a deployment named "missing", is a fresh id)
  {op: delete_deployment_schedule, deployment, index}
  {op: delete_schedules_for_deployment, deployment}
  {op: schedule_runs, deployment, start_s, end_s, min_time_s, min_runs, max_runs, auto_scheduled}
      (times as seconds from T0, None for the default)
  {op: update_deployment, deployment, fields}    (DeploymentUpdate: schedules, tags, paused)
  {op: upsert_deployment, deployment, fields}    (create_deployment again: same flow and name)
  {op: check_work_queues_for_deployment, deployment}

Schedules are of all three kinds, with random parameters and timezones (DST zones
included: America/New_York, Europe/London, Australia/Sydney, Australia/Lord_Howe,
...), and schedule_runs windows that often cross a DST change. A few entries are
invalid on purpose (a non-positive interval, a hashed cron, an unknown timezone,
max_scheduled_runs out of 1..50). Output is deterministic for a seed and count.
"""
import datetime as dt
import json
import random
import sys

T0 = dt.datetime(2024, 3, 9, 12, 0, tzinfo=dt.timezone.utc)
ZONES = ["UTC", "America/New_York", "Europe/London", "Europe/Berlin", "Australia/Sydney", "Australia/Lord_Howe",
         "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham", "America/Sao_Paulo", "Asia/Tehran"]
CRONS = ["0 * * * *", "30 2 * * *", "*/15 * * * *", "0 1 * * 0", "0 0 1 * *", "15 1,2,3 * * *", "0 9 * * 1-5",
         "0 2 * * *", "59 1 * * *", "0 0 13 * 5", "*/7 1-3 * * *", "0 12 * * 6", "0 3 * * *"]
RRULES = ["FREQ=DAILY", "FREQ=HOURLY;INTERVAL=2", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=1",
          "DTSTART:20240301T013000\nRRULE:FREQ=DAILY", "FREQ=MINUTELY;INTERVAL=37",
          "DTSTART:20240101T020000Z\nRRULE:FREQ=HOURLY;COUNT=5000", "FREQ=MONTHLY;BYMONTHDAY=-1",
          "DTSTART:20240301T020000\nRRULE:FREQ=DAILY;UNTIL=20241201T000000\nEXDATE:20240315T020000"]
# instants near DST changes (US, EU, Australia), and plain ones
PIVOTS = [dt.datetime(2024, 3, 10, 6, 30), dt.datetime(2024, 11, 3, 5, 30), dt.datetime(2024, 3, 31, 0, 30),
          dt.datetime(2024, 10, 27, 0, 30), dt.datetime(2024, 4, 6, 15, 30), dt.datetime(2024, 10, 5, 15, 30),
          dt.datetime(2024, 3, 9, 12, 0)]


def secs(t):
    return round((t.replace(tzinfo=dt.timezone.utc) - T0).total_seconds())


def schedule(rng, invalid=False):
    kind = rng.choice(["interval", "cron", "rrule"])
    tz = rng.choice(ZONES + [None])
    if kind == "interval":
        s = {"interval": rng.choice([60, 900, 1800, 3600, 10800, 86400, 172800, 88200, 604800, 3600.5, 45,
                                     rng.randint(1, 200000)])}
        if rng.random() < 0.9:
            pivot = rng.choice(PIVOTS) + dt.timedelta(seconds=rng.randint(-86400 * 30, 86400 * 30))
            s["anchor_date"] = pivot.replace(tzinfo=dt.timezone.utc).isoformat()
        if tz:
            s["timezone"] = tz
        if invalid:
            s["interval"] = rng.choice([0, -60])
    elif kind == "cron":
        s = {"cron": rng.choice(CRONS)}
        if rng.random() < 0.3:
            s["day_or"] = rng.random() < 0.5
        if tz:
            s["timezone"] = tz
        if invalid:
            s["cron"] = rng.choice(["H * * * *", "61 * * * *", "not cron"])
    else:
        s = {"rrule": rng.choice(RRULES), "timezone": tz or "UTC"}
        if invalid:
            s["timezone"] = "Mars/Olympus"
    return s


def entry(rng, create=True):
    invalid = rng.random() < 0.04
    e = {"schedule": schedule(rng, invalid)}
    if rng.random() < 0.4:
        e["active"] = rng.random() < 0.6
    if create and rng.random() < 0.3:
        e["max_scheduled_runs"] = rng.choice([1, 5, 50] + ([0, 51] if rng.random() < 0.1 else []))
    return e


def window(rng):
    pivot = rng.choice(PIVOTS)
    start = None if rng.random() < 0.2 else secs(pivot) + rng.randint(-86400 * 2, 86400)
    base = 0 if start is None else start
    end = None if rng.random() < 0.4 else base + rng.choice([0, 3600, 7200, 86400, 86400 * 3, 86400 * 20])
    return {"start_s": start, "end_s": end,
            "min_time_s": None if rng.random() < 0.5 else rng.choice([0, 600, 3600, 86400, 86400 * 5]),
            "min_runs": None if rng.random() < 0.5 else rng.choice([0, 1, 3, 10]),
            "max_runs": None if rng.random() < 0.3 else rng.choice([0, 1, 2, 5, 20, 150]),
            "auto_scheduled": rng.random() < 0.8}


def scenario(rng, n):
    deps = []
    for i in range(rng.randint(1, 3)):
        deps.append({"name": f"d{i}", "tags": rng.sample(["a", "b", "c"], rng.randint(0, 2)),
                     "paused": rng.random() < 0.2, "version": rng.choice([None, "1.0"]),
                     "parameters": rng.choice([{}, {"x": 1}]),
                     "schedules": [{"schedule": schedule(rng), **({"active": False} if rng.random() < 0.2 else {})}
                                   for _ in range(rng.randint(0, 2))]})
    names = [d["name"] for d in deps] + (["missing"] if rng.random() < 0.3 else [])
    queues = [{"name": f"q{i}", "tags": rng.choice([None, [], ["a"], ["a", "b"], ["c"]]),
               "deployments": rng.choice([None, [], [rng.choice(names[:len(deps)])]])}
              for i in range(rng.randint(0, 3))]
    steps = []
    for _ in range(rng.randint(3, 10)):
        dep = rng.choice(names)
        r = rng.random()
        if r < 0.1:
            steps.append({"op": "advance", "seconds": rng.choice([0, 0, 1, 60, 3600])})
        elif r < 0.25:
            steps.append({"op": "create_deployment_schedules", "deployment": dep,
                          "schedules": [entry(rng) for _ in range(rng.randint(1, 3))]})
        elif r < 0.35:
            steps.append({"op": "read_deployment_schedules", "deployment": dep,
                          "filter": rng.choice([None, {"active": {"eq_": True}}, {"active": {"eq_": False}}])})
        elif r < 0.45:
            fields = {}
            if rng.random() < 0.6:
                fields["active"] = rng.random() < 0.5
            if rng.random() < 0.4:
                fields["schedule"] = schedule(rng)
            if rng.random() < 0.3:
                fields["max_scheduled_runs"] = rng.choice([2, 50])
            steps.append({"op": "update_deployment_schedule", "deployment": dep, "index": rng.randint(0, 2),
                          "fields": fields})
        elif r < 0.5:
            steps.append({"op": "delete_deployment_schedule", "deployment": dep, "index": rng.randint(0, 2)})
        elif r < 0.53:
            steps.append({"op": "delete_schedules_for_deployment", "deployment": dep})
        elif r < 0.8:
            steps.append({"op": "schedule_runs", "deployment": dep, **window(rng)})
        elif r < 0.88:
            fields = {}
            if rng.random() < 0.6 and dep != "missing":  # (Prefect: a foreign-key error there)
                fields["schedules"] = [entry(rng, create=False) for _ in range(rng.randint(0, 2))]
            if rng.random() < 0.4:
                fields["tags"] = rng.sample(["a", "b", "c"], rng.randint(0, 2))
            if rng.random() < 0.3:
                fields["paused"] = rng.random() < 0.5
            steps.append({"op": "update_deployment", "deployment": dep, "fields": fields})
        elif r < 0.94 and dep != "missing":
            fields = {}
            if rng.random() < 0.6:
                fields["schedules"] = [{"schedule": schedule(rng)} for _ in range(rng.randint(0, 2))]
            steps.append({"op": "upsert_deployment", "deployment": dep, "fields": fields})
        else:
            steps.append({"op": "check_work_queues_for_deployment", "deployment": dep})
    return {"id": n, "deployments": deps, "queues": queues, "steps": steps}


def main(argv):
    seed, count, out = int(argv[1]), int(argv[2]), argv[3]
    rng = random.Random(seed)
    with open(out, "w") as f:
        json.dump([scenario(rng, i) for i in range(count)], f, indent=1)


if __name__ == "__main__":
    main(sys.argv)
