"""The running service follows the registry's experiment: each user answered by their
arm's version, named in the header, the answer log and /metrics; an experiment with an arm
that cannot be built is refused whole; a stop hands everyone back to production."""

from __future__ import annotations

import json
import shutil

from prometheus_client.parser import text_string_to_metric_families

from movierec.registry.experiments import Arm, Experiments
from movierec.registry.versions import Registry
from tests.support.serving import Running
from tests.support.waiting import wait_until

USERS = range(1, 301)


def samples(serving: Running, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """One metric's samples from the live /metrics, keyed by their labels."""
    text = serving.get("/metrics")[1].decode()
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def other_version(serving: Running) -> str:
    registry = Registry(serving.models)
    production = registry.production()
    kinds = {e["version"]: e["model"] for e in registry.read()["versions"]}
    return next(v for v, kind in kinds.items() if v != production and kind != "coldstart")


def test_each_user_is_answered_by_their_arm_until_the_experiment_stops(
    serving: Running,
) -> None:
    production = Registry(serving.models).production()
    assert production is not None
    candidate = other_version(serving)
    experiments = Experiments(serving.models)
    exp = experiments.start(
        [Arm("control", production, 0.5), Arm("candidate", candidate, 0.5)],
        known_versions={production, candidate},
    )
    wait_until(lambda: serving.service.plan is not None, what="the experiment to be installed")

    seen: dict[str, int] = {"control": 0, "candidate": 0}
    for user in USERS:
        status, body, headers = serving.get(f"/recommend/{user}")
        arm = exp.arm_of(user)
        assert status == 200 and len(body.split(b",")) == 20
        assert headers["X-Experiment-Arm"] == arm.name
        assert headers["X-Model-Version"] == arm.version
        seen[arm.name] += 1
    assert min(seen.values()) > 100  # both arms answered (a 50/50 split of 300 users)

    health = json.loads(serving.get("/healthz")[1])
    assert health["experiment"]["id"] == exp.id
    answered = samples(serving, "movierec_experiment_answers_total")
    assert answered == {
        frozenset({"experiment": exp.id, "arm": arm.name, "version": arm.version}.items()): seen[
            arm.name
        ]
        for arm in exp.arms
    }
    assert samples(serving, "movierec_experiment_info") == {frozenset({("experiment", exp.id)}): 1}

    directory = serving.service.answers.directory
    assert directory is not None

    def logged() -> list[tuple[int, str, str, str]]:
        records = [
            json.loads(line)
            for path in sorted(directory.glob("*.jsonl"))
            for line in path.read_text().splitlines()
        ]
        return sorted(
            (r["user"], r["experiment"], r["arm"], r["version"])
            for r in records
            if r["experiment"] == exp.id
        )

    wait_until(lambda: len(logged()) == len(USERS), what="the answer log to be written")
    assert logged() == [(u, exp.id, exp.arm_of(u).name, exp.arm_of(u).version) for u in USERS]

    experiments.stop()
    wait_until(lambda: serving.service.plan is None, what="the experiment to be removed")
    status, _, headers = serving.get("/recommend/1")
    assert status == 200 and headers["X-Model-Version"] == production
    assert "X-Experiment-Arm" not in headers


def test_an_arm_that_cannot_be_built_refuses_the_whole_experiment(serving: Running) -> None:
    production = Registry(serving.models).production()
    assert production is not None
    broken = other_version(serving)
    experiments = Experiments(serving.models)
    running = experiments.start(
        [Arm("control", production, 0.5), Arm("candidate", production, 0.5)],
        known_versions={production},
    )
    wait_until(lambda: serving.service.plan is not None, what="the first experiment")

    shutil.rmtree(Registry(serving.models).model_dir(broken))  # registered, but unreadable
    refused = experiments.start(
        [Arm("control", production, 0.5), Arm("candidate", broken, 0.5)],
        known_versions={production, broken},
    )
    wait_until(
        lambda: serving.service.metrics.experiment_failures == 1,
        what="the loader to refuse the experiment",
    )
    assert refused.id in serving.loader.refused_experiments
    assert refused.id in (serving.service.last_error or "")
    # The first experiment was stopped by the second's start: nobody answers in its name.
    assert serving.service.plan is None and experiments.get(running.id).stopped
    status, body, headers = serving.get("/recommend/1")
    assert status == 200 and len(body.split(b",")) == 20
    assert headers["X-Model-Version"] == production and "X-Experiment-Arm" not in headers
    assert samples(serving, "movierec_experiment_failures_total") == {frozenset(): 1}
    assert samples(serving, "movierec_experiment_info") == {}
    health = json.loads(serving.get("/healthz")[1])
    assert "experiment" not in health and refused.id in health["last_error"]
