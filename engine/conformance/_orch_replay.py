"""Replay one recorded orchestration scenario against a fresh Engine.

The replayer follows the corpus README (§1.9): build the setup objects, apply each
history step in its own transaction, submit the proposal, and read everything back
in the corpus's own vocabulary (labels instead of UUIDs, offsets in seconds relative
to the instant just before the proposal). The result is a plain dict shaped like the
recorded case, so comparing (see `_orch_compare`) is pure data work.

Offsets are reported unrounded (floats); the comparison applies the tolerances.
"""
from __future__ import annotations

import copy
import datetime as _dt
import re
import uuid
from typing import Any

import attrs

from ..clock import ManualClock, UTC
from ..engine import Engine
from ..errors import RunstateError
from ..states import State, StateDetails

__all__ = ["Replayer", "replay", "STEP", "START"]

# Distinct, small gap between steps: states get distinct timestamps and any exit from
# RUNNING accrues positive run time, as with a real clock.
STEP = _dt.timedelta(milliseconds=5)
START = _dt.datetime(2024, 11, 1, tzinfo=UTC)

_FLOW_TARGETS = frozenset({"flow_run", "parent_flow_run"})
_DEFAULT_POLICY = {"flow": "CoreFlowPolicy", "task": "CoreTaskPolicy"}
_LITERAL_DETAILS = ("cache_key", "refresh_cache", "pause_key", "pause_reschedule", "deferred", "retriable",
                    "untrackable_result")
_OFFSET_DETAILS = {
    "scheduled_time_offset_s": "scheduled_time",
    "cache_expiration_offset_s": "cache_expiration",
    "pause_timeout_offset_s": "pause_timeout",
}
_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SYMBOL_DETAILS = {"transition_id": "transition_id", "task_parameters_id": "task_parameters_id"}


def _value(x: Any) -> Any:
    """Enum members (StateType, SetStateStatus) as their plain string values."""
    return getattr(x, "value", x)


class Replayer:
    """Replays one scenario. Construct, then call `run()` once. O(steps · rows)."""

    def __init__(self, case: dict, policies: dict | None = None) -> None:
        if policies is None:
            from ..orchestration import POLICIES as policies  # noqa: N811  (imported lazily: built by another module)
        self.case = case
        self.policies = policies
        self.kind = case["kind"]
        self.clock = ManualClock(START)
        self.engine = Engine(clock=self.clock)
        self.labels: dict[str, str] = {}          # str(uuid) -> label
        self.ids: dict[str, Any] = {}             # run / holder label -> id
        self.symbols: dict[str, uuid.UUID] = {}   # "T1"/"P1" -> uuid
        self.literal_pause_keys: set[str] = set()
        self.auto_pause_keys: dict[str, str] = {}
        self.other_states = 0
        self.t0: _dt.datetime = START
        setup = case["setup"]
        params = setup.get("orchestration_parameters")
        self.flow_params = dict(params) if params is not None else None
        self._collect_literal_pause_keys()

    # labels -----------------------------------------------------------------------------------
    def _label(self, value: Any) -> Any:
        if value is None:
            return None
        label = self.labels.get(str(value))
        return label if label is not None else f"<unlabelled {value}>"

    def _reason(self, reason: Any) -> Any:
        """A reason with every known UUID replaced by `<label>`, as the corpus records it."""
        if not isinstance(reason, str) or "-" not in reason:
            return reason
        return _UUID_TEXT.sub(lambda m: f"<{self.labels.get(m.group(0), m.group(0))}>", reason)

    def _pause_key(self, key: Any) -> Any:
        if key is None or key in self.literal_pause_keys:
            return key
        label = self.auto_pause_keys.get(key)
        if label is None:
            label = self.auto_pause_keys[key] = f"auto-pause-key-{len(self.auto_pause_keys) + 1}"
        return label

    def _collect_literal_pause_keys(self) -> None:
        case = self.case
        specs = [case["proposed"]] + [h["state"] for h in case["history"]]
        for spec in specs:
            key = (spec.get("state_details") or {}).get("pause_key")
            if key is not None:
                self.literal_pause_keys.add(key)
        flow_run = case["setup"].get("flow_run") or {}
        for key in (flow_run.get("empirical_policy") or {}).get("pause_keys") or ():
            self.literal_pause_keys.add(key)

    def _name(self, label: str, rec_id: Any) -> Any:
        self.ids[label] = rec_id
        self.labels[str(rec_id)] = label
        return rec_id

    # setup ------------------------------------------------------------------------------------
    def build_setup(self) -> None:
        """Create every object listed in `setup` (README §1.9 step 2)."""
        e = self.engine
        setup = self.case["setup"]
        flow = e.create_flow(name="oracle-flow")
        dep_spec = setup.get("deployment")
        deployment = None
        if dep_spec is not None:
            strategy = dep_spec.get("collision_strategy")
            deployment = e.create_deployment(
                flow.id, "oracle-deployment",
                concurrency_limit=dep_spec.get("concurrency_limit"),
                concurrency_options={"collision_strategy": strategy} if strategy is not None else None,
            )
            occupied = dep_spec.get("active_slots") or 0
            if occupied and deployment.concurrency_limit_id is not None:
                with e.transaction():
                    gcl = e._store.tables["concurrency_limit_v2"].rows[deployment.concurrency_limit_id]
                    e._store.touch("concurrency_limit_v2", gcl)
                    gcl.active_slots = occupied
            self._name("deployment", deployment.id)
        if setup.get("parent"):
            parent = e.create_flow_run(flow_id=flow.id)
            self._name("parent_flow_run", parent.id)
            ptask = e.create_task_run(flow_run_id=parent.id, task_key="subflow-parent-task", dynamic_key="0")
            self._name("parent_task_run", ptask.id)
        fr_spec = setup.get("flow_run")
        if fr_spec is not None:
            fields: dict[str, Any] = {
                "flow_id": flow.id,
                "empirical_policy": copy.deepcopy(fr_spec.get("empirical_policy") or {}),
                "tags": list(fr_spec.get("tags") or []),
                "infrastructure_pid": fr_spec.get("infrastructure_pid"),
                "run_count": fr_spec.get("run_count") or 0,
            }
            if fr_spec.get("deployment"):
                fields["deployment_id"] = deployment.id if deployment is not None else None
            if fr_spec.get("parent_task_run"):
                fields["parent_task_run_id"] = self.ids["parent_task_run"]
            self._name("flow_run", e.create_flow_run(**fields).id)
        tr_spec = setup.get("task_run")
        if tr_spec is not None:
            now = self.clock.now()
            exp = tr_spec.get("cache_expiration_offset_s")
            task = e.create_task_run(
                flow_run_id=self.ids["flow_run"] if tr_spec.get("flow_run") else None,
                task_key=tr_spec["task_key"],
                dynamic_key=tr_spec["dynamic_key"],
                tags=list(tr_spec.get("tags") or []),
                empirical_policy=copy.deepcopy(tr_spec.get("empirical_policy") or {}),
                run_count=tr_spec.get("run_count") or 0,
                flow_run_run_count=tr_spec.get("flow_run_run_count") or 0,
                cache_key=tr_spec.get("cache_key"),
                cache_expiration=None if exp is None else now + _dt.timedelta(seconds=exp),
            )
            self._name("task_run", task.id)
        for other in setup.get("other_task_runs") or ():
            ref = other["ref"]
            run = e.create_task_run(
                flow_run_id=self.ids["flow_run"] if other.get("flow_run") else None,
                task_key=other["task_key"], dynamic_key=ref,
            )
            self._name(ref, run.id)
        for limit in setup.get("task_concurrency_limits") or ():
            slots = [str(self._slot_holder(lbl)) for lbl in limit.get("active_slots") or ()]
            e.create_concurrency_limit(limit["tag"], limit["limit"])
            # Slots as given, repeats included: Prefect's way in (its create cannot
            # store slots), where creating with slots would drop a repeat.
            e.reset_concurrency_limit_by_tag(limit["tag"], slot_override=slots)

    def _slot_holder(self, label: str) -> Any:
        if label not in self.ids:
            # A holder is some task run id that does not exist in the store.
            self._name(label, uuid.uuid4())
        return self.ids[label]

    # states -------------------------------------------------------------------------------------
    def build_state(self, spec: dict, now: _dt.datetime) -> State:
        """A State from a corpus state spec; offsets count from `now`."""
        details_spec = spec.get("state_details") or {}
        details = StateDetails()
        for key in _LITERAL_DETAILS:
            if key in details_spec:
                setattr(details, key, details_spec[key])
        for key, attr in _OFFSET_DETAILS.items():
            if details_spec.get(key) is not None:
                setattr(details, attr, now + _dt.timedelta(seconds=details_spec[key]))
        for key, attr in _SYMBOL_DETAILS.items():
            symbol = details_spec.get(key)
            if symbol is not None:
                ident = self.symbols.get(symbol)
                if ident is None:
                    ident = self.symbols[symbol] = uuid.uuid4()
                    self.labels[str(ident)] = f"{key}:{symbol}"
                setattr(details, attr, ident)
        if spec["type"] == "SCHEDULED" and details.scheduled_time is None:
            details.scheduled_time = now  # the schema default Prefect's client applies
        return State(
            type=spec["type"], name=spec.get("name"), timestamp=now, message=spec.get("message"),
            data=copy.deepcopy(spec.get("data")), state_details=details,
        )

    def _kind_of(self, target: str) -> str:
        return "flow" if target in _FLOW_TARGETS else "task"

    def submit(self, target: str, spec: dict, force: bool, policy_name: str | None) -> tuple[Any, State]:
        """Advance the clock one step and propose `spec` to `target`. Raises what the engine raises."""
        kind = self._kind_of(target)
        if policy_name is None:
            policy_name = self.case["policy"] if kind == self.kind else _DEFAULT_POLICY[kind]
        now = self.clock.advance(STEP)
        state = self.build_state(spec, now)
        policy = self.policies[policy_name]
        run_id = self.ids[target]
        if kind == "flow":
            params = dict(self.flow_params) if self.flow_params is not None else None
            result = self.engine.set_flow_run_state(run_id, state, force=force, flow_policy=policy,
                                                    orchestration_parameters=params)
        else:
            result = self.engine.set_task_run_state(run_id, state, force=force, task_policy=policy,
                                                    orchestration_parameters={})
        return result, state

    def label_new_states(self, target: str, label: str) -> int:
        """Label state rows not seen before: the target's as `label`, others as state:other-N.
        Returns how many rows were new for the target. O(state rows)."""
        target_id = self.ids.get(target)
        fresh = 0
        tables = self.engine._store.tables
        for kind, attr in (("flow_run_state", "flow_run_id"), ("task_run_state", "task_run_id")):
            for sid, row in tables[kind].rows.items():
                key = str(sid)
                if key in self.labels:
                    continue
                if getattr(row, attr) == target_id:
                    self.labels[key] = label
                    fresh += 1
                else:
                    self.other_states += 1
                    self.labels[key] = f"state:other-{self.other_states}"
        return fresh

    # read-back ----------------------------------------------------------------------------------
    def _offset(self, when: _dt.datetime | None) -> float | None:
        return None if when is None else (when - self.t0).total_seconds()

    def state_brief(self, state: State | None) -> dict | None:
        if state is None:
            return None
        return {"id": self._label(state.id), "type": _value(state.type), "name": state.name}

    def state_summary(self, state: State | None) -> dict | None:
        if state is None:
            return None
        d = state.state_details
        off = self._offset
        return {
            "id": self._label(state.id),
            "type": _value(state.type),
            "name": state.name,
            "message": state.message,
            "data": state.data,
            "state_details": {
                "flow_run_id": self._label(d.flow_run_id),
                "task_run_id": self._label(d.task_run_id),
                "child_flow_run_id": self._label(d.child_flow_run_id),
                "scheduled_time_offset_s": off(d.scheduled_time),
                "cache_key": d.cache_key,
                "cache_expiration_offset_s": off(d.cache_expiration),
                "refresh_cache": d.refresh_cache,
                "pause_key": self._pause_key(d.pause_key),
                "pause_timeout_offset_s": off(d.pause_timeout),
                "pause_reschedule": d.pause_reschedule,
                "deferred": d.deferred,
                "untrackable_result": d.untrackable_result,
                "retriable": d.retriable,
                "transition_id": self._label(d.transition_id),
                "task_parameters_id": self._label(d.task_parameters_id),
            },
        }

    def _policy_dump(self, policy: Any) -> dict:
        dump = {f.name: getattr(policy, f.name) for f in attrs.fields(type(policy))}
        if "pause_keys" in dump and dump["pause_keys"] is not None:
            dump["pause_keys"] = sorted(self._pause_key(k) for k in dump["pause_keys"])
        if isinstance(dump.get("retry_delay"), list):
            dump["retry_delay"] = list(dump["retry_delay"])
        return dump

    def run_summary(self, run: Any) -> dict:
        off = self._offset
        out = {
            "state": self._label(run.state_id),
            "state_type": _value(run.state_type),
            "state_name": run.state_name,
            "run_count": run.run_count,
            "start_time_set": run.start_time is not None,
            "end_time_set": run.end_time is not None,
            "total_run_time_positive": run.total_run_time > _dt.timedelta(0),
            "expected_start_time_set": run.expected_start_time is not None,
            "expected_start_time_offset_s": off(run.expected_start_time),
            "next_scheduled_start_time_offset_s": off(run.next_scheduled_start_time),
            "empirical_policy": self._policy_dump(run.empirical_policy),
        }
        if self.kind == "flow":
            out["infrastructure_pid"] = run.infrastructure_pid
        else:
            out["flow_run_run_count"] = run.flow_run_run_count
        return out

    def side_effects(self) -> dict:
        e = self.engine
        tables = e._store.tables
        out: dict[str, Any] = {}
        if self.kind == "task" and "flow_run" in self.ids:
            fr = tables["flow_run"].rows[self.ids["flow_run"]]
            out["flow_run"] = {"state_type": _value(fr.state_type), "state_name": fr.state_name,
                               "run_count": fr.run_count}
        if "parent_task_run" in self.ids:
            ptr = tables["task_run"].rows.get(self.ids["parent_task_run"])
            if ptr is not None:
                child = ptr.state.state_details.child_flow_run_id if ptr.state is not None else None
                out["parent_task_run"] = {
                    "state_type": _value(ptr.state_type), "state_name": ptr.state_name,
                    "run_count": ptr.run_count, "start_time_set": ptr.start_time is not None,
                    "end_time_set": ptr.end_time is not None, "child_flow_run_id": self._label(child),
                    "state_rows": tables["task_run_state"].by_name["run_id"].count(ptr.id),
                }
        limits = tables["concurrency_limit"].rows.values()
        if limits:
            out["task_concurrency_limits"] = {
                lim.tag: {"limit": lim.concurrency_limit,
                          "active_slots": sorted(self._label(s) for s in lim.active_slots)}
                for lim in limits
            }
        dep_id = self.ids.get("deployment")
        if dep_id is not None:
            dep = tables["deployment"].rows.get(dep_id)
            gcl = tables["concurrency_limit_v2"].rows.get(dep.concurrency_limit_id) if dep else None
            if gcl is not None:
                out["deployment_concurrency_limit"] = {"limit": gcl.limit, "active_slots": gcl.active_slots}
        if self.kind == "task":
            rows = sorted(tables["task_run_state_cache"].rows.values(), key=lambda r: r.created)
            out["task_run_state_cache"] = [
                {"cache_key": r.cache_key, "state": self._label(r.task_run_state_id),
                 "cache_expiration_offset_s": self._offset(r.cache_expiration)}
                for r in rows
            ]
            tr_spec = self.case["setup"]["task_run"]
            queues = e.task_queues.get(tr_spec["task_key"]) or {}
            out["task_queue"] = {"scheduled": len(queues.get("scheduled") or ()),
                                 "retry": len(queues.get("retry") or ())}
        return out

    def _snapshot(self, run: Any) -> tuple:
        return (run.state_id, run.state_type, run.state_name, run.run_count, run.start_time, run.end_time,
                run.total_run_time, run.expected_start_time, run.next_scheduled_start_time,
                repr(run.empirical_policy))

    # the scenario -------------------------------------------------------------------------------
    def run(self) -> dict:
        """Replay the scenario; returns {"history": [...], "outcome": {...}} in corpus shape.
        Exceptions from setup propagate (the harness reports them)."""
        case = self.case
        self.build_setup()
        history = []
        for i, step in enumerate(case["history"]):
            target = step["target"]
            try:
                result, _ = self.submit(target, step["state"], step["via"] == "force", step.get("policy"))
            except Exception as exc:  # a failed step leaves the engine unchanged; carry on
                history.append({"status": "ERROR", "error_type": type(exc).__name__, "error": str(exc),
                                "documented": isinstance(exc, RunstateError)})
                continue
            self.label_new_states(target, f"state:h{i}")
            details = getattr(result, "details", None)
            history.append({
                "status": _value(result.status),
                "reason": self._reason(getattr(details, "reason", None)),
                "state": self.state_brief(result.state),
            })
        target = self.kind + "_run"
        table = self.engine._store.tables[target].rows
        run = table[self.ids[target]]
        before = self._snapshot(run)
        self.t0 = self.clock.now() + STEP  # the instant the proposal is submitted
        outcome: dict[str, Any]
        try:
            result, _ = self.submit(target, case["proposed"], bool(case.get("force")), case["policy"])
        except Exception as exc:
            self.label_new_states(target, "state:new")
            outcome = {"status": "ERROR", "details": None, "error": {"type": type(exc).__name__, "message": str(exc)},
                       "state": None, "state_is_new": False, "new_state_rows": 0,
                       "unchanged": self._snapshot(run) == before, "documented": isinstance(exc, RunstateError)}
        else:
            fresh = self.label_new_states(target, "state:new")
            details = result.details
            det = {"type": _value(getattr(details, "type", None)), "reason": self._reason(getattr(details, "reason", None))}
            if det["type"] == "wait_details":
                det["delay_seconds"] = getattr(details, "delay_seconds", None)
            summary = self.state_summary(result.state)
            outcome = {"status": _value(result.status), "details": det, "error": None, "state": summary,
                       "state_is_new": summary is not None and summary["id"] == "state:new",
                       "new_state_rows": fresh}
        outcome["run"] = self.run_summary(run)
        outcome["side_effects"] = self.side_effects()
        return {"history": history, "outcome": outcome}


def replay(case: dict, policies: dict | None = None) -> dict:
    """Replay one scenario on a fresh engine; see `Replayer.run`."""
    return Replayer(case, policies).run()
