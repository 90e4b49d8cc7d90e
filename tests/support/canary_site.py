"""A live site for the canary tests: the real service on loopback over a registry, the
simulated site's users calling it and logging to a file, ingestion into a store, and the
canary's decision step, all in this process and all on one continuous simulated site.

    site = CanarySite.open(root)     a world, a few days answered 503 (no model yet), then
                                     popularity, item-kNN, random lists and the slow kind
                                     fitted on that store, popularity promoted and loaded
    outcome = site.run_canary(version, config)   start, then simulate/ingest/step until a
                                     decision; how many steps, requests and seconds it took
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from movierec.features.feedback import FeedbackConfig
from movierec.features.interactions import training_data
from movierec.http.server import ServerThread
from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.models.base import Recommender
from movierec.models.itemknn import ItemKNNRecommender
from movierec.models.popularity import PopularityRecommender
from movierec.models.random_lists import RandomListsRecommender
from movierec.models.slow import SlowRecommender
from movierec.registry.experiments import Experiments, answer_log_dir
from movierec.registry.versions import Registry
from movierec.release.canary import CanaryDecision, start_canary, step
from movierec.release.canary_rules import CanaryConfig
from movierec.serving.app import RecommendationService
from movierec.serving.loader import ModelLoader
from movierec.store.events import EventStore
from movierec.stream import open_sink
from movierec.stream.base import Sink
from movierec_sim.api import SiteApiServer
from movierec_sim.engine import SimConfig, Simulation
from movierec_sim.world import World, WorldConfig
from tests.support.waiting import wait_until

WORLD = WorldConfig(users=3000, movies=80, seed=11)
BOOTSTRAP_DAYS = 3.0  # the site's log before any model: what the versions learn from
TICK_SECONDS = 1800  # a tick's calls are made together, so a slow arm costs one wait a tick


@dataclass
class Outcome:
    decision: CanaryDecision
    steps: int
    seconds: float
    simulated_hours: float

    def figures(self) -> dict[str, Any]:
        arms = self.decision.evidence.get("arms", {})
        return {
            "decision": self.decision.decision,
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "simulated_hours": self.simulated_hours,
            "requests": {name: figures["requests"] for name, figures in arms.items()},
        }


@dataclass
class CanarySite:
    root: Path
    world: World
    api: SiteApiServer
    service: RecommendationService
    loader: ModelLoader
    server: ServerThread
    sink: Sink
    simulation: Simulation
    versions: dict[str, str] = field(default_factory=dict)  # kind -> version

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @classmethod
    def open(cls, root: Path) -> CanarySite:
        world = World(WORLD)
        api = SiteApiServer(world, port=0).start()
        models = root / "models"
        service = RecommendationService(models, answer_log_dir(models), sample=1.0)
        loader = ModelLoader(service, poll=0.05).start()
        server = ServerThread(service.http_server()).start()
        sink = open_sink(f"file://{root / 'log'}")
        config = SimConfig(
            seed=3, service=f"http://127.0.0.1:{server.port}", tick_seconds=TICK_SECONDS
        )
        site = cls(root, world, api, service, loader, server, sink, Simulation(world, config, sink))
        site.simulation.advance(BOOTSTRAP_DAYS)
        site.ingest()
        site._train()
        return site

    def close(self) -> None:
        self.simulation.close()
        self.sink.close()
        self.server.stop()
        self.loader.stop()
        self.service.answers.close()
        self.api.stop()

    def ingest(self) -> None:
        Ingestor(
            IngestConfig(
                source=f"file://{self.root / 'log'}",
                store=str(self.store),
                api=self.api.url,
                api_rate_limit=0.0,
                catalogue_wait=30.0,
            )
        ).run()

    def _train(self) -> None:
        """Every kind fitted on the store so far; popularity promoted and loaded."""
        cut_ns = (self.simulation.epoch + self.simulation.t) * 10**9
        data = training_data(EventStore(self.store), cut_ns, FeedbackConfig())
        end = datetime.fromtimestamp(cut_ns / 1e9, UTC).isoformat(timespec="seconds")
        registry = Registry(self.models)
        kinds: dict[str, Recommender] = {
            "popularity": PopularityRecommender(),
            "itemknn": ItemKNNRecommender(),
            "random": RandomListsRecommender(seed=1),
            "slow": SlowRecommender(),  # 800 ms: past the site's 600 ms timeout
        }
        for kind, model in kinds.items():
            provenance = {"data": {"from": None, "to": end}, "offline_metrics": {}}
            self.versions[kind] = registry.add(model.fit(data), provenance)
        registry.promote(self.versions["popularity"], "the canary tests' first production")
        wait_until(
            lambda: (
                self.service.snapshot is not None
                and self.service.snapshot.version == self.versions["popularity"]
            ),
            what="the service to load popularity",
        )

    def run_canary(
        self, kind: str, config: CanaryConfig, hours: float = 3.0, max_steps: int = 60
    ) -> Outcome:
        """Start a canary of `kind`'s version; simulate `hours` a step, ingest, decide,
        until the decision is no longer "wait"."""
        started = time.monotonic()
        evidence = {"test": f"canary of {kind}"}
        experiment = start_canary(self.models, self.versions[kind], config, evidence, "operator")
        wait_until(
            lambda: (
                self.service.plan is not None and self.service.plan.experiment.id == experiment.id
            ),
            what="the service to run the canary",
        )
        steps = 0
        decision = None
        while decision is None or decision.decision == "wait":
            if steps == max_steps:
                shown = decision.to_json() if decision else None
                raise AssertionError(f"no decision after {max_steps} steps: {shown}")
            steps += 1
            self.simulation.advance(hours / 24)
            self.service.answers.flush()
            self.ingest()
            decision = step(self.store, self.models)
        wait_until(lambda: Experiments(self.models).current() is None, what="the experiment to end")
        wait_until(lambda: self.service.plan is None, what="the service to drop the canary")
        return Outcome(decision, steps, time.monotonic() - started, steps * hours)
