"""Write mutated orchestration scenarios for differential testing (conformance README §1).

    python orchestration_variants.py CORPUS.jsonl SEED N OUT.jsonl

Takes the recorded scenarios of CORPUS and writes N variants to OUT, each a recorded
scenario with one to six mutations that stay inside the corpus format: another
proposed state type/name (incl. AwaitingRetry, Late, Retrying, Cached, Resuming,
Suspended, AwaitingConcurrencySlot, custom names), other state_details keys, data,
message, policy, force, setup tweaks (empirical policies, run counts, infrastructure
pid, deployment concurrency, parent, tag concurrency limits, api-version), and history
edits (truncation, extra steps, a changed from-state, the proposal moved into the
history and a new one proposed, explicit step policies, enclosing-flow and other-task
steps, a cache producer, flow retries of older clients, a repeated transition id).
Variants carry no `outcome` and no history `result`: answer them with
`prefect_orchestration.py`, then replay the answers with `python -m engine.conformance`.

Ids are `variant.<kind>.<group>.<seed>-<n>`; `kind` and `group` are the base
scenario's, `description` names the base scenario and the mutations. Groups are
stratified: each kind+group gets a share of N proportional to the square root of its
size in CORPUS (at least one), so small groups are explored more than their share.
Output is deterministic for a given CORPUS, SEED and N. Standard library only; imports
neither the engine nor Prefect.
"""
from __future__ import annotations

import collections
import copy
import json
import math
import random
import sys

FLOW_POLICIES = ("CoreFlowPolicy", "CoreFlowPolicyWithoutDeploymentConcurrency", "MinimalFlowPolicy",
                 "MarkLateRunsPolicy")
TASK_POLICIES = ("CoreTaskPolicy", "ClientSideTaskOrchestrationPolicy", "BackgroundTaskPolicy",
                 "MinimalTaskPolicy")
POLICY_WEIGHTS = {"CoreFlowPolicy": 4, "CoreFlowPolicyWithoutDeploymentConcurrency": 1, "MinimalFlowPolicy": 1,
                  "MarkLateRunsPolicy": 1, "CoreTaskPolicy": 4, "ClientSideTaskOrchestrationPolicy": 2,
                  "BackgroundTaskPolicy": 2, "MinimalTaskPolicy": 1}

TYPES = ("SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING")
# (type, name) pairs beyond the default names; names that rules look at, on their usual
# type and on others, plus custom names.
NAMED = (("SCHEDULED", "AwaitingRetry"), ("SCHEDULED", "Late"), ("SCHEDULED", "Resuming"),
         ("SCHEDULED", "AwaitingConcurrencySlot"), ("PAUSED", "Suspended"), ("PAUSED", "Paused"),
         ("PAUSED", "NotReady"), ("RUNNING", "Retrying"), ("RUNNING", "Rerunning"), ("RUNNING", "Suspended"),
         ("COMPLETED", "Cached"), ("FAILED", "TimedOut"), ("CANCELLED", "Cancelled"), ("CRASHED", "Crashed"),
         ("PENDING", "Late"), ("RUNNING", "AwaitingRetry"), ("PAUSED", "Resuming"), ("SCHEDULED", "Suspended"),
         ("CANCELLING", "Resuming"), ("SCHEDULED", "Retrying"), ("RUNNING", "custom-running"),
         ("SCHEDULED", "custom"), ("COMPLETED", "Done"), ("PENDING", "AwaitingRetry"), ("FAILED", "Late"),
         ("CANCELLED", "Suspended"), ("PAUSED", "Late"))

DETAIL_VALUES = {
    "scheduled_time_offset_s": (-120, -60, -30, -10, -5, 0, 10, 30, 60, 3600),
    "cache_key": ("ck", "ck-1", "other-key", "self-key"),
    "cache_expiration_offset_s": (3600, -60, 600),
    "refresh_cache": (True, False),
    "pause_key": ("k0", "k1", "k2", "p1", "s1", "k9"),
    "pause_reschedule": (True, False),
    "pause_timeout_offset_s": (3600, -60, 600),
    "deferred": (True, False),
    "retriable": (True, False),
    "untrackable_result": (True, False),
    "transition_id": ("T1", "T2"),
    "task_parameters_id": ("P1", "P2"),
}
DETAIL_WEIGHTS = {"scheduled_time_offset_s": 4, "cache_key": 3, "cache_expiration_offset_s": 2, "refresh_cache": 2,
                  "pause_key": 3, "pause_reschedule": 3, "pause_timeout_offset_s": 3, "deferred": 3,
                  "retriable": 2, "untrackable_result": 1, "transition_id": 2, "task_parameters_id": 2}

MESSAGES = (None, "boom", "flow failed", "task failed", "infrastructure crashed", "All states completed.",
            "attempt 2", "x")
UNPERSISTED = {"type": "unpersisted"}
PERSISTED_FALLBACK = {"storage_key": "results/oracle-result", "expiration": None, "serializer": {"type": "json"},
                      "prefect_version": "3.1.0", "storage_block_id": None}
API_VERSIONS = ("0.8.4", "0.8.3", "0.8.2", None)
FLOW_RETRIES = (None, 0, 1, 2, 3)
FLOW_DELAYS = (None, 0, 2, 5, 30)
TASK_DELAYS = (None, 0, 3, 10, [1, 3], [1, 2, 4], [7], [0, 5], None, 0, 3, [1, 3], [])
PAUSE_KEY_SETS = ([], ["k0"], ["k1"], ["k0", "k9"], ["k1", "k3"])
HOLDERS = ("task_run", "holder-1", "holder-2")


# --- helpers -------------------------------------------------------------------------------

def spec(type_: str, name=None, details=None, data=None, message=None) -> dict:
    return {"type": type_, "name": name, "message": message, "data": data, "state_details": dict(details or {})}


def is_flow_target(target: str) -> bool:
    return target in ("flow_run", "parent_flow_run")


def weighted(rng: random.Random, weights: dict):
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


class Pools:
    """Value sets seen in the corpus, used to keep mutations realistic."""

    def __init__(self, cases: list[dict]):
        self.flow_specs, self.task_specs = [], []
        self.persisted = []
        self.deployments = []
        self.flow_policies, self.task_policies = [], []
        self.tag_limits = []
        self.step_specs = {"flow": [], "task": []}  # states applied through a policy in histories
        seen = set()
        for case in cases:
            specs = [(case["kind"] + "_run", case["proposed"])] + [(h["target"], h["state"]) for h in case["history"]]
            for target, sp in specs:
                key = (is_flow_target(target), json.dumps(sp, sort_keys=True))
                if key in seen or target not in ("flow_run", "task_run"):
                    continue
                seen.add(key)
                (self.flow_specs if target == "flow_run" else self.task_specs).append(sp)
                data = sp.get("data")
                if isinstance(data, dict) and data.get("type") != "unpersisted" and data not in self.persisted:
                    self.persisted.append(data)
            for h in case["history"]:
                if h["via"] == "policy" and h["target"] in ("flow_run", "task_run"):
                    self.step_specs["flow" if h["target"] == "flow_run" else "task"].append(h["state"])
            setup = case["setup"]
            for pool, value in ((self.deployments, setup.get("deployment")),
                                (self.flow_policies, (setup.get("flow_run") or {}).get("empirical_policy")),
                                (self.task_policies, (setup.get("task_run") or {}).get("empirical_policy")),
                                (self.tag_limits, setup.get("task_concurrency_limits") or None)):
                if value is not None and value not in pool:
                    pool.append(value)
        self.persisted = self.persisted or [PERSISTED_FALLBACK]

    def data(self, rng: random.Random):
        r = rng.random()
        if r < 0.4:
            return None
        if r < 0.6:
            return dict(UNPERSISTED)
        return copy.deepcopy(rng.choice(self.persisted))


# --- mutations: each returns a short tag, or None when it does not apply ---------------------

def random_details(rng: random.Random, type_: str, kind: str) -> dict:
    """Plausible state_details for a state of `type_`."""
    d = {}
    if type_ == "SCHEDULED":
        if rng.random() < 0.8:
            d["scheduled_time_offset_s"] = rng.choice(DETAIL_VALUES["scheduled_time_offset_s"])
        if kind == "task" and rng.random() < 0.3:
            d["deferred"] = True
            if rng.random() < 0.6:
                d["task_parameters_id"] = "P1"
    elif type_ == "PAUSED":
        if rng.random() < 0.7:
            d["pause_timeout_offset_s"] = rng.choice(DETAIL_VALUES["pause_timeout_offset_s"])
        if rng.random() < 0.6:
            d["pause_key"] = rng.choice(DETAIL_VALUES["pause_key"])
        if rng.random() < 0.4:
            d["pause_reschedule"] = rng.random() < 0.8
    elif type_ == "COMPLETED" and kind == "task" and rng.random() < 0.4:
        d["cache_key"] = rng.choice(DETAIL_VALUES["cache_key"])
        if rng.random() < 0.5:
            d["cache_expiration_offset_s"] = rng.choice(DETAIL_VALUES["cache_expiration_offset_s"])
    elif type_ == "RUNNING" and kind == "task" and rng.random() < 0.3:
        d["cache_key"] = rng.choice(DETAIL_VALUES["cache_key"])
        if rng.random() < 0.3:
            d["refresh_cache"] = rng.random() < 0.7
    elif type_ == "FAILED" and kind == "task" and rng.random() < 0.2:
        d["retriable"] = rng.random() < 0.3
    return d


def random_spec(rng: random.Random, kind: str, pools: Pools) -> dict:
    """A state spec: half from the corpus's own specs, half freshly combined."""
    pool = pools.flow_specs if kind == "flow" else pools.task_specs
    if pool and rng.random() < 0.5:
        return copy.deepcopy(rng.choice(pool))
    if rng.random() < 0.35:
        type_, name = rng.choice(NAMED)
    else:
        type_, name = rng.choice(TYPES), None
    data = pools.data(rng) if type_ in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None
    return spec(type_, name, random_details(rng, type_, kind), data,
                rng.choice(MESSAGES) if rng.random() < 0.3 else None)


def m_proposed_type(rng, case, pools):
    p = case["proposed"]
    if rng.random() < 0.5:
        type_, name = rng.choice(NAMED)
    else:
        type_, name = rng.choice(TYPES), None
        if type_ == p["type"] and p.get("name") is None:
            type_ = rng.choice([t for t in TYPES if t != type_])
    p["type"], p["name"] = type_, name
    if rng.random() < 0.6:
        keep = {k: v for k, v in (p.get("state_details") or {}).items()
                if k in ("deferred", "transition_id", "task_parameters_id") and rng.random() < 0.7}
        keep.update(random_details(rng, type_, case["kind"]))
        p["state_details"] = keep
    if type_ in ("COMPLETED", "FAILED") and rng.random() < 0.4:
        p["data"] = pools.data(rng)
    return f"proposed={type_}/{name}"


def m_proposed_name(rng, case, pools):
    p = case["proposed"]
    names = [n for t, n in NAMED if t == p["type"]] + [None, "custom"]
    if rng.random() < 0.3:
        names = [n for _, n in NAMED]
    p["name"] = rng.choice(names)
    return f"proposed name={p['name']}"


def m_proposed_details(rng, case, pools):
    d = case["proposed"].setdefault("state_details", {})
    tags = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        key = weighted(rng, DETAIL_WEIGHTS)
        if key in d and rng.random() < 0.35:
            del d[key]
            tags.append(f"-{key}")
        else:
            d[key] = rng.choice(DETAIL_VALUES[key])
            tags.append(f"{key}={d[key]}")
    return "proposed " + ",".join(tags)


def m_proposed_data(rng, case, pools):
    case["proposed"]["data"] = pools.data(rng)
    d = case["proposed"]["data"]
    return "proposed data=" + ("null" if d is None else d.get("type") or d.get("storage_key", "?"))


def m_proposed_message(rng, case, pools):
    case["proposed"]["message"] = rng.choice(MESSAGES)
    return "message"


def m_policy(rng, case, pools):
    names = FLOW_POLICIES if case["kind"] == "flow" else TASK_POLICIES
    others = [n for n in names if n != case["policy"]]
    case["policy"] = rng.choices(others, weights=[POLICY_WEIGHTS[n] for n in others])[0]
    return f"policy={case['policy']}"


def m_force(rng, case, pools):
    case["force"] = not case.get("force")
    return f"force={case['force']}"


def m_api_version(rng, case, pools):
    current = (case["setup"].get("orchestration_parameters") or {}).get("api-version", "0.8.4")
    version = rng.choice([v for v in API_VERSIONS if v != current])
    case["setup"]["orchestration_parameters"] = {"api-version": version}
    return f"api-version={version}"


def m_flow_policy(rng, case, pools):
    fr = case["setup"].get("flow_run")
    if fr is None:
        return None
    if pools.flow_policies and rng.random() < 0.3:
        fr["empirical_policy"] = copy.deepcopy(rng.choice(pools.flow_policies))
        return f"flow policy={json.dumps(fr['empirical_policy'], sort_keys=True)}"
    pol = dict(fr.get("empirical_policy") or {})
    for _ in range(rng.choice((1, 2))):
        field = rng.choice(("retries", "retries", "retry_delay", "pause_keys", "resuming", "deprecated"))
        if field == "retries":
            pol["retries"] = rng.choice(FLOW_RETRIES)
        elif field == "retry_delay":
            pol["retry_delay"] = rng.choice(FLOW_DELAYS)
        elif field == "pause_keys":
            pol["pause_keys"] = list(rng.choice(PAUSE_KEY_SETS))
        elif field == "resuming":
            pol["resuming"] = not pol.get("resuming", False)
        else:
            pol.pop("retries", None)
            pol.pop("retry_delay", None)
            pol["max_retries"] = rng.choice((0, 1, 2))
            pol["retry_delay_seconds"] = rng.choice((0, 2, 5))
    fr["empirical_policy"] = pol
    return f"flow policy={json.dumps(pol, sort_keys=True)}"


def m_flow_run_count(rng, case, pools):
    fr = case["setup"].get("flow_run")
    if fr is None:
        return None
    fr["run_count"] = rng.choice([n for n in (0, 1, 2, 3) if n != fr.get("run_count", 0)])
    return f"flow run_count={fr['run_count']}"


def m_infra_pid(rng, case, pools):
    fr = case["setup"].get("flow_run")
    if fr is None:
        return None
    fr["infrastructure_pid"] = None if fr.get("infrastructure_pid") else "4242"
    return f"infrastructure_pid={fr['infrastructure_pid']}"


def m_deployment(rng, case, pools):
    setup = case["setup"]
    fr = setup.get("flow_run")
    if fr is None:
        return None
    r = rng.random()
    if r < 0.2 and setup.get("deployment") is not None:
        setup["deployment"] = None
        fr["deployment"] = False
        return "no deployment"
    if r < 0.3 and setup.get("deployment") is not None and fr.get("deployment"):
        fr["deployment"] = False
        return "deployment not linked"
    if rng.random() < 0.3 and pools.deployments:
        dep = copy.deepcopy(rng.choice(pools.deployments))
    else:
        limit = rng.choice((None, 0, 1, 1, 2, 2, 3))
        slots = 0 if limit is None else rng.choice(range(0, limit + 2))
        if limit is not None and slots > limit and rng.random() < 0.7:
            slots = limit
        dep = {"concurrency_limit": limit, "collision_strategy": rng.choice((None, "ENQUEUE", "CANCEL_NEW")),
               "active_slots": slots}
    setup["deployment"] = dep
    fr["deployment"] = True
    return f"deployment={json.dumps(dep, sort_keys=True)}"


def m_parent(rng, case, pools):
    setup = case["setup"]
    if case["kind"] != "flow":
        return None
    fr = setup["flow_run"]
    if setup.get("parent"):
        if rng.random() < 0.5:
            setup["parent"] = None
            return "no parent"
        fr["parent_task_run"] = not fr.get("parent_task_run")
        return f"parent_task_run={fr['parent_task_run']}"
    setup["parent"] = {"present": True}
    fr["parent_task_run"] = True
    if rng.random() < 0.7:
        parent_state = spec(rng.choice(("RUNNING", "RUNNING", "PENDING", "COMPLETED")))
        via = "force" if rng.random() < 0.7 else "policy"
        case["history"][:0] = [
            {"target": "parent_flow_run", "via": via, "policy": None, "state": spec("RUNNING")},
            {"target": "parent_task_run", "via": via, "policy": None, "state": parent_state}]
    return "subflow"


def m_task_policy(rng, case, pools):
    tr = case["setup"].get("task_run")
    if tr is None:
        return None
    if pools.task_policies and rng.random() < 0.3:
        pol = copy.deepcopy(rng.choice(pools.task_policies))
        pol.pop("retry_jitter_factor", None)
    else:
        pol = dict(tr.get("empirical_policy") or {})
        field = rng.choice(("retries", "retries", "retry_delay", "retry_delay", "deprecated", "zero_jitter"))
        if field == "retries":
            pol["retries"] = rng.choice(FLOW_RETRIES)
        elif field == "retry_delay":
            pol["retry_delay"] = copy.deepcopy(rng.choice(TASK_DELAYS))
        elif field == "zero_jitter":
            # jitter on a zero base delay: deterministic (a random draw needs tolerances)
            pol["retries"] = rng.choice((1, 2))
            pol["retry_delay"] = rng.choice((0, [0], [0, 3]))
            pol["retry_jitter_factor"] = rng.choice((0.5, 1.0))
        else:
            pol.pop("retries", None)
            pol.pop("retry_delay", None)
            pol["max_retries"] = rng.choice((0, 1, 2))
            pol["retry_delay_seconds"] = rng.choice((0, 3))
    tr["empirical_policy"] = pol
    return f"task policy={json.dumps(pol, sort_keys=True)}"


def m_task_counts(rng, case, pools):
    tr = case["setup"].get("task_run")
    if tr is None:
        return None
    if rng.random() < 0.6:
        tr["run_count"] = rng.choice([n for n in (0, 1, 2, 3) if n != tr.get("run_count", 0)])
        return f"task run_count={tr['run_count']}"
    tr["flow_run_run_count"] = rng.choice([n for n in (0, 1, 2) if n != tr.get("flow_run_run_count", 0)])
    return f"task flow_run_run_count={tr['flow_run_run_count']}"


def m_tag_limits(rng, case, pools):
    tr = case["setup"].get("task_run")
    if tr is None:
        return None
    if pools.tag_limits and rng.random() < 0.3:
        limits = copy.deepcopy(rng.choice(pools.tag_limits))
    else:
        limits = []
        for tag in rng.sample(("t1", "t2", "t3"), rng.choice((1, 1, 2, 3))):
            limit = rng.choice((0, 1, 1, 2, 3))
            n_holders = rng.choice(range(0, min(limit, 3) + 2))
            holders = rng.sample(HOLDERS, min(n_holders, len(HOLDERS)))
            if holders and rng.random() < 0.05:
                holders.append(holders[0])  # a repeated holder
            limits.append({"tag": tag, "limit": limit, "active_slots": holders})
        if rng.random() < 0.5:
            limits.sort(key=lambda lim: lim["tag"])
    case["setup"]["task_concurrency_limits"] = limits
    tags = sorted({lim["tag"] for lim in limits if rng.random() < 0.85} | set(
        rng.sample(("t1", "t2", "free-tag"), rng.choice((0, 0, 1)))))
    tr["tags"] = tags
    return f"tags={tags} limits={json.dumps(limits)}"


def m_history_truncate(rng, case, pools):
    hist = case["history"]
    if not hist:
        return None
    if rng.random() < 0.6:
        k = rng.randint(1, min(3, len(hist)))
        del hist[-k:]
        return f"history -{k} last"
    i = rng.randrange(len(hist))
    del hist[i]
    return f"history -step{i}"


def m_history_extra(rng, case, pools):
    kind = case["kind"]
    target = kind + "_run"
    hist = case["history"]
    tags = []
    for _ in range(rng.choices((1, 2, 3), weights=(6, 3, 1))[0]):
        step = {"target": target, "via": "force" if rng.random() < 0.5 else "policy", "policy": None,
                "state": random_spec(rng, kind, pools)}
        if rng.random() < 0.7 or not hist:
            hist.append(step)
            where = "end"
        else:
            where = rng.randrange(len(hist))
            hist.insert(where, step)
        tags.append(f"+{step['via']} {step['state']['type']}/{step['state'].get('name')} at {where}")
    return "history " + ", ".join(tags)


LIFECYCLE = {
    "flow": (spec("SCHEDULED", details={"scheduled_time_offset_s": -60}), spec("PENDING"), spec("RUNNING"),
             spec("PAUSED", details={"pause_key": "k1", "pause_timeout_offset_s": 3600}),
             spec("PAUSED", "Suspended", {"pause_key": "s1", "pause_timeout_offset_s": 3600,
                                          "pause_reschedule": True}),
             spec("SCHEDULED", "Resuming", {"scheduled_time_offset_s": -1}), spec("RUNNING"),
             spec("FAILED", message="boom"), spec("COMPLETED", data=PERSISTED_FALLBACK), spec("CANCELLING"),
             spec("CANCELLED"), spec("CRASHED")),
    "task": (spec("SCHEDULED", details={"scheduled_time_offset_s": -60}), spec("PENDING"), spec("RUNNING"),
             spec("FAILED", message="task failed"), spec("SCHEDULED", "AwaitingRetry",
                                                         {"scheduled_time_offset_s": -1}),
             spec("RUNNING"), spec("COMPLETED", data=PERSISTED_FALLBACK),
             spec("COMPLETED", details={"cache_key": "ck"}, data=PERSISTED_FALLBACK), spec("CRASHED"),
             spec("CANCELLED")),
}


def m_lifecycle(rng, case, pools):
    """Append a few steps of a realistic lifecycle, through the scenario's policy."""
    kind = case["kind"]
    seq = LIFECYCLE[kind]
    start = rng.randrange(len(seq))
    steps = seq[start:start + rng.choice((1, 2, 3))]
    for st in steps:
        case["history"].append({"target": kind + "_run", "via": "force" if rng.random() < 0.2 else "policy",
                                "policy": None, "state": copy.deepcopy(st)})
    return "lifecycle " + ">".join(f"{st['type']}/{st['name']}" for st in steps)


def m_advance(rng, case, pools):
    """Walk on: the proposal becomes a history step (through the scenario's policy, or
    forced) and a new state, as the corpus's walks apply them, is proposed."""
    kind = case["kind"]
    via = "policy" if rng.random() < 0.85 else "force"
    case["history"].append({"target": kind + "_run", "via": via, "policy": None, "state": case["proposed"]})
    pool = pools.step_specs[kind]
    case["proposed"] = copy.deepcopy(rng.choice(pool)) if pool and rng.random() < 0.8 else random_spec(
        rng, kind, pools)
    return f"advance ({via}) then {case['proposed']['type']}/{case['proposed'].get('name')}"


def m_history_policy(rng, case, pools):
    """One history step goes through another (explicitly named) policy, or flips force/policy."""
    hist = case["history"]
    if not hist:
        return None
    i = rng.randrange(len(hist))
    step = hist[i]
    if rng.random() < 0.3:
        step["via"] = "policy" if step["via"] == "force" else "force"
        step["policy"] = None
        return f"step{i} via={step['via']}"
    names = FLOW_POLICIES if is_flow_target(step["target"]) else TASK_POLICIES
    step["via"] = "policy"
    step["policy"] = rng.choice(names)
    return f"step{i} ({step['target']}) policy={step['policy']}"


def m_other_task_steps(rng, case, pools):
    """Task scenario: other task runs of the flow run move too (same tag-free producers)."""
    setup = case["setup"]
    if case["kind"] != "task" or setup.get("flow_run") is None:
        return None
    others = setup.setdefault("other_task_runs", [])
    if not others or (len(others) == 1 and rng.random() < 0.3):
        n = len(others) + 1
        others.append({"ref": f"other-{n}", "task_key": "producer-task" if n == 1 else f"producer-task-{n}",
                       "flow_run": True})
    ref = rng.choice(others)["ref"]
    hist = case["history"]
    steps = [spec("RUNNING"), spec(rng.choice(("COMPLETED", "FAILED", "RUNNING", "PENDING", "CRASHED")),
                                   details={"cache_key": "ck"} if rng.random() < 0.4 else None,
                                   data=pools.data(rng))]
    pos = rng.randrange(len(hist) + 1)
    for st in reversed(steps):
        hist.insert(pos, {"target": ref, "via": rng.choice(("policy", "policy", "force")),
                          "policy": rng.choice(TASK_POLICIES), "state": st})
    return f"{ref} steps at {pos}"


def m_flow_retry_tasks(rng, case, pools):
    """Task scenario: the enclosing flow run fails through CoreFlowPolicy with retries left
    (older clients' flow retries also reset the flow's FAILED task runs)."""
    setup = case["setup"]
    if case["kind"] != "task" or setup.get("flow_run") is None or not setup["task_run"].get("flow_run"):
        return None
    fr = setup["flow_run"]
    pol = dict(fr.get("empirical_policy") or {})
    pol["retries"] = rng.choice((1, 2))
    pol["retry_delay"] = rng.choice((None, 0, 5))
    fr["empirical_policy"] = pol
    version = rng.choice(("0.8.2", "0.8.2", "0.8.3", "0.8.4", None))
    setup["orchestration_parameters"] = {"api-version": version}
    hist = case["history"]
    if not any(h["target"] == "flow_run" for h in hist):
        hist.insert(0, {"target": "flow_run", "via": "force", "policy": None, "state": spec("RUNNING")})
    if rng.random() < 0.7:
        hist.append({"target": "task_run", "via": "force", "policy": None,
                     "state": spec("FAILED", message="task failed", data=pools.data(rng))})
    hist.append({"target": "flow_run", "via": "force", "policy": None, "state": spec("RUNNING")})
    hist.append({"target": "flow_run", "via": "policy", "policy": "CoreFlowPolicy",
                 "state": spec("FAILED", message="flow failed")})
    if rng.random() < 0.4:
        hist.append({"target": "flow_run", "via": "policy", "policy": "CoreFlowPolicy", "state": spec("RUNNING")})
    return f"flow retry (api-version={version}, flow policy={json.dumps(pol, sort_keys=True)})"


def own_steps(case: dict) -> list[int]:
    """Indexes of the history steps applied to the run under test."""
    target = case["kind"] + "_run"
    return [i for i, h in enumerate(case["history"]) if h["target"] == target]


def m_history_from_state(rng, case, pools):
    """Change the last step on the run under test (i.e. the from-state)."""
    idx = own_steps(case)
    if not idx:
        return None
    st = case["history"][idx[-1]]["state"]
    r = rng.random()
    if r < 0.4:
        type_, name = rng.choice(NAMED)
        st["type"], st["name"] = type_, name
        st["state_details"] = random_details(rng, type_, case["kind"])
        tag = f"{type_}/{name}"
    elif r < 0.7:
        key = weighted(rng, DETAIL_WEIGHTS)
        st.setdefault("state_details", {})[key] = rng.choice(DETAIL_VALUES[key])
        tag = f"{key}={st['state_details'][key]}"
    elif r < 0.85:
        st["data"] = pools.data(rng)
        tag = "data"
    else:
        case["history"][idx[-1]]["via"] = "policy" if case["history"][idx[-1]]["via"] == "force" else "force"
        tag = "via=" + case["history"][idx[-1]]["via"]
    return f"from-state {tag}"


def m_enclosing_flow(rng, case, pools):
    if case["kind"] != "task" or case["setup"].get("flow_run") is None:
        return None
    choices = (spec("RUNNING"), spec("PAUSED", details={"pause_timeout_offset_s": 3600}),
               spec("PAUSED", "Suspended", {"pause_timeout_offset_s": 3600, "pause_reschedule": True}),
               spec("SCHEDULED", details={"scheduled_time_offset_s": -60}), spec("PENDING"),
               spec("COMPLETED"), spec("FAILED"), spec("CANCELLING"), spec("CRASHED"),
               spec("SCHEDULED", "AwaitingRetry", {"scheduled_time_offset_s": -1}))
    st = copy.deepcopy(rng.choice(choices))
    hist = case["history"]
    pos = len(hist) if rng.random() < 0.6 or not hist else rng.randrange(len(hist) + 1)
    via = "force" if rng.random() < 0.75 else "policy"
    hist.insert(pos, {"target": "flow_run", "via": via, "policy": None, "state": st})
    if rng.random() < 0.3:
        case["setup"]["flow_run"]["run_count"] = rng.choice((1, 2))
    return f"flow_run -> {st['type']}/{st['name']} via {via} at {pos}"


def m_cache_producer(rng, case, pools):
    setup = case["setup"]
    if case["kind"] != "task" or setup.get("flow_run") is None:
        return None
    key = rng.choice(("ck", "ck", "other-key"))
    if not setup.get("other_task_runs"):
        setup["other_task_runs"] = [{"ref": "other-1", "task_key": "producer-task", "flow_run": True}]
    details = {"cache_key": key}
    if rng.random() < 0.4:
        details["cache_expiration_offset_s"] = rng.choice((3600, -60))
    steps = [{"target": "flow_run", "via": "force", "policy": None, "state": spec("RUNNING")},
             {"target": "other-1", "via": "policy", "policy": "CoreTaskPolicy", "state": spec("RUNNING")},
             {"target": "other-1", "via": "force" if rng.random() < 0.2 else "policy", "policy": "CoreTaskPolicy",
              "state": spec("COMPLETED", None, details, pools.data(rng))}]
    case["history"][:0] = steps
    pd = case["proposed"].setdefault("state_details", {})
    if rng.random() < 0.8:
        pd["cache_key"] = "ck"
    if rng.random() < 0.2:
        pd["refresh_cache"] = rng.random() < 0.7
    return f"cache producer {json.dumps(details)}"


def m_duplicate_transition(rng, case, pools):
    idx = own_steps(case)
    if not idx:
        return None
    sym = rng.choice(("T1", "T2"))
    case["history"][idx[-1]]["state"].setdefault("state_details", {})["transition_id"] = sym
    other = sym if rng.random() < 0.8 else ("T2" if sym == "T1" else "T1")
    case["proposed"].setdefault("state_details", {})["transition_id"] = other
    return f"transition ids {sym}/{other}"


def m_deferred(rng, case, pools):
    if case["kind"] != "task":
        return None
    d = case["proposed"].setdefault("state_details", {})
    d["deferred"] = not d.get("deferred", False)
    if d["deferred"] and rng.random() < 0.5:
        d["task_parameters_id"] = rng.choice(("P1", "P2"))
    return f"deferred={d['deferred']}"


MUTATIONS = {
    "flow": {m_proposed_type: 6, m_proposed_name: 3, m_proposed_details: 5, m_proposed_data: 2, m_proposed_message: 1,
             m_policy: 4, m_force: 2, m_api_version: 2, m_flow_policy: 4, m_flow_run_count: 2, m_infra_pid: 2,
             m_deployment: 4, m_parent: 2, m_history_truncate: 3, m_history_extra: 4, m_history_from_state: 5,
             m_duplicate_transition: 1, m_lifecycle: 3, m_advance: 4, m_history_policy: 2},
    "task": {m_proposed_type: 6, m_proposed_name: 3, m_proposed_details: 5, m_proposed_data: 2, m_proposed_message: 1,
             m_policy: 4, m_force: 2, m_api_version: 1, m_flow_policy: 1, m_flow_run_count: 2, m_task_policy: 3,
             m_task_counts: 3, m_tag_limits: 4, m_history_truncate: 3, m_history_extra: 4, m_history_from_state: 5,
             m_enclosing_flow: 3, m_cache_producer: 2, m_duplicate_transition: 1, m_deferred: 2, m_lifecycle: 3,
             m_flow_retry_tasks: 1, m_advance: 4, m_history_policy: 2, m_other_task_steps: 1},
}


# --- consistency ------------------------------------------------------------------------------

def normalize(case: dict) -> None:
    """Keep the mutated scenario inside the corpus format (labels that exist, flags that agree)."""
    setup, kind = case["setup"], case["kind"]
    if case["policy"] not in (FLOW_POLICIES if kind == "flow" else TASK_POLICIES):
        case["policy"] = "CoreFlowPolicy" if kind == "flow" else "CoreTaskPolicy"
    case["force"] = bool(case.get("force"))
    fr = setup.get("flow_run")
    if kind == "flow":
        setup["task_run"] = None
        setup["other_task_runs"] = []
        setup["task_concurrency_limits"] = []
    if fr is not None:
        if fr.get("deployment") and setup.get("deployment") is None:
            fr["deployment"] = False
        if not setup.get("parent"):
            setup["parent"] = None
            fr["parent_task_run"] = False
    else:
        setup["parent"] = None
    tr = setup.get("task_run")
    if tr is not None:
        if fr is None:
            tr["flow_run"] = False
            for other in setup.get("other_task_runs") or ():
                other["flow_run"] = False
        for lim in setup.get("task_concurrency_limits") or ():
            lim["active_slots"] = [h for h in lim.get("active_slots") or () if h in HOLDERS]
    labels = {"flow_run"} if fr is not None else set()
    if tr is not None:
        labels.add("task_run")
    if setup.get("parent"):
        labels |= {"parent_flow_run", "parent_task_run"}
    labels |= {o["ref"] for o in setup.get("other_task_runs") or ()}
    history = []
    for step in case["history"]:
        if step["target"] not in labels:
            continue
        step.pop("result", None)
        step.setdefault("policy", None)
        history.append(step)
    case["history"] = history
    for sp in [case["proposed"]] + [h["state"] for h in history]:
        sp.setdefault("name", None)
        sp.setdefault("message", None)
        sp.setdefault("data", None)
        sp["state_details"] = {k: v for k, v in (sp.get("state_details") or {}).items() if v is not None}
    case.pop("outcome", None)


def allocate(groups: dict, n: int) -> dict:
    """Largest-remainder split of n over groups, proportional to sqrt(size), at least one each."""
    keys = sorted(groups)
    if n < len(keys):
        return {k: 1 for k in keys[:n]}
    weights = {k: math.sqrt(len(groups[k])) for k in keys}
    total = sum(weights.values())
    spare = n - len(keys)
    raw = {k: spare * weights[k] / total for k in keys}
    share = {k: 1 + int(raw[k]) for k in keys}
    left = n - sum(share.values())
    for k in sorted(keys, key=lambda k: (-(raw[k] - int(raw[k])), k))[:left]:
        share[k] += 1
    return share


def make_variant(rng: random.Random, base: dict, pools: Pools, seed: int, number: int) -> dict:
    case = copy.deepcopy(base)
    normalize(case)
    table = MUTATIONS[case["kind"]]
    wanted = rng.choices((1, 2, 3, 4, 5, 6), weights=(30, 30, 20, 10, 6, 4))[0]
    tags = []
    for _ in range(wanted * 3 + 10):
        if len(tags) >= wanted:
            break
        op = weighted(rng, table)
        tag = op(rng, case, pools)
        if tag:
            tags.append(tag)
        normalize(case)
    case["id"] = f"variant.{case['kind']}.{case['group']}.{seed}-{number:04d}"
    case["description"] = f"variant of {base['id']}: " + "; ".join(tags)
    return case


def generate(cases: list[dict], seed: int, n: int) -> list[dict]:
    rng = random.Random(seed)
    pools = Pools(cases)
    groups = collections.defaultdict(list)
    for case in cases:
        groups[(case["kind"], case["group"])].append(case)
    share = allocate(groups, n)
    plan = [key for key in sorted(share) for _ in range(share[key])]
    rng.shuffle(plan)
    out = []
    for number, key in enumerate(plan, 1):
        base = rng.choice(groups[key])
        out.append(make_variant(rng, base, pools, seed, number))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 4:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    corpus, seed, n, out_path = args[0], int(args[1]), int(args[2]), args[3]
    with open(corpus, encoding="utf-8") as fh:
        cases = [json.loads(line) for line in fh if line.strip()]
    variants = generate(cases, seed, n)
    with open(out_path, "w", encoding="utf-8") as fh:
        for case in variants:
            fh.write(json.dumps(case) + "\n")
    print(f"{len(variants)} variants written to {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
