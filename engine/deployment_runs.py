"""Creating a flow run from a deployment: what Prefect 3.1.0's
`POST /deployments/{id}/create_flow_run` route does around models.create_flow_run.

In the route's order:
1. the deployment's parameters, overlaid with the run's, are hydrated
   (schema_tools.hydrate; "Error hydrating flow run parameters: ...");
2. when the parameter schema is enforced (the run's `enforce_parameter_schema`, else
   the deployment's), they are validated against the deployment's
   `parameter_openapi_schema` ("Error creating flow run: Validation failed ...");
3. if the deployment's work queue belongs to a pool whose base job template has a
   "variables" schema, the pool's defaults overlaid with the deployment's and the
   run's job variables are validated against it, required fields included;
4. a `work_queue_name` is looked up in the deployment's pool, and created there if
   missing;
5. the run is created (idempotent on its key) in the given state, Scheduled by
   default, with the deployment's flow, id, version, queue and tags.
Any failure raises before anything is written (the queue of step 4 included).
"""
from __future__ import annotations

from typing import Any, Mapping

from .errors import ObjectNotFoundError, ValidationError, shown
from .records import Deployment, FlowRun
from .schema_tools import HydrationError, InvalidSchemaError, check_schema, error_finder, hydrate, validation_failure
from .states import Scheduled
from .validation import as_dict, as_bool, as_str, as_str_list, as_uuid, unknown_keys
from .workers import queue_named_or_created

__all__ = ["create_flow_run_from_deployment", "DEPLOYMENT_FLOW_RUN_FIELDS"]

# Prefect's DeploymentFlowRunCreate.
DEPLOYMENT_FLOW_RUN_FIELDS = frozenset({
    "state", "name", "parameters", "enforce_parameter_schema", "context", "infrastructure_document_id",
    "empirical_policy", "tags", "idempotency_key", "parent_task_run_id", "work_queue_name", "job_variables",
})
# Passed on to create_flow_run as given (infrastructure_document_id is passed too,
# falling back on the deployment's).
_PASSED_ON = ("name", "context", "empirical_policy", "idempotency_key", "parent_task_run_id")


def create_flow_run_from_deployment(engine: Any, deployment_id: Any, given: Mapping[str, Any]) -> FlowRun:
    """See the module docstring. O(size of the parameters, job variables and
    schemas) + create_flow_run."""
    dep_id = as_uuid(deployment_id, "deployment_id")
    unknown = unknown_keys(given, DEPLOYMENT_FLOW_RUN_FIELDS)
    if unknown:
        raise ValidationError(f"create_flow_run_from_deployment: unknown field(s) {', '.join(map(repr, unknown))}; "
                              f"expected some of {', '.join(sorted(DEPLOYMENT_FLOW_RUN_FIELDS))}")
    dep: Deployment | None = engine._table("deployment").get(dep_id)
    if dep is None:
        raise ObjectNotFoundError(f"Deployment with id {dep_id} not found")
    own = as_dict(given.get("parameters") or {}, "parameters")
    tags = as_str_list(given.get("tags") or [], "tags")
    queue_name = as_str(given.get("work_queue_name"), "work_queue_name")
    enforce = given.get("enforce_parameter_schema")
    enforce = dep.enforce_parameter_schema if enforce is None else as_bool(enforce, "enforce_parameter_schema")

    try:
        parameters = hydrate({**dep.parameters, **own})
    except HydrationError as exc:
        raise ValidationError(f"Error hydrating flow run parameters: {exc}") from None
    # The deployment's queue (None: not in a pool) decides steps 3 and 4.
    queue = engine._table("work_queue").get(dep.work_queue_id)
    try:
        if enforce:
            _check_parameters(dep, parameters)
        _check_job_variables(engine, queue, dep, given.get("job_variables"))
    except InvalidSchemaError as exc:
        raise ValidationError(str(exc)) from None

    fields = {name: given[name] for name in _PASSED_ON if name in given}
    fields.update(flow_id=dep.flow_id, deployment_id=dep.id, deployment_version=dep.version,
                  parameters=parameters, tags=list(dict.fromkeys([*dep.tags, *tags])),
                  # Always passed, as the route does: None becomes {} unless there is
                  # an idempotency key (create_flow_run).
                  job_variables=given.get("job_variables"),
                  work_queue_name=dep.work_queue_name, work_queue_id=dep.work_queue_id,
                  # The run's own, else the deployment's (Prefect: `or`).
                  infrastructure_document_id=given.get("infrastructure_document_id") or dep.infrastructure_document_id)
    if queue_name:
        fields["work_queue_id"] = _queue_in_deployment_pool(engine, queue, dep, queue_name)
        fields["work_queue_name"] = queue_name
    state = given.get("state")
    return engine.create_flow_run(fields, state=Scheduled() if state is None else state)


def _check_parameters(dep: Deployment, parameters: dict) -> None:
    schema = dep.parameter_openapi_schema
    if not isinstance(schema, dict):
        # Prefect's wording, "updating" included.
        raise ValidationError("Error updating deployment: Cannot update parameters because parameter schema "
                              "enforcement is enabled and the deployment does not have a valid parameter schema.")
    _refuse_unless_valid(parameters, schema)


def _refuse_unless_valid(instance: Any, schema: Any, **options: bool) -> None:
    """ValidationError with Prefect's message unless `instance` is valid under
    `schema` (schema_tools.validation_failure and its `options`)."""
    failure = validation_failure(instance, schema, **options)
    if failure is not None:
        raise ValidationError(f"Error creating flow run: {failure}")


def _check_job_variables(engine: Any, queue: Any, dep: Deployment, run_job_variables: Any) -> None:
    """Prefect's validate_job_variables_for_deployment_flow_run: nothing to check
    without a pool, a base job template or a "variables" schema in it."""
    pool = engine._table("work_pool").get(queue.work_pool_id) if queue is not None else None
    template = pool.base_job_template if pool is not None else None
    variables = template.get("variables") if template else None
    if not variables:
        return
    check_schema(variables)
    defaults, some_invalid = _pool_defaults(variables)
    merged = dict(defaults)
    for overlay in (dep.job_variables or {}, run_job_variables or {}):
        if isinstance(overlay, dict):
            merged.update(overlay)
    # Required fields are checked unless an invalid default was dropped (it may have
    # been what satisfied one); None passes for a field with a default.
    _refuse_unless_valid(merged, variables, ignore_required=some_invalid, allow_none_with_default=True)


def _pool_defaults(variables: Any) -> tuple[dict, bool]:
    """The variables' defaults that are valid on their own (formats checked, required
    fields not), and whether any was dropped. A default that refers to a block
    document raises ObjectNotFoundError: runstate keeps no blocks, so, as in a Prefect
    without that block, it is "Block not found."; a `$ref` without a block document
    id is skipped, as Prefect does."""
    properties = variables.get("properties") if isinstance(variables, dict) else None
    defaults: dict = {}
    some_invalid = False
    if not isinstance(properties, dict):
        return defaults, some_invalid
    errors_of = None  # built for the first default there is to check
    for name, prop in properties.items():
        if not isinstance(prop, dict) or "default" not in prop:
            continue
        default = prop["default"]
        if isinstance(default, dict) and "$ref" in default:
            reference = default["$ref"]
            if isinstance(reference, dict) and reference.get("block_document_id") is not None:
                raise ObjectNotFoundError("Block not found.")
            continue
        if errors_of is None:
            errors_of = error_finder(variables, ignore_required=True)
        if errors_of({name: default}):
            some_invalid = True
        else:
            defaults[name] = default
    return defaults, some_invalid


def _queue_in_deployment_pool(engine: Any, queue: Any, dep: Deployment, queue_name: str) -> Any:
    if queue is None:
        # Prefect's route fails with AttributeError (a 500) here.
        raise ValidationError(f"work_queue_name {shown(queue_name)}: deployment {dep.id} has no work queue, "
                              "so it has no work pool to look the queue up in")
    return queue_named_or_created(engine, queue.work_pool_id, queue_name).id
