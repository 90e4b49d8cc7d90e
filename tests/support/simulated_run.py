"""A whole simulated run for the online tests: the site's users calling our real service
for a few simulated days, with a clean log (no dirt) and the run bounded by days, so that
figures computed from the ingested store must equal the simulator's ledger exactly.

`run_site` runs the real main job (`movierec run --days`): until the scheduler's first
training the service has no model (every call is answered 503), then it serves the
trained models, released through the gate and canaries. `register_random_lists` adds a
random-lists version to the run's registry beside the trained ones, fitted on the same
data window, for experiments that need a floor.

    @pytest.fixture(scope="module")
    def site(tmp_path_factory):
        return run_site(tmp_path_factory.mktemp("site"))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from movierec.features.feedback import FeedbackConfig
from movierec.features.interactions import training_data
from movierec.models.random_lists import RandomListsRecommender
from movierec.registry.versions import Registry
from movierec.store.events import EventStore
from tests.support.commands import movierec

# Small enough to finish in well under a minute, big enough that a few thousand calls
# are made and some are answered by a trained model.
SMALL = {"users": 2000, "movies": 80, "days": 4.0, "seed": 7, "speed": 8000}


@dataclass
class SiteRun:
    dir: Path
    summary: dict[str, Any]  # what `movierec run` printed
    ledger: dict[str, Any]  # the simulator's ledger of the whole run

    @property
    def store(self) -> Path:
        return self.dir / "store"

    @property
    def models(self) -> Path:
        return self.dir / "models"

    @property
    def log(self) -> Path:
        return self.dir / "log"

    @property
    def conversion(self) -> dict[str, Any]:
        """The ledger's conversion@30m (answered, followed, share, by_day)."""
        return self.ledger["online"]["conversion@30m"]


def run_site(root: Path, **settings: Any) -> SiteRun:
    """`movierec run` into root/run with SMALL's settings (overridden by `settings`), no
    dirt and no hyperparameter search."""
    chosen = {**SMALL, **settings}
    target = root / "run"
    flags = [f"--{name}={value}" for name, value in chosen.items()]
    done = movierec(
        "run", *flags, "--faults=0", "--budget=0", "--retrain-every=5", "--min-events=2000",
        "--api-port=0", "--service-port=0", "--monitor-port=0", "--metrics-port=0",
        "--quiet", "--dir", str(target),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ledger = json.loads((target / "site" / "ledger.json").read_text())
    return SiteRun(target, json.loads(done.stdout), ledger)


def register_random_lists(store: Path, models: Path, seed: int = 0) -> str:
    """A random-lists version fitted on the data of the registry's production version,
    registered (not promoted) beside it; returns its version id."""
    registry = Registry(models)
    production = registry.production()
    assert production is not None, "train a model first"
    trained = registry.provenance(production)
    cut_ns = int(datetime.fromisoformat(trained["data"]["to"]).timestamp()) * 10**9 + 10**9
    data = training_data(EventStore(store), cut_ns, FeedbackConfig())
    model = RandomListsRecommender(seed=seed).fit(data)
    provenance = {
        "data": trained["data"],
        "hyperparameters": model.params.to_dict(),
        "offline_metrics": {},
        "purpose": "experiment arm: random lists, the floor a trained model must beat",
    }
    return registry.add(model, provenance)
