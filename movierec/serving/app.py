"""`GET /recommend/<userid>` and the service's own endpoints.

An answer comes from, in order: a list refreshed from the user's events newer than the
model (freshness), the model's precomputed list, the user's demographic segment (a user the
model does not know, whom the catalogue does), or what is popular. The handler is
synchronous and allocation-light: the work was done when the model was loaded. A method
other than GET or HEAD is refused before anything else, so a refused request never
computes a list nor reaches the answer log; and no endpoint takes a body, so the HTTP
layer refuses one (413) before it is read.

One exception to "synchronous": a snapshot whose model declares an answer delay (only the
deliberately slow kind does, movierec/models/slow.py) is answered by an awaitable that
sleeps that long first, so the event loop keeps serving everyone else meanwhile. Every
other answer takes the synchronous path, unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from movierec.http.server import HTTPServer, Limits, Request, Response
from movierec.ids import parse_user_id
from movierec.registry.experiments import Experiment
from movierec.registry.versions import Registry
from movierec.serving.explore import HEAD_SHARE, Exploration
from movierec.serving.metrics import CONTENT_TYPE as METRICS_TYPE
from movierec.serving.metrics import Metrics
from movierec.serving.openapi import OPENAPI
from movierec.serving.safety import AdultRule, restricted
from movierec.serving.shard import Shard, shard_of
from movierec.serving.snapshot import Demographics, Snapshot, describe
from movierec.serving.telemetry import AnswerLog

PREFIX = "/recommend/"
TEXT = "text/plain; charset=utf-8"
_OPENAPI_BODY = orjson.dumps(OPENAPI)
_NOT_READY = Response(503, b"no model loaded yet\n", TEXT, [("Retry-After", "1")])
_NOT_FOUND = Response(404, b"not found: try GET /recommend/<userid>\n", TEXT)
_NOT_ALLOWED = Response(
    405, b"method not allowed: only GET and HEAD\n", TEXT, [("Allow", "GET, HEAD")]
)
_ALLOWED = frozenset(("GET", "HEAD"))
# The service's HTTP limits: the defaults, except that no endpoint takes a request body.
LIMITS = Limits(max_body=0)


@dataclass(frozen=True)
class ExperimentPlan:
    """A running experiment and a snapshot per arm: installed in one assignment, so a
    request sees the whole plan or none of it."""

    experiment: Experiment
    snapshots: dict[str, Snapshot]  # arm name -> its version's snapshot


class RecommendationService:
    def __init__(
        self,
        models_dir: str | Path,
        telemetry_dir: Path | None = None,
        sample: float = 1.0,
        adult_for_unknown_age: bool = False,
        explore_slots: int = 0,
        explore_head: float = HEAD_SHARE,
        shard: Shard | None = None,
    ) -> None:
        self.registry = Registry(models_dir)
        self.metrics = Metrics()
        # The users this process holds (serving/shard.py); a request for anyone else's is
        # refused with a 421 naming their shard, never answered from the wrong lists.
        self.shard = shard or Shard()
        self.metrics.shard = str(self.shard)
        self.snapshot: Snapshot | None = None
        self.demographics = Demographics()
        # user -> (model version, ranked items): lists refreshed from recent events.
        self.fresh: dict[int, tuple[str, np.ndarray]] = {}
        self.answers = AnswerLog(telemetry_dir, sample, self.metrics)
        self.plan: ExperimentPlan | None = None
        self.last_error: str | None = None
        self.waiting: str | None = None  # why there is no model yet, as the loader last saw
        # Adult movies kept from minors (serving/safety.py); the loader installs the rule
        # of each catalogue read, and until one is read the service cannot keep them apart.
        self.adult_for_unknown_age = adult_for_unknown_age
        self.adult_rule = AdultRule.unenforced("no catalogue read")
        # Exploration slots (serving/explore.py): the service's, unless an arm sets its own.
        self.exploration = Exploration(explore_slots, explore_head)

    # ---- model lifecycle (called from the loader thread) ---------------------------------
    def install(self, snapshot: Snapshot) -> None:
        """Switch to a new snapshot: one assignment, so requests see the old or the new."""
        had = self.snapshot is not None
        self.snapshot = snapshot
        self.metrics.model_version = snapshot.version
        self.metrics.model_loaded_at = time.time()
        if had:
            self.metrics.swaps += 1

    def install_adult_rule(self, rule: AdultRule) -> None:
        """Switch to the adult filter of a new catalogue read (one assignment)."""
        self.adult_rule = rule
        self.metrics.adult_enforced = rule.enforced
        self.metrics.adult_movies = len(rule.adult)

    def http_server(self, host: str = "127.0.0.1", port: int = 0) -> HTTPServer:
        """The HTTP server for this service: its limits, counting into its metrics."""
        return HTTPServer(self.handle, host, port, limits=LIMITS, stats=self.metrics.http)

    # ---- requests (event loop thread) -----------------------------------------------------
    def handle(self, request: Request) -> Response | Awaitable[Response]:
        path = request.path
        route = _route(path)
        if request.method not in _ALLOWED:
            response = _NOT_ALLOWED  # before any work: no list, no answer log record
        elif route == "recommend":
            started = time.perf_counter()
            answered = self._recommend(request, path[len(PREFIX) :])
            if type(answered) is not Response:  # a model with an answer delay
                return self._finish(answered, started)
            response = answered
            self.metrics.observe(time.perf_counter() - started)
        elif route == "healthz":
            response = self._health(path.endswith("/live"))
        elif route == "metrics":
            response = Response(200, self.metrics.render(), METRICS_TYPE)
        elif route == "openapi":
            response = Response(200, _OPENAPI_BODY, "application/json")
        else:
            response = _NOT_FOUND
        self.metrics.requests[(route, response.status)] += 1
        return response

    async def _finish(self, answered: Awaitable[Response], started: float) -> Response:
        """A delayed answer, counted when it is given (its time includes the delay)."""
        response = await answered
        self.metrics.observe(time.perf_counter() - started)
        self.metrics.requests[("recommend", response.status)] += 1
        return response

    def _recommend(self, request: Request, text: str) -> Response | Awaitable[Response]:
        user = parse_user_id(text)
        if user is None:
            shown = text[:40].encode("ascii", "replace").decode()
            reason = f"invalid user id {shown!r}: expected a positive integer below 2^31\n"
            return Response(400, reason.encode(), TEXT)
        if not self.shard.whole and not self.shard.owns(user):
            return self._misrouted(user)
        snapshot = self.snapshot
        if snapshot is None:
            return _NOT_READY
        plan = self.plan
        if plan is None:
            body, source = self.answer(snapshot, user)
            if not body:
                return self._nothing_suitable()
            self.metrics.answers[source] += 1
            self.answers.record(user, snapshot.version, body, source)
            response = Response(200, body, TEXT, [("X-Model-Version", snapshot.version)])
            return _later(response, snapshot.answer_delay) if snapshot.answer_delay else response
        arm = plan.experiment.arm_of(user)
        snapshot = plan.snapshots[arm.name]
        body, source = self.answer(snapshot, user, arm.explore_slots)
        if not body:
            return self._nothing_suitable()
        self.metrics.answers[source] += 1
        self.metrics.arm_answers[(plan.experiment.id, arm.name, snapshot.version)] += 1
        self.answers.record(user, snapshot.version, body, source, plan.experiment.id, arm.name)
        headers = [("X-Model-Version", snapshot.version), ("X-Experiment-Arm", arm.name)]
        response = Response(200, body, TEXT, headers)
        return _later(response, snapshot.answer_delay) if snapshot.answer_delay else response

    def _misrouted(self, user: int) -> Response:
        """A user of another shard: neither their lists nor the knowledge of whether the
        model knows them are here, so any answer could be wrong (a fallback for a user the
        model knows); a 421 naming their shard, counted, is the honest one."""
        right = shard_of(user, self.shard.count)
        self.metrics.misrouted += 1
        why = f"user {user} is served by shard {right}/{self.shard.count}, not {self.shard}\n"
        return Response(421, why.encode(), TEXT, [("X-Movierec-Shard", f"{right}")])

    def _nothing_suitable(self) -> Response:
        """No movie may be shown to this user (the adult filter waits on the catalogue, or
        clears none of the model's movies): a 503 saying why, never an empty list."""
        state = self.adult_rule.state
        why = f"no movie is known to be suitable for this user (adult filter {state})\n"
        return Response(503, why.encode(), TEXT, [("Retry-After", "1")])

    def answer(
        self, snapshot: Snapshot, user: int, explore_slots: int | None = None
    ) -> tuple[bytes, str]:
        """A user's answer and its source; `explore_slots` None: the service's setting."""
        slots = self.exploration.slots if explore_slots is None else explore_slots
        fresh = self.fresh.get(user)
        if fresh is not None and fresh[0] == snapshot.version:
            return self._body(snapshot, user, fresh[1], slots), "fresh"
        row = snapshot.row(user)
        if row >= 0:
            return self._body(snapshot, user, snapshot.lists[row], slots), "model"
        if snapshot.segments is not None:
            segment = self.demographics.segment(user)
            if segment is not None:
                return self._body(snapshot, user, snapshot.segments[segment], slots), "segment"
        return self._body(snapshot, user, snapshot.popular, slots), "popular"

    def _body(self, snapshot: Snapshot, user: int, ranked: np.ndarray, slots: int = 0) -> bytes:
        """The answer from a ranked list, adult movies left out for a minor or a user of
        unknown age (serving/safety.py): every source and arm passes through here."""
        if slots:  # exploration first, so the adult filter also sees the explored movies
            ranked = self.exploration.ranked(snapshot, user, ranked, slots)
        rule = self.adult_rule
        if rule.filters:
            age = self.demographics.age_of(user)
            if restricted(age, self.adult_for_unknown_age):
                body, filtered = rule.body(snapshot, user, ranked)
                self.metrics.adult_filtered += filtered
                self.metrics.restricted_answers["minor" if age >= 0 else "unknown_age"] += 1
                return body
        return snapshot.body(ranked)

    def _health(self, live_only: bool) -> Response:
        snapshot = self.snapshot
        state: dict[str, Any] = {"live": True, "ready": snapshot is not None}
        if snapshot is not None:
            state["model"] = describe(snapshot)
            state["safety"] = self.adult_rule.describe(self.adult_for_unknown_age)
        plan = self.plan
        if plan is not None:
            state["experiment"] = {
                "id": plan.experiment.id,
                "arms": {a.name: [a.version, a.share] for a in plan.experiment.arms},
            }
        if snapshot is not None:  # like the model's and the safety's: once there is one
            state["explore"] = self.exploration.describe()
        if snapshot is not None and plan is not None:
            state["explore"]["arms"] = {
                a.name: self.exploration.slots if a.explore_slots is None else a.explore_slots
                for a in plan.experiment.arms
            }
        if snapshot is not None:  # the users held, of the model's (all of them unsharded)
            state["shard"] = {
                "shard": str(self.shard),
                "users": len(snapshot.user_ids),
                "model_users": snapshot.model_users,
                "catalogue_users": len(self.demographics.user_ids),
                "misrouted": self.metrics.misrouted,
            }
        if snapshot is None and self.waiting:
            state["waiting"] = self.waiting
        if self.answers.directory is not None:
            state["answer_log"] = self.answers.describe()
        if self.last_error:
            state["last_error"] = self.last_error
        ready = live_only or snapshot is not None
        return Response(200 if ready else 503, orjson.dumps(state), "application/json")


async def _later(response: Response, delay: float) -> Response:
    """The answer, after the answering model's declared delay."""
    await asyncio.sleep(delay)
    return response


def _route(path: str) -> str:
    """The route of a path, also its label in movierec_requests_total."""
    if path.startswith(PREFIX):
        return "recommend"
    if path in ("/healthz", "/healthz/live"):
        return "healthz"
    if path == "/metrics":
        return "metrics"
    return "openapi" if path == "/openapi.json" else "other"
