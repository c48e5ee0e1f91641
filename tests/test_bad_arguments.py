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
import uuid
from typing import Any

import pytest

from engine import Engine, ManualClock, Pending, Running, models
from engine.errors import RunstateError

T0 = dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)
WRONG = [None, 5, "x", -1, 1.5, [], {}, [1], {"a": 1}, object(), True, "2024-01-01", uuid.uuid4()]
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
            except RunstateError:
                assert _fingerprint(e) == before, f"{name}({param.name}={wrong!r}) failed half-way"
            except TypeError as exc:
                if not _signature_error(exc):
                    pytest.fail(f"{name}({param.name}={wrong!r}) raised TypeError: {exc}")
            except Exception as exc:  # noqa: BLE001 - the point of the sweep
                pytest.fail(f"{name}({param.name}={wrong!r}) raised {type(exc).__name__}: {exc}")


def _params(fn: Any, skip: str) -> list:
    return [p for p in inspect.signature(fn).parameters.values()
            if p.name != skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


METHODS = sorted(n for n in dir(Engine) if not n.startswith("_") and callable(getattr(Engine, n)) and n not in NOT_SWEPT)
FACADE = sorted(
    (module_name, fn_name)
    for module_name in dir(models) if inspect.ismodule(getattr(models, module_name)) and not module_name.startswith("_")
    for fn_name, fn in vars(getattr(models, module_name)).items()
    if not fn_name.startswith("_") and inspect.iscoroutinefunction(fn)
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
