"""churn.scorer: the scorer chosen out of fold, its fits run at once (model.fit_pool) and equal to fits run alone."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from test_churn_model import synth_tx
from threadpoolctl import threadpool_info

from datastory import config
from datastory.churn import model, scorer
from datastory.errors import ModelError


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    tx = synth_tx(800)
    cfg = config.ChurnParams()
    cut = model.plan_cutoffs(tx, cfg)
    lines, regions = sorted(tx["product_line"].unique()), sorted(tx["region"].unique())
    return pd.concat([model.labelled_at(tx, c, cfg, lines, regions) for c in cut.train], ignore_index=True)


def test_fits_run_at_once_give_what_fits_run_one_after_the_other(train):
    together = scorer.fit_scorer(train, seed=0)
    with ThreadPoolExecutor(1) as one_at_a_time:
        oof = scorer.out_of_fold_auc(train, 0, one_at_a_time)
    alone = model.fit(train, 0)
    assert together.fitted.kind == alone.kind == "hist_gradient_boosting+isotonic"
    np.testing.assert_array_equal(model.predict(together.fitted, train), model.predict(alone, train))
    assert json.dumps(together.oof_auc, sort_keys=True) == json.dumps(oof, sort_keys=True)
    assert together.name == scorer.choose(oof) and all(0.5 < v <= 1 for v in oof.values())
    given = scorer.fit_scorer(train, 0, fitted=alone)   # a classifier already fitted is used as it is
    assert given.fitted is alone and given.oof_auc == together.oof_auc


def test_too_few_rows_still_stop_with_the_classifiers_message(train):
    with pytest.raises(ModelError, match="too few customers to train"):
        scorer.fit_scorer(train.iloc[:12], seed=0)


def test_the_pool_has_a_thread_per_cpu_and_openmp_one_thread():
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with model.fit_pool() as pool:
        assert pool._max_workers == max(1, min(model.MAX_FIT_THREADS, cpus))
        assert all(lib["num_threads"] == 1 for lib in threadpool_info() if lib["user_api"] == "openmp")
