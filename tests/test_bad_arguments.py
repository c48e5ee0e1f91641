"""Every public Engine method, and every function of the Prefect-shaped facade
(`engine.models`), given an argument of the wrong kind, raises one of the engine's
documented errors (a RunstateError naming what is wrong), never a bare
TypeError/AttributeError from deep inside, and leaves the engine as it was.

A sweep, not a specification: each parameter of each method gets each value below
in turn, the other required parameters get plausible values."""
from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import re
import uuid
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from engine import Engine, Failed, ManualClock, Paused, Pending, Running, Scheduled, models
from engine.errors import ObjectNotFoundError, OrchestrationError, RunstateError, ValidationError, shown
from engine.orchestration import CoreFlowPolicy, CoreTaskPolicy
from backends.sqlite import unbindable
from engine.serialization import codec
from engine.tables import KINDS
from test_backends_support import nested_lists

T0 = dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)
WRONG = [None, 5, "x", -1, 1.5, [], {}, [1], {"a": 1}, object(), True, "2024-01-01", uuid.uuid4(),
         "x\udc80", 2**70,  # (values no store can hold, see _unstorable)
         10**5000, nested_lists(3000)]  # (an int str() refuses, and nesting repr() cannot show)
# Not calls on the run layer: context managers and a backend's durability hooks.
NOT_SWEPT = {"open", "transaction", "close", "flush", "save"}


def _world() -> tuple[Engine, dict[str, Any]]:
    e = Engine(ManualClock(T0, tick=dt.timedelta(seconds=1)))
    flow = e.create_flow("f")
    pool = e.create_work_pool("p")
    queue = e.create_work_queue(pool.id, "q")
    deployment = e.create_deployment(flow.id, "d")
    flow_run = e.create_flow_run(flow_id=flow.id, state=Running(), deployment_id=deployment.id)
    task_run = e.create_task_run(flow_run_id=flow_run.id, task_key="k", dynamic_key="0", state=Pending())
    return e, {"flow": flow, "pool": pool, "queue": queue, "deployment": deployment,
               "flow_run": flow_run, "task_run": task_run}


def _plausible(name: str, objs: dict[str, Any]) -> Any:
    if "flow_run_id" in name:
        return objs["flow_run"].id
    if "task_run_id" in name:
        return objs["task_run"].id
    if name == "flow_id":
        return objs["flow"].id
    if "work_pool_id" in name:
        return objs["pool"].id
    if "deployment_id" in name:
        return objs["deployment"].id
    if name in ("name", "task_key", "dynamic_key", "tag"):
        return "zz"
    if name == "state":
        return Running()
    if name == "limit":
        return 1
    return None


def _fingerprint(e: Engine) -> dict:
    tables = e._store.tables
    return {kind: sorted((str(rec.id), getattr(rec, "state_id", None) or "", str(getattr(rec, "updated", "")))
                         for rec in table.rows.values()) for kind, table in tables.items()}


_CODECS = {kind: codec(kind, nested_as_text=True) for kind in KINDS}


def _unstorable(e: Engine) -> list[str]:
    """Values the engine holds that SQLite could not bind (text with a lone
    surrogate, integers beyond 64 bits): whatever a call accepted must be storable."""
    return [reason for kind, table in e._store.tables.items() for rec in table.rows.values()
            if (reason := unbindable(kind, _CODECS[kind].columns, _CODECS[kind].encode(rec))) is not None]


def _signature_error(exc: TypeError) -> bool:
    # Python's own complaint about the call's shape (e.g. a keyword the method lacks).
    text = str(exc)
    return "argument" in text and any(w in text for w in ("unexpected", "missing", "positional"))


def _sweep(name: str, params: list, call) -> None:
    """Call `call(engine, kwargs)` with each wrong value for each parameter in turn."""
    for param in params:
        for wrong in WRONG:
            e, objs = _world()
            kwargs = {p.name: _plausible(p.name, objs) for p in params
                      if p is not param and p.default is inspect.Parameter.empty}
            kwargs[param.name] = wrong
            before = _fingerprint(e)
            try:
                call(e, kwargs)
                assert not _unstorable(e), f"{name}({param.name}={shown(wrong)}) kept {_unstorable(e)}"
            except RunstateError:
                assert _fingerprint(e) == before, f"{name}({param.name}={shown(wrong)}) failed half-way"
            except TypeError as exc:
                if not _signature_error(exc):
                    pytest.fail(f"{name}({param.name}={shown(wrong)}) raised TypeError: {exc}")
            except Exception as exc:  # noqa: BLE001 - the point of the sweep
                pytest.fail(f"{name}({param.name}={shown(wrong)}) raised {type(exc).__name__}: {exc}")


def _params(fn: Any, skip: str) -> list:
    return [p for p in inspect.signature(fn).parameters.values()
            if p.name != skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


METHODS = sorted(n for n in dir(Engine) if not n.startswith("_") and callable(getattr(Engine, n)) and n not in NOT_SWEPT)
FACADE = sorted(
    (module_name, fn_name)
    for module_name in dir(models) if inspect.ismodule(getattr(models, module_name)) and not module_name.startswith("_")
    for fn_name, fn in vars(getattr(models, module_name)).items()
    # (isfunction first: CPython 3.12.0-3.12.1 call the inspect module itself a coroutine function)
    if not fn_name.startswith("_") and inspect.isfunction(fn) and inspect.iscoroutinefunction(fn)
)


@pytest.mark.parametrize("method", METHODS)
def test_wrong_arguments_raise_documented_errors_and_change_nothing(method):
    _sweep(method, _params(getattr(Engine, method), "self"), lambda e, kwargs: getattr(e, method)(**kwargs))


@pytest.mark.parametrize("module_name, fn_name", FACADE)
def test_wrong_arguments_to_the_facade_raise_documented_errors_and_change_nothing(module_name, fn_name):
    fn = getattr(getattr(models, module_name), fn_name)

    async def call(e: Engine, kwargs: dict) -> None:
        async with e.session() as session:
            await fn(session=session, **kwargs)

    _sweep(f"models.{module_name}.{fn_name}", _params(fn, "session"), lambda e, kwargs: asyncio.run(call(e, kwargs)))


BAD_TEXT = "ok\udc80"  # a lone surrogate: no UTF-8 store (SQLite, a JSON file) can hold it


@pytest.mark.parametrize("where, call", [
    ("flow_run.idempotency_key", lambda e, o: e.create_flow_run(flow_id=o["flow"].id, idempotency_key=BAD_TEXT)),
    ("flow_run.name", lambda e, o: e.update_flow_run(o["flow_run"].id, name=BAD_TEXT)),
    ("task_run.cache_key", lambda e, o: e.create_task_run(flow_run_id=o["flow_run"].id, task_key="k2",
                                                           dynamic_key="0", cache_key=BAD_TEXT)),
    ("state.name", lambda e, o: e.set_flow_run_state(o["flow_run"].id, Running(name=BAD_TEXT), force=True)),
    ("state.message", lambda e, o: e.set_flow_run_state(o["flow_run"].id, Running(message=BAD_TEXT), force=True)),
    ("state.state_details.cache_key",
     lambda e, o: e.set_task_run_state(o["task_run"].id, Running(state_details={"cache_key": BAD_TEXT}))),
    ("work pool type", lambda e, o: e.create_work_pool("p2", type=BAD_TEXT)),
    ("deployment name", lambda e, o: e.create_deployment(o["flow"].id, BAD_TEXT)),
])
def test_text_no_store_can_hold_is_refused_where_it_enters(where, call):
    """A lone surrogate is refused on the way in, naming where it was, whatever the
    store: it used to pass in memory and fail a SQLite save (in a batched mode, every
    later save)."""
    e, objs = _world()
    before = _fingerprint(e)
    with pytest.raises(RunstateError, match=rf"{re.escape(where)} must be valid Unicode text: '\\udc80' at position 2"):
        call(e, objs)
    assert _fingerprint(e) == before


@pytest.mark.parametrize("call", [
    lambda e, o: e.create_flow_run(flow_id=o["flow"].id, run_count=2**63),
    lambda e, o: e.create_work_queue(o["pool"].id, "q2", concurrency_limit=2**64),
    lambda e, o: e.create_concurrency_limit_v2("g", limit=2**63),
])
def test_integers_beyond_64_bits_are_refused(call):
    e, objs = _world()
    before = _fingerprint(e)
    with pytest.raises(RunstateError, match="must fit in a signed 64-bit integer"):
        call(e, objs)
    assert _fingerprint(e) == before


@pytest.mark.parametrize("field, call", [
    ("deployment.flow_id", lambda e, o, x: e.create_deployment(x, "d2")),
    ("deployment.work_queue_id", lambda e, o, x: e.create_deployment(o["flow"].id, "d2", work_queue_id=x)),
    ("deployment.work_queue_id", lambda e, o, x: e.update_deployment(o["deployment"].id, work_queue_id=x)),
    ("work_queue.work_pool_id", lambda e, o, x: e.create_work_queue(x, "q2")),
])
def test_an_unknown_reference_names_the_argument_that_gave_it(field, call):
    e, objs = _world()
    before = _fingerprint(e)
    missing = uuid.uuid4()
    with pytest.raises(ObjectNotFoundError, match=rf"^{re.escape(field)}: .* with id {missing} not found$"):
        call(e, objs, missing)
    assert _fingerprint(e) == before


@pytest.mark.parametrize("call, named", [
    # Keys that are not strings among unknown ones: sorting them for the message failed.
    (lambda e, o: e.update_flow_run(o["flow_run"].id, {1: "x"}), "unknown field(s) for flow_run: 1 "),
    (lambda e, o: e.update_deployment(o["deployment"].id, {None: 1, "x": 2}), "deployment: x, None "),
    (lambda e, o: e.create_flow_run({"flow_id": o["flow"].id, ("t",): 1}), "flow_run: ('t',) "),
    (lambda e, o: e.create_flow_run_from_deployment(o["deployment"].id, {1: 2, "x": 3}), "field(s) 'x', 1;"),
    (lambda e, o: e.set_flow_run_state(o["flow_run"].id, {"type": "RUNNING", 1: 2, "x": 3}), "key(s) ['x', 1]"),
    (lambda e, o: e.create_flow_run(flow_id=o["flow"].id, empirical_policy={"retries": 1, 5: 1, "zz": 2}),
     "key(s) ['zz', 5]"),
    (lambda e, o: e.create_deployment(o["flow"].id, "d", concurrency_options={1: "x", "y": 2}), "key(s) ['y', 1]"),
    # Slot lists that are not lists.
    (lambda e, o: e.create_concurrency_limit("t2", 3, active_slots=5), "active_slots must be a list"),
    (lambda e, o: e.create_concurrency_limit("t2", 3, active_slots=[1.5]), "active_slots must be a list"),
    (lambda e, o: e.reset_concurrency_limit_by_tag("t", slot_override=1.5), "slot_override must be a list"),
    # Numbers past float's or datetime's range, and nesting past the recursion limit.
    (lambda e, o: e.set_flow_run_state(o["flow_run"].id, Paused(timeout_seconds=float("inf")), force=True),
     "timeout_seconds is out of range: inf"),
    (lambda e, o: e.set_flow_run_state(o["flow_run"].id, Paused(timeout_seconds=2**62), force=True),
     "timeout_seconds is out of range"),
    (lambda e, o: e.bulk_decrement_active_slots([o["limit"].id], 1, occupancy_seconds=10**400),
     "occupancy_seconds must be a finite"),
    (lambda e, o: e.create_flow_run_from_deployment(o["deployment"].id, parameters={"p": nested_lists(3000)}),
     "Error hydrating flow run parameters: the value nests too deep"),
    # Values the message itself could not show: repr() recursed, or str() refused the int.
    (lambda e, o: e.read_flow_runs(flow_run_filter={"name": {"any_": nested_lists(5000)}}),
     "flow_runs.name.any_[0] must be a string, got list [[[[[[[[[...]]]]]]]]]"),
    (lambda e, o: e.create_flow_run(flow_id=o["flow"].id, run_count=10**5000),
     "run_count must fit in a signed 64-bit integer, got <int of 16610 bits>"),
    (lambda e, o: e.create_flow_run(flow_id=o["flow"].id, name=10**5000), "name must be a string, got int <int of"),
])
def test_values_a_check_used_to_trip_on_are_named(call, named):
    """Each of these used to escape as a bare TypeError, OverflowError,
    RecursionError or ValueError from the check, its message, or the code after it."""
    e, objs = _world()
    e.create_concurrency_limit("t", 1)
    objs["limit"] = e.create_concurrency_limit_v2("g", limit=2)
    before = _fingerprint(e)
    with pytest.raises(ValidationError) as raised:
        call(e, objs)
    assert named in str(raised.value)
    assert _fingerprint(e) == before


@pytest.mark.parametrize("call", [
    lambda e, o: e.create_flow_run(flow_id=o["flow"].id, tags="x" * 10**7),
    lambda e, o: e.create_flow_run(flow_id=o["flow"].id, parameters=["x" * 10**6] * 100),
    lambda e, o: e.read_flow_runs(flow_run_filter={"name": {"like_": list(range(10**6))}}),
])
def test_a_huge_bad_value_is_shown_short(call):
    # The message shows the start and end of a long string and the first items of a
    # long list (reprlib's elision), not the whole value.
    e, objs = _world()
    with pytest.raises(ValidationError) as raised:
        call(e, objs)
    assert 20 < len(str(raised.value)) < 600 and "..." in str(raised.value)


_ATOMS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(max_size=3)
          | st.uuids() | st.datetimes())


@settings(deadline=None)  # a loaded CI machine can stall any one example past 200 ms
@given(st.recursive(_ATOMS, lambda inner: st.lists(inner, max_size=3) | st.tuples(inner) | st.tuples()
                    | st.frozensets(st.integers(), max_size=2) | st.sets(st.text(max_size=2), max_size=2)
                    | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3), max_leaves=12))
def test_a_message_shows_an_ordinary_value_as_repr_does(value):
    if len(repr(value)) <= 300 and _depth(value) <= 8:
        assert shown(value) == repr(value)
    else:
        assert "..." in shown(value) and len(shown(value)) <= 303


def _depth(value: Any) -> int:
    """Levels of non-empty lists, tuples, sets and dicts."""
    if isinstance(value, dict):
        value = list(value.values())
    if not value or not isinstance(value, (list, tuple, set, frozenset)):
        return 0
    return 1 + max(map(_depth, value))


def test_foreman_timeouts_longer_than_history_find_nothing_stale():
    """A timeout reaching before year 1 (or a worker's huge heartbeat interval) means
    nothing is that old, not a bare OverflowError on every later pass."""
    e, objs = _world()
    e.worker_heartbeat(objs["pool"].id, "w", heartbeat_interval_seconds=10**11)
    e.read_work_queue(objs["queue"].id)
    for foreman_settings in ({}, {"inactivity_heartbeat_multiple": 10**11}, {"deployment_last_polled_timeout_seconds": 10**11},
                     {"work_queue_last_polled_timeout_seconds": 10**11}):
        result = e.run_foreman_once(**foreman_settings)
        assert (result.workers_offline, result.deployments_not_ready, result.work_queues_not_ready) == ((), (), ())


class _Touchy(str):
    """A str whose comparisons raise: a caller's subclass must not reach the indexes."""

    def __eq__(self, other):
        raise RuntimeError("comparison refused")

    __lt__ = __gt__ = __le__ = __ge__ = __ne__ = __eq__
    __hash__ = str.__hash__


def test_text_of_a_str_subclass_is_kept_as_plain_str():
    e, objs = _world()
    e.read_flow_runs(sort="NAME_ASC")  # the name order is live: filing compares names
    run = e.create_flow_run(flow_id=objs["flow"].id, name=_Touchy("second"), tags=[_Touchy("t")],
                            idempotency_key=_Touchy("key"))
    assert type(run.name) is str and type(run.tags[0]) is str and type(run.idempotency_key) is str
    assert [r.name for r in e.read_flow_runs(sort="NAME_ASC", flow_run_filter={"tags": {"all_": ["t"]}})] == ["second"]
    flow = e.create_flow(_Touchy("touchy"))
    assert type(flow.name) is str and e.read_flow_by_name("touchy") is flow


def test_a_work_pool_type_must_be_a_string():
    e, _ = _world()
    for wrong in (None, 5):  # Prefect's WorkPoolCreate refuses both
        with pytest.raises(RunstateError, match="work pool type must be a string"):
            e.create_work_pool("p2", type=wrong)


@pytest.mark.parametrize("value", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_a_time_past_the_datetime_range_in_utc_is_refused(value):
    """Times are kept in UTC; one whose offset takes it past year 9999 (or before
    year 1) is a ValidationError naming the field, not a bare OverflowError."""
    e, objs = _world()
    before = _fingerprint(e)
    with pytest.raises(RunstateError, match=r"flow_run\.next_scheduled_start_time is out of range once converted to UTC"):
        e.create_flow_run(flow_id=objs["flow"].id, next_scheduled_start_time=value)
    with pytest.raises(RunstateError, match=r"state\.state_details\.scheduled_time is out of range"):
        e.set_flow_run_state(objs["flow_run"].id, Scheduled(scheduled_time=value), force=True)
    assert _fingerprint(e) == before


@pytest.mark.parametrize("kind", ["flow_run", "task_run"])
def test_a_retry_delay_past_year_9999_is_an_orchestration_error(kind):
    """Prefect's retry rules raise a bare OverflowError there; the engine names the
    delay, and nothing is stored."""
    e, objs = _world()
    policy = {"retries": 1, "retry_delay": 10**12}
    if kind == "flow_run":
        run = e.create_flow_run(flow_id=objs["flow"].id, state=Running(), empirical_policy=policy)
        propose = lambda: e.set_flow_run_state(run.id, Failed(), flow_policy=CoreFlowPolicy)  # noqa: E731
    else:
        run = e.create_task_run(flow_run_id=objs["flow_run"].id, task_key="r", dynamic_key="0", state=Running(),
                                empirical_policy=policy)
        propose = lambda: e.set_task_run_state(run.id, Failed(), task_policy=CoreTaskPolicy)  # noqa: E731
    before = _fingerprint(e)
    with pytest.raises(OrchestrationError, match="a retry_delay of 1000000000000 seconds puts its retry past"):
        propose()
    assert _fingerprint(e) == before


def test_a_pause_timeout_past_year_9999_is_refused():
    e, objs = _world()
    before = _fingerprint(e)
    with pytest.raises(RunstateError, match="pause_timeout: a timeout of .* is past the last datetime"):
        e.set_flow_run_state(objs["flow_run"].id, Paused(timeout_seconds=10**12), force=True)
    assert _fingerprint(e) == before


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), 10**20])
def test_a_run_time_a_timedelta_cannot_hold_is_refused(seconds):
    e, objs = _world()
    before = _fingerprint(e)
    with pytest.raises(RunstateError, match="flow_run.total_run_time must be a finite number of seconds"):
        e.create_flow_run(flow_id=objs["flow"].id, total_run_time=seconds)
    assert _fingerprint(e) == before
