"""Core write paths: creating a flow run with its first state (forced path), and
from a deployment that enforces its parameter schema.

Target (issue 2): under 20 µs per create with a first state. Measure with
    RUNSTATE_BENCH_FULL=1 python -m pytest benchmarks/test_bench_core.py --benchmark-only

The create benchmark runs twice: as a program would see it ("gc-on": the cyclic
garbage collector's full collections walk every live run as the heap grows) and
with the collector paused during each measured batch ("gc-off": the engine's own
work). The target is judged on "gc-on"; the pair shows how much of a create is
the collector's, not the engine's.
"""
import datetime as dt
import gc

import pytest

from engine import Engine, ManualClock, Scheduled
from benchmarks.conftest import collector as gc_state, scaled

T = dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("collector", ["gc-on", "gc-off"])
def test_create_flow_run_with_first_state(benchmark, collector):
    engine = Engine(clock=ManualClock(T))
    flow = engine.create_flow("bench")
    when = T + dt.timedelta(hours=1)
    create = engine.create_flow_run
    batch = scaled(100_000)

    rounds = []
    was_enabled = gc.isenabled()

    def create_batch():
        rounds.append(1)
        with gc_state(collector == "gc-on"):
            for _ in range(batch):
                create(flow_id=flow.id, state=Scheduled(scheduled_time=when))

    benchmark.pedantic(create_batch, rounds=3, iterations=1)
    assert gc.isenabled() == was_enabled  # left as it found it
    runs = engine.count_flow_runs()
    assert runs == len(rounds) * batch
    assert engine.count_flow_runs(flow_run_filter={"state": {"type": {"any_": ["SCHEDULED"]}}}) == runs


def test_create_task_run_without_state(benchmark):
    engine = Engine(clock=ManualClock(T))
    flow = engine.create_flow("bench")
    fr = engine.create_flow_run(flow_id=flow.id)
    batch = scaled(100_000)
    counter = iter(range(10**9))
    rounds = []

    def create_batch():
        rounds.append(1)
        for _ in range(batch):
            engine.create_task_run(flow_run_id=fr.id, task_key="t", dynamic_key=str(next(counter)))

    benchmark.pedantic(create_batch, rounds=3, iterations=1)
    assert engine.count_task_runs() == len(rounds) * batch
    assert all(t.state_type is None for t in engine.read_task_runs(limit=10))


def test_gc_records_script_reports_every_shape(capsys):
    # benchmarks/gc_records.py, the collector-share diagnostic quoted in notes
    from benchmarks import gc_records

    gc_records.main(["50"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [row[0] for row in rows] == ["records", "tuples", "untracked"]
    assert all(float(row[3]) > 0 and float(row[6]) > 0 for row in rows)
    assert gc.isenabled()  # left as it found it


def test_gc_records_untracked_shape_is_off_the_collector_and_still_freed():
    import weakref

    from benchmarks import gc_records

    store: dict = {}
    gc_records.keep_untracked(3, store, gc_records.uuid.uuid4())
    run, history, kept = next(iter(store.values()))
    assert not any(gc.is_tracked(obj) for obj in (run, run.state, run.tags, history, kept))
    gone = weakref.ref(run)
    store.clear()
    del run, history, kept
    assert gone() is None  # freed by reference counting: no cycle needed the collector


# A process pool's job variables, as Prefect's default template declares them.
VARIABLES = {"type": "object", "properties": {
    "name": {"type": "string", "title": "Name"},
    "env": {"type": "object", "title": "Environment Variables", "additionalProperties": {"type": "string"}},
    "labels": {"type": "object", "title": "Labels", "additionalProperties": {"type": "string"}},
    "command": {"type": "string", "title": "Command"},
    "stream_output": {"type": "boolean", "title": "Stream Output", "default": True},
    "working_dir": {"type": "string", "title": "Working Directory", "format": "path"}}}


def test_create_flow_run_from_deployment_with_an_enforced_parameter_schema(benchmark):
    # A scheduler's or a user's create from a deployment whose parameter schema is
    # enforced, in a pool whose template declares job variables: each schema is
    # repaired and checked once, each run's values then validated against it
    # (engine/schema_tools.py).
    engine = Engine(clock=ManualClock(T))
    flow = engine.create_flow("bench")
    schema = {"type": "object", "required": ["who"], "properties": {
        "who": {"type": "string"}, "n": {"type": "integer", "default": 1, "minimum": 0},
        "opts": {"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "number"}}}}}}
    template = {"job_configuration": {name: "{{ %s }}" % name for name in VARIABLES["properties"]},
                "variables": VARIABLES}
    pool = engine.create_work_pool("pool", type="process", base_job_template=template)
    queue = engine.read_work_queue(pool.default_queue_id)
    dep = engine.create_deployment(flow.id, "d", parameter_openapi_schema=schema, enforce_parameter_schema=True,
                                   work_queue_id=queue.id, work_queue_name=queue.name, job_variables={"env": {"A": "1"}})
    batch = scaled(10_000)
    rounds = []

    def create_batch():
        rounds.append(1)
        for i in range(batch):
            engine.create_flow_run_from_deployment(dep.id, parameters={"who": "w", "n": i, "opts": {"xs": [0.5]}},
                                                   job_variables={"name": f"run-{i}"})

    benchmark.pedantic(create_batch, rounds=3, iterations=1)
    assert engine.count_flow_runs(deployment_filter={"id": {"any_": [str(dep.id)]}}) == len(rounds) * batch
