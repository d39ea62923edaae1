"""The dashboard's OpenAPI description is generated from its routes and answer types: every route
is in it, it is valid OpenAPI 3.1, and real answers (live and past runs, logs, errors) match the
schemas it gives them."""

from __future__ import annotations

import time
from typing import Any, Dict

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from starlette.routing import Route, WebSocketRoute

import milepost
from milepost import dashboard


@pytest.fixture
def server():
    dashboard.stop()
    srv = dashboard.start(port=0)
    yield f"http://127.0.0.1:{srv.port}"
    dashboard.stop()


def _schema_of(spec: Dict[str, Any], path: str, status: str = "200", method: str = "get") -> Dict[str, Any]:
    """The schema the description gives an answer, resolvable against the whole description."""
    content = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
    return {**content["schema"], "components": spec["components"]}


def _check(spec: Dict[str, Any], path: str, answer: Any, status: str = "200") -> None:
    errors = list(Draft202012Validator(_schema_of(spec, path, status)).iter_errors(answer))
    assert errors == [], [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def test_every_route_is_described_and_the_description_is_valid(server) -> None:
    app = dashboard.create_app()
    spec = httpx.get(server + "/openapi.json").json()
    validate(spec)  # OpenAPI 3.1, with its schemas
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            assert "get" in spec["paths"][route.path], route.path
            continue
        assert isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}:
            operation = spec["paths"][route.path][method.lower()]
            assert operation["summary"] and operation["responses"], (route.path, method)
    limit = next(p for p in spec["paths"]["/api/runs"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}


def test_real_answers_match_the_schemas_they_are_described_with(server) -> None:
    with milepost.Run("described", display="none") as past:
        with past.phase("map", total=3) as ph:
            ph.advance(2)
            ph.fail("doc-1", "broken")
            ph.metric("cost_usd", 0.1)
        past.log("kept", source="me")
    spec = httpx.get(server + "/openapi.json").json()
    with milepost.Run("described-live", display="none", dashboard={"port": 0}) as run:
        run.phase("p", total=5).advance(2)
        run.log("hello", level="warning", source="x")
        time.sleep(0.4)
        _check(spec, "/api/runs", httpx.get(server + "/api/runs").json())
        _check(spec, "/api/runs/{run_id}", httpx.get(f"{server}/api/runs/{run.id}").json())
        _check(spec, "/api/runs/{run_id}/logs", httpx.get(f"{server}/api/runs/{run.id}/logs").json())
    _check(spec, "/api/runs/{run_id}", httpx.get(f"{server}/api/runs/{past.id}").json())
    _check(spec, "/api/runs/{run_id}/logs", httpx.get(f"{server}/api/runs/{past.id}/logs").json())
    _check(spec, "/api/runs/{run_id}", httpx.get(f"{server}/api/runs/nope").json(), "404")
    _check(spec, "/api/runs", httpx.get(server + "/api/runs", params={"limit": "x"}).json(), "400")
