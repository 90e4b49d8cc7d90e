"""The Spark engine: ALS fitted by Spark MLlib keeps the recommender contract, ranks as
well as the numpy engine on data with a known structure, and `movierec train --engine
spark` registers a model that a real `movierec serve` answers from.

One SparkSession (local[2]) serves the whole module: starting a JVM costs seconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.cli import main
from movierec.evaluation.metrics import mean_over_users, ndcg_at_k
from movierec.models.als import ALSRecommender, Params
from movierec.models.base import TrainingData
from movierec.models.kinds import load_model
from movierec.models.popularity import PopularityRecommender
from movierec.registry.versions import Registry
from movierec.training.spark_als import fit_spark_als, read_factors
from movierec.training.spark_session import Spark, SparkConfig, java_home, spark_session
from tests.models.contract import (
    EMPTY_ROWS,
    HALF,
    RecommenderContract,
    build_data,
    planted_data,
)
from tests.support.live import _start
from tests.support.simulated import SimulatedStore
from tests.support.waiting import wait_until

MASTER = "local[2]"  # CI's two cores: ALS's rank-64 fits in the end-to-end test are compute
# Two latent groups in the planted data: two factors. Spark scales the regularisation by
# each user's 8 interactions, so a small regParam is already firm.
PLANTED = Params(factors=2, regularization=0.05, alpha=2.0, iterations=8, random_state=3)


@pytest.fixture(scope="module")
def spark() -> Iterator[Spark]:
    with spark_session(SparkConfig(master=MASTER, driver_memory="1g")) as session:
        yield session


@pytest.fixture(scope="module")
def spark_fitted(spark: Spark) -> ALSRecommender:
    return fit_spark_als(spark, PLANTED, planted_data())


class TestSparkALS(RecommenderContract):
    """The contract's checks of a fitted model, on a Spark-fitted one. Those that refit
    per example (random data, 40 fits) or only check Params (shared with the numpy
    engine, tests/models/test_als.py) are left out; determinism and empty data are below."""

    bad_params: ClassVar[tuple[dict[str, object], ...]] = ()
    test_lists_valid_on_random_data = None
    test_bad_hyperparameters_raise = None
    test_deterministic_for_fixed_seed = None
    test_data_without_interactions = None

    def make(self) -> ALSRecommender:
        return ALSRecommender(PLANTED)

    @pytest.fixture
    def fitted(self, spark_fitted: ALSRecommender) -> ALSRecommender:
        return spark_fitted


def test_recommends_within_the_users_block(spark_fitted: ALSRecommender) -> None:
    data = planted_data()
    lists = spark_fitted.recommend(data.user_ids[:28], 5)
    assert (lists[:14] < HALF).all()
    assert (lists[14:] >= HALF).all()
    # Users without interactions have no factor: Spark never saw them.
    assert not spark_fitted.user_factors[list(EMPTY_ROWS)].any()


def test_fixed_seed_gives_the_same_factors(spark: Spark, spark_fitted: ALSRecommender) -> None:
    again = fit_spark_als(spark, PLANTED, planted_data())
    assert np.array_equal(again.item_factors, spark_fitted.item_factors)
    assert np.array_equal(again.user_factors, spark_fitted.user_factors)


def test_data_without_interactions_gives_popularity(spark: Spark) -> None:
    empty = build_data(np.empty(0), np.empty(0), np.empty(0), n_users=3, n_items=4)
    model = fit_spark_als(spark, PLANTED, empty)
    assert (model.recommend(np.array([*empty.user_ids, 7]), 5) == [0, 1, 2, 3, -1]).all()


def grouped_world(seed: int = 11) -> tuple[TrainingData, sp.csr_matrix]:
    """Four groups of 50 users; each group's users watch 12 of its own 30 movies (the
    group's first movies more often); 3 more of each user's watches are held out."""
    rng = np.random.default_rng(seed)
    n_users, n_items, groups, own = 200, 120, 4, 30
    weights = 1.0 / np.arange(1, own + 1)
    rows, cols, held_rows, held_cols = [], [], [], []
    for user in range(n_users):
        first = (user % groups) * own
        picked = first + rng.choice(own, size=15, replace=False, p=weights / weights.sum())
        rows += [user] * 12
        cols += picked[:12].tolist()
        held_rows += [user] * 3
        held_cols += picked[12:].tolist()
    data = build_data(
        np.array(rows), np.array(cols), rng.integers(1, 4, len(rows)), n_users, n_items
    )
    held = sp.csr_matrix(
        (np.ones(len(held_rows)), (held_rows, held_cols)), shape=(n_users, n_items)
    )
    return data, held


def test_ranks_as_well_as_the_numpy_engine(spark: Spark) -> None:
    """Same data, same settings, NDCG@20 on the held-out watches. The engines do not fit
    the same model (Spark's confidence is 1 + alpha x value where implicit's is alpha x
    value, and Spark scales the regularisation by each row's count), so equal lists are
    not expected; on data whose groups are this plain, both must find them: within 0.05
    of each other, and both far above popularity, which cannot see the groups."""
    data, held = grouped_world()
    params = Params(factors=8, regularization=0.05, alpha=5.0, iterations=10, random_state=0)
    users = data.user_ids

    def ndcg(model: Any) -> float:
        return mean_over_users(ndcg_at_k(model.recommend(users, 20), held, 20))

    spark_ndcg = ndcg(fit_spark_als(spark, params, data))
    numpy_ndcg = ndcg(ALSRecommender(params).fit(data))
    popularity = ndcg(PopularityRecommender().fit(data))
    assert abs(spark_ndcg - numpy_ndcg) <= 0.05, (spark_ndcg, numpy_ndcg)
    assert min(spark_ndcg, numpy_ndcg) >= popularity + 0.1, (spark_ndcg, numpy_ndcg, popularity)


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 12),
    factors=st.integers(1, 4),
    present=st.data(),
)
def test_factor_tables_land_in_id_order(
    tmp_path_factory: pytest.TempPathFactory, rows: int, factors: int, present: st.DataObject
) -> None:
    ids = present.draw(st.lists(st.integers(0, rows - 1), unique=True).map(np.array))
    ids = ids.astype(np.int32)
    values = np.arange(len(ids) * factors, dtype=np.float32).reshape(-1, factors)
    path = tmp_path_factory.mktemp("factors") / "part.parquet"
    features = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), factors)
    pq.write_table(
        pa.table({"id": pa.array(ids), "features": features.cast(pa.list_(pa.float32()))}), path
    )
    out = read_factors(path, rows, factors)
    expected = np.zeros((rows, factors), np.float32)
    expected[ids] = values
    assert np.array_equal(out, expected)


def test_factor_tables_of_another_shape_are_refused(tmp_path: Path) -> None:
    features = pa.array([[1.0, 2.0]], pa.list_(pa.float32()))
    pq.write_table(
        pa.table({"id": pa.array([5], pa.int32()), "features": features}), tmp_path / "a.parquet"
    )
    with pytest.raises(ValueError, match="rows"):
        read_factors(tmp_path / "a.parquet", 3, 2)
    with pytest.raises(ValueError, match="rank"):
        read_factors(tmp_path / "a.parquet", 9, 3)


def test_a_java_home_without_java_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="JAVA_HOME"):
        java_home()
    # A Java Spark 3.5 does not run on is refused before the JVM fails obscurely.
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\necho 'openjdk version \"25.0.3\" 2026-04-21 LTS' >&2\n")
    java.chmod(0o755)
    with pytest.raises(ValueError, match=r"Java 25.*JAVA_HOME"):
        java_home()


def test_train_with_the_spark_engine_then_serve(
    spark: Spark,
    simulated_store: SimulatedStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`movierec train --engine spark` (in this process, so on the module's session):
    ALS and the popularity baseline, unless --model says more; then a real `movierec
    serve` answering from the Spark-trained production model."""
    models = tmp_path / "models"
    code = main(
        [
            "train",
            "--engine",
            "spark",
            "--spark-master",
            MASTER,
            "--store",
            str(simulated_store.path),
            "--models",
            str(models),
            "--budget",
            "0",
            "--quiet",
        ]
    )
    assert code == 0
    assert set(json.loads(capsys.readouterr().out)["versions"]) == {"popularity", "als"}
    registry = Registry(models)
    production = registry.production()
    assert production is not None
    provenance = registry.provenance(production)
    assert provenance["model"] == "als", "ALS should beat popularity on the simulated site"
    assert provenance["engine"] == {
        "name": "spark",
        "spark_version": spark.version,
        "master": MASTER,
    }
    assert provenance["data"]["feedback"]["trust"]["enabled"] is True

    live = _start(
        ["serve", "--models", str(models), "--port", "0", "--poll", "0.2"],
        tmp_path / "serve.stderr",
        re.compile(r"listening on (127\.0\.0\.1:\d+)"),
    )
    try:
        wait_until(lambda: live.get("/healthz")[0] == 200, what="the service to load its model")
        model = load_model(registry.model_dir(production))
        known = set(model.item_ids.tolist())
        for user in model.history.user_ids[:3]:
            status, body = live.get(f"/recommend/{int(user)}")
            assert status == 200, body
            answered = body.decode().strip().split(",")
            assert len(set(answered)) == 20 and set(answered) <= known, answered
        health = json.loads(live.get("/healthz")[1])
        assert production in json.dumps(health["model"]), health
    finally:
        live.stop()
