"""The engine's answers to the deployment-schedule scenarios of
tests/oracle/schedules_scenarios.py, in prefect_schedules.py's answer format
(shared by tests/test_schedules.py and a manual comparison against fresh oracle output)."""
from __future__ import annotations

import datetime as dt
import uuid

from engine import Engine, ManualClock, ObjectNotFoundError, ValidationError

T0 = dt.datetime(2024, 3, 9, 12, 0, 0, tzinfo=dt.timezone.utc)


def ms_of(t):
    return None if t is None else round((t - T0).total_seconds() * 1000)


def iso(t):
    return None if t is None else t.astimezone(dt.timezone.utc).isoformat()


def at(s):
    return None if s is None else T0 + dt.timedelta(seconds=s)


def schedule_view(schedule):
    data = schedule.to_json()
    if "interval" in data:
        data = {"interval": data["interval"], "anchor_ms": ms_of(schedule.anchor_date), "timezone": data["timezone"]}
    return data


def views(rows):
    return [[schedule_view(r.schedule), r.active, r.max_scheduled_runs, ms_of(r.created), ms_of(r.updated)]
            for r in rows]


def answer(sc: dict) -> dict:
    clock = ManualClock(T0)
    engine = Engine(clock)
    flow = engine.create_flow("f")
    deps = {}
    for d in sc["deployments"]:
        dep = engine.create_deployment(flow.id, d["name"], tags=d["tags"], paused=d["paused"], version=d["version"],
                                       parameters=d["parameters"], schedules=d["schedules"])
        deps[d["name"]] = dep.id
    missing = uuid.uuid4()
    if sc["queues"]:
        pool = engine.create_work_pool("p")
        for q in sc["queues"]:
            flt = {}
            if q["tags"] is not None:
                flt["tags"] = q["tags"]
            if q["deployments"] is not None:
                flt["deployment_ids"] = [str(deps[n]) for n in q["deployments"]]
            engine.create_work_queue(pool.id, q["name"], filter=flt)

    def label(runs):
        # idempotency keys name the deployment's random id: use its name
        for r in runs:
            for name, did in deps.items():
                r[0] = r[0].replace(str(did), name)
        return runs

    def dep_id(name):
        return deps.get(name, missing)

    def schedule_id(name, index):
        rows = engine.read_deployment_schedules(dep_id(name))
        return rows[index].id if index < len(rows) else uuid.uuid4()

    answers = []
    for st in sc["steps"]:
        op = st["op"]
        if op == "advance":
            clock.advance(st["seconds"])
            answers.append(None)
            continue
        try:
            if op == "create_deployment_schedules":
                ans = views(engine.create_deployment_schedules(dep_id(st["deployment"]), st["schedules"]))
            elif op == "read_deployment_schedules":
                ans = views(engine.read_deployment_schedules(dep_id(st["deployment"]), st["filter"]))
            elif op == "update_deployment_schedule":
                sid = schedule_id(st["deployment"], st["index"])
                ans = engine.update_deployment_schedule(dep_id(st["deployment"]), sid, st["fields"])
            elif op == "delete_deployment_schedule":
                sid = schedule_id(st["deployment"], st["index"])
                ans = engine.delete_deployment_schedule(dep_id(st["deployment"]), sid)
            elif op == "delete_schedules_for_deployment":
                ans = engine.delete_schedules_for_deployment(dep_id(st["deployment"]))
            elif op == "schedule_runs":
                ids = engine.schedule_runs(
                    dep_id(st["deployment"]), start_time=at(st["start_s"]), end_time=at(st["end_s"]),
                    min_time=None if st["min_time_s"] is None else dt.timedelta(seconds=st["min_time_s"]),
                    min_runs=st["min_runs"], max_runs=st["max_runs"], auto_scheduled=st["auto_scheduled"])
                runs = []
                for rid in ids:
                    r = engine.read_flow_run(rid)
                    (state,) = engine.read_flow_run_states(rid)
                    assert r.state_id == state.id
                    runs.append([r.idempotency_key, iso(r.expected_start_time), iso(r.next_scheduled_start_time),
                                 list(r.tags), r.auto_scheduled, state.type.value, state.name, state.message,
                                 iso(state.state_details.scheduled_time), ms_of(state.timestamp), r.parameters,
                                 r.work_queue_name, r.deployment_version, ms_of(r.created), ms_of(r.state_timestamp)])
                ans = {"count": len(ids), "runs": sorted(label(runs))}
            elif op == "update_deployment":
                ans = engine.update_deployment(dep_id(st["deployment"]), st["fields"])
            elif op == "upsert_deployment":
                engine.create_deployment(flow.id, st["deployment"], **st["fields"])
                ans = True
            elif op == "check_work_queues_for_deployment":
                ans = [q.name for q in engine.check_work_queues_for_deployment(dep_id(st["deployment"]))]
            else:
                raise ValueError(f"unknown op {op!r}")
        except ValidationError:
            ans = {"error": "invalid"}
        except ObjectNotFoundError:
            ans = {"error": "not_found"}
        answers.append(ans)
    final = {name: views(engine.read_deployment_schedules(did)) for name, did in deps.items()}
    names = {v: k for k, v in deps.items()}
    runs = [[r.idempotency_key, names.get(r.deployment_id, str(r.deployment_id))]
            for r in engine._store.tables["flow_run"].rows.values()]
    return {"id": sc["id"], "steps": answers, "final": final, "runs": sorted(label(runs))}
