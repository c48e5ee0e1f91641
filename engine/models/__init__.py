"""A Prefect-shaped async facade over a runstate Engine.

Code written against `prefect.server.models` switches with an import change:

    from engine import models
    async with engine.session() as session:
        run = await models.flow_runs.create_flow_run(session, flow_run={"flow_id": flow.id})
        result = await models.flow_runs.set_flow_run_state(session, run.id, Pending(),
                                                           flow_policy="CoreFlowPolicy")

Functions keep the seeds' names and parameters (`session` first). See session.py
for what a session guarantees (each call is atomic; `session.atomic` groups).
"""
from . import (
    concurrency_limits,
    concurrency_limits_v2,
    deployments,
    flow_run_input,
    flow_run_states,
    flow_runs,
    flows,
    task_run_states,
    task_runs,
    workers,
)
from .session import Session, SessionContext

__all__ = [
    "Session", "SessionContext", "concurrency_limits", "concurrency_limits_v2", "deployments",
    "flow_run_input", "flow_run_states", "flow_runs", "flows", "task_run_states", "task_runs", "workers",
]
