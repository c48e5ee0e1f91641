"""A brute-force reference for flow-run and task-run queries, and random datasets.

It interprets Prefect's JSON filter shapes directly from the spec (filters.md,
operations.md §1.4/§2.4) over plain lists of records and shares no code with
engine/filters.py or engine/queries.py. Used by the query property tests and by the
other tests that compare index-backed answers with a scan (history, UI charts).
"""
from __future__ import annotations

import datetime as dt
import random
import uuid

from hypothesis import HealthCheck, settings, strategies as st

from engine import Engine, ManualClock, State, StateType

UTC = dt.timezone.utc
BASE = dt.datetime(2024, 11, 1, tzinfo=UTC)
NAMES = ["alpha", "Alpha-2", "beta", "BETA_x", "gamma", "a%b", "zeta"]
TAGS = ["etl", "prod", "dev", "ml"]
TYPES = [t.value for t in StateType]
STATE_NAMES = ["Scheduled", "Late", "Running", "Retrying", "Completed", "Cached", "Failed", "Pending",
               "AwaitingRetry", "Crashed", "Cancelled", "Paused", "Cancelling"]
TIMES = [BASE + dt.timedelta(hours=h) for h in range(0, 48, 6)]
FLOW_RUN_SORTS = ["ID_DESC", "START_TIME_ASC", "START_TIME_DESC", "EXPECTED_START_TIME_ASC",
                  "EXPECTED_START_TIME_DESC", "NAME_ASC", "NAME_DESC", "NEXT_SCHEDULED_START_TIME_ASC",
                  "END_TIME_DESC"]
TASK_RUN_SORTS = [s for s in FLOW_RUN_SORTS if not s.startswith("START_TIME")]


# world building ------------------------------------------------------------------------------

class World:
    def __init__(self, seed: int, n_flow_runs: int, n_task_runs: int) -> None:
        rnd = self.rnd = random.Random(seed)
        self.engine = e = Engine(clock=ManualClock(BASE, tick=dt.timedelta(seconds=1)))
        self.flows = [e.create_flow(name) for name in ("etl-daily", "ml_train", "Report")]
        e.create_flow("lonely")  # a flow without deployments or runs
        pools = [e.create_work_pool(name, type=t) for name, t in (("pool-a", "process"), ("pool-b", "docker"))]
        self.queues = [e.read_work_queue(p.default_queue_id) for p in pools]
        self.queues.append(e.create_work_queue(pools[0].id, "high"))
        self.deployments = [
            e.create_deployment(self.flows[i % 3].id, f"dep-{i}", tags=rnd.sample(TAGS, rnd.randint(0, 2)),
                                paused=rnd.random() < 0.3)
            for i in range(3)
        ]
        for _ in range(n_flow_runs):
            self.add_flow_run()
        for _ in range(n_task_runs):
            self.add_task_run()
        for _ in range(n_flow_runs // 5):  # subflows of random task runs
            self.add_flow_run(subflow=True)

    def random_state(self) -> State:
        rnd = self.rnd
        st_type = rnd.choice(TYPES)
        kw = {}
        if st_type == "SCHEDULED":
            kw["state_details"] = {"scheduled_time": rnd.choice(TIMES)}
        name = rnd.choice([n for n in STATE_NAMES if n.upper().startswith(st_type[:4])] or [None])
        return State(type=st_type, name=name, **kw)

    def add_flow_run(self, subflow: bool = False) -> None:
        rnd, e = self.rnd, self.engine
        fields = {"flow_id": rnd.choice(self.flows).id, "name": rnd.choice(NAMES),
                  "tags": rnd.sample(TAGS, rnd.randint(0, 3))}
        if rnd.random() < 0.6:
            dep = rnd.choice(self.deployments)
            fields["deployment_id"] = dep.id
            fields["flow_id"] = dep.flow_id
        if rnd.random() < 0.6:
            q = rnd.choice(self.queues)
            fields["work_queue_id"] = q.id
            fields["work_queue_name"] = q.name
        if rnd.random() < 0.5:
            fields["expected_start_time"] = rnd.choice(TIMES)
        if rnd.random() < 0.2:
            fields["idempotency_key"] = f"k{rnd.randint(0, 5)}"
        if subflow:
            tasks = list(e._store.tables["task_run"].rows.values())
            if not tasks:
                return
            fields["parent_task_run_id"] = rnd.choice(tasks).id
        state = self.random_state() if rnd.random() < 0.9 else None
        e.clock.advance(rnd.randint(1, 4000))
        e.create_flow_run(state=state, **fields)

    def add_task_run(self) -> None:
        rnd, e = self.rnd, self.engine
        runs = list(e._store.tables["flow_run"].rows.values())
        flow_run_id = rnd.choice(runs).id if runs and rnd.random() < 0.9 else None
        state = self.random_state() if rnd.random() < 0.85 else None
        e.clock.advance(rnd.randint(1, 4000))
        e.create_task_run(flow_run_id=flow_run_id, task_key=rnd.choice(["extract", "load"]),
                          dynamic_key=str(uuid.uuid4()), name=rnd.choice(NAMES),
                          tags=rnd.sample(TAGS, rnd.randint(0, 2)), state=state)

    def mutate(self) -> None:
        """Updates, forced state changes, deletes."""
        rnd, e = self.rnd, self.engine
        runs = list(e._store.tables["flow_run"].rows.values())
        tasks = list(e._store.tables["task_run"].rows.values())
        for _ in range(rnd.randint(1, 6)):
            op = rnd.randrange(6)
            e.clock.advance(rnd.randint(1, 4000))
            if op == 0 and runs:
                e.update_flow_run(rnd.choice(runs).id, tags=rnd.sample(TAGS, rnd.randint(0, 3)),
                                  name=rnd.choice(NAMES))
            elif op == 1 and runs:
                e.set_flow_run_state(rnd.choice(runs).id, self.random_state(), force=True)
            elif op == 2 and tasks:
                e.set_task_run_state(rnd.choice(tasks).id, self.random_state(), force=True)
            elif op == 3 and runs:
                victim = runs.pop(rnd.randrange(len(runs)))
                e.delete_flow_run(victim.id)
                tasks = list(e._store.tables["task_run"].rows.values())
            elif op == 4 and tasks:
                e.delete_task_run(tasks.pop(rnd.randrange(len(tasks))).id)
            else:
                self.add_flow_run()
                self.add_task_run()
                runs = list(e._store.tables["flow_run"].rows.values())
                tasks = list(e._store.tables["task_run"].rows.values())


# reference evaluation (straight from the spec) ------------------------------------------------

def _norm(v):
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, StateType):
        return v.value
    return v


def _arg(op, arg):
    if op in ("before_", "after_"):
        return dt.datetime.fromisoformat(arg)
    return arg


def _crit(value, op, arg):
    value, arg = _norm(value), _arg(op, arg)
    if op == "any_":
        return value is not None and value in arg
    if op == "not_any_":
        return True if not arg else (value is not None and value not in arg)
    if op == "like_":
        return value is not None and arg.lower() in value.lower()
    if op == "before_":
        return value is not None and value <= arg
    if op == "after_":
        return value is not None and value >= arg
    if op == "is_null_":
        return (value is None) == arg
    if op == "eq_":
        return value == arg
    raise AssertionError(op)


def _combine(results, operator):
    if not results:
        return True
    return any(results) if operator == "or_" else all(results)


def _sub(sub, value):
    return _combine([_crit(value, op, a) for op, a in sub.items() if op != "operator" and a is not None],
                    sub.get("operator", "and_"))


def _tags(sub, tags):
    res = []
    if sub.get("all_") is not None:
        res.append(set(sub["all_"]) <= set(tags))
    if sub.get("is_null_") is not None:
        res.append((len(tags) == 0) == sub["is_null_"])
    return _combine(res, sub.get("operator", "and_"))


def _state(sub, rec):
    res = []
    for part, col in (("type", rec.state_type), ("name", rec.state_name)):
        for op, a in (sub.get(part) or {}).items():
            if a is not None:
                res.append(_crit(col, op, a))
    return _combine(res, sub.get("operator", "and_"))


def _top(flt, rec, special=None):
    """`flt` (an entity filter's JSON) on `rec`: each field by its `special` check
    (key -> check(value, rec)) if it has one, tags as tags, else by its criteria."""
    special = special or {}
    res = []
    for k, v in flt.items():
        if k == "operator" or v is None:
            continue
        if k in special:
            res.append(special[k](v, rec))
        elif k == "tags":
            res.append(_tags(v, rec.tags))
        else:
            res.append(_sub(v, getattr(rec, k)))
    return _combine(res, flt.get("operator", "and_"))


def ref_flow_run_filter(flt, fr, w):
    def parent_flow_run_id(v, r):
        if v.get("any_") is None:
            return True
        parent = w["task_runs"].get(r.parent_task_run_id)
        return parent is not None and str(parent.flow_run_id) in v["any_"]
    return _top(flt, fr, {"state": _state, "parent_flow_run_id": parent_flow_run_id})


def ref_task_run_filter(flt, tr, w):
    def subflow_runs(v, r):
        if v.get("exists_") is None:
            return True
        has = any(f.parent_task_run_id == r.id for f in w["flow_runs"].values())
        return has == v["exists_"]

    def flow_run_id(v, r):
        is_null = v.get("is_null_", False)
        if is_null is True:
            return r.flow_run_id is None
        if v.get("any_") is not None:
            return str(r.flow_run_id) in v["any_"] if r.flow_run_id else False
        if is_null is False:
            return r.flow_run_id is not None
        return True
    return _top(flt, tr, {"state": _state, "subflow_runs": subflow_runs, "flow_run_id": flow_run_id})


def ref_flow_filter(flt, flow, w):
    def deployment(v, r):
        if v.get("is_null_") is None:
            return True
        has = any(d.flow_id == r.id for d in w["deployments"].values())
        return has != v["is_null_"]
    return _top(flt, flow, {"deployment": deployment})


def ref_simple_filter(flt, rec, w):
    """A filter of deployments, work pools or queues: no field needs another table."""
    return _top(flt, rec)


def ref_flow_run_matches(req, fr, w):
    if "flow_runs" in req and not ref_flow_run_filter(req["flow_runs"], fr, w):
        return False
    if "flows" in req and not ref_flow_filter(req["flows"], w["flows"][fr.flow_id], w):
        return False
    if "deployments" in req:
        dep = w["deployments"].get(fr.deployment_id)
        if dep is None or not ref_simple_filter(req["deployments"], dep, w):
            return False
    if "work_pool_queues" in req or "work_pools" in req:
        q = w["work_queues"].get(fr.work_queue_id)
        if q is None:
            return False
        if "work_pool_queues" in req and not ref_simple_filter(req["work_pool_queues"], q, w):
            return False
        if "work_pools" in req:
            pool = w["work_pools"].get(q.work_pool_id)
            if pool is None or not ref_simple_filter(req["work_pools"], pool, w):
                return False
    if "task_runs" in req:
        if not any(t.flow_run_id == fr.id and ref_task_run_filter(req["task_runs"], t, w)
                   for t in w["task_runs"].values()):
            return False
    return True


def ref_task_run_matches(req, tr, w):
    if "task_runs" in req and not ref_task_run_filter(req["task_runs"], tr, w):
        return False
    if any(k in req for k in ("flows", "flow_runs", "deployments")):
        fr = w["flow_runs"].get(tr.flow_run_id)
        if fr is None:
            return False
        sub_req = {k: req[k] for k in ("flows", "flow_runs", "deployments") if k in req}
        return ref_flow_run_matches(sub_req, fr, w)
    return True


_SORT_COL = {"ID": "id", "START_TIME": None, "EXPECTED_START_TIME": "expected_start_time",
             "NAME": "name", "NEXT_SCHEDULED_START_TIME": "next_scheduled_start_time", "END_TIME": "end_time"}


def ref_sorted(recs, sort):
    col, _, direction = sort.rpartition("_")

    def value(r):
        if col == "START_TIME":
            return r.start_time if r.start_time is not None else r.expected_start_time
        v = getattr(r, _SORT_COL[col])
        return str(v) if col == "ID" else v

    # SQLite: NULLs first ascending (so last descending); ties by id text, same direction.
    ordered = sorted(recs, key=lambda r: (value(r) is not None, value(r) if value(r) is not None else 0, str(r.id)))
    return ordered[::-1] if direction == "DESC" else ordered


def world_of(engine):
    t = engine._store.tables
    return {k: dict(t[kind].rows) for k, kind in (
        ("flows", "flow"), ("flow_runs", "flow_run"), ("task_runs", "task_run"), ("deployments", "deployment"),
        ("work_queues", "work_queue"), ("work_pools", "work_pool"))}


# random requests -------------------------------------------------------------------------------

def maybe(draw, p=0.5):
    return draw(st.floats(0, 1)) < p


def iso_text(draw):
    return draw(st.sampled_from(TIMES)).isoformat()


def _focus(draw, f):
    """Often keep a single criterion: that is when counts come straight from indexes."""
    keys = sorted(k for k in f if k != "operator")
    if keys and maybe(draw, 0.4):
        key = draw(st.sampled_from(keys))
        return {key: f[key]}
    return f


@st.composite
def flow_run_filters(draw, ids, deployment_ids=()):
    f = {}
    if maybe(draw, 0.4):
        f["state"] = {}
        if maybe(draw, 0.8):
            f["state"]["type"] = {draw(st.sampled_from(["any_", "not_any_"])): draw(st.lists(st.sampled_from(TYPES), max_size=3))}
        if maybe(draw, 0.3):
            f["state"]["name"] = {draw(st.sampled_from(["any_", "not_any_"])): draw(st.lists(st.sampled_from(STATE_NAMES), max_size=2))}
        if maybe(draw, 0.3):
            f["state"]["operator"] = draw(st.sampled_from(["and_", "or_"]))
    if maybe(draw, 0.15) and ids:
        key = draw(st.sampled_from(["any_", "not_any_"]))
        f["id"] = {key: draw(st.lists(st.sampled_from(ids), max_size=4))}
    if maybe(draw, 0.2):
        f["name"] = draw(st.sampled_from([{"any_": draw(st.lists(st.sampled_from(NAMES), max_size=2))},
                                          {"like_": draw(st.sampled_from(["alp", "ETA", "x", "a"]))}, {}]))
    if maybe(draw, 0.25):
        tags = {}
        if maybe(draw, 0.7):
            tags["all_"] = draw(st.lists(st.sampled_from(TAGS), max_size=2))
        if maybe(draw, 0.3):
            tags["is_null_"] = draw(st.booleans())
        if maybe(draw, 0.3):
            tags["operator"] = draw(st.sampled_from(["and_", "or_"]))
        f["tags"] = tags
    if maybe(draw, 0.15):
        f["deployment_id"] = draw(st.sampled_from([{"is_null_": True}, {"is_null_": False}, {}]))
        if deployment_ids and maybe(draw):
            f["deployment_id"] = {"any_": draw(st.lists(st.sampled_from(deployment_ids), max_size=2))}
    if maybe(draw, 0.15):
        f["work_queue_name"] = draw(st.sampled_from([{"any_": ["default"]}, {"any_": ["high", "nope"]},
                                                     {"is_null_": True}, {"is_null_": False}]))
    for col in ("start_time", "end_time", "expected_start_time", "next_scheduled_start_time"):
        if maybe(draw, 0.15):
            opts = ["before_", "after_"] + (["is_null_"] if col in ("start_time", "end_time") else [])
            op = draw(st.sampled_from(opts))
            f[col] = {op: draw(st.booleans()) if op == "is_null_" else iso_text(draw)}
    if maybe(draw, 0.08):
        f["parent_task_run_id"] = {"is_null_": draw(st.booleans())}
    if maybe(draw, 0.05) and ids:
        f["parent_flow_run_id"] = {"any_": draw(st.lists(st.sampled_from(ids), max_size=3))}
    if maybe(draw, 0.05):
        f["idempotency_key"] = {draw(st.sampled_from(["any_", "not_any_"])): draw(st.lists(st.sampled_from(["k0", "k1", "k2"]), max_size=2))}
    if maybe(draw, 0.2):
        f["operator"] = draw(st.sampled_from(["and_", "or_"]))
    return _focus(draw, f)


@st.composite
def task_run_filters(draw, ids):
    f = {}
    if maybe(draw, 0.4):
        f["state"] = {}
        if maybe(draw, 0.8):
            f["state"]["type"] = {"any_": draw(st.lists(st.sampled_from(TYPES), max_size=3))}
        if maybe(draw, 0.3):
            f["state"]["name"] = {"any_": draw(st.lists(st.sampled_from(STATE_NAMES), max_size=2))}
        if maybe(draw, 0.3):
            f["state"]["operator"] = draw(st.sampled_from(["and_", "or_"]))
    if maybe(draw, 0.25):
        frid = {}
        if maybe(draw) and ids:
            frid["any_"] = draw(st.lists(st.sampled_from(ids), max_size=3))
        if maybe(draw):
            frid["is_null_"] = draw(st.booleans())
        f["flow_run_id"] = frid
    if maybe(draw, 0.2):
        f["tags"] = {"all_": draw(st.lists(st.sampled_from(TAGS), max_size=2))}
    if maybe(draw, 0.15):
        f["name"] = {"like_": draw(st.sampled_from(["alp", "ETA", "a"]))}
    if maybe(draw, 0.1):
        f["subflow_runs"] = {"exists_": draw(st.booleans())}
    if maybe(draw, 0.1):
        op = draw(st.sampled_from(["before_", "after_", "is_null_"]))
        f["start_time"] = {op: draw(st.booleans()) if op == "is_null_" else iso_text(draw)}
    if maybe(draw, 0.1):
        f["expected_start_time"] = {draw(st.sampled_from(["before_", "after_"])): iso_text(draw)}
    if maybe(draw, 0.15):
        f["operator"] = draw(st.sampled_from(["and_", "or_"]))
    return _focus(draw, f)


@st.composite
def requests(draw, flow_run_ids, for_task_runs, deployment_ids=()):
    req = {}
    if maybe(draw, 0.6):
        fr = draw(flow_run_filters(flow_run_ids, deployment_ids))
        if for_task_runs and maybe(draw, 0.3) and flow_run_ids:
            fr = {"id": {"any_": draw(st.lists(st.sampled_from(flow_run_ids), min_size=1, max_size=4))}}
        req["flow_runs"] = fr
    if maybe(draw, 0.5):
        req["task_runs"] = draw(task_run_filters(flow_run_ids))
    if maybe(draw, 0.15):
        req["flows"] = draw(st.sampled_from([{}, {"name": {"any_": ["etl-daily"]}}, {"name": {"like_": "t"}},
                                             {"deployment": {"is_null_": True}}, {"deployment": {"is_null_": False}}]))
    if maybe(draw, 0.15):
        req["deployments"] = draw(st.sampled_from([{}, {"name": {"any_": ["dep-0", "dep-2"]}},
                                                   {"paused": {"eq_": True}}, {"tags": {"all_": ["prod"]}}]))
    if not for_task_runs:
        if maybe(draw, 0.1):
            req["work_pools"] = draw(st.sampled_from([{}, {"name": {"any_": ["pool-a"]}}, {"type": {"any_": ["docker"]}}]))
        if maybe(draw, 0.1):
            req["work_pool_queues"] = draw(st.sampled_from([{}, {"name": {"any_": ["high"]}},
                                                           {"name": {"startswith_": ["HI"]}}]))
    return req


# the properties -----------------------------------------------------------------------------------

FILTER_ARGS = {"flows": "flow_filter", "flow_runs": "flow_run_filter", "task_runs": "task_run_filter",
               "deployments": "deployment_filter", "work_pools": "work_pool_filter",
               "work_pool_queues": "work_queue_filter"}


def _ref_queue_startswith(req):
    # The reference `_crit` has no startswith_; translate it to a name test here.
    q = req.get("work_pool_queues")
    if q and "startswith_" in q.get("name", {}):
        prefixes = q["name"]["startswith_"]
        return lambda queue: any(queue.name.lower().startswith(p.lower()) for p in prefixes)
    return None


def ref_flow_runs(req, w):
    """The flow runs of world `w` that request `req` matches, by the reference matchers."""
    startswith = _ref_queue_startswith(req)
    plain = dict(req)
    if startswith is not None:
        plain["work_pool_queues"] = {}
    return [f for f in w["flow_runs"].values() if ref_flow_run_matches(plain, f, w)
            and (startswith is None or startswith(w["work_queues"][f.work_queue_id]))]


def ref_task_runs(req, w):
    """The task runs of world `w` that request `req` matches, by the reference matchers."""
    return [t for t in w["task_runs"].values() if ref_task_run_matches(req, t, w)]


def check_queries(engine, data, rounds=4):
    w = world_of(engine)
    fr_ids = sorted(str(i) for i in w["flow_runs"]) + [str(uuid.UUID(int=7))]
    dep_ids = sorted(str(i) for i in w["deployments"]) + [str(uuid.UUID(int=8))]
    for _ in range(rounds):
        for_tasks = data.draw(st.booleans())
        req = data.draw(requests(fr_ids, for_tasks, dep_ids))
        kwargs = {FILTER_ARGS[k]: v for k, v in req.items()}
        sort = data.draw(st.sampled_from(TASK_RUN_SORTS if for_tasks else FLOW_RUN_SORTS))
        offset = data.draw(st.sampled_from([0, 0, 1, 3, 10]))
        limit = data.draw(st.sampled_from([None, 0, 1, 2, 5, 20]))
        if for_tasks:
            expected = ref_task_runs(req, w)
            got = engine.read_task_runs(**kwargs, sort=sort, offset=offset, limit=limit)
            assert engine.count_task_runs(**kwargs) == len(expected), req
            by_state = engine.count_task_runs_by_state(**kwargs).as_dict()
            ref_by_state = {t: sum(1 for r in expected if r.state_type is not None and r.state_type.value == t)
                            for t in TYPES}
            assert by_state == ref_by_state, req
        else:
            expected = ref_flow_runs(req, w)
            got = engine.read_flow_runs(**kwargs, sort=sort, offset=offset, limit=limit)
            assert engine.count_flow_runs(**kwargs) == len(expected), req
        window = ref_sorted(expected, sort)[offset: None if limit is None else offset + limit]
        assert [r.id for r in got] == [r.id for r in window], (req, sort, offset, limit)


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
