"""The applications the benchmarks' peer servers run: imported by uvicorn and granian in
their own processes (bench/peers.py starts them with this folder on the import path).

The fixed-body apps answer every request with the same bytes as bench_http.py's handler
for movierec's core, so the servers do the same work. The service adapters mount the real
RecommendationService.handle, loaded the way `movierec serve` loads it (ModelLoader.check
on the registry named by MOVIEREC_BENCH_MODELS), so bench_serve.py compares the HTTP layers
under the same handler and the same answers.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

BODY = b"mona+lisa+1986,interstellar+2014,our+paradise+2011,walle+2008,schindlers+list+1993"
TEXT_PLAIN = "text/plain; charset=utf-8"
MODELS_VARIABLE = "MOVIEREC_BENCH_MODELS"

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Content-Length is given so that uvicorn answers with a plain body, not chunked encoding,
# like every other server in the comparison.
_FIXED_HEADERS = [
    (b"content-type", TEXT_PLAIN.encode()),
    (b"content-length", str(len(BODY)).encode()),
]
_FIXED_RSGI_HEADERS = [("content-type", TEXT_PLAIN)]


async def fixed_asgi(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """A minimal raw ASGI app: the fixed body for any HTTP request."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _FIXED_HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def fixed_rsgi(scope: Any, protocol: Any) -> None:
    """The same app on granian's native interface (RSGI)."""
    protocol.response_bytes(200, _FIXED_RSGI_HEADERS, BODY)


def _load_service() -> Any:
    """The service over the registry in MOVIEREC_BENCH_MODELS, its production model loaded;
    None when the variable is unset (the fixed-body apps need no model)."""
    models = os.environ.get(MODELS_VARIABLE)
    if not models:
        return None
    from movierec.serving.app import RecommendationService
    from movierec.serving.loader import ModelLoader

    service = RecommendationService(models)
    # The same thread count as bench_serve.py gives `movierec serve` (--threads 2).
    if not ModelLoader(service, threads=2).check():
        raise RuntimeError(f"{models}: no production model could be loaded ({service.last_error})")
    return service


_SERVICE = _load_service()


def _headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    # movierec's Request: lower-cased names, repeated headers joined with ", ".
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _handle(method: str, path: str, query: str, version: str, headers: dict[str, str]) -> Any:
    from movierec.http.messages import Request

    if _SERVICE is None:
        raise RuntimeError(f"{MODELS_VARIABLE} is not set: the service adapter has no model")
    target = f"{path}?{query}" if query else path
    request = Request(method, target, path, query, version, headers)
    return _SERVICE.handle(request)


async def service_asgi(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """RecommendationService.handle behind ASGI (uvicorn, granian's ASGI)."""
    if scope["type"] != "http":
        return
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    pairs = ((n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"])
    response = _handle(
        scope["method"],
        path,
        scope["query_string"].decode("latin-1"),
        f"HTTP/{scope['http_version']}",
        _headers(pairs),
    )
    headers = [
        (b"content-type", response.content_type.encode("latin-1")),
        (b"content-length", str(len(response.body)).encode()),
    ]
    for name, value in response.headers or ():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    body = b"" if scope["method"] == "HEAD" else response.body
    await send({"type": "http.response.body", "body": body})


async def service_rsgi(scope: Any, protocol: Any) -> None:
    """RecommendationService.handle behind granian's native interface (RSGI)."""
    response = _handle(
        scope.method,
        scope.path,
        scope.query_string,
        f"HTTP/{scope.http_version}",
        _headers(scope.headers.items()),
    )
    headers = [("content-type", response.content_type), *(response.headers or ())]
    if scope.method == "HEAD":
        protocol.response_empty(response.status, headers)
    else:
        protocol.response_bytes(response.status, headers, response.body)
