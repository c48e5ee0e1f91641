"""Random query cases over the query corpus's dataset, for differential testing.

    python query_variants.py --seed S --count N OUT.jsonl [--dataset CORPUS.jsonl]

OUT gets the dataset line of CORPUS (default: tests/data/queries.jsonl, copied
byte for byte), then N cases `{"id", "op", "request"}` in the corpus format
(conformance README §2), with ids `variant.s{S}.{n:05d}.{op}`. No `expected`:
answer the file with prefect_queries.py, then replay the answers with
`python -m engine.conformance`. The output depends only on CORPUS, the seed and
the count (a seed's first N cases are the same whatever N is).

A quarter of the filter cases are mutants of CORPUS's own cases (its requests with
one to three changes: window, operators, entity filters or fields added, replaced
or dropped), so the shapes the recorder used get varied too; the rest are drawn
from scratch, about one in eight of them dense (three to six entity filters with
three to six fields each).

What the cases cover, in proportion:

* every op: reads and counts of flow and task runs, task-run counts by state,
  task-run dependencies (about 5% of all cases ask for the dependencies of an id
  that is no flow run, the error the recorded corpus shows);
* every entity filter an op accepts (flows, flow_runs, task_runs, deployments,
  and for flow-run ops work_pools and work_pool_queues), alone or several at once,
  empty (`{}`) now and then; inside each, every field and operator of
  spec/filters.md, with and without `operator: and_/or_` on the entity filter and
  on the sub-filters that take one;
* values from the dataset (ids, names, tags, deployments, work queue names, parent
  task runs, parent flow runs, state types and names, idempotency keys, times),
  times equal to a dataset value, a second or a microsecond off, hours off, or far
  away, written with `+00:00`, `Z`, another offset, no offset, or as a bare date;
  ids spelled in capitals, without hyphens, in braces or as URNs; values that
  match nothing, case-changed names, `like_`/`startswith_` patterns with `%`/`_`
  wildcards (and characters special to regular expressions), empty lists,
  duplicates, and nulls where a field is optional;
* every sort of the op, or none (often the sort on a column the request bounds in
  time); offset and limit absent, null, 0, 1, small, large, and past the end.

Standard library only: neither the engine nor Prefect is imported.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import pathlib
import random
import sys
import uuid

DEFAULT_CORPUS = pathlib.Path(__file__).resolve().parents[1] / "data" / "queries.jsonl"

STATE_TYPES = ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED",
               "PAUSED", "CANCELLING"]
FLOW_RUN_SORTS = ["ID_DESC", "START_TIME_ASC", "START_TIME_DESC", "EXPECTED_START_TIME_ASC",
                  "EXPECTED_START_TIME_DESC", "NAME_ASC", "NAME_DESC", "NEXT_SCHEDULED_START_TIME_ASC",
                  "END_TIME_DESC"]
TASK_RUN_SORTS = ["ID_DESC", "EXPECTED_START_TIME_ASC", "EXPECTED_START_TIME_DESC", "NAME_ASC", "NAME_DESC",
                  "NEXT_SCHEDULED_START_TIME_ASC", "END_TIME_DESC"]

# op -> weight (per 100 cases); "dependencies_missing" is read_task_run_dependencies
# of an id that is no flow run (the error kind the recorded corpus holds).
OP_WEIGHTS = [
    ("read_flow_runs", 24),
    ("read_task_runs", 21),
    ("count_flow_runs", 16),
    ("count_task_runs", 12),
    ("count_task_runs_by_state", 12),
    ("read_task_run_dependencies", 10),
    ("dependencies_missing", 5),
]

FLOW_RUN_ENTITIES = ["flows", "flow_runs", "task_runs", "deployments", "work_pools", "work_pool_queues"]
TASK_RUN_ENTITIES = ["flows", "flow_runs", "task_runs", "deployments"]
# Sub-filters that take an `operator`, per entity filter (besides the entity filter itself).
OPERATOR_FIELDS = {
    "flows": {"deployment", "tags"},
    "flow_runs": {"tags", "deployment_id", "work_queue_name", "state", "parent_flow_run_id", "parent_task_run_id"},
    "task_runs": {"tags", "state", "flow_run_id"},
    "deployments": {"tags"},
    "work_pools": set(),
    "work_pool_queues": set(),
}
# Share of filter cases that are a recorded case's request with a few changes.
MUTANT_SHARE = 0.25
# Share of cases drawn with many entity filters and many fields in each.
DENSE_SHARE = 0.12
# Time criteria and the sort on the same column (a read bounded and sorted on it).
SORT_OF_TIME_FIELD = {
    "expected_start_time": ("EXPECTED_START_TIME_ASC", "EXPECTED_START_TIME_DESC"),
    "next_scheduled_start_time": ("NEXT_SCHEDULED_START_TIME_ASC",),
    "end_time": ("END_TIME_DESC",),
    "start_time": ("START_TIME_ASC", "START_TIME_DESC"),
}
# How often each entity filter is picked (relative), roughly as in the recorded corpus.
ENTITY_WEIGHTS = {"flows": 1.5, "flow_runs": 3, "task_runs": 2.5, "deployments": 1.5, "work_pools": 0.8,
                  "work_pool_queues": 0.8}

# Strings that are no value of any column in the dataset.
NOWHERE = ["nope", "zzz-missing", "", "Q", "x y", "ünïcode", "100%", "a_b"]


def _sorted_set(values) -> list:
    return sorted({v for v in values if v is not None})


class Pools:
    """The dataset's values, per column, in a fixed order."""

    def __init__(self, ds: dict) -> None:
        flows, fruns, truns = ds["flows"], ds["flow_runs"], ds["task_runs"]
        deps, pools, queues = ds["deployments"], ds["work_pools"], ds["work_queues"]
        self.base_time = ds.get("base_time") or "2024-11-01T00:00:00+00:00"

        self.flow_ids = [f["id"] for f in flows]
        self.flow_names = [f["name"] for f in flows]
        self.flow_tags = _sorted_set(t for f in flows for t in f["tags"])

        self.fr_ids = [r["id"] for r in fruns]
        self.fr_names = [r["name"] for r in fruns]
        self.fr_tags = _sorted_set(t for r in fruns for t in r["tags"])
        self.fr_tag_lists = [r["tags"] for r in fruns if r["tags"]]
        self.fr_versions = _sorted_set(r["flow_version"] for r in fruns)
        self.fr_state_names = _sorted_set(r["state_name"] for r in fruns)
        self.fr_queue_names = _sorted_set(r["work_queue_name"] for r in fruns)
        self.fr_idempotency = _sorted_set(r["idempotency_key"] for r in fruns)
        self.fr_parent_task_runs = _sorted_set(r["parent_task_run_id"] for r in fruns)
        task_flow_run = {t["id"]: t["flow_run_id"] for t in truns}
        self.fr_parent_flow_runs = _sorted_set(task_flow_run.get(r["parent_task_run_id"]) for r in fruns)
        self.fr_times = {col: _sorted_set(r[col] for r in fruns)
                         for col in ("start_time", "end_time", "expected_start_time", "next_scheduled_start_time")}

        self.tr_ids = [t["id"] for t in truns]
        self.tr_names = [t["name"] for t in truns]
        self.tr_tags = _sorted_set(t for r in truns for t in r["tags"])
        self.tr_tag_lists = [t["tags"] for t in truns if t["tags"]]
        self.tr_state_names = _sorted_set(t["state_name"] for t in truns)
        self.tr_flow_runs = _sorted_set(t["flow_run_id"] for t in truns)
        self.tr_times = {col: _sorted_set(t[col] for t in truns)
                         for col in ("start_time", "expected_start_time")}
        with_tasks = set(self.tr_flow_runs)
        self.fr_without_tasks = [i for i in self.fr_ids if i not in with_tasks]

        self.dep_ids = [d["id"] for d in deps]
        self.dep_names = [d["name"] for d in deps]
        self.dep_tags = _sorted_set(t for d in deps for t in d["tags"])
        self.dep_queue_names = _sorted_set(d["work_queue_name"] for d in deps)

        self.pool_ids = [p["id"] for p in pools]
        self.pool_names = [p["name"] for p in pools]
        self.pool_types = _sorted_set(p["type"] for p in pools)
        self.queue_ids = [q["id"] for q in queues]
        self.queue_names = _sorted_set(q["name"] for q in queues)

        # ids of other kinds, for dependencies of something that is no flow run
        self.state_ids = _sorted_set(r["state_id"] for r in fruns + truns)
        self.all_times = sorted({v for vals in list(self.fr_times.values()) + list(self.tr_times.values())
                                 for v in vals})


class Gen:
    """One seed's cases. Every draw goes through `self.rng`."""

    def __init__(self, pools: Pools, seed: int, recorded: list[dict] = ()) -> None:
        self.p = pools
        self.rng = random.Random(seed)
        self.dense = False  # this case: many entity filters with many fields each
        # recorded filter cases by op, the seeds of mutants
        self.recorded: dict[str, list[dict]] = {}
        for case in recorded:
            if case["op"] != "read_task_run_dependencies":
                self.recorded.setdefault(case["op"], []).append(case)

    # --- small draws -------------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def weighted(self, pairs):
        total = sum(w for _, w in pairs)
        x = self.rng.random() * total
        for value, w in pairs:
            x -= w
            if x < 0:
                return value
        return pairs[-1][0]

    def list_size(self) -> int:
        return self.weighted([(0, 7), (1, 45), (2, 22), (3, 13), (5, 9), (9, 4)])

    def fake_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def recase(self, text: str) -> str:
        how = self.rng.randrange(3)
        if how == 0:
            return text.upper()
        if how == 1:
            return text.lower()
        return text.swapcase()

    def uuid_list(self, real: list, other: list | None = None) -> list:
        out = []
        for _ in range(self.list_size()):
            r = self.rng.random()
            if r < 0.85 or (r < 0.92 and not other):
                out.append(self.rng.choice(real))
            elif r < 0.92:
                out.append(self.rng.choice(other))  # an id of another kind: matches nothing here
            else:
                out.append(self.fake_uuid())
        if out and self.chance(0.06):
            out.append(out[0])  # a duplicate
        if out and self.chance(0.06):
            # other spellings Prefect parses as the same id
            i = self.rng.randrange(len(out))
            value = uuid.UUID(out[i])
            out[i] = self.rng.choice([str(value).upper(), value.hex, "{%s}" % value, value.urn])
        return out

    def str_list(self, real: list, recased: bool = True) -> list:
        out = []
        for _ in range(self.list_size()):
            r = self.rng.random()
            if r < 0.85 and real:
                out.append(self.rng.choice(real))
            elif r < 0.93 and real and recased:
                out.append(self.recase(self.rng.choice(real)))
            elif r < 0.95 and real:
                out.append(" " + self.rng.choice(real))
            else:
                out.append(self.rng.choice(NOWHERE))
        if out and self.chance(0.06):
            out.append(out[-1])
        return out

    def tag_list(self, real: list, rows: list | None = None) -> list:
        if rows and self.chance(0.3):
            # a real row's tags, or part of them (something certainly matches)
            tags = list(self.rng.choice(rows))
            self.rng.shuffle(tags)
            return tags[: self.rng.randint(1, len(tags))]
        size = self.weighted([(0, 12), (1, 50), (2, 25), (3, 10), (4, 3)])
        out = []
        for _ in range(size):
            r = self.rng.random()
            if r < 0.85:
                out.append(self.rng.choice(real))
            elif r < 0.93:
                out.append(self.recase(self.rng.choice(real)))
            else:
                out.append(self.rng.choice(NOWHERE))
        if out and self.chance(0.05):
            out.append(out[0])
        return out

    def like(self, names: list, prefix: bool = False) -> str:
        """A `like_` (or `startswith_` item) pattern: mostly a piece of a real name."""
        r = self.rng.random()
        if r < 0.06:
            return ""
        if r < 0.12:
            return self.rng.choice(["_", "%", "__", "%-%", "-", ".", "\\", "'", "ZZZ", "nope", "[a]", ".*", "a+",
                                    "(", "$", "^h", "e|o", "?", " "])
        name = self.rng.choice(names)
        if prefix:
            start = 0 if self.chance(0.8) else self.rng.randrange(len(name))
        else:
            start = self.rng.randrange(len(name))
        end = self.rng.randint(start + 1, len(name))
        piece = name[start:end]
        if self.chance(0.3):
            piece = self.recase(piece)
        if self.chance(0.15) and piece:
            i = self.rng.randrange(len(piece))
            piece = piece[:i] + self.rng.choice("_%") + piece[i + 1:]
        if self.chance(0.05):
            piece = piece + self.rng.choice(NOWHERE[:2])
        return piece

    def boolean(self, null: float = 0.06):
        if self.chance(null):
            return None
        return self.chance(0.5)

    # --- times -------------------------------------------------------------------------------

    def time(self, column_values: list) -> str:
        p = self.p
        r = self.rng.random()
        if r < 0.72 and column_values:
            base = dt.datetime.fromisoformat(self.rng.choice(column_values))
        elif r < 0.85:
            base = dt.datetime.fromisoformat(self.rng.choice(p.all_times))
        elif r < 0.9:
            base = dt.datetime.fromisoformat(p.base_time)
        else:
            base = dt.datetime.fromisoformat(self.rng.choice(
                ["1970-01-01T00:00:00+00:00", "2000-06-15T12:00:00+00:00", "2024-10-31T23:59:59+00:00",
                 "2024-12-31T00:00:00+00:00", "2030-01-01T00:00:00+00:00", "2100-01-01T00:00:00+00:00"]))
        shift = self.weighted([
            (dt.timedelta(0), 40),
            (dt.timedelta(seconds=1), 8), (dt.timedelta(seconds=-1), 8),
            (dt.timedelta(microseconds=1), 4), (dt.timedelta(microseconds=-1), 4),
            (dt.timedelta(milliseconds=500), 2),
            (dt.timedelta(minutes=self.rng.randint(-600, 600)), 16),
            (dt.timedelta(days=self.rng.randint(-5, 5), seconds=self.rng.randint(0, 86399)), 12),
            (dt.timedelta(days=self.rng.choice([-4000, -400, 400, 4000])), 6),
        ])
        value = base + shift
        form = self.weighted([("utc", 56), ("z", 14), ("offset", 12), ("naive", 8), ("space", 4), ("date", 4),
                              ("millis", 2)])
        if form == "date":
            return value.date().isoformat()
        if form == "millis":
            return value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if form == "offset":
            zone = dt.timezone(dt.timedelta(minutes=self.rng.choice([-480, -300, 60, 120, 330, 600])))
            return value.astimezone(zone).isoformat()
        if form == "naive":
            return value.replace(tzinfo=None).isoformat()
        text = value.isoformat()
        if form == "z":
            return text.replace("+00:00", "Z")
        if form == "space":
            return text.replace("T", " ")
        return text

    # --- sub-filters -------------------------------------------------------------------------

    def sub(self, fields: dict, operator: bool = False) -> dict:
        """A sub-filter: a random non-empty subset of `fields` (name -> draw), now and
        then empty, a field explicitly null, and an `operator` when it takes one."""
        names = list(fields)
        if self.chance(0.04):
            chosen = []
        else:
            k = self.weighted([(1, 70), (2, 22), (3, 8)])
            chosen = self.rng.sample(names, min(k, len(names)))
        out = {}
        for name in chosen:
            out[name] = None if self.chance(0.03) else fields[name]()
        if operator and self.chance(0.45):
            out["operator"] = self.rng.choice(["and_", "or_", "or_"])
        return out

    def time_sub(self, values: list, is_null: bool) -> dict:
        fields = {"before_": lambda: self.time(values), "after_": lambda: self.time(values)}
        if is_null:
            fields["is_null_"] = self.boolean
        out = self.sub(fields)
        if self.chance(0.12):
            # a window: both bounds, the lower one sometimes after the upper one
            a, b = self.time(values), self.time(values)
            out["after_"], out["before_"] = a, b
        return out

    # --- entity filters ----------------------------------------------------------------------

    def sample(self, names, k: int, weights: dict) -> list:
        """k distinct names, each drawn with its weight (default 1)."""
        left = list(names)
        out = []
        while left and len(out) < k:
            name = self.weighted([(n, weights.get(n, 1)) for n in left])
            left.remove(name)
            out.append(name)
        return out

    def entity(self, fields: dict, weights: dict | None = None) -> dict:
        if self.chance(0.07):
            out = {}
        else:
            if self.dense:
                k = self.weighted([(3, 40), (4, 30), (6, 30)])
            else:
                k = self.weighted([(1, 55), (2, 27), (3, 12), (4, 4), (6, 2)])
            chosen = self.sample(fields, k, weights or {})
            out = {}
            for name in chosen:
                out[name] = None if self.chance(0.02) else fields[name]()
        if self.chance(0.5):
            out["operator"] = self.rng.choice(["and_", "or_", "or_"])
        return out

    def flows(self) -> dict:
        p = self.p
        return self.entity({
            "id": lambda: self.sub({"any_": lambda: self.uuid_list(p.flow_ids, p.dep_ids)}),
            "deployment": lambda: self.sub({"is_null_": self.boolean}, operator=True),
            "name": lambda: self.sub({"any_": lambda: self.str_list(p.flow_names),
                                      "like_": lambda: self.like(p.flow_names)}),
            "tags": lambda: self.sub({"all_": lambda: self.tag_list(p.flow_tags),
                                      "is_null_": self.boolean}, operator=True),
        })

    def flow_runs(self) -> dict:
        p = self.p
        if self.chance(0.06):
            return self.fast_path_flow_runs()
        return self.entity({
            "id": lambda: self.sub({"any_": lambda: self.uuid_list(p.fr_ids, p.tr_ids),
                                    "not_any_": lambda: self.uuid_list(p.fr_ids, p.tr_ids)}),
            "name": lambda: self.sub({"any_": lambda: self.str_list(p.fr_names),
                                      "like_": lambda: self.like(p.fr_names)}),
            "tags": lambda: self.sub({"all_": lambda: self.tag_list(p.fr_tags, p.fr_tag_lists),
                                      "is_null_": self.boolean}, operator=True),
            "deployment_id": lambda: self.sub({"any_": lambda: self.uuid_list(p.dep_ids, p.flow_ids),
                                               "is_null_": self.boolean}, operator=True),
            "work_queue_name": lambda: self.sub({"any_": lambda: self.str_list(p.fr_queue_names),
                                                 "is_null_": self.boolean}, operator=True),
            "flow_version": lambda: self.sub({"any_": lambda: self.str_list(p.fr_versions)}),
            "state": self.flow_run_state,
            "start_time": lambda: self.time_sub(p.fr_times["start_time"], True),
            "end_time": lambda: self.time_sub(p.fr_times["end_time"], True),
            "expected_start_time": lambda: self.time_sub(p.fr_times["expected_start_time"], False),
            "next_scheduled_start_time": lambda: self.time_sub(p.fr_times["next_scheduled_start_time"], False),
            "parent_flow_run_id": lambda: self.sub(
                {"any_": lambda: self.uuid_list(p.fr_parent_flow_runs + p.fr_ids[:20], p.tr_ids)}, operator=True),
            "parent_task_run_id": lambda: self.sub(
                {"any_": lambda: self.uuid_list(p.fr_parent_task_runs, p.tr_ids),
                 "is_null_": self.boolean}, operator=True),
            "idempotency_key": lambda: self.sub({"any_": lambda: self.str_list(p.fr_idempotency, recased=False),
                                                 "not_any_": lambda: self.str_list(p.fr_idempotency,
                                                                                   recased=False)}),
        }, {"state": 4, "tags": 2, "name": 1.5, "expected_start_time": 1.5, "start_time": 1.5})

    def fast_path_flow_runs(self) -> dict:
        """Only `id.any_`: the shape the task-run fast path looks for (and near misses)."""
        p = self.p
        ids = self.uuid_list(p.tr_flow_runs + p.fr_ids[:30], p.tr_ids) or [self.rng.choice(p.tr_flow_runs)]
        out = {"id": {"any_": ids}}
        r = self.rng.random()
        if r < 0.2:
            out["id"]["not_any_"] = []
        elif r < 0.3:
            out["id"]["not_any_"] = [self.rng.choice(ids)]
        elif r < 0.4:
            out["id"]["any_"] = []
        if self.chance(0.4):
            out["operator"] = self.rng.choice(["and_", "or_"])
        return out

    def flow_run_state(self) -> dict:
        p = self.p
        types = {"any_": lambda: self.rng.sample(STATE_TYPES, self.weighted([(0, 6), (1, 50), (2, 30), (4, 14)])),
                 "not_any_": lambda: self.rng.sample(STATE_TYPES, self.weighted([(0, 8), (1, 50), (2, 30), (4, 12)]))}
        names = {"any_": lambda: self.str_list(p.fr_state_names),
                 "not_any_": lambda: self.str_list(p.fr_state_names)}
        return self.state(types, names)

    def task_run_state(self) -> dict:
        p = self.p
        types = {"any_": lambda: self.rng.sample(STATE_TYPES, self.weighted([(0, 6), (1, 50), (2, 30), (4, 14)]))}
        names = {"any_": lambda: self.str_list(p.tr_state_names)}
        return self.state(types, names)

    def state(self, types: dict, names: dict) -> dict:
        out = {}
        which = self.weighted([("type", 45), ("name", 30), ("both", 20), ("none", 5)])
        if which in ("type", "both"):
            out["type"] = None if self.chance(0.03) else self.sub(types)
        if which in ("name", "both"):
            out["name"] = None if self.chance(0.03) else self.sub(names)
        if self.chance(0.45):
            out["operator"] = self.rng.choice(["and_", "or_", "or_"])
        return out

    def task_runs(self) -> dict:
        p = self.p
        return self.entity({
            "id": lambda: self.sub({"any_": lambda: self.uuid_list(p.tr_ids, p.fr_ids)}),
            "name": lambda: self.sub({"any_": lambda: self.str_list(p.tr_names),
                                      "like_": lambda: self.like(p.tr_names)}),
            "tags": lambda: self.sub({"all_": lambda: self.tag_list(p.tr_tags, p.tr_tag_lists),
                                      "is_null_": self.boolean}, operator=True),
            "state": self.task_run_state,
            "start_time": lambda: self.time_sub(p.tr_times["start_time"], True),
            "expected_start_time": lambda: self.time_sub(p.tr_times["expected_start_time"], False),
            "subflow_runs": lambda: self.sub({"exists_": lambda: self.boolean(0.1)}),
            "flow_run_id": lambda: self.sub({"any_": lambda: self.uuid_list(p.tr_flow_runs, p.fr_without_tasks),
                                             "is_null_": lambda: self.boolean(0.15)}, operator=True),
        }, {"state": 3, "tags": 2, "name": 1.5, "flow_run_id": 1.5})

    def deployments(self) -> dict:
        p = self.p
        return self.entity({
            "id": lambda: self.sub({"any_": lambda: self.uuid_list(p.dep_ids, p.flow_ids)}),
            "name": lambda: self.sub({"any_": lambda: self.str_list(p.dep_names),
                                      "like_": lambda: self.like(p.dep_names)}),
            "flow_or_deployment_name": lambda: self.sub(
                {"like_": lambda: self.like(p.dep_names if self.chance(0.5) else p.flow_names)}),
            "paused": lambda: self.sub({"eq_": lambda: self.boolean(0.05)}),
            "tags": lambda: self.sub({"all_": lambda: self.tag_list(p.dep_tags),
                                      "is_null_": self.boolean}, operator=True),
            "work_queue_name": lambda: self.sub({"any_": lambda: self.str_list(p.dep_queue_names)}),
            "concurrency_limit": lambda: self.sub({"ge_": lambda: self.rng.randint(-1, 3),
                                                   "le_": lambda: self.rng.randint(-1, 3),
                                                   "is_null_": self.boolean}),
        })

    def work_pools(self) -> dict:
        p = self.p
        return self.entity({
            "id": lambda: self.sub({"any_": lambda: self.uuid_list(p.pool_ids, p.queue_ids)}),
            "name": lambda: self.sub({"any_": lambda: self.str_list(p.pool_names)}),
            "type": lambda: self.sub({"any_": lambda: self.str_list(p.pool_types)}),
        })

    def work_pool_queues(self) -> dict:
        p = self.p
        return self.entity({
            "id": lambda: self.sub({"any_": lambda: self.uuid_list(p.queue_ids, p.pool_ids)}),
            "name": lambda: self.sub({
                "any_": lambda: self.str_list(p.queue_names),
                "startswith_": lambda: [self.like(p.queue_names, prefix=True)
                                        for _ in range(self.weighted([(0, 15), (1, 55), (2, 22), (3, 8)]))]}),
        })

    # --- whole cases -------------------------------------------------------------------------

    def filters(self, entities: list) -> dict:
        if self.dense:
            k = self.weighted([(2, 30), (3, 40), (6, 30)])
        else:
            k = self.weighted([(0, 6), (1, 50), (2, 30), (3, 10), (4, 4)])
        chosen = self.sample(entities, k, ENTITY_WEIGHTS)
        return {name: getattr(self, name)() for name in chosen}

    def window(self, request: dict, sorts: list) -> None:
        r = self.rng.random()
        # the sort on a column the request bounds in time, now and then
        runs = request.get("flow_runs" if "START_TIME_ASC" in sorts else "task_runs")
        on_filtered = [sort for column, column_sorts in SORT_OF_TIME_FIELD.items() for sort in column_sorts
                       if isinstance(runs, dict) and isinstance(runs.get(column), dict) and sort in sorts]
        if on_filtered and r < 0.4:
            request["sort"] = self.rng.choice(on_filtered)
        elif r < 0.85:
            request["sort"] = self.rng.choice(sorts)
        elif r < 0.9:
            request["sort"] = None
        limit = self.weighted([("absent", 14), (None, 4), (0, 5), (1, 10), ("small", 35), ("mid", 17),
                               ("large", 15)])
        if limit == "small":
            limit = self.rng.randint(2, 15)
        elif limit == "mid":
            limit = self.rng.randint(16, 300)
        elif limit == "large":
            limit = self.rng.choice([200, 1000, 5000, 100000])
        if limit != "absent":
            request["limit"] = limit
        offset = self.weighted([("absent", 40), (None, 3), (0, 10), (1, 10), ("small", 22), ("mid", 10),
                                ("past", 5)])
        if offset == "small":
            offset = self.rng.randint(2, 30)
        elif offset == "mid":
            offset = self.rng.randint(31, 400)
        elif offset == "past":
            offset = self.rng.choice([985, 1000, 50000])
        if offset != "absent":
            request["offset"] = offset

    def dependencies(self, missing: bool) -> dict:
        p = self.p
        if not missing:
            r = self.rng.random()
            if r < 0.8:
                run = self.rng.choice(p.tr_flow_runs)
            else:
                run = self.rng.choice(p.fr_without_tasks)
            if self.chance(0.04):
                run = run.upper()
            return {"flow_run_id": run}
        kind = self.weighted([("random", 40), ("task_run", 25), ("flow", 8), ("deployment", 8), ("state", 10),
                              ("upper", 9)])
        if kind == "random":
            return {"flow_run_id": self.fake_uuid()}
        if kind == "task_run":
            return {"flow_run_id": self.rng.choice(p.tr_ids)}
        if kind == "flow":
            return {"flow_run_id": self.rng.choice(p.flow_ids)}
        if kind == "deployment":
            return {"flow_run_id": self.rng.choice(p.dep_ids)}
        if kind == "state":
            return {"flow_run_id": self.rng.choice(p.state_ids)}
        return {"flow_run_id": self.fake_uuid().upper()}

    def mutant(self, recorded: dict) -> dict:
        """A recorded case's request with one to three changes: a new window, an
        operator flipped or added, an entity filter replaced, added or dropped, a
        field dropped from one or added to it."""
        op = recorded["op"]
        request = json.loads(json.dumps(recorded["request"]))
        flow_op = op in ("read_flow_runs", "count_flow_runs")
        entities = FLOW_RUN_ENTITIES if flow_op else TASK_RUN_ENTITIES
        for _ in range(self.weighted([(1, 60), (2, 30), (3, 10)])):
            present = [e for e in entities if isinstance(request.get(e), dict)]
            kinds = [("operator", 3), ("replace", 2), ("add", 2), ("drop", 1), ("drop_field", 2), ("add_field", 3)]
            if op.startswith("read_"):
                kinds.append(("window", 3))
            kind = self.weighted(kinds)
            if kind == "window":
                for key in ("sort", "limit", "offset"):
                    request.pop(key, None)
                self.window(request, FLOW_RUN_SORTS if flow_op else TASK_RUN_SORTS)
            elif kind == "add" or not present:
                absent = [e for e in entities if e not in present]
                if absent:
                    name = self.rng.choice(absent)
                    request[name] = getattr(self, name)()
            elif kind == "drop":
                del request[self.rng.choice(present)]
            elif kind == "replace":
                name = self.rng.choice(present)
                request[name] = getattr(self, name)()
            elif kind == "operator":
                name = self.rng.choice(present)
                flt = request[name]
                places = [flt] + [v for k, v in flt.items()
                                  if k in OPERATOR_FIELDS[name] and isinstance(v, dict)]
                place = self.rng.choice(places)
                place["operator"] = "and_" if place.get("operator") == "or_" else "or_"
            elif kind == "drop_field":
                name = self.rng.choice(present)
                keys = [k for k in request[name] if k != "operator"]
                if keys:
                    del request[name][self.rng.choice(keys)]
            else:  # add_field: one field of a fresh filter of the same entity
                name = self.rng.choice(present)
                fresh = getattr(self, name)()
                keys = [k for k in fresh if k != "operator"]
                if keys:
                    key = self.rng.choice(keys)
                    request[name][key] = fresh[key]
        # filters first, then the window, as the other cases have them
        request.update({k: request.pop(k) for k in ("sort", "limit", "offset") if k in request})
        return request

    def case(self, seed: int, n: int) -> dict:
        op = self.weighted(OP_WEIGHTS)
        self.dense = self.chance(DENSE_SHARE)
        if op in self.recorded and self.chance(MUTANT_SHARE):
            recorded = self.rng.choice(self.recorded[op])
            return {"id": f"variant.s{seed}.{n:05d}.{op}", "op": op, "request": self.mutant(recorded)}
        if op in ("read_task_run_dependencies", "dependencies_missing"):
            request = self.dependencies(op == "dependencies_missing")
            op = "read_task_run_dependencies"
        else:
            flow_op = op in ("read_flow_runs", "count_flow_runs")
            request = self.filters(FLOW_RUN_ENTITIES if flow_op else TASK_RUN_ENTITIES)
            if op.startswith("read_"):
                self.window(request, FLOW_RUN_SORTS if flow_op else TASK_RUN_SORTS)
        return {"id": f"variant.s{seed}.{n:05d}.{op}", "op": op, "request": request}


def read_corpus(corpus: pathlib.Path) -> tuple[str, list[dict]]:
    """The corpus's dataset line (verbatim) and its cases."""
    with open(corpus, encoding="utf-8") as fh:
        lines = [line for line in fh.read().splitlines() if line.strip()]
    if not lines or "dataset" not in json.loads(lines[0]):
        raise SystemExit(f"{corpus}: line 1 is not the dataset record")
    return lines[0], [json.loads(line) for line in lines[1:]]


def generate(line: str, recorded: list[dict], seed: int, count: int) -> list[dict]:
    gen = Gen(Pools(json.loads(line)["dataset"]), seed, recorded)
    return [gen.case(seed, n) for n in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--dataset", type=pathlib.Path, default=DEFAULT_CORPUS,
                        help="query corpus whose line 1 is the dataset (default: tests/data/queries.jsonl)")
    parser.add_argument("out", type=pathlib.Path)
    args = parser.parse_args(argv)
    line, recorded = read_corpus(args.dataset)
    cases = generate(line, recorded, args.seed, args.count)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(line + "\n")
        for case in cases:
            out.write(json.dumps(case) + "\n")
    print(f"{len(cases)} cases written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
