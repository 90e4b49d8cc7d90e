"""ALS trained by Spark MLlib, handed back as our own ALSRecommender.

What runs where:

    Python   the training data, exactly as the numpy engine gets it: the store's events
             aggregated by DuckDB, turned into confidence with the trust weighting, the
             recency decay and the watch shares (movierec/features); the popularity
             fallback; everything after training (scoring, folding in, saving)
    Spark    ALS itself: pyspark.ml.recommendation.ALS with implicitPrefs, reading the
             (user row, item column, confidence) triples from a Parquet file, writing both
             factor tables back as Parquet, which pyarrow reads into numpy

So the features cannot drift from the numpy engine's (they are computed once, by the same
code), and the artifact is the ALS artifact the service already loads. The triples go
through a file rather than through Python objects so that Spark reads them natively and
20M interactions never pass through py4j.

Our Params map to Spark's: factors -> rank, iterations -> maxIter, regularization ->
regParam, alpha -> alpha, random_state -> seed. Two differences in the model remain, and
are Spark's: its confidence is 1 + alpha x value (implicit's is alpha x value), and it
scales the regularisation of each user and item by its number of interactions (ALS-WR).
Equal settings therefore give comparable, not equal, factors; the search tunes each
engine on its own scores. Users or items without any interaction get zero factors, as
they would from a fit that never moves them: users fall back to popularity.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from movierec.models.als import ALSRecommender, Params
from movierec.models.base import TrainingData
from movierec.training.spark_session import Spark

log = logging.getLogger(__name__)


def fit_spark_als(spark: Spark, params: Params, data: TrainingData) -> ALSRecommender:
    """An ALSRecommender with params, its factors learned by Spark from data's matrix."""
    users, items = data.n_users, data.n_items
    matrix = data.matrix.tocoo(copy=True)
    matrix.sum_duplicates()  # one triple per (user, item), as the numpy engine's CSR has
    model = ALSRecommender(params)
    if matrix.nnz == 0:
        log.warning("spark als: no interactions to learn from; every user gets popularity")
        zeros = np.zeros((users, params.factors), np.float32)
        return model.with_factors(data, zeros, np.zeros((items, params.factors), np.float32))
    run = spark.scratch / f"als-{uuid.uuid4().hex}"
    run.mkdir(parents=True)
    try:
        triples = pa.table(
            {
                "user": pa.array(matrix.row.astype(np.int32)),
                "item": pa.array(matrix.col.astype(np.int32)),
                "confidence": pa.array(matrix.data.astype(np.float32)),
            }
        )
        pq.write_table(triples, run / "triples.parquet")
        del triples, matrix
        # ALS checkpoints its factors every 10 iterations, but only with a directory to
        # checkpoint to; without one the lineage of 30 iterations overflows the JVM's stack.
        spark.session.sparkContext.setCheckpointDir(str(run / "checkpoints"))
        fitted = _als(spark, params).fit(spark.session.read.parquet(str(run / "triples.parquet")))
        fitted.userFactors.write.parquet(str(run / "users"))
        fitted.itemFactors.write.parquet(str(run / "items"))
        user_factors = read_factors(run / "users", users, params.factors)
        item_factors = read_factors(run / "items", items, params.factors)
    finally:
        shutil.rmtree(run, ignore_errors=True)
    return model.with_factors(data, user_factors, item_factors)


def _als(spark: Spark, params: Params) -> Any:
    from pyspark.ml.recommendation import ALS

    # Blocks follow the cores: more only adds shuffles; fewer leaves cores idle.
    blocks = max(1, spark.parallelism)
    return ALS(
        rank=params.factors,
        maxIter=params.iterations,
        regParam=params.regularization,
        alpha=params.alpha,
        implicitPrefs=True,
        nonnegative=False,
        seed=params.random_state if params.random_state is not None else 0,
        numUserBlocks=blocks,
        numItemBlocks=blocks,
        userCol="user",
        itemCol="item",
        ratingCol="confidence",
    )


def read_factors(directory: Any, rows: int, factors: int) -> np.ndarray:
    """A factor table Spark wrote ((id, features) rows, any order) as a (rows, factors)
    float32 array in id order; ids absent from the table keep zero factors."""
    table = pq.read_table(directory, columns=["id", "features"])
    ids = table.column("id").to_numpy()
    flat = pc.list_flatten(table.column("features")).to_numpy(zero_copy_only=False)
    if len(flat) != len(ids) * factors:
        raise ValueError(f"Spark returned factors of another rank than {factors}")
    if len(ids) and (ids.min() < 0 or ids.max() >= rows or len(np.unique(ids)) != len(ids)):
        raise ValueError("Spark returned factors for rows the data does not have")
    out = np.zeros((rows, factors), np.float32)
    out[ids] = flat.reshape(len(ids), factors)
    return out
