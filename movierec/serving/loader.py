"""Keeping the service's model current: watch the registry, load the production version in
the background, switch atomically. A version that cannot be loaded (corrupt, incompatible)
is refused with a logged reason and the old one keeps serving; it is not tried again until
production names another version.

The loader also follows the registry's experiment (movierec/registry/experiments.py): a
started experiment is picked up at the next poll, its arms' versions built and installed
together; an arm that cannot be built refuses the whole experiment, loudly, and everyone
keeps the production version rather than half an experiment."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from movierec.catalog.reader import CacheReadError, CatalogueUsers, MovieAdultFlags
from movierec.registry.experiments import Experiment, Experiments
from movierec.serving.app import ExperimentPlan, RecommendationService
from movierec.serving.metrics import TrainingFigures
from movierec.serving.safety import AdultRule
from movierec.serving.snapshot import Demographics, Snapshot, build

log = logging.getLogger("movierec.serving")


class ModelLoader:
    def __init__(
        self,
        service: RecommendationService,
        poll: float = 1.0,
        threads: int = 1,
        catalogue: Path | None = None,
        catalogue_every: float = 30.0,
    ) -> None:
        self.service = service
        self.poll = poll
        self.threads = threads
        self.catalogue = catalogue
        self.catalogue_every = catalogue_every
        self.refused: dict[str, str] = {}
        self.experiments = Experiments(service.registry.root)
        self.refused_experiments: dict[str, str] = {}
        self.on_install: list = []  # callbacks after each switch (freshness re-applies)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-loader", daemon=True)

    def start(self) -> ModelLoader:
        if self.catalogue is None:
            self._unenforced("no catalogue (serve has no --store)")
        else:  # nothing unfiltered before the first read (the loop reads it first)
            self.service.install_adult_rule(AdultRule.waiting("no catalogue read yet"))
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        next_catalogue = 0.0
        while not self._stop.is_set():
            if self.catalogue is not None and time.monotonic() >= next_catalogue:
                self.read_catalogue()
                # Waiting, restricted users get nothing: look again soon.
                wait = self.catalogue_every if self.service.adult_rule.enforced else self.poll
                next_catalogue = time.monotonic() + wait
            self.check()
            self.check_experiment()
            self._stop.wait(self.poll)

    def check(self) -> bool:
        """Load the production version if it is new; True when a switch happened."""
        registry = self.service.registry
        try:
            production = registry.production()
        except (OSError, json.JSONDecodeError) as error:
            self._refuse("registry", f"registry unreadable: {error}")
            return False
        current = self.service.snapshot
        if production is None:
            if current is None:
                self._no_production()
            return False
        if production in self.refused:
            return False
        if current is not None and current.version == production:
            return False
        coldstart = registry.latest_by_model().get("coldstart")
        try:
            snapshot = build(registry, production, coldstart, self.threads, self.service.shard)
        except Exception as error:  # an artifact is data: any defect is a refusal, not a crash
            self._refuse(production, f"{type(error).__name__}: {error}")
            return False
        self._read_for_new_movies()
        self.service.adult_rule.keep_only([*self._answering(), snapshot])  # off the requests
        self.service.exploration.keep_only([*self._answering(), snapshot])
        self.service.install(snapshot)
        self.service.last_error = None
        self._read_training_figures(production)
        log.info("serving model %s (built in %.1f s)", production, snapshot.built_seconds)
        for callback in self.on_install:
            callback(snapshot)
        return True

    def check_experiment(self) -> bool:
        """Install the registry's running experiment if it changed; True when it did."""
        try:
            experiment = self.experiments.current()
        except (OSError, ValueError, TypeError, KeyError) as error:
            self.service.last_error = f"experiment unreadable: {error}"
            log.error("experiment file unreadable (keeping the current plan): %s", error)
            return False
        plan = self.service.plan
        if experiment is None:
            if plan is None:
                return False
            self.service.plan = None
            self.service.metrics.experiment_id = ""
            log.info("experiment %s stopped: production answers everyone", plan.experiment.id)
            return True
        if plan is not None and plan.experiment.id == experiment.id:
            return False
        if experiment.id in self.refused_experiments:
            return False
        try:
            snapshots = self._arm_snapshots(experiment)
        except Exception as error:  # an arm that cannot be built refuses the experiment
            reason = f"{type(error).__name__}: {error}"
            self.refused_experiments[experiment.id] = reason
            self.service.metrics.experiment_failures += 1
            self.service.last_error = f"refused experiment {experiment.id}: {reason}"
            log.error(
                "refused experiment %s: %s (production answers everyone)", experiment.id, reason
            )
            # Starting this one stopped the one running (registry/experiments.py): its split
            # must not go on answering, and be counted, after its recorded stop.
            self.service.plan = None
            self.service.metrics.experiment_id = ""
            return plan is not None
        self._read_for_new_movies()
        self.service.adult_rule.keep_only([*self._answering(), *snapshots.values()])
        self.service.exploration.keep_only([*self._answering(), *snapshots.values()])
        self.service.plan = ExperimentPlan(experiment, snapshots)
        self.service.metrics.experiment_id = experiment.id
        arms = ", ".join(f"{a.name}={a.version}:{a.share:g}" for a in experiment.arms)
        log.info("experiment %s running: %s", experiment.id, arms)
        return True

    def _arm_snapshots(self, experiment: Experiment) -> dict[str, Snapshot]:
        registry = self.service.registry
        known: dict[str, Snapshot] = {}
        if self.service.snapshot is not None:
            known[self.service.snapshot.version] = self.service.snapshot
        if self.service.plan is not None:
            known.update({s.version: s for s in self.service.plan.snapshots.values()})
        coldstart = registry.latest_by_model().get("coldstart")
        snapshots = {}
        for arm in experiment.arms:
            if arm.version not in known:
                shard = self.service.shard
                known[arm.version] = build(registry, arm.version, coldstart, self.threads, shard)
            snapshots[arm.name] = known[arm.version]
        return snapshots

    def _read_training_figures(self, version: str) -> None:
        """The installed version's training figures for /metrics; a provenance that cannot
        be read costs the figures, never the model (it was loaded already)."""
        try:
            figures = TrainingFigures.read(self.service.registry, version)
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("no training figures for %s: %s", version, error)
            figures = TrainingFigures()
        self.service.metrics.training = figures

    def _no_production(self) -> None:
        """Nothing to serve yet: said once per cause, in the log and /healthz."""
        registry = self.service.registry
        why = (
            f"no registry in {registry.root} (no {registry.path.name})"
            if not registry.path.exists()
            else f"the registry in {registry.root} names no production version"
        )
        if why != self.service.waiting:
            log.warning("%s: /recommend answers 503 until a model is promoted there", why)
        self.service.waiting = why

    def _refuse(self, version: str, reason: str) -> None:
        self.refused[version] = reason
        self.service.metrics.swap_failures += 1
        self.service.last_error = f"refused {version}: {reason}"
        log.error(
            "refused model version %s: %s (still serving %s)",
            version,
            reason,
            self.service.snapshot.version if self.service.snapshot else "nothing",
        )
        if version == "registry":
            del self.refused[version]  # a registry being rewritten is retried next poll

    def read_catalogue(self) -> None:
        """The users the catalogue knows (for fallbacks by demographic segment, and their
        ages for the adult filter) and the movies it marks adult or not. A catalogue that
        cannot be read keeps what was read before; one never read leaves the filter waiting."""
        assert self.catalogue is not None
        if not self.catalogue.exists():
            self._not_read(f"catalogue not written yet ({self.catalogue})")
            return
        try:
            users = CatalogueUsers.load(self.catalogue)
            flags = MovieAdultFlags.load(self.catalogue)
        except CacheReadError as error:
            log.warning("catalogue unreadable (keeping the demographics known before): %s", error)
            self._not_read(f"catalogue unreadable: {error}")
            return
        mine = slice(None)
        if not self.service.shard.whole:  # a shard answers its own users alone
            mine = self.service.shard.owned(users.ids)
        self.service.demographics = Demographics(
            user_ids=users.ids[mine],
            age=users.age[mine],
            gender=users.gender[mine],
            occupation=users.occupation[mine],
        )
        if len(flags.ids) == 0:
            self._not_read(f"the catalogue knows no movies yet ({self.catalogue})")
            return
        read = AdultRule.of_flags(flags.ids.tolist(), flags.adult.tolist())
        rule = self.service.adult_rule
        if not rule.enforced or not rule.same_flags(read):
            rule = read
            unsaid = len(flags.ids) - len(read.adult) - len(read.cleared)
            log.info(
                "adult filter enforced: %d movies marked adult, %d cleared, %d held back "
                "for want of a flag", len(read.adult), len(read.cleared), unsaid,
            )  # fmt: skip
        rule.note = None
        rule.keep_only(self._answering())  # computed here, not on the first request
        self.service.install_adult_rule(rule)

    def _read_for_new_movies(self) -> None:
        """A new model brings movies the last catalogue read may not know, which the filter
        would hold back from restricted users until the next read: read it now."""
        if self.catalogue is not None:
            self.read_catalogue()

    def _answering(self) -> list[Snapshot]:
        """The snapshots answering now: production's and the experiment arms'."""
        plan = self.service.plan
        arms = list(plan.snapshots.values()) if plan is not None else []
        return [s for s in (self.service.snapshot, *arms) if s is not None]

    def _not_read(self, why: str) -> None:
        """The catalogue could not say which movies are adult this time: the flags of an
        earlier read still apply (noted in /healthz); with none, restricted users wait."""
        rule = self.service.adult_rule
        if rule.enforced:
            rule.note = f"{why}; the adult movies of the last read apply"
        elif rule.state != f"waiting: {why}":  # said once per reason
            log.warning("no movie is answered to minors or users of unknown age: %s", why)
            self.service.install_adult_rule(AdultRule.waiting(why))

    def _unenforced(self, why: str) -> None:
        """No catalogue at all: adult movies cannot be kept from anyone; say so."""
        log.warning("adult movies are not kept from minors: %s", why)
        self.service.install_adult_rule(AdultRule.unenforced(why))
