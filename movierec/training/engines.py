"""Where ALS trains: the training's `engine` setting.

    numpy   in this process, implicit's conjugate-gradient ALS (movierec/models/als.py);
            the default
    spark   Spark MLlib's ALS on the `spark` settings' master (movierec/training/
            spark_als.py): local cores by default, or a cluster

Only ALS has a Spark implementation; every other kind trains in this process whatever the
engine, and each version's provenance says which engine trained it. Both engines write the
same ALS artifact, so the registry, the gate and the service treat them alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from movierec.models import kinds
from movierec.models.als import ALSRecommender
from movierec.models.base import Recommender, TrainingData
from movierec.training.spark_session import Spark, SparkConfig, spark_session

Engine = Literal["numpy", "spark"]
SPARK_KINDS = frozenset({ALSRecommender.name})


@dataclass
class Trainer:
    """Fits models by kind on the chosen engine (a Spark session, while the run lasts)."""

    engine: Engine
    spark: Spark | None = None

    def fit(self, name: str, params: dict[str, Any], data: TrainingData, seed: int) -> Recommender:
        """kinds.fit's model, its ALS fitted by Spark on the spark engine."""
        if self.spark is None or name not in SPARK_KINDS:
            return kinds.fit(name, params, data, seed)
        from movierec.training.spark_als import fit_spark_als

        model = kinds.create(name, **{"random_state": seed, **params})
        assert isinstance(model, ALSRecommender)
        return fit_spark_als(self.spark, model.params, data)

    def provenance(self, name: str) -> dict[str, Any]:
        """What trained a version of kind `name`: the engine, and Spark's version and master."""
        if self.spark is None or name not in SPARK_KINDS:
            return {"name": "numpy"}
        return {"name": "spark", "spark_version": self.spark.version, "master": self.spark.master}


@contextlib.contextmanager
def trainer(engine: Engine, spark: SparkConfig | None = None) -> Iterator[Trainer]:
    """A Trainer for the run; on the spark engine, one session shared by all its fits."""
    if engine == "numpy":
        yield Trainer(engine)
        return
    with spark_session(spark) as session:
        yield Trainer(engine, session)
