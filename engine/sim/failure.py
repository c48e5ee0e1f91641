"""What the command line says when an exception escapes a running simulation (a
custom rule's bug, most often): when, on which run, in which rule, and the part of
the traceback in the user's own code, in place of a raw traceback.

The engine re-raises a rule's exception as it is (the proposal aborted and undone),
so the context is read off the traceback's frames: the innermost orchestration
rule, orchestration context and simulated run among their locals. Only on failure:
nothing is tracked on the hot path.
"""
from __future__ import annotations

import os
import traceback
from types import TracebackType
from typing import Any

from ..orchestration import BaseOrchestrationRule, BaseUniversalTransform, OrchestrationContext
from ..states import StateType
from .durations import format_duration
from .model import RunSim

__all__ = ["failure_text", "user_traceback"]

_ENGINE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def failure_text(simulation: Any, exc: BaseException) -> str:
    """One line: the simulated time, the run, the rule (when a rule raised) and the
    exception, e.g. ``simulation failed at 12m03s (2024-01-01 00:12:03 UTC), on task
    run 'extract-0' (task key 'extract', flow run 'crimson-fox'), PENDING -> RUNNING:
    rule my_rules.Strict raised ValueError: ...``."""
    loop = simulation.loop
    when = loop.to_datetime(loop.now).strftime("%Y-%m-%d %H:%M:%S UTC")
    rule, ctx, run = _found(exc.__traceback__)
    where = f"simulation failed at {format_duration(loop.now)} simulated ({when})"
    on = _run_text(ctx, run)
    if on:
        where += f", on {on}"
    error = f"{type(exc).__name__}: {exc}"
    if rule is None:
        return f"{where}: {error}"
    cls = type(rule)
    kind = "transform" if isinstance(rule, BaseUniversalTransform) else "rule"
    return (f"{where}, {_state(rule.from_state_type)} -> {_state(rule.to_state_type)}: "
            f"{kind} {cls.__module__}.{cls.__qualname__} raised {error}")


def user_traceback(exc: BaseException) -> str:
    """The traceback's frames from the first one outside the engine package (the
    user's rule) to where it was raised; the last frame alone when all are the
    engine's. Formatted as Python formats a traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    first = next((k for k, f in enumerate(frames) if not f.filename.startswith(_ENGINE_DIR)), len(frames) - 1)
    return "Traceback (most recent call last, from the first frame outside the engine):\n" + \
        "".join(traceback.format_list(frames[first:]))


def _found(tb: TracebackType | None) -> tuple[Any, Any, Any]:
    """The innermost rule (or transform), orchestration context and RunSim among the
    locals of the traceback's frames (None for each not there)."""
    frames = [frame for frame, _ in traceback.walk_tb(tb)]
    rule = ctx = run = None
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            if rule is None and isinstance(value, (BaseOrchestrationRule, BaseUniversalTransform)):
                rule = value
            elif ctx is None and isinstance(value, OrchestrationContext):
                ctx = value
            elif run is None and isinstance(value, RunSim):
                run = value
    if ctx is None and rule is not None:
        ctx = getattr(rule, "context", None)
    return rule, ctx, run


def _run_text(ctx: Any, run: RunSim | None) -> str:
    """The run the failing call was about: the context's (a task run, with its flow
    run when the simulated run is known) or else the simulated flow run."""
    flow_name = run.rec.name if run is not None else None
    record = getattr(ctx, "run", None)
    if record is not None and getattr(ctx, "run_kind", "") == "task_run":
        mine = run is not None and run.rec.id == record.flow_run_id
        of = f", flow run {flow_name!r}" if mine else ""
        return f"task run {record.name!r} (task key {record.task_key!r}{of})"
    if record is not None:
        return f"flow run {record.name!r}"
    return f"flow run {flow_name!r}" if flow_name is not None else ""


def _state(state_type: StateType | None) -> str:
    return "none" if state_type is None else state_type.value
