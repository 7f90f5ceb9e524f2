"""Churn scoring on a Dask cluster: the customers' feature rows in fixed chunks, the classifier sent once.

Training stays in this process (it is a few seconds and needs every row at once); only the classifier's
predictions, one independent row at a time, go to the workers. Chunks are cut by row position
(CHUNK_ROWS rows each, whatever the cluster's size) and their probabilities put back in that order, so the
scores are the very numbers a local run computes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from .model import Fitted, predict

CHUNK_ROWS = 1000
KEY_PREFIX = "churn-score"   # the scheduler names the tasks by it (its task prefixes)

Predictor = Callable[[Fitted, pd.DataFrame], np.ndarray]


def chunks(n: int, size: int = CHUNK_ROWS) -> list[slice]:
    """Row ranges [0, size), [size, 2 size), ... covering n rows; none for n = 0."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def predictor(client: Any | None, size: int = CHUNK_ROWS) -> Predictor:
    """model.predict itself without a client; with one, the same predictions computed by its workers."""
    if client is None:
        return predict

    def on_cluster(fitted: Fitted, frame: pd.DataFrame) -> np.ndarray:
        if len(frame) == 0:
            return predict(fitted, frame)
        rows = frame.loc[:, list(fitted.columns)]
        model = client.scatter(fitted, broadcast=True, hash=False)
        run = uuid.uuid4().hex  # task keys only: never in an output
        futures = [client.submit(predict, model, rows.iloc[part], key=f"{KEY_PREFIX}-{run}-{i}")
                   for i, part in enumerate(chunks(len(rows), size))]
        return np.concatenate(client.gather(futures))

    return on_cluster
