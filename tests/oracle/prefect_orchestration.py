"""Answer orchestration scenarios with Prefect 3.1.0's own set_*_state (conformance README §1).

    python prefect_orchestration.py IN.jsonl OUT.jsonl [--db PATH]

IN holds scenarios (`setup`, `history`, `proposed`, `policy`, `force`, `kind`; any
`outcome` or history `result` already there is ignored). OUT gets each scenario back
with every history step's `result` and the `outcome` filled from what Prefect did.

Each scenario starts from empty tables: its objects are created, the history is
applied one step per transaction, then `proposed` is submitted and the run under test
and its neighbours are read back. Real ids, times and pause keys are reported as the
corpus's labels and whole-second offsets. Runs only in a venv with Prefect 3.1.0
installed (see README.md).
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import sys
import time
import uuid

import prefect_sandbox  # first: it prepares the environment Prefect reads on import

import pendulum
import sqlalchemy as sa
from packaging.version import Version
from prefect.server import models, schemas
from prefect.server.database.dependencies import provide_database_interface
from prefect.server.orchestration import core_policy
from prefect.server.schemas.states import StateType
from prefect.server.task_queue import TaskQueue
from scenario_labels import Labels

POLICIES = {name: getattr(core_policy, name) for name in (
    "CoreFlowPolicy", "CoreFlowPolicyWithoutDeploymentConcurrency", "MinimalFlowPolicy", "MarkLateRunsPolicy",
    "CoreTaskPolicy", "ClientSideTaskOrchestrationPolicy", "BackgroundTaskPolicy", "MinimalTaskPolicy")}

# state_details keys a spec gives literally, and the offset keys with the field they set
LITERAL_DETAILS = ("cache_key", "refresh_cache", "pause_key", "pause_reschedule", "deferred", "retriable",
                   "untrackable_result")
OFFSET_DETAILS = {"scheduled_time_offset_s": "scheduled_time", "cache_expiration_offset_s": "cache_expiration",
                  "pause_timeout_offset_s": "pause_timeout"}
SYMBOLIC_DETAILS = ("transition_id", "task_parameters_id")

# ABORT reasons with these prefixes are Prefect turning an internal exception into an abort.
INTERNAL_ERROR_PREFIXES = ("Error validating state:", "Aborting orchestration due to error")

# Emptied between scenarios, children before parents (cheaper than a new database each time).
TABLES = ("TaskRunStateCache", "ConcurrencyLimit", "FlowRunNotificationQueue", "TaskRunState", "FlowRunState",
          "TaskRun", "FlowRun", "Deployment", "ConcurrencyLimitV2", "Flow")

# Messages of exceptions are cut to this length.
MESSAGE_LIMIT = 300

# A history slower than this (seconds) makes the outcome's offsets less exact (README §1.5).
SLOW_HISTORY_S = 0.4


def literal_pause_keys(case: dict) -> set:
    """Pause keys the scenario itself writes; any other key was invented by Prefect."""
    specs = [case["proposed"]] + [step["state"] for step in case["history"]]
    keys = {(spec.get("state_details") or {}).get("pause_key") for spec in specs} - {None}
    flow_run = case["setup"].get("flow_run") or {}
    return keys | set((flow_run.get("empirical_policy") or {}).get("pause_keys") or ())


def kind_of(target: str) -> str:
    return "flow" if target in ("flow_run", "parent_flow_run") else "task"


def effective_policy(case: dict) -> str:
    """The policy Prefect's API really runs: deferred task states always get
    BackgroundTaskPolicy, `force` otherwise means the Minimal policy."""
    if case["kind"] == "task" and (case["proposed"].get("state_details") or {}).get("deferred"):
        return "BackgroundTaskPolicy"
    if case.get("force"):
        return "MinimalFlowPolicy" if case["kind"] == "flow" else "MinimalTaskPolicy"
    return case["policy"]


class ScenarioReplay:
    """One scenario replayed through Prefect; `run()` returns the history results and outcome."""

    def __init__(self, db, case: dict):
        self.db, self.case, self.kind = db, case, case["kind"]
        self.target = self.kind + "_run"
        self.labels = Labels(literal_pause_keys(case))
        self.deployment_limit_id = None
        self.t0 = None  # the instant just before the proposal; outcome offsets count from it
        # The API passes the client's X-PREFECT-API-VERSION to flow-run policies (§1.2).
        params = case["setup"].get("orchestration_parameters")
        if params is None:
            self.flow_params = None
        else:
            version = params.get("api-version")
            self.flow_params = {"api-version": None if version is None else Version(version)}

    # --- setup (§1.2) ----------------------------------------------------------------------

    async def create_objects(self) -> None:
        db, setup, name = self.db, self.case["setup"], self.labels.name
        async with db.session_context(begin_transaction=True) as s:
            flow = await models.flows.create_flow(s, schemas.core.Flow(name="oracle-flow"))
            deployment = None
            if setup.get("deployment") is not None:
                deployment = await self.create_deployment(s, flow, setup["deployment"])
            if setup.get("parent"):
                parent = db.FlowRun(flow_id=flow.id, name="parent-flow-run")
                s.add(parent)
                await s.flush()
                name("parent_flow_run", parent.id)
                parent_task = db.TaskRun(flow_run_id=parent.id, task_key="subflow-parent-task", dynamic_key="0",
                                         name="parent-task")
                s.add(parent_task)
                await s.flush()
                name("parent_task_run", parent_task.id)
            spec = setup.get("flow_run")
            if spec is not None:
                run = db.FlowRun(
                    flow_id=flow.id, name="oracle-flow-run",
                    empirical_policy=schemas.core.FlowRunPolicy(**(spec.get("empirical_policy") or {})),
                    tags=list(spec.get("tags") or []), infrastructure_pid=spec.get("infrastructure_pid"),
                    run_count=spec.get("run_count") or 0,
                    deployment_id=deployment.id if spec.get("deployment") and deployment is not None else None,
                    parent_task_run_id=self.labels.ids["parent_task_run"] if spec.get("parent_task_run") else None)
                s.add(run)
                await s.flush()
                name("flow_run", run.id)
            spec = setup.get("task_run")
            if spec is not None:
                expiration = spec.get("cache_expiration_offset_s")
                run = db.TaskRun(
                    flow_run_id=self.labels.ids["flow_run"] if spec.get("flow_run") else None, name="oracle-task-run",
                    task_key=spec["task_key"], dynamic_key=spec["dynamic_key"], tags=list(spec.get("tags") or []),
                    empirical_policy=schemas.core.TaskRunPolicy(**(spec.get("empirical_policy") or {})),
                    run_count=spec.get("run_count") or 0, flow_run_run_count=spec.get("flow_run_run_count") or 0,
                    cache_key=spec.get("cache_key"),
                    cache_expiration=None if expiration is None else pendulum.now("UTC").add(seconds=expiration))
                s.add(run)
                await s.flush()
                name("task_run", run.id)
            for other in setup.get("other_task_runs") or ():
                run = db.TaskRun(flow_run_id=self.labels.ids["flow_run"] if other.get("flow_run") else None,
                                 name=other["ref"], task_key=other["task_key"], dynamic_key=other["ref"])
                s.add(run)
                await s.flush()
                name(other["ref"], run.id)
            for limit in setup.get("task_concurrency_limits") or ():
                # Holders other than the run under test are ids of task runs that do not exist.
                holders = [str(self.labels.ids[h] if h in self.labels.ids else name(h, uuid.uuid4()))
                           for h in limit.get("active_slots") or ()]
                s.add(db.ConcurrencyLimit(tag=limit["tag"], concurrency_limit=limit["limit"], active_slots=holders))
                await s.flush()

    async def create_deployment(self, s, flow, spec: dict):
        """The deployment through Prefect's own model, which also creates its concurrency limit."""
        options = {}
        if spec.get("collision_strategy") is not None:
            options["concurrency_options"] = schemas.core.ConcurrencyOptions(
                collision_strategy=spec["collision_strategy"])
        deployment = await models.deployments.create_deployment(s, schemas.core.Deployment(
            name="oracle-deployment", flow_id=flow.id, concurrency_limit=spec.get("concurrency_limit"), **options))
        self.labels.name("deployment", deployment.id)
        await s.flush()
        self.deployment_limit_id = (await s.get(self.db.Deployment, deployment.id)).concurrency_limit_id
        if spec.get("active_slots") and self.deployment_limit_id is not None:
            await s.execute(sa.update(self.db.ConcurrencyLimitV2)
                            .where(self.db.ConcurrencyLimitV2.id == self.deployment_limit_id)
                            .values(active_slots=spec["active_slots"]))
        return deployment

    # --- submitting states (§1.3, §1.4) --------------------------------------------------

    def build_state(self, spec: dict, now):
        given = spec.get("state_details") or {}
        details = {k: given[k] for k in LITERAL_DETAILS if k in given}
        details.update({field: now.add(seconds=given[k]) for k, field in OFFSET_DETAILS.items()
                        if given.get(k) is not None})
        details.update({k: self.labels.symbol(k, given[k]) for k in SYMBOLIC_DETAILS if given.get(k) is not None})
        if spec["type"] == "SCHEDULED" and "scheduled_time" not in details:
            details["scheduled_time"] = now  # Prefect's schema default
        fields = dict(type=StateType(spec["type"]), timestamp=now, message=spec.get("message"),
                      data=copy.deepcopy(spec.get("data")), state_details=schemas.states.StateDetails(**details))
        if spec.get("name") is not None:
            fields["name"] = spec["name"]
        return schemas.states.State(**fields)

    async def submit(self, target: str, spec: dict, force: bool, policy: str | None, now=None):
        """Apply one state in its own transaction, as the REST API does."""
        kind = kind_of(target)
        if policy is None:
            policy = self.case["policy"] if kind == self.kind else ("CoreFlowPolicy" if kind == "flow"
                                                                     else "CoreTaskPolicy")
        state = self.build_state(spec, now or pendulum.now("UTC"))
        async with self.db.session_context(begin_transaction=True) as s:
            if kind == "flow":
                return await models.flow_runs.set_flow_run_state(
                    s, self.labels.ids[target], state, force=force, flow_policy=POLICIES[policy],
                    orchestration_parameters=None if self.flow_params is None else dict(self.flow_params))
            return await models.task_runs.set_task_run_state(
                s, self.labels.ids[target], state, force=force, task_policy=POLICIES[policy],
                orchestration_parameters={})

    async def label_new_states(self, target: str, label: str) -> int:
        """Label state rows written since the last call: the target's as `label`, any other
        run's (e.g. mirrored onto a parent task run) as `state:other-N`. Returns how many
        were the target's."""
        rows = []
        async with self.db.session_context() as s:
            for cls, owner in ((self.db.FlowRunState, "flow_run_id"), (self.db.TaskRunState, "task_run_id")):
                rows += (await s.execute(sa.select(cls.id, getattr(cls, owner)).order_by(cls.timestamp))).all()
        target_id, written = self.labels.ids.get(target), 0
        for state_id, run_id in rows:
            if str(state_id) in self.labels.names:
                continue
            if run_id == target_id:
                self.labels.name(label, state_id)
                written += 1
            else:
                self.labels.name_other_state(state_id)
        return written

    # --- reading back (§1.5-§1.7) -------------------------------------------------------

    def offset(self, t):
        return None if t is None else round((pendulum.instance(t) - self.t0).total_seconds())

    def state_summary(self, state):
        if state is None:
            return None
        d, label = state.state_details, self.labels.of
        return {"id": label(state.id), "type": state.type.value, "name": state.name, "message": state.message,
                "data": state.data.model_dump(mode="json") if hasattr(state.data, "model_dump") else state.data,
                "state_details": {
                    "flow_run_id": label(d.flow_run_id), "task_run_id": label(d.task_run_id),
                    "child_flow_run_id": label(d.child_flow_run_id),
                    "scheduled_time_offset_s": self.offset(d.scheduled_time), "cache_key": d.cache_key,
                    "cache_expiration_offset_s": self.offset(d.cache_expiration), "refresh_cache": d.refresh_cache,
                    "pause_key": self.labels.pause_key(d.pause_key),
                    "pause_timeout_offset_s": self.offset(d.pause_timeout), "pause_reschedule": d.pause_reschedule,
                    "deferred": d.deferred, "untrackable_result": d.untrackable_result, "retriable": d.retriable,
                    "transition_id": label(d.transition_id), "task_parameters_id": label(d.task_parameters_id)}}

    async def run_under_test(self, s):
        return await s.get(self.db.FlowRun if self.kind == "flow" else self.db.TaskRun, self.labels.ids[self.target])

    def run_summary(self, run) -> dict:
        policy = run.empirical_policy.model_dump(mode="json")
        if policy.get("pause_keys") is not None:
            policy["pause_keys"] = sorted(self.labels.pause_key(k) for k in policy["pause_keys"])
        out = {"state": self.labels.of(run.state_id), "state_type": run.state_type.value if run.state_type else None,
               "state_name": run.state_name, "run_count": run.run_count,
               "start_time_set": run.start_time is not None, "end_time_set": run.end_time is not None,
               "total_run_time_positive": (run.total_run_time or dt.timedelta(0)) > dt.timedelta(0),
               "expected_start_time_set": run.expected_start_time is not None,
               "expected_start_time_offset_s": self.offset(run.expected_start_time),
               "next_scheduled_start_time_offset_s": self.offset(run.next_scheduled_start_time),
               "empirical_policy": policy}
        if self.kind == "flow":
            out["infrastructure_pid"] = run.infrastructure_pid
        else:
            out["flow_run_run_count"] = run.flow_run_run_count
        return out

    async def side_effects(self, s) -> dict:
        db, ids, label, out = self.db, self.labels.ids, self.labels.of, {}
        if self.kind == "task" and "flow_run" in ids:
            flow_run = await s.get(db.FlowRun, ids["flow_run"])
            out["flow_run"] = {"state_type": flow_run.state_type.value if flow_run.state_type else None,
                               "state_name": flow_run.state_name, "run_count": flow_run.run_count}
        if "parent_task_run" in ids:
            parent = await s.get(db.TaskRun, ids["parent_task_run"])
            child = None
            if parent.state_id is not None:
                child = (await s.get(db.TaskRunState, parent.state_id)).state_details.child_flow_run_id
            state_rows = (await s.execute(sa.select(sa.func.count()).select_from(db.TaskRunState)
                                          .where(db.TaskRunState.task_run_id == parent.id))).scalar()
            out["parent_task_run"] = {"state_type": parent.state_type.value if parent.state_type else None,
                                      "state_name": parent.state_name, "run_count": parent.run_count,
                                      "start_time_set": parent.start_time is not None,
                                      "end_time_set": parent.end_time is not None,
                                      "child_flow_run_id": label(child), "state_rows": state_rows}
        limits = (await s.execute(sa.select(db.ConcurrencyLimit))).scalars().all()
        if limits:
            out["task_concurrency_limits"] = {
                lim.tag: {"limit": lim.concurrency_limit, "active_slots": sorted(label(x) for x in lim.active_slots)}
                for lim in limits}
        if "deployment" in ids and self.deployment_limit_id is not None:
            limit = await s.get(db.ConcurrencyLimitV2, self.deployment_limit_id)
            if limit is not None:
                out["deployment_concurrency_limit"] = {"limit": limit.limit, "active_slots": limit.active_slots}
        if self.kind == "task":
            cache = (await s.execute(sa.select(db.TaskRunStateCache)
                                     .order_by(db.TaskRunStateCache.created))).scalars().all()
            out["task_run_state_cache"] = [{"cache_key": row.cache_key, "state": label(row.task_run_state_id),
                                            "cache_expiration_offset_s": self.offset(row.cache_expiration)}
                                           for row in cache]
            # Background-task queues live in process memory; Prefect has no public size API.
            queue = TaskQueue._task_queues.get(self.case["setup"]["task_run"]["task_key"])
            out["task_queue"] = {"scheduled": queue._scheduled_queue.qsize() if queue else 0,
                                 "retry": queue._retry_queue.qsize() if queue else 0}
        return out

    # --- the whole scenario ----------------------------------------------------------------

    async def run(self) -> tuple[list, dict]:
        await self.create_objects()
        history_started = time.time()
        results = []
        for i, step in enumerate(self.case["history"]):
            try:
                res = await self.submit(step["target"], step["state"], step["via"] == "force", step.get("policy"))
            except Exception as exc:  # the step is rolled back; the corpus records the error type
                results.append({"status": "ERROR", "error_type": type(exc).__name__})
                continue
            await self.label_new_states(step["target"], f"state:h{i}")
            reason = self.labels.in_text(getattr(res.details, "reason", None))
            results.append({"status": res.status.value, "reason": reason, "state": None if res.state is None else {
                "id": self.labels.of(res.state.id), "type": res.state.type.value, "name": res.state.name}})
        self.t0 = pendulum.now("UTC")
        slow_history = time.time() - history_started > SLOW_HISTORY_S
        try:
            res = await self.submit(self.target, self.case["proposed"], bool(self.case.get("force")),
                                    self.case["policy"], now=self.t0)
        except Exception as exc:  # Prefect raised out of set_*_state: the API would answer 500
            outcome = {"status": "ERROR", "details": None,
                       "error": {"type": type(exc).__name__, "message": str(exc)[:MESSAGE_LIMIT]},
                       "state": None, "state_is_new": False, "new_state_rows": 0}
        else:
            written = await self.label_new_states(self.target, "state:new")
            reason = self.labels.in_text(getattr(res.details, "reason", None))
            details = {"type": res.details.type, "reason": reason,
                       "internal_error": isinstance(reason, str) and reason.startswith(INTERNAL_ERROR_PREFIXES)}
            if res.details.type == "wait_details":
                details["delay_seconds"] = res.details.delay_seconds
            state = self.state_summary(res.state)
            outcome = {"status": res.status.value, "details": details, "error": None, "state": state,
                       "state_is_new": state is not None and state["id"] == "state:new", "new_state_rows": written}
        async with self.db.session_context() as s:
            outcome["run"] = self.run_summary(await self.run_under_test(s))
            outcome["side_effects"] = await self.side_effects(s)
        outcome["effective_policy"] = effective_policy(self.case)
        if slow_history:
            outcome["timing_warning"] = True
        return results, outcome


async def clear(db) -> None:
    async with db.session_context(begin_transaction=True) as s:
        for table in TABLES:
            await s.execute(sa.delete(getattr(db, table)))
    TaskQueue.reset()


async def answer_file(in_path: str, out_path: str) -> tuple[int, int]:
    """Answer every scenario of `in_path`; returns (answered, failed)."""
    db = provide_database_interface()
    await db.create_db()
    answered = failed = 0
    started = time.time()
    with open(in_path, encoding="utf-8") as src, open(out_path, "w", encoding="utf-8") as out:
        for line in src:
            if not line.strip():
                continue
            case = json.loads(line)
            await clear(db)
            try:
                results, outcome = await ScenarioReplay(db, case).run()
            except Exception as exc:  # a harness problem, not a Prefect answer: leave the case out
                print(f"{case['id']}: not answered: {type(exc).__name__}: {exc}", file=sys.stderr)
                failed += 1
                continue
            for step, result in zip(case["history"], results):
                step["result"] = result
            case["outcome"] = outcome
            out.write(json.dumps(case, default=str) + "\n")
            answered += 1
            if answered % 200 == 0:
                print(f"{answered} scenarios, {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return answered, failed


def main(argv: list[str] | None = None) -> int:
    answered, failed = prefect_sandbox.answer_from_command_line(
        answer_file, __doc__.splitlines()[0], "scenarios (.jsonl)",
        "where to write the scenarios with Prefect's results and outcomes", argv)
    print(f"{answered} scenarios answered" + (f", {failed} not answered (see above)" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
