"""Cutoff plan, calibrated fit, baselines and metrics of the churn model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss

from datastory import config, schema
from datastory.churn import model
from datastory.errors import ModelError


def synth_tx(n_customers: int = 400, seed: int = 1, start: str = "2023-10-01",
             end: str = "2026-09-30") -> pd.DataFrame:
    """A small synthetic company: customers buy at their own pace until they leave for good.

    Heavy-discount customers leave sooner, so features carry signal beyond recency.
    """
    rng = np.random.default_rng(seed)
    t0 = np.datetime64(start, "s")
    span = int((np.datetime64(end, "D") - np.datetime64(start, "D")).astype(int)) + 1
    cols: dict[str, list] = {c: [] for c in schema.TRANSACTIONS}
    for i in range(n_customers):
        first = rng.uniform(0, span * 0.6)
        disc = float(rng.choice([0.0, 0.05, 0.3], p=[0.5, 0.3, 0.2]))
        life = rng.exponential(250.0 if disc >= 0.3 else 700.0)
        gaps = rng.exponential(rng.lognormal(np.log(25), 0.5), size=200)
        days = first + np.concatenate([[0.0], np.cumsum(gaps)])
        days = days[days < min(span, first + life)]
        n = len(days)
        amount = np.round(rng.lognormal(4, 0.5, size=n), 2)
        ret = rng.random(n) < 0.05
        ts = t0 + (days * 86400).astype("int64").astype("timedelta64[s]")
        for extra_ret in (False, True):
            sel = ret if extra_ret else np.ones(n, bool)
            k = int(sel.sum())
            cols["order_id"] += [f"{'R' if extra_ret else 'O'}{i:05d}-{j}" for j in np.flatnonzero(sel)]
            cols["customer_id"] += [f"C{i:05d}"] * k
            cols["customer_name"] += [f"Customer {i}"] * k
            cols["timestamp"] += list(ts[sel] + (np.timedelta64(2, "D") if extra_ret else np.timedelta64(0, "s")))
            cols["region"] += [("North", "South", "East")[i % 3]] * k
            cols["product_line"] += list(np.array(["Hardware", "Software", "Services"])[rng.integers(0, 3, k)])
            cols["quantity"] += [-1.0 if extra_ret else 1.0] * k
            cols["amount"] += list(-amount[sel] if extra_ret else amount)
            cols["discount"] += [0.0 if extra_ret else disc] * k
            cols["is_return"] += [extra_ret] * k
    df = pd.DataFrame(cols)
    df = df[df["timestamp"] < pd.Timestamp(end) + pd.Timedelta(days=1)]
    return schema.conform(df.sort_values(["timestamp", "order_id"]), schema.TRANSACTIONS, "synthetic")


def known_probability_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] - x[:, 1] + 0.7 * x[:, 0] * x[:, 2] - 0.5)))
    frame = pd.DataFrame(x, columns=["x0", "x1", "x2"])
    frame["churned"] = rng.random(n) < p
    frame["customer_id"] = [f"C{i}" for i in range(n)]
    return frame, p


# ---------------------------------------------------------------- cutoffs
def tiny_span(first: str, last: str) -> pd.DataFrame:
    rows = [{"order_id": f"O{i}", "customer_id": "A", "customer_name": "A", "timestamp": pd.Timestamp(t),
             "region": "North", "product_line": "Hardware", "quantity": 1.0, "amount": 1.0, "discount": 0.0,
             "is_return": False} for i, t in enumerate([first, last])]
    return schema.conform(pd.DataFrame(rows), schema.TRANSACTIONS, "test")


def test_plan_cutoffs_hand_dates_and_no_overlap():
    cut = model.plan_cutoffs(tiny_span("2024-01-01", "2025-12-31 18:00"), config.ChurnParams())
    assert cut.score == pd.Timestamp("2026-01-01")
    assert cut.valid == pd.Timestamp("2025-10-03")
    assert cut.train == tuple(pd.Timestamp(d) for d in ("2025-07-05", "2025-06-05", "2025-05-06", "2025-04-06"))
    assert cut.train[0] + pd.Timedelta(days=90) <= cut.valid


def test_window_longer_than_history_is_refused():
    with pytest.raises(ModelError, match="history too short") as err:
        model.plan_cutoffs(tiny_span("2024-01-01", "2025-12-31"), config.ChurnParams(window_days=400))
    assert "lower window_days" in str(err.value) and "731 days" in str(err.value)


# ---------------------------------------------------------------- fit
def test_calibrated_model_matches_known_probabilities():
    train, _ = known_probability_frame(6000, seed=0)
    test, p_true = known_probability_frame(4000, seed=1)
    fitted = model.fit(train, seed=0, columns=["x0", "x1", "x2"])
    assert fitted.kind == "hist_gradient_boosting+isotonic"
    prob = model.predict(fitted, test)
    y = test["churned"].to_numpy()
    assert brier_score_loss(y, prob) - brier_score_loss(y, p_true) < 0.01
    assert np.mean(np.abs(prob - p_true)) < 0.06
    table = model.calibration_table(y, prob)
    assert sum(r["count"] for r in table) == len(test)
    which = np.minimum((prob * 10).astype(int), 9)
    for b, row in enumerate(table):
        if row["count"] >= 200:
            assert abs(row["mean_predicted"] - p_true[which == b].mean()) < 0.05, row


def test_small_training_sets_fall_back_to_logistic_regression():
    train, _ = known_probability_frame(300, seed=2)
    fitted = model.fit(train, seed=0, columns=["x0", "x1", "x2"])
    assert fitted.kind == "logistic_regression"
    prob = model.predict(fitted, train)
    assert prob.min() >= 0 and prob.max() <= 1 and abs(prob.mean() - train["churned"].mean()) < 0.05


def test_too_few_rows_or_one_class_is_refused():
    train, _ = known_probability_frame(12, seed=3)
    with pytest.raises(ModelError, match="found 12 customer-cutoff rows, need at least 30"):
        model.fit(train, seed=0, columns=["x0"])
    train, _ = known_probability_frame(50, seed=3)
    with pytest.raises(ModelError, match="only one class.*all 50 .* churned"):
        model.fit(train.assign(churned=True), seed=0, columns=["x0"])
    with pytest.raises(ModelError, match="all 50 .* stayed(.|\n)*shorter window_days"):
        model.fit(train.assign(churned=False), seed=0, columns=["x0"])
    fitted = model.fit(train, seed=0, columns=["x0"])
    with pytest.raises(ModelError, match="lacks the model's column"):
        model.predict(fitted, train.drop(columns=["x0"]))


# ---------------------------------------------------------------- baselines and metrics
def test_rfm_quintiles_hand_example():
    feats = pd.DataFrame({"recency_days": [5, 50, 10, 400, 30, 30, 7, 90, 60, 200],
                          "frequency": [9, 2, 8, 1, 4, 4, 10, 3, 5, 6],
                          "monetary": [900.0, 100.0, 800.0, 10.0, 400.0, 450.0, 1000.0, 300.0, 500.0, 600.0]})
    s = model.rfm_scores(feats)
    # recency ranks: 5->1, 7->2, 10->3, 30,30->4.5, 50->6, 60->7, 90->8, 200->9, 400->10; q = ceil(rank/2);
    # R = 6 - q. Frequency 4,4 share rank 4.5 -> quintile 3.
    assert s["r"].tolist() == [5, 3, 4, 1, 3, 3, 5, 2, 2, 1]
    assert s["f"].tolist() == [5, 1, 4, 1, 3, 3, 5, 2, 3, 4]
    assert s["m"].tolist() == [5, 1, 4, 1, 2, 3, 5, 2, 3, 4]
    assert (s["rfm"] == s["r"] + s["f"] + s["m"]).all()
    with pytest.raises(ModelError, match="RFM needs column"):
        model.rfm_scores(feats.drop(columns=["monetary"]))


def test_recency_auc_and_lift_hand_example():
    y = np.array([True, False, True, False])
    recency = np.array([100.0, 10.0, 50.0, 60.0])
    m = model.evaluate(y, recency, np.array([0.9, 0.1, 0.6, 0.4]))
    assert m["roc_auc"] == pytest.approx(0.75)          # 3 of the 4 churned/stayed pairs ordered right
    assert m["top_decile_lift"] == pytest.approx(2.0)   # top 1 of 4 churned; base rate 0.5
    assert m["brier"] == pytest.approx((0.01 + 0.01 + 0.16 + 0.16) / 4)
    assert np.isnan(model.evaluate(np.array([True, True]), np.array([1.0, 2.0]), np.array([0.5, 0.5]))["roc_auc"])


def test_top_decile_lift_averages_over_ties_whatever_the_row_order():
    # 20 rows -> top decile of 2: one clear top row (churned) and 4 rows tied for the other place,
    # 2 of them churned. Base rate 3/20. Expected churners in the top 2: 1 + 1 x 2/4.
    y = np.array([1, 0, 0, 1, 1] + [0] * 15, dtype=bool)
    score = np.array([5.0, 3.0, 3.0, 3.0, 3.0] + [1.0] * 15)
    assert model.top_decile_lift(y, score) == pytest.approx(1.5 / 2 / 0.15)
    # the same as the mean over every way of filling the free place with one tied row ...
    brute = np.mean([(int(y[0]) + int(y[k])) / 2 / y.mean() for k in (1, 2, 3, 4)])
    assert model.top_decile_lift(y, score) == pytest.approx(brute)
    # ... and independent of the row order (a first-row-wins tie-break gave 3.33 here, reversed 6.67)
    rng = np.random.default_rng(0)
    for _ in range(5):
        perm = rng.permutation(len(y))
        assert model.top_decile_lift(y[perm], score[perm]) == pytest.approx(5.0)
    # without ties it is the plain churn rate of the top rows over the base rate
    assert model.top_decile_lift(y, np.arange(20.0)[::-1]) == pytest.approx(0.5 / 0.15)
    assert np.isnan(model.top_decile_lift(np.zeros(5, bool), np.arange(5.0)))


def test_top_decile_lift_refuses_bad_scores():
    with pytest.raises(ModelError, match="3 scores for 4 labels"):
        model.top_decile_lift(np.array([1, 0, 1, 0]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ModelError, match="NaN"):
        model.top_decile_lift(np.array([1, 0]), np.array([1.0, np.nan]))


def test_calibration_table_bins():
    table = model.calibration_table(np.array([1, 0, 1, 1]), np.array([0.05, 0.15, 0.95, 1.0]))
    assert len(table) == 10
    assert table[0] == {"lower": 0.0, "upper": 0.1, "count": 1, "mean_predicted": 0.05, "observed": 1.0}
    assert table[9]["count"] == 2 and table[9]["mean_predicted"] == pytest.approx(0.975)
    assert table[5]["count"] == 0 and np.isnan(table[5]["observed"])


def test_score_calibrator_is_monotone_probability():
    cal = model.fit_score_calibrator(np.array([1, 2, 3, 4, 5, 6]), np.array([0, 0, 1, 0, 1, 1]))
    out = cal.predict(np.array([0.0, 3.5, 10.0]))
    assert 0 <= out[0] <= out[1] <= out[2] <= 1


def test_validate_on_synthetic_company_reports_model_and_baselines():
    tx = synth_tx(400)
    cfg = config.ChurnParams()
    cut = model.plan_cutoffs(tx, cfg)
    lines, regions = sorted(tx["product_line"].unique()), sorted(tx["region"].unique())
    train = pd.concat([model.labelled_at(tx, c, cfg, lines, regions) for c in cut.train], ignore_index=True)
    valid = model.labelled_at(tx, cut.valid, cfg, lines, regions)
    fitted = model.fit(train, cfg.seed)
    m = model.validate(fitted, train, valid)
    assert set(m["baselines"]) == {"recency", "rfm"} and set(m["calibration"]) == {"model", "recency", "rfm"}
    # the caller's probabilities are the ones it would have computed: the same record (NaN where a bin is empty)
    given = model.validate(fitted, train, valid, prob=model.predict(fitted, valid))
    assert json.dumps(given, sort_keys=True) == json.dumps(m, sort_keys=True)
    other = model.validate(fitted, train, valid, prob=np.full(len(valid), 0.5))
    assert other["model"]["roc_auc"] == 0.5 and other["baselines"] == m["baselines"]
    for scorer in (m["model"], *m["baselines"].values()):
        assert 0.5 < scorer["roc_auc"] <= 1 and 0 <= scorer["brier"] < 0.25
