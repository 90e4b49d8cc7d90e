"""The simulated site's read-only user and movie API (SPEC section 2), with switchable faults.

    api = SiteApiServer(world, port=0, faults=ApiFaults(error_share=0.05)).start()
    ...  # GET {api.url}/user/12, GET {api.url}/movie/walle+2008
    api.set_faults(hang_share=0.01)
    api.stop()

The real site answers unknown ids with status 200 and a message body, is rate limited,
and is sometimes slow, errs, hangs, or drops or nulls fields. Each fault is drawn from a
seeded RNG and counted, so a run's dirt is reproducible and the ledger can report it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable
from typing import Any, Protocol
from urllib.parse import unquote

import orjson

from movierec.http.server import (
    CloseConnection,
    HTTPServer,
    Request,
    Response,
    ServerThread,
    run_forever,
)
from movierec_sim.config import ApiFaults

__all__ = ["ApiFaults", "SiteApiServer", "World", "serve_api"]

JSON = "application/json"
_INVALID_USER = Response(200, b'{"message":"invalid userID"}', JSON)
_MOVIE_NOT_FOUND = Response(200, b'{"message":"movie not found"}', JSON)
_RATE_LIMITED = Response(429, b'{"message":"rate limit exceeded"}', JSON)
_NOT_FOUND = Response(404, b'{"message":"not found"}', JSON)
_NOT_ALLOWED = Response(405, b'{"message":"method not allowed"}', JSON, [("Allow", "GET, HEAD")])
_ERROR_BODIES = {500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable"}
# Identifying fields are never dropped or nulled: the client knows which id it asked for,
# and a fault that renames the entity is a different kind of dirt.
_ID_FIELDS = frozenset(("user_id", "id"))
# The world keeps its data in numpy arrays; a stray numpy scalar must not become a 500.
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
# User ids are positive integers well below this many digits; longer is garbage.
_MAX_ID_DIGITS = 18


class World(Protocol):
    """What the API needs from the simulated world; None means unknown."""

    def user_json(self, user_id: int) -> dict[str, Any] | None: ...

    def movie_json(self, movie_id: str) -> dict[str, Any] | None: ...


class _FaultState:
    """Faults in force plus their RNG and bucket: swapped as one object, so a change made
    from another thread never mixes old settings with a new RNG."""

    __slots__ = ("faults", "last", "rng", "tokens")

    def __init__(self, faults: ApiFaults) -> None:
        self.faults = faults
        self.rng = random.Random(faults.seed)
        self.tokens = self._burst()
        self.last = time.monotonic()

    def _burst(self) -> float:
        f = self.faults
        return f.rate_limit_burst or max(1.0, f.rate_limit_rps)

    def take_token(self) -> bool:
        now = time.monotonic()
        self.tokens = min(
            self._burst(), self.tokens + (now - self.last) * self.faults.rate_limit_rps
        )
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


_COUNTERS = (
    "requests", "user_ok", "user_invalid", "movie_ok", "movie_not_found", "not_found",
    "rate_limited", "errors", "errors_500", "errors_502", "errors_503", "hangs", "delayed",
    "missing_fields", "null_fields",
)  # fmt: skip


class SiteApiServer:
    """The user/movie API on its own port, runnable in a background thread."""

    def __init__(
        self,
        world: World,
        port: int = 8080,
        faults: ApiFaults | None = None,
        control: bool = False,
        host: str = "127.0.0.1",
        **limits: Any,
    ) -> None:
        self.world = world
        self.control = control
        self._state = _FaultState(faults or ApiFaults())
        self._counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        # Set once the site has simulated its last day (`simulate --linger`): GET
        # /_site/finished answers 200 from then on, 503 before.
        self.finished = False
        self.http = HTTPServer(self.handle, host, port, **limits)
        self._thread: ServerThread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> SiteApiServer:
        self._thread = ServerThread(self.http, name="site-api").start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None

    def __enter__(self) -> SiteApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.http.port

    @property
    def url(self) -> str:
        return self.http.url

    # --- faults and counts -------------------------------------------------------------

    @property
    def faults(self) -> ApiFaults:
        return self._state.faults

    def set_faults(self, faults: ApiFaults | None = None, /, **changes: Any) -> ApiFaults:
        """Replace the faults (or change some fields); reseeds the RNG and refills the bucket."""
        new = faults if faults is not None else self.faults
        if changes:
            new = new.updated(changes)
        self._state = _FaultState(new)
        return new

    def stats(self) -> dict[str, int]:
        return dict(self._counts)

    def reset_stats(self) -> None:
        self._counts = dict.fromkeys(_COUNTERS, 0)

    # --- request handling --------------------------------------------------------------

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        path = request.path
        if path.startswith("/_control/"):
            return self._control(request) if self.control else _NOT_FOUND
        if path == "/_site/finished":
            return Response(200 if self.finished else 503, orjson.dumps(self.finished), JSON)
        if path.startswith("/user/"):
            kind, key = "user", path[6:]
        elif path.startswith("/movie/"):
            kind, key = "movie", path[7:]
        else:
            self._counts["not_found"] += 1
            return _NOT_FOUND
        if request.method not in ("GET", "HEAD"):
            return _NOT_ALLOWED
        counts = self._counts
        counts["requests"] += 1
        state = self._state
        f = state.faults
        rng = state.rng
        if f.rate_limit_rps and not state.take_token():
            counts["rate_limited"] += 1
            return _RATE_LIMITED
        if f.hang_share and rng.random() < f.hang_share:
            counts["hangs"] += 1
            return _hang(f.hang_max_s)
        if f.error_share and rng.random() < f.error_share:
            status = rng.choice(f.error_statuses)
            counts["errors"] += 1
            counts[f"errors_{status}"] = counts.get(f"errors_{status}", 0) + 1
            return Response(status, _ERROR_BODIES.get(status, b"Server Error"))
        delay = 0.0
        if (f.latency_ms or f.latency_jitter_ms) and rng.random() < f.latency_share:
            delay = (f.latency_ms + rng.uniform(0.0, f.latency_jitter_ms)) / 1000.0
            counts["delayed"] += 1
        response = self._user(key, state) if kind == "user" else self._movie(key, state)
        return _later(delay, response) if delay > 0 else response

    def _user(self, key: str, state: _FaultState) -> Response:
        data = None
        if key.isascii() and key.isdigit() and len(key) <= _MAX_ID_DIGITS:
            data = self.world.user_json(int(key))
        if data is None:
            self._counts["user_invalid"] += 1
            return _INVALID_USER
        self._counts["user_ok"] += 1
        return Response(200, orjson.dumps(self._damage(data, state), option=_NUMPY), JSON)

    def _movie(self, key: str, state: _FaultState) -> Response:
        if "%" in key:
            key = unquote(key, errors="replace")
        data = self.world.movie_json(key) if key and "/" not in key else None
        if data is None:
            self._counts["movie_not_found"] += 1
            return _MOVIE_NOT_FOUND
        self._counts["movie_ok"] += 1
        return Response(200, orjson.dumps(self._damage(data, state), option=_NUMPY), JSON)

    def _damage(self, data: dict[str, Any], state: _FaultState) -> dict[str, Any]:
        f = state.faults
        if not (f.missing_share or f.null_share):
            return data
        rng = state.rng
        missing = bool(f.missing_share) and rng.random() < f.missing_share
        null = bool(f.null_share) and rng.random() < f.null_share
        if not (missing or null):
            return data
        data = dict(data)  # never mutate the world's own dict
        if missing:
            self._counts["missing_fields"] += 1
            for name in _pick_fields(data, rng):
                del data[name]
        if null:
            self._counts["null_fields"] += 1
            for name in _pick_fields(data, rng):
                data[name] = None
        return data

    def _control(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("GET", "/_control/faults"):
            return Response.json(self.faults.to_dict())
        if route == ("POST", "/_control/faults"):
            try:
                changes = orjson.loads(request.body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("body must be a JSON object")
                new = self.set_faults(self.faults.updated(changes))
            except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
                return Response.json({"message": str(exc)}, 400)
            return Response.json(new.to_dict())
        if route == ("GET", "/_control/stats"):
            return Response.json(self.stats())
        if route == ("POST", "/_control/reset_stats"):
            self.reset_stats()
            return Response.json(self.stats())
        return _NOT_FOUND


def _pick_fields(data: dict[str, Any], rng: random.Random) -> list[str]:
    names = [name for name in data if name not in _ID_FIELDS]
    if not names:
        return []
    return rng.sample(names, rng.randint(1, min(3, len(names))))


async def _hang(seconds: float) -> Response:
    # Cancelled when the client gives up (connection lost) or the server stops.
    await asyncio.sleep(seconds)
    raise CloseConnection


async def _later(delay: float, response: Response) -> Response:
    await asyncio.sleep(delay)
    return response


def serve_api(
    world: World,
    port: int = 8080,
    faults: ApiFaults | None = None,
    host: str = "127.0.0.1",
    control: bool = False,
) -> None:
    """Serve the API in the foreground until SIGINT/SIGTERM."""
    api = SiteApiServer(world, port, faults, control=control, host=host)
    run_forever(api.http)
