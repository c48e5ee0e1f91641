"""The facade's functions take Prefect 3.1.0's parameters (engine.models.<module> vs
prefect.server.models.<module>).

Prefect's side is the committed dump tests/data/prefect_model_signatures.json, made by
tests/oracle/prefect_signatures.py in a venv with Prefect (tests/oracle/README.md, (e));
Prefect itself is not needed here. For every function a facade module exports
(`__all__`) that Prefect's module of the same name also has: the same parameter names in
the same order, the same kinds, the same "has a default" flag, and equal defaults where
Prefect's default is a simple literal (None, a bool, an int, a str; same type too, so
False is not 0). Other defaults must have the same repr, or be pinned in
NON_LITERAL_DEFAULTS. Prefect's functions that the facade does not offer are listed in
NOT_OFFERED, which must stay exactly the set of missing ones.
"""
from __future__ import annotations

import ast
import inspect
import json
import pathlib

import pytest

from engine import models

DATA = json.loads((pathlib.Path(__file__).parent / "data" / "prefect_model_signatures.json").read_text())

FACADE_MODULES = sorted(name for name in models.__all__ if inspect.ismodule(getattr(models, name)))

# Prefect 3.1.0 functions (in the modules the facade mirrors) that runstate does not offer.
# Must be exactly the missing set: when the facade gains one, delete it from here.
NOT_OFFERED: dict[str, set[str]] = {
    "concurrency_limits": set(),
    "concurrency_limits_v2": set(),
    "deployments": {
        # Prefect's open a database session of their own (no session parameter), which a
        # facade call cannot name an engine without: Engine.mark_deployments_(not_)ready
        "mark_deployments_not_ready",
        "mark_deployments_ready",
    },
    "flow_run_input": set(),
    "flow_run_states": set(),
    "flow_runs": set(),
    "flows": set(),
    "task_run_states": set(),
    "task_runs": set(),
    "workers": {
        # no event bus (README, "Differences from Prefect"): emit_status_change callbacks
        # are awaited when given, but no status events are sent anywhere
        "emit_work_pool_status_event",
    },
}

# Facade exports that Prefect's module of the same name does not have. Exactly the set.
RUNSTATE_ONLY: dict[str, set[str]] = {name: set() for name in FACADE_MODULES}

# Parameters whose Prefect default is not a simple literal and whose repr differs from
# runstate's default: (module, function, parameter) -> (Prefect's repr, runstate's repr).
# Not compared by value, only pinned, so a change on either side shows up. The sorts are
# Prefect AutoEnum members, a str subclass whose value is the member name, and runstate
# takes the name (checked in Prefect 3.1.0: FlowSort.NAME_ASC == "NAME_ASC", etc.).
NON_LITERAL_DEFAULTS: dict[tuple[str, str, str], tuple[str, str]] = {
    ("deployments", "read_deployments", "sort"): ("DeploymentSort.NAME_ASC", "'NAME_ASC'"),
    ("flow_runs", "read_flow_runs", "sort"): ("FlowRunSort.ID_DESC", "'ID_DESC'"),
    ("flows", "read_flows", "sort"): ("FlowSort.NAME_ASC", "'NAME_ASC'"),
    ("task_runs", "read_task_runs", "sort"): ("TaskRunSort.ID_DESC", "'ID_DESC'"),
    ("workers", "update_work_queue", "default_status"): ("WorkQueueStatus.NOT_READY", "'NOT_READY'"),
}

SIMPLE_LITERALS = (type(None), bool, int, str)


def facade_function(module: str, name: str):
    return getattr(getattr(models, module), name)


def runstate_parameters(fn) -> list[inspect.Parameter]:
    """The parameters of a facade function. `@facade` wraps with functools.wraps and sets
    `__signature__`; the wrapper forwards *args/**kwargs to the inner function, whose own
    signature is what binds, so both must agree."""
    outer = inspect.signature(fn)
    inner = inspect.signature(getattr(fn, "__wrapped__", fn))
    assert outer == inner, f"{fn.__qualname__}: wrapper {outer} vs wrapped {inner}"
    return list(inner.parameters.values())


def literal(text: str):
    """(True, value) if `text` is the repr of a simple literal, else (False, None)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return False, None
    return (type(value) in SIMPLE_LITERALS), value


def shared_functions() -> list[tuple[str, str]]:
    return [(m, f) for m in FACADE_MODULES
            for f in getattr(models, m).__all__ if f in DATA.get(m, {})]


def compare(module: str, name: str) -> list[str]:
    """Human-readable differences between Prefect's and the facade's parameters."""
    prefect = DATA[module][name]
    ours = [p for p in runstate_parameters(facade_function(module, name)) if p.name != "self"]
    problems = []
    p_names, o_names = [p[0] for p in prefect], [p.name for p in ours]
    if p_names != o_names:
        return [f"names: Prefect {p_names} vs runstate {o_names}"]
    for (pname, kind, has_default, default_repr), param in zip(prefect, ours):
        if kind != param.kind.name:
            problems.append(f"{pname}: kind Prefect {kind} vs runstate {param.kind.name}")
        ours_has = param.default is not param.empty
        if has_default != ours_has:
            problems.append(f"{pname}: has default Prefect {has_default} vs runstate {ours_has}")
            continue
        if not has_default:
            continue
        simple, value = literal(default_repr)
        if simple:
            if type(param.default) is not type(value) or param.default != value:
                problems.append(f"{pname}: default Prefect {default_repr} vs runstate {param.default!r}")
        elif repr(param.default) != default_repr:
            pinned = NON_LITERAL_DEFAULTS.get((module, name, pname))
            if pinned != (default_repr, repr(param.default)):
                problems.append(f"{pname}: non-literal default Prefect {default_repr} vs runstate "
                                f"{param.default!r} (pinned: {pinned})")
    return problems


def test_dump_covers_the_facade_modules():
    assert sorted(DATA) == FACADE_MODULES
    assert sorted(NOT_OFFERED) == FACADE_MODULES


def test_not_offered_is_exactly_what_is_missing():
    missing = {m: set(DATA[m]) - set(getattr(models, m).__all__)
               for m in FACADE_MODULES}
    assert missing == NOT_OFFERED


def test_facade_offers_nothing_prefect_lacks():
    extra = {m: set(getattr(models, m).__all__) - set(DATA[m])
             for m in FACADE_MODULES}
    assert extra == RUNSTATE_ONLY


def test_non_literal_defaults_list_stays_true():
    """Every pinned entry is a parameter both sides have, with those defaults."""
    for (module, name, pname), (p_repr, o_repr) in NON_LITERAL_DEFAULTS.items():
        prefect = {p[0]: p for p in DATA[module][name]}
        assert prefect[pname][2] and prefect[pname][3] == p_repr and not literal(p_repr)[0]
        ours = {p.name: p for p in runstate_parameters(facade_function(module, name))}
        assert repr(ours[pname].default) == o_repr


@pytest.mark.parametrize("module,name", [pytest.param(m, f, id=f"{m}.{f}") for m, f in shared_functions()])
def test_parameters_match_prefect(module, name):
    fn = facade_function(module, name)
    assert inspect.iscoroutinefunction(fn), f"{module}.{name} is not an async def"
    problems = compare(module, name)
    assert not problems, f"{module}.{name}: " + "; ".join(problems)
