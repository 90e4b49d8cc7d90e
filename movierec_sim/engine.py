"""The simulation loop: simulated time advances tick by tick; users visit, ask the service,
choose, watch and rate; the writer (`writer.py`) puts their lines in the log."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from movierec.logformat.writer import (
    FRACTION_WEIGHTS,
    NANOS,
    format_with_fraction,
    recommendation_line,
)
from movierec.progress import Progress
from movierec.stream.base import Sink
from movierec_sim import behaviour as bh
from movierec_sim.config import SimConfig
from movierec_sim.conversion import ConversionTally
from movierec_sim.faults import (
    RATE,
    RECOMMENDATION,
    WATCH,
    FaultMaker,
)
from movierec_sim.ledger import Ledger
from movierec_sim.online import OnlineTally
from movierec_sim.oracle import Oracle
from movierec_sim.population import DAY, Population
from movierec_sim.recclient import CallOutcome, RecommendationClient
from movierec_sim.requests import InvalidRequests
from movierec_sim.world import World
from movierec_sim.writer import LogWriter


class Simulation:
    def __init__(
        self,
        world: World,
        config: SimConfig,
        sink: Sink,
        behaviour: bh.Behaviour | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.world = world
        self.config = config
        self.sink = sink
        self.behaviour = behaviour or bh.Behaviour()
        self.progress = progress
        self.population = Population(world, self.behaviour)
        self.oracle = Oracle(self.population, self.behaviour)
        seeds = np.random.SeedSequence([config.seed, 20251]).spawn(8)
        self.rng_visits, self.rng_choice, self.rng_watch, self.rng_faults = (
            np.random.default_rng(s) for s in seeds[:4]
        )
        self.rng_drift, self.rng_oracle, self.rng_requests, self.rng_time = (
            np.random.default_rng(s) for s in seeds[4:]
        )
        self.epoch = int(config.start.timestamp())
        self.tick = config.tick_seconds or auto_tick(world, config.speed)
        self.faults = FaultMaker(
            config.faults, world.movie_index, world.movie_ids, self.rng_faults, config.rating_scale
        )
        self.client = RecommendationClient(
            config.service, config.timeout, config.concurrency, config.result_separator
        )
        self.invalid = InvalidRequests(config.request_faults, self.rng_requests)
        share = config.oracle_share
        if share is None:  # whole-catalogue scoring per visit: keep it affordable
            share = min(1.0, 1500 / world.n_movies)
        self.oracle_share = share
        self.online = OnlineTally()
        self.conversion = ConversionTally(self.epoch, world.movie_index)
        self.ledger = Ledger(settings=_settings(config, self.behaviour, share))
        self.ledger.world = world.config.model_dump()  # all `movierec site` needs
        self.writer = LogWriter(
            world, sink, self.faults, self.rng_faults, self.ledger, self.tick, config.events
        )
        self.writer.on_lost = self.conversion.lost_line
        rate_rng = np.random.default_rng([config.seed, 99])
        self._rate_factor = np.exp(rate_rng.normal(-0.5, 1.0, world.n_users)).astype(np.float32)
        self.visits = 0
        self.t = 0  # simulated seconds since the start
        self._wall_start: float | None = None
        self._wall_seconds = 0.0
        # Told, before a tick's lines are written, the simulated second they all lie before
        # (`resume.py` keeps it as the log's high-water mark).
        self.before_write: Callable[[int], None] | None = None

    # ---- driving ----------------------------------------------------------------------------
    def run(self, should_stop: Callable[[], bool] = lambda: False) -> dict:
        """Simulate until the configured events or days (or should_stop); the ledger."""
        try:
            self.advance(self.config.days, should_stop)
        finally:
            self.close()
        return self.ledger_json()

    def advance(
        self,
        days: float | None,
        should_stop: Callable[[], bool] = lambda: False,
        after_tick: Callable[[], None] | None = None,
    ) -> None:
        """Simulate `days` more days (None: until the events limit or should_stop), carrying
        on from where the last call stopped: the main job alternates simulating and
        retraining on one continuous site. after_tick runs after each tick's lines are
        written (`resume.py` checkpoints there)."""
        cfg, tick = self.config, self.tick
        end = None if days is None else self.t + int(days * DAY)
        wall_start = time.monotonic()
        if self._wall_start is None:
            self._wall_start = wall_start - self.t / cfg.speed if cfg.speed > 0 else wall_start
        while not self._done() and not should_stop():
            if end is not None and self.t >= end:
                break
            if cfg.speed > 0:
                delay = self._wall_start + self.t / cfg.speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            day = self.t // DAY
            if day != self.population.day:
                self.population.start_day(int(day), self.rng_drift)
            self._visit(self.t, self.t + tick)
            if self.before_write is not None:
                self.before_write(self.t + tick)
            self.writer.flush(self.t // tick)
            self.t += tick
            if self.progress is not None:
                self.progress(self._status(self.t, wall_start))
            if after_tick is not None:
                after_tick()
        self.sink.flush()
        if self.progress is not None:  # the last word, however short the run was
            self.progress(self._status(self.t, wall_start), force=True)
        self._wall_seconds += time.monotonic() - wall_start

    def close(self) -> None:
        self.sink.flush()
        self.client.close()

    def ledger_json(self) -> dict:
        self.ledger.simulated = {
            "start": self.config.start.isoformat(),
            "seconds": self.t,
            "days": round(self.t / DAY, 4),
            "visits": self.visits,
            "wall_seconds": round(self._wall_seconds, 3),
        }
        self.ledger.online = self.online.to_json(self.oracle_share)
        # Lines before self.t are written (each tick is flushed after its visits).
        self.ledger.online["conversion@30m"] = self.conversion.to_json(self.t)
        return self.ledger.to_json()

    def _done(self) -> bool:
        limit = self.writer.events  # the config's, or a resumed run's (`resume.py`)
        return limit is not None and self.ledger.lines >= limit

    def _status(self, t: int, wall_start: float) -> dict:
        elapsed = max(time.monotonic() - wall_start, 1e-9)
        return {
            "lines": self.ledger.lines,
            "simulated_days": round(t / DAY, 3),
            "visits": self.visits,
            "lines_per_second": round(self.ledger.lines / elapsed),
            "calls": sum(self.ledger.calls.values()),
        }

    # ---- one tick of visits -----------------------------------------------------------------
    def _visit(self, t0: int, t1: int) -> None:
        pop, b, w = self.population, self.behaviour, self.world
        users, times = pop.visits(t0, t1, self.rng_visits)
        n = len(users)
        self.visits += n
        rng = self.rng_choice
        # Draws for every visit, whatever the service answers (common random numbers).
        ask = rng.random(n) < b.ask_share
        cascade_draws = rng.random((n, bh.LIST_LENGTH))
        candidates = pop.candidates(n, b.own_candidates, rng)
        gumbel = rng.gumbel(size=candidates.shape)
        leave_draw = rng.random(n)
        delay = rng.integers(b.start_delay[0], b.start_delay[1] + 1, n)
        asked = np.flatnonzero(ask)
        outcomes = self._call(users[asked], times[asked])
        shown = np.full((n, bh.LIST_LENGTH), bh.NO_MOVIE, dtype=np.int64)
        # The whole logged list, for conversion@30m: a user may also pick a movie past the
        # 20 shown on their own, and the log's figure counts that.
        width = max((len(o.items) for o in outcomes), default=0)
        listed = np.full((len(asked), max(width, bh.LIST_LENGTH)), bh.NO_MOVIE, dtype=np.int64)
        for i, (row, outcome) in enumerate(zip(asked.tolist(), outcomes, strict=True)):
            ids = [w.movie_index.get(item, bh.NO_MOVIE) for item in outcome.items]
            listed[i, : len(ids)] = ids
            shown[row] = listed[i, : bh.LIST_LENGTH]
        ok = np.array([o.status == 200 for o in outcomes], dtype=bool)
        self.conversion.requests(t0, users[asked[ok]], times[asked[ok]], listed[ok])

        pick = self._pick(users, shown, cascade_draws)
        own_affinity = pop.affinity(users, candidates)
        own_col = bh.own_pick(b, candidates, own_affinity, pop.seen(users, candidates), gumbel)
        own_movie = candidates[np.arange(n), own_col]
        from_list = pick >= 0
        leaves = ~from_list & (leave_draw < b.leave_share)
        movie = np.where(from_list, shown[np.arange(n), np.maximum(pick, 0)], own_movie)
        start = times + delay
        self._tally_online(
            users[asked],
            times[asked],
            shown[asked],
            movie[asked],
            ~leaves[asked],
            start[asked],
            own_movie[asked],
            leave_draw[asked],
            cascade_draws[asked],
        )
        watching = ~leaves
        self._sessions(users[watching], movie[watching], start[watching])

    def _pick(self, users: np.ndarray, shown: np.ndarray, draws: np.ndarray) -> np.ndarray:
        pop, b = self.population, self.behaviour
        valid = shown >= 0
        safe = np.where(valid, shown, 0)
        valid &= pop.released[safe]
        attract = bh.attraction(b, pop.affinity(users, safe), pop.seen(users, safe))
        return bh.cascade_pick(b, attract, valid, draws)

    def _call(self, users: np.ndarray, times: np.ndarray) -> list[CallOutcome]:
        """Ask the service for each visit's list; log each call as the site does."""
        paths = [f"/recommend/{u + 1}" for u in users.tolist()]
        extra = self.invalid.draw(len(paths))
        outcomes = self.client.call_many(paths + [path for _, path in extra])
        for (form, _), outcome in zip(extra, outcomes[len(paths) :], strict=True):
            self.ledger.count_invalid(form, outcome.status)
        outcomes = outcomes[: len(paths)]
        if not outcomes:
            return outcomes
        self.ledger.count_calls((o.status for o in outcomes), (o.latency_ms for o in outcomes))
        nanos = self.rng_time.integers(1, NANOS, len(outcomes))
        digits = self.rng_time.choice(np.arange(1, 10), size=len(outcomes), p=FRACTION_WEIGHTS)
        label = self.client.label
        texts = []
        for u, t, ns, d, o in zip(
            users.tolist(), times.tolist(), nanos.tolist(), digits.tolist(), outcomes, strict=True
        ):
            stamp = format_with_fraction(self.epoch + t, ns, d)
            texts.append(recommendation_line(stamp, u + 1, label, o.status, o.result, o.latency_ms))
        keys = (self.epoch + times) * NANOS + nanos
        self.writer.add(
            times,
            keys,
            RECOMMENDATION,
            users + 1,
            np.full(len(users), -1),
            np.zeros(len(users), dtype=np.int64),
            texts,
        )
        return outcomes

    def _tally_online(
        self,
        users: np.ndarray,
        times: np.ndarray,
        shown: np.ndarray,
        movie: np.ndarray,
        watched: np.ndarray,
        start: np.ndarray,
        own_movie: np.ndarray,
        leave_draw: np.ndarray,
        draws: np.ndarray,
    ) -> None:
        """Service vs oracle on the same visits: was a shown movie watched within 30 minutes?"""
        if len(users) == 0:
            return
        within = start - times <= 1800
        hit = watched & within & (shown == movie[:, None]).any(axis=1)
        expected = self.oracle.score_lists(users, shown)
        sample = self.rng_oracle.random(len(users)) < self.oracle_share
        best = self.oracle.best_lists(users[sample])
        pad = np.full((len(best), bh.LIST_LENGTH - best.shape[1]), bh.NO_MOVIE, dtype=np.int64)
        best = np.hstack([best, pad])
        best_pick = self._pick(users[sample], best, draws[sample])
        stays = leave_draw[sample] >= self.behaviour.leave_share
        own_in_best = (best == own_movie[sample][:, None]).any(axis=1)
        best_hit = ((best_pick >= 0) | (stays & own_in_best)) & within[sample]
        self.online.add(
            int(self.t // DAY),
            hit,
            expected,
            sample,
            best_hit,
            self.oracle.score_lists(users[sample], best),
        )

    def _sessions(self, users: np.ndarray, movies: np.ndarray, start: np.ndarray) -> None:
        """Watch minutes (one line a minute, counted from 0), then sometimes a rating."""
        if len(users) == 0:
            return
        # Every session streams at least a minute, so it has a watch line at its start.
        self.conversion.sessions(users, movies, start)
        pop, b, w = self.population, self.behaviour, self.world
        rng = self.rng_watch
        n = len(users)
        finish_draw = rng.random(n)
        fraction_draw = rng.beta(1.2, 2.5, n)
        rate_draw = rng.random(n)
        noise = rng.standard_normal(n)
        rate_delay = rng.integers(10, 600, n)
        affinity = pop.affinity(users, movies[:, None])[:, 0]
        runtime = w.movie_runtime[movies].astype(np.int64)
        minutes = bh.watch_minutes(b, affinity, runtime, finish_draw, fraction_draw)
        offsets = np.repeat(np.cumsum(minutes) - minutes, minutes)
        minute = np.arange(int(minutes.sum())) - offsets
        when = np.repeat(start, minutes) + 60 * minute
        self.writer.add(
            when,
            (self.epoch + when) * NANOS,
            WATCH,
            np.repeat(users + 1, minutes),
            np.repeat(movies, minutes),
            minute,
        )
        end = start + 60 * minutes
        rate_p = np.minimum(1.0, bh.rate_probability(b, affinity) * self._rate_factor[users])
        rates = rate_draw < rate_p
        stars = bh.rating(b, affinity, noise, self.config.rating_scale)
        rated_at = end + rate_delay
        self.writer.add(
            rated_at[rates],
            (self.epoch + rated_at[rates]) * NANOS,
            RATE,
            users[rates] + 1,
            movies[rates],
            stars[rates],
        )
        pop.busy_until[users] = np.where(rates, rated_at, end)
        pop.remember(users, movies)


def auto_tick(world: World, speed: float) -> int:
    """Simulated seconds per step. Paced runs step often so calls and lines come at their
    moment; fast runs step in batches of a few thousand visits (the work is vectorised)."""
    if speed > 0:
        return int(max(1, min(300, speed / 5)))
    visits_per_second = float(world.user_activity.sum()) / DAY
    return int(max(60, min(3600, 4000 / max(visits_per_second, 1e-9))) // 60 * 60)


def _settings(config: SimConfig, behaviour: bh.Behaviour, oracle_share: float) -> dict:
    return {
        "seed": config.seed,
        "events": config.events,
        "days": config.days,
        "start": config.start.isoformat(),
        "speed": config.speed,
        "tick_seconds": config.tick_seconds or "auto",
        "service": config.service,
        "timeout_ms": config.timeout_ms,
        "rating_scale": config.rating_scale,
        "result_separator": config.result_separator,
        "faults": dict(config.faults.shares),
        "request_faults": config.request_faults,
        "oracle_share": oracle_share,
        "ask_share": behaviour.ask_share,
    }
