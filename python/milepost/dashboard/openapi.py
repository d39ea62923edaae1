"""The dashboard API's OpenAPI description (served at /openapi.json)."""

from __future__ import annotations

from typing import Any, Dict

_run_id = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
_json = {"application/json": {"schema": {"type": "object"}}}
#: What a bad query value gets: its name and value in `error`.
_bad = {"400": {"description": "`{error}`: a query value that cannot be taken, named", "content": _json}}

OPENAPI: Dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "milepost dashboard", "version": "1",
             "description": "Live and past runs. With a token, send `Authorization: Bearer <token>` "
                            "(or `?token=` where headers cannot be set: EventSource, WebSocket). Without "
                            "one, only loopback Hosts on the server's port are answered (400 otherwise)."},
    "paths": {
        "/api/runs": {"get": {"summary": "Live runs, then past runs, newest first", "parameters": [
            {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 50, "minimum": 1, "maximum": 500}},
            {"name": "offset", "in": "query", "schema": {"type": "integer", "default": 0, "minimum": 0}},
            {"name": "name", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "`{runs: [...], total}`", "content": _json}, **_bad}}},
        "/api/runs/{run_id}": {"get": {"summary": "A live run's snapshot, or a past run's record",
                                       "parameters": [_run_id],
                                       "responses": {"200": {"description": "`{live, snapshot}` or `{live, run, phases, failures}`",
                                                             "content": _json},
                                                     "404": {"description": "No such run"}}}},
        "/api/runs/{run_id}/logs": {"get": {"summary": "Log lines and failures", "parameters": [
            _run_id,
            {"name": "level", "in": "query", "schema": {"enum": ["debug", "info", "warning", "error", "critical"]}},
            {"name": "source", "in": "query", "schema": {"type": "string"}},
            {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
            "responses": {"200": {"description": "`{logs: [{id, ts, kind, level, source, message, path}]}`; "
                                                 "`path` is below the run", "content": _json}, **_bad}}},
        "/api/runs/{run_id}/events": {"get": {
            "summary": "Server-Sent Events: `snapshot` (at most 5 a second), lifecycle events (with ids; "
                       "`Last-Event-ID` resumes; at most 100 a turn, a stream further behind gets `skipped` "
                       "`{first, last}`), keep-alive comments, and `end` after the run's last snapshot",
            "parameters": [_run_id, {"name": "Last-Event-ID", "in": "header", "schema": {"type": "integer"}},
                           {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
            "responses": {"200": {"description": "text/event-stream", "content": {"text/event-stream": {}}},
                          **_bad}}},
        "/api/runs/{run_id}/cancel": {"post": {"summary": "Cancel a live run (the token, or the dashboard's own "
                                                          "Origin: a request without one is refused)",
                                               "parameters": [_run_id],
                                               "responses": {"202": {"description": "Cancel requested"},
                                                             "403": {"description": "Another Origin, or none"},
                                                             "404": {"description": "Not a live run"}}}},
        "/ws": {"get": {"summary": "WebSocket: the same stream as /events, as JSON messages `{type, id, data}`; "
                                   "a page of another Origin is refused",
                        "parameters": [{"name": "run", "in": "query", "required": True, "schema": {"type": "string"}},
                                       {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                        "responses": {"101": {"description": "Switching protocols"}}}},
        "/metrics": {"get": {"summary": "Prometheus exposition of the live runs (and the open streams)",
                             "responses": {"200": {"description": "text/plain; version=0.0.4"}}}},
        "/healthz": {"get": {"summary": "`ok` while the server answers",
                             "responses": {"200": {"description": "text/plain"}}}},
    },
}
