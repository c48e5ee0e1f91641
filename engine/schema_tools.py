"""Prefect's JSON-value tools (prefect.utilities.schema_tools in 3.1.0), as the routes
that take user JSON use them: hydration of `{"__prefect_kind": ...}` values, the
repairs Prefect applies to pydantic-v1 schemas, and JSON Schema validation (draft
2020-12) with Prefect's failure messages.

Used by the resume route (a run input against the schema its pause stored) and by
create_flow_run_from_deployment (parameters against the deployment's schema, job
variables against the work pool's). jsonschema is imported on first validation, so
an engine that never validates never loads it.
"""
from __future__ import annotations

import contextlib
import copy
import json
from typing import Any, Callable, Iterator

__all__ = [
    "HydrationError", "InvalidSchemaError", "hydrate", "preprocess_schema", "remove_required",
    "validation_failure", "check_schema", "error_finder",
]


class HydrationError(Exception):
    """A `__prefect_kind` value that cannot be hydrated; the message is Prefect's."""


class InvalidSchemaError(Exception):
    """The schema itself is unusable (not a JSON Schema, circular, a reference to
    nowhere); the message starts with "Invalid schema: "."""


# Hydration -------------------------------------------------------------------------------------


class _Remove:
    """A value hydration drops from its enclosing dict or list."""


_REMOVE = _Remove()


def hydrate(obj: Any) -> Any:
    """`obj` with its `__prefect_kind` objects replaced, as Prefect hydrates with
    errors raised, Jinja rendered and workspace variables looked up: "none" stands for
    its value, "json" for its parsed text, unknown kinds for their value unhydrated.
    runstate renders no Jinja and keeps no workspace variables, so those kinds raise
    HydrationError. A top-level value that hydration drops becomes {}."""
    try:
        value = _hydrate(obj)
    except RecursionError:  # (the JSON a store keeps nests at most MAX_JSON_DEPTH deep)
        raise HydrationError("the value nests too deep to hydrate") from None
    return {} if value is _REMOVE else value


def _hydrate(obj: Any) -> Any:
    if isinstance(obj, dict):
        if "__prefect_kind" in obj:
            return _kind(obj.get("__prefect_kind"), obj)
        out = {}
        for k, v in obj.items():
            v = _hydrate(v)
            if v is not _REMOVE:
                out[k] = v
        return out
    if isinstance(obj, list):
        return [v for v in map(_hydrate, obj) if v is not _REMOVE]
    return obj


def _kind(kind: Any, obj: dict) -> Any:
    if kind == "none":
        if "value" not in obj:
            raise HydrationError("Missing 'value' key in __prefect object")
        return _hydrate(obj["value"])
    if kind == "json":
        text = _argument(obj, "value")
        if text is _REMOVE:
            return text
        try:
            return json.loads(text)
        except (ValueError, TypeError) as exc:
            raise HydrationError(f"Invalid JSON: {exc}") from None
    if kind == "jinja":
        if "template" not in obj:
            raise HydrationError("Missing 'template' key in __prefect object")
        raise HydrationError("runstate does not render Jinja templates")
    if kind == "workspace_variable":
        name = _argument(obj, "variable_name")
        if name is _REMOVE:
            return name
        raise HydrationError(f"Variable '{name}' not found in workspace.")
    return obj.get("value")


def _argument(obj: dict, name: str) -> Any:
    # A missing argument drops the value; Prefect hydrates one only when it is
    # itself an object.
    if name not in obj:
        return _REMOVE
    value = obj[name]
    return _hydrate(value) if isinstance(value, dict) else value


# Schema repairs --------------------------------------------------------------------------------


def preprocess_schema(schema: Any, allow_none_with_default: bool = False) -> Any:
    """Prefect's repairs of pydantic-v1 schemas, on a copy: an optional property with
    a type also admits null (unless it has a default and `allow_none_with_default` is
    off), a tuple's `items` list becomes `prefixItems`; the same inside
    `definitions`, where a block-typed definition also admits a block reference.

    Kept from Prefect on purpose: nested properties are repaired as if
    `allow_none_with_default` were off, and a property's siblings read the `required`
    list of the last nested object entered before them, not their own."""
    if not isinstance(schema, dict):
        return schema
    schema = copy.deepcopy(schema)
    if "properties" in schema:
        _fix_properties(schema["properties"], schema.get("required", []), allow_none_with_default)
    definitions = schema.get("definitions")
    if "definitions" in schema and isinstance(definitions, dict):
        for name, definition in list(definitions.items()):
            if isinstance(definition, dict):
                if "properties" in definition:
                    _fix_properties(definition["properties"], definition.get("required", []), allow_none_with_default)
                if "block_type_slug" in definition:
                    definitions[definition.get("title", name)] = _block_or_reference(definition)
    return schema


def _fix_properties(properties: Any, required: Any, allow_none_with_default: bool) -> None:
    if not isinstance(properties, dict):
        return
    for key, prop in properties.items():
        if not isinstance(prop, dict):
            continue
        if (key not in required and "type" in prop and prop["type"] != "null"
                and ("default" not in prop or allow_none_with_default)):
            prop["anyOf"] = [{"type": prop.pop("type")}, {"type": "null"}]
        items = prop.get("items")
        if items and isinstance(items, list) and not prop.get("prefixItems"):
            prop["prefixItems"] = prop.pop("items")
        if "properties" in prop:
            required = prop.get("required", [])
            _fix_properties(prop["properties"], required, False)


def _block_or_reference(definition: dict) -> dict:
    reference = {"oneOf": [{"type": "string", "format": "uuid"},
                           {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1}]}
    return {"oneOf": [definition, {"type": "object", "properties": {"$ref": reference}, "required": ["$ref"]}]}


def remove_required(schema: Any) -> Any:
    """A copy of `schema` without any key named "required", at any depth (Prefect's
    remove_nested_keys, which also drops a property that happens to be called so)."""
    if not isinstance(schema, dict):
        return schema
    return {k: remove_required(v) for k, v in schema.items() if k != "required"}


# Validation ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _usable_schema() -> Iterator[None]:
    """Turn jsonschema's complaints about the schema itself (not a JSON Schema,
    circular, a reference to nowhere) into InvalidSchemaError."""
    import jsonschema
    import referencing.exceptions

    try:
        yield
    except RecursionError:
        raise InvalidSchemaError("Invalid schema: Unable to validate schema with circular references.") from None
    except jsonschema.SchemaError as exc:
        raise InvalidSchemaError(f"Invalid schema: {exc.message}") from None
    except referencing.exceptions.Unresolvable as exc:
        raise InvalidSchemaError(f"Invalid schema: {exc}") from None


def _validator_class() -> Any:
    import jsonschema  # on first use: most engines never validate a JSON value

    return jsonschema.Draft202012Validator


def check_schema(schema: Any) -> None:
    """Prefect's is_valid_schema without repairs: InvalidSchemaError unless `schema`
    is a usable draft 2020-12 schema. Once per content (see `_remembered`)."""
    def check() -> bool:
        with _usable_schema():
            _validator_class().check_schema(schema)
        return True

    _remembered("checked", schema, (), check)


def validation_failure(instance: Any, schema: Any, *, ignore_required: bool = False,
                       allow_none_with_default: bool = False) -> str | None:
    """None if `instance` is valid against `schema`, else Prefect's message for the
    most relevant error: "Validation failed[ for field 'a.b']. Failure reason: ...".
    InvalidSchemaError for an unusable schema (Prefect answers a schema that is not
    a JSON Schema, or refers to nowhere, with a server error). The schema is
    repaired and checked once per content (see `_remembered`), then O(instance)."""
    import jsonschema

    def build() -> Any:
        repaired = preprocess_schema(schema, allow_none_with_default)
        if ignore_required:
            repaired = remove_required(repaired)
        cls = _validator_class()
        with _usable_schema():
            cls.check_schema(repaired)
        return cls(repaired)

    validator = _remembered("validator", schema, (ignore_required, allow_none_with_default), build)
    with _usable_schema():
        error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is None:
        return None
    path = error.json_path
    where = "Validation failed." if path == "$" else f"Validation failed for field {path.replace('$.', '')!r}."
    return f"{where} Failure reason: {error.message}"


def error_finder(schema: Any, *, ignore_required: bool = False) -> Callable[[Any], list[Any]]:
    """A function giving every error of an instance against `schema` as given (no
    repairs), formats checked: Prefect's non-raising validate, as it vets a work
    pool's defaults. The validator is built once per content (see `_remembered`).
    InvalidSchemaError as validation_failure."""
    def build() -> Any:
        cls = _validator_class()
        return cls(remove_required(schema) if ignore_required else schema, format_checker=cls.FORMAT_CHECKER)

    validator = _remembered("formats", schema, (ignore_required,), build)

    def errors_of(instance: Any) -> list[Any]:
        with _usable_schema():
            return list(validator.iter_errors(instance))

    return errors_of


# What is built from a schema (a checked validator; the fact that it is usable), by
# the schema's JSON text and the options used: a deployment's runs (or a pause's
# inputs) are checked against one schema many times, and repairing a schema and
# checking it against the metaschema costs ~1 ms where validating a typical
# instance costs ~50 µs. By content, not identity, so a schema changed in place is
# built afresh; the text keeps key order, which decides ties between equally
# relevant errors. What fails to build is not remembered. Oldest out past the bound.
_REMEMBERED: dict[tuple, Any] = {}
_REMEMBERED_KEPT = 256


def _remembered(what: str, schema: Any, options: tuple, build: Callable[[], Any]) -> Any:
    try:
        # (Stored schemas are JSON already: validation.as_json_dict.)
        key = (what, json.dumps(schema), options)
    except (TypeError, ValueError):  # not JSON, or circular: built every time
        return build()
    found = _REMEMBERED.get(key)
    if found is None:
        found = build()
        if len(_REMEMBERED) >= _REMEMBERED_KEPT:
            del _REMEMBERED[next(iter(_REMEMBERED))]
        _REMEMBERED[key] = found
    return found
