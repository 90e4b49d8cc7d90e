"""The service's OpenAPI description (served at /openapi.json; the fuzz tests use it)."""

from __future__ import annotations

from typing import Any

_TEXT = {"text/plain": {"schema": {"type": "string"}}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "movierec", "version": "1", "description": "Movie recommendations."},
    "paths": {
        "/recommend/{userid}": {
            "get": {
                "summary": "Up to 20 movie ids for a user, most recommended first",
                "parameters": [
                    {
                        "name": "userid",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "comma-separated movie ids",
                        "content": _TEXT,
                        "headers": {"X-Model-Version": {"schema": {"type": "string"}}},
                    },
                    "400": {"description": "not a user id", "content": _TEXT},
                    "421": {
                        "description": "a sharded service (serve --shard I/N) asked for a "
                        "user of another shard: the body and X-Movierec-Shard name it",
                        "content": _TEXT,
                        "headers": {"X-Movierec-Shard": {"schema": {"type": "integer"}}},
                    },
                    "503": {"description": "no model loaded yet", "content": _TEXT},
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "liveness and readiness",
                "responses": {
                    "200": {
                        "description": "ready",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "503": {"description": "alive, no model yet"},
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "text exposition format", "content": _TEXT}},
            }
        },
    },
}
