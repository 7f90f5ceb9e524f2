"""The churn stage end to end: run -> scores + metrics, save -> files read back, determinism, notebook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_churn_model import synth_tx

from datastory import churn, config, io, schema
from datastory.errors import DataError, ModelError

REPO = Path(__file__).resolve().parents[1]
METRIC_KEYS = {"window_days", "lookback_days", "capacity", "second_purchase_capacity", "cutoffs_train",
               "cutoff_valid", "score_date", "n_train", "n_valid", "base_rate", "n_scored", "n_red", "n_watch",
               "n_red_win_back", "n_red_second_purchase", "floors", "repeat_delay_days", "revenue_at_risk",
               "expected_loss_scored",
               "churn_rate", "model", "baselines", "calibration", "model_kind", "scorer", "scorer_oof_auc",
               "call_list_validation", "compare_date", "newly_red", "cleared", "train_customers", "train_share"}


@pytest.fixture(scope="module")
def tx() -> pd.DataFrame:
    return synth_tx(450, seed=5)


@pytest.fixture(scope="module")
def result(tx) -> churn.ChurnResult:
    return churn.run(tx, config.ChurnParams())


def test_run_metrics_and_scores(tx, result):
    m, s = result.metrics, result.scores
    assert set(m) == METRIC_KEYS
    assert m["model_kind"] == "hist_gradient_boosting+isotonic"
    assert m["score_date"] == (tx["timestamp"].max().normalize() + pd.Timedelta(days=1)).date().isoformat()
    assert m["cutoff_valid"] == (pd.Timestamp(m["score_date"]) - pd.Timedelta(days=90)).date().isoformat()
    assert len(m["cutoffs_train"]) == 4 and max(m["cutoffs_train"]) <= (
        pd.Timestamp(m["cutoff_valid"]) - pd.Timedelta(days=90)).date().isoformat()
    assert list(s.columns) == list(schema.CHURN_SCORES) and m["n_scored"] == len(s)
    assert m["n_red"] == int(s["red"].sum()) and m["churn_rate"] == pytest.approx(s["probability"].mean())
    assert set(m["model"]) == {"roc_auc", "pr_auc", "brier", "top_decile_lift"}
    assert set(m["baselines"]) == {"recency", "rfm", "blend"}
    assert m["scorer"] in churn.SCORERS and set(m["scorer_oof_auc"]) == set(churn.SCORERS)
    assert m["scorer"] == max(churn.SCORERS, key=lambda k: (m["scorer_oof_auc"][k], -churn.SCORERS.index(k)))
    assert m["n_red"] == m["n_red_win_back"] + m["n_red_second_purchase"]
    assert m["n_watch"] == int((s["status"] == "watch").sum())
    # no region calls more customers than its capacity on each list
    per = s[s["red"]].groupby(["region", "list"]).size()
    for (_, kind), count in per.items():
        assert count <= (m["capacity"] if kind == "win back" else m["second_purchase_capacity"])
    assert (s.loc[s["red"], "reasons"].str.len() > 0).all() and (s.loc[s["red"], "recency_days"] >= 7).all()
    lists = m["call_list_validation"]
    assert set(lists) == set(churn.SCORERS) and 0 <= lists[m["scorer"]]["precision"] <= 1
    ordered = s.sort_values(["revenue_at_risk", "customer_id"], ascending=[False, True], kind="stable")
    assert s["customer_id"].tolist() == ordered["customer_id"].tolist()
    # everyone scored was active in the lookback before the score date, and nobody else
    start = pd.Timestamp(m["score_date"]) - pd.Timedelta(days=365)
    buys = tx[~tx["is_return"] & (tx["timestamp"] >= start)]
    assert set(s["customer_id"]) == set(buys["customer_id"])
    table = churn.metrics_table(m)
    assert list(table.columns) == ["model", "recency", "rfm", "blend"] and table.loc["roc_auc", "model"] > 0.5
    assert churn.list_table(m).loc[m["scorer"], "chosen"]


def test_same_inputs_give_byte_identical_files(tx, result, project):
    again = churn.run(tx.sample(frac=1.0, random_state=3), config.ChurnParams())  # row order must not matter
    a = io.write_parquet(result.scores, project / "a.parquet").read_bytes()
    b = io.write_parquet(again.scores, project / "b.parquet").read_bytes()
    assert a == b
    ja = io.write_json(result.metrics, project / "a.json").read_bytes()
    assert ja == io.write_json(again.metrics, project / "b.json").read_bytes()


def test_save_writes_files_read_back(result, project):
    paths = config.paths(project)
    written = churn.save(result, paths)
    pd.testing.assert_frame_equal(io.read_parquet(paths.churn_scores), result.scores)
    assert io.read_json(paths.churn_metrics)["n_red"] == written["n_red"] == result.metrics["n_red"]


def test_changes_compare_with_the_red_list_compare_days_earlier(result):
    m, before = result.metrics, result.compared
    assert m["compare_date"] == (pd.Timestamp(m["score_date"]) - pd.Timedelta(days=30)).date().isoformat()
    assert list(before.columns) == list(schema.CHURN_SCORES)
    assert (before["last_order"] < pd.Timestamp(m["compare_date"])).all()  # known before the compare date
    diff = churn.changes(before, result.scores)
    assert (m["newly_red"], m["cleared"]) == (len(diff["newly_red"]), len(diff["cleared"]))
    assert m["newly_red"] + m["cleared"] > 0  # a month of behaviour moves somebody on or off the list
    red_now = set(result.scores.loc[result.scores["red"], "customer_id"])
    assert set(diff["newly_red"]) <= red_now and not set(diff["cleared"]) & red_now
    assert set(result.scores.loc[result.scores["newly_red"], "customer_id"]) == set(diff["newly_red"])


def test_cutoff_param_moves_validation_and_outside_data_is_refused(tx):
    end = tx["timestamp"].max().normalize() + pd.Timedelta(days=1)
    early = (end - pd.Timedelta(days=120)).date().isoformat()
    res = churn.run(tx, config.ChurnParams(cutoff=early))
    assert res.metrics["cutoff_valid"] == early
    assert max(res.metrics["cutoffs_train"]) == (pd.Timestamp(early) - pd.Timedelta(days=90)).date().isoformat()
    for bad in ((end - pd.Timedelta(days=30)).date().isoformat(), "1999-01-01"):
        with pytest.raises(ModelError, match="outside the data") as exc:
            churn.run(tx, config.ChurnParams(cutoff=bad))
        assert "params/churn.yaml" in str(exc.value) and "cutoff" in str(exc.value)


def test_bad_inputs_are_refused(tx):
    with pytest.raises(DataError, match="missing column"):
        churn.run(tx.drop(columns=["is_return"]), config.ChurnParams())
    with pytest.raises(ModelError, match="history too short"):
        churn.run(tx, config.ChurnParams(window_days=730))
    few = tx[tx["customer_id"].isin(["C00000", "C00001", "C00002"]) | (tx["timestamp"] == tx["timestamp"].max())]
    with pytest.raises(ModelError, match="too few customers to train"):
        churn.run(few, config.ChurnParams())
    with pytest.raises(DataError, match="lack the key"):
        churn.metrics_table({"model": {}})
    with pytest.raises(DataError, match="calibration"):
        churn.calibration_plot({})


def test_calibration_plot_draws_every_scorer(result):
    import matplotlib.pyplot as plt

    fig = churn.calibration_plot(result.metrics)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    plt.close(fig)
    assert labels == ["perfect", "model", "recency", "rfm"]


@pytest.mark.slow
def test_model_beats_both_baselines_on_the_sample_company():
    from datastory import ingest, sample

    tx, _ = ingest.clean(sample.generate(config.SampleParams()), "sample")
    res = churn.run(tx, config.ChurnParams())
    m = res.metrics
    for base in ("recency", "rfm"):
        theirs = m["baselines"][base]
        assert m["model"]["roc_auc"] > theirs["roc_auc"], base
        assert m["model"]["pr_auc"] > theirs["pr_auc"], base
        assert m["model"]["brier"] < theirs["brier"], base
        assert m["model"]["top_decile_lift"] > theirs["top_decile_lift"], base
    assert m["n_scored"] > 1000 and 0 < m["n_red"] < m["n_scored"]
    assert np.isfinite(m["revenue_at_risk"])
    scores = res.scores  # revenue at risk is the red list's; every scored customer's is the expected loss
    assert m["revenue_at_risk"] == pytest.approx(scores.loc[scores["red"], "revenue_at_risk"].sum())
    assert m["expected_loss_scored"] == pytest.approx(scores["revenue_at_risk"].sum())
    assert m["expected_loss_scored"] > m["revenue_at_risk"]   # every scored customer, not only those to call
