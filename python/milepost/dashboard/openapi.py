"""The dashboard API's OpenAPI description (served at /openapi.json), generated: the paths from
the app's routes (Starlette's `SchemaGenerator` walks them), each endpoint's `Operation` declared
beside it, and the schemas from the answer types by pydantic (`TypeAdapter.json_schemas`), the
live snapshot's being the published `snapshot-v1.json`. A route without an `Operation` is an
error, so no route can be left out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple, TypeVar, Union

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.schemas import SchemaGenerator

from .params import Param

F = TypeVar("F", bound=Callable[..., Any])

#: A response: its description and what it holds: an answer type (or one of several), a media
#: type, or nothing.
Answer = Tuple[str, Union[type, Tuple[type, ...], str, None]]

INFO = {
    "title": "milepost dashboard",
    "version": "1",
    "description": "Live and past runs. With a token, send `Authorization: Bearer <token>` (or `?token=` "
    "where headers cannot be set: EventSource, WebSocket). Without one, only loopback Hosts "
    "on the server's port are answered (400 otherwise).",
}
#: JSON Schemas are referred to here (OpenAPI 3.1 schemas are JSON Schema 2020-12).
REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    """What an endpoint does, takes and answers, for its description."""

    summary: str
    params: Sequence[Param] = ()
    answers: Mapping[int, Answer] = field(default_factory=dict)


def documented(operation: Operation) -> Callable[[F], F]:
    """Declares `operation` for the endpoint it decorates (what `describe` reads)."""

    def mark(endpoint: F) -> F:
        endpoint.operation = operation  # type: ignore[attr-defined]
        return endpoint

    return mark


def describe(routes: Sequence[BaseRoute]) -> Dict[str, Any]:
    """The OpenAPI 3.1 description of `routes` (every route, each with its `Operation`)."""
    endpoints = [(e.path, e.http_method, e.func) for e in SchemaGenerator({}).get_endpoints(list(routes))]
    # A WebSocket route is no HTTP endpoint to Starlette; it is described as the GET it starts with.
    endpoints += [(r.path, "get", r.endpoint) for r in routes if isinstance(r, WebSocketRoute)]
    operations = [(path, method, _operation_of(func, path)) for path, method, func in endpoints]
    types = sorted(
        {t for _, _, op in operations for _, kind in op.answers.values() for t in _types(kind)},
        key=lambda t: t.__name__,
    )
    schemas = _schemas(types)
    paths: Dict[str, Dict[str, Any]] = {}
    for path, method, op in operations:
        paths.setdefault(path, {})[method] = {
            "summary": op.summary,
            "parameters": [p.describe() for p in op.params],
            "responses": {str(status): _answer(answer) for status, answer in op.answers.items()},
        }
    return {"openapi": "3.1.0", "info": INFO, "paths": paths, "components": {"schemas": schemas}}


def _operation_of(endpoint: Any, path: str) -> Operation:
    operation = getattr(endpoint, "operation", None)
    if not isinstance(operation, Operation):
        raise TypeError(f"the dashboard route {path} has no Operation (declare one with @documented)")
    return operation


def _types(kind: Any) -> Tuple[type, ...]:
    """The answer types a response may hold."""
    return (kind,) if isinstance(kind, type) else kind if isinstance(kind, tuple) else ()


def _answer(answer: Answer) -> Dict[str, Any]:
    description, kind = answer
    refs = [{"$ref": REF.format(model=t.__name__)} for t in _types(kind)]
    if refs:
        schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
        return {"description": description, "content": {"application/json": {"schema": schema}}}
    if isinstance(kind, str):
        return {"description": description, "content": {kind: {}}}
    return {"description": description}


def _schemas(types: List[type]) -> Dict[str, Any]:
    """JSON Schemas of `types` and of the types they hold, by name; pydantic is imported here
    only, when the description is first asked for."""
    from pydantic import TypeAdapter

    _, definitions = TypeAdapter.json_schemas(
        [(t.__name__, "serialization", TypeAdapter(t)) for t in types], ref_template=REF
    )
    schemas: Dict[str, Any] = dict(definitions.get("$defs", {}))
    snapshot, snapshot_defs = _published_snapshot()
    schemas.update(snapshot_defs, Snapshot=snapshot)
    if "LiveRun" in schemas:  # its snapshot is the published schema's, not any object
        schemas["LiveRun"]["properties"]["snapshot"] = {"$ref": REF.format(model="Snapshot")}
    return schemas


def _published_snapshot() -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """`snapshot-v1.json` as a component, its `$defs` beside it (refs pointed there)."""
    text = resources.files("milepost").joinpath("schema", "snapshot-v1.json").read_text(encoding="utf-8")
    schema = json.loads(text.replace('"#/$defs/', '"#/components/schemas/Snapshot_'))
    defs = {f"Snapshot_{name}": value for name, value in schema.pop("$defs", {}).items()}
    for key in ("$schema", "$id"):
        schema.pop(key, None)
    return schema, defs
