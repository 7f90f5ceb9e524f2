"""verdict.assess: what a cleaned log supports, from the stages' own thresholds, refused with reasons when a stage
cannot run, warned when it runs with less."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapes

from datastory import config, ingest, profile, schema, verdict
from datastory.churn.model import MIN_TRAIN_ROWS
from datastory.errors import DataError, ModelError
from datastory.forecast.history import MIN_HISTORY

FC = config.ForecastParams()      # weekly, 13 weeks ahead, 3 folds
CH = config.ChurnParams()         # window 90, lookback 365, 4 training cutoffs 30 days apart: more than 270 days


def canonical(rows: list[tuple[str, str, float]], region: str = "North", line: str = "Hardware") -> pd.DataFrame:
    """Transactions from (customer, timestamp, amount) rows, one order each."""
    raw = pd.DataFrame({"order_id": [f"O{i}" for i in range(len(rows))], "customer_id": [r[0] for r in rows],
                        "timestamp": [r[1] for r in rows], "region": region, "product_line": line,
                        "quantity": [1.0 if r[2] >= 0 else -1.0 for r in rows], "amount": [r[2] for r in rows],
                        "discount": 0.0})
    return ingest.clean(raw, "x.csv")[0]


def buyers(n: int, days: int, every: int = 14, stop: dict[int, int] | None = None, start: str = "2024-01-01",
           returns: bool = False) -> pd.DataFrame:
    """`n` customers buying every `every` days (customer i from day i) until day `stop[i]` (default: the end)."""
    t0 = pd.Timestamp(start)
    rows = [(f"C{i:03d}", str(t0 + pd.Timedelta(days=d, hours=10)), -20.0 if returns else 50.0)
            for i in range(n) for d in range(i % every, (stop or {}).get(i, days), every)]
    rows.append(("C000", str(t0 + pd.Timedelta(days=days - 1, hours=10)), -20.0 if returns else 50.0))
    return canonical(rows)


def invoice_tx() -> pd.DataFrame:
    cfg = config.DataParams(source="csv", columns=config.ColumnsParams(**shapes.INVOICE_MAPPING),
                            rules=config.RulesParams(**shapes.INVOICE_RULES))
    return ingest.prepare(shapes.as_raw(shapes.invoice_log(), shapes.INVOICE_MAPPING), cfg).tx


def test_a_real_invoice_log_is_usable_and_says_what_each_stage_gets():
    v = verdict.assess(invoice_tx(), FC, CH)
    lines = v.lines()
    assert v.usable and v.error("invoices.csv") is None and lines[-1] == "verdict       usable"
    forecast = next(line for line in lines if line.startswith("forecast      "))
    assert "103 weeks (about 2 years) of full weeks: weekly forecast without yearly seasonality" in forecast
    churn = next(line for line in lines if line.startswith("churn         "))
    assert "4 training cutoffs" in churn and "customer-cutoff rows to train on" in churn and "to score" in churn
    # a few hundred customer-cutoff rows: the stage runs, with the simpler of its two models (a warning)
    assert any(w.startswith("churn trains a logistic regression") and "1,000" in w for w in v.warnings)
    assert [line for line in lines if line.startswith("warning: ")] == [f"warning: {w}" for w in v.warnings]


def test_a_log_of_one_time_buyers_without_order_ids_is_usable():
    cfg = config.DataParams(source="csv", columns=config.ColumnsParams(**shapes.PURCHASE_MAPPING),
                            rules=config.RulesParams(**shapes.PURCHASE_RULES))
    tx = ingest.prepare(shapes.as_raw(shapes.purchase_log(), shapes.PURCHASE_MAPPING), cfg).tx
    v = verdict.assess(tx, FC, CH)
    assert v.usable, v.lines()
    assert "without yearly seasonality" in v.lines()[0]


def test_a_single_order_line_is_refused_by_forecast_and_churn():
    v = verdict.assess(canonical([("C1", "2025-03-31 14:05", 12.0)]), FC, CH)
    assert not v.usable
    reasons = [r.reason for r in v.refusals]
    assert reasons[0] == f"forecast: 0 full weeks of history, and the forecast needs at least {MIN_HISTORY}"
    assert reasons[1].startswith("churn: 1 day of history, and churn needs more than 270: window_days=90 twice")
    assert "3 x cutoff_step_days=30 between the 4 training cutoffs" in reasons[1]
    assert v.lines()[-1] == "verdict       unusable: " + "; ".join(reasons)
    err = v.error("data/raw/one.csv")
    assert isinstance(err, DataError) and err.file == "data/raw/one.csv"
    assert "cannot run the whole pipeline" in str(err) and "freq in params/forecast.yaml" in err.fix


def test_a_log_of_returns_only_is_refused_for_want_of_sales():
    v = verdict.assess(buyers(40, 730, returns=True), FC, CH)
    assert v.refusals[0].reason.startswith("no sales: all ") and "returns or zero" in v.refusals[0].reason
    assert "sign of the amount" in v.refusals[0].fix
    assert any(r.reason.startswith("churn: 0 customer-cutoff rows") for r in v.refusals)


def test_a_history_a_little_too_short_suggests_fewer_training_cutoffs():
    tx = buyers(60, 230, stop={i: 30 + 2 * i for i in range(0, 60, 3)})
    (churn,) = verdict.assess(tx, FC, CH).refusals
    assert churn.reason.startswith("churn: 230 days of history, and churn needs more than 270")
    assert churn.fix.startswith("set n_train_cutoffs: 2 ")
    assert verdict.assess(tx, FC, CH.model_copy(update={"n_train_cutoffs": 2})).usable
    (churn,) = verdict.assess(buyers(60, 150), FC, CH).refusals   # not even one training cutoff fits
    assert churn.fix.startswith("load a longer history (more than 270 days)")


def test_the_history_threshold_is_the_churn_stages_own():
    from datastory.churn.model import plan_cutoffs

    for days in (269, 270, 271, 272):
        tx = buyers(60, days)
        try:
            plan_cutoffs(tx, CH)
            fits = True
        except ModelError:
            fits = False
        refused = any(r.reason.startswith("churn: ") and "days of history" in r.reason
                      for r in verdict.churn(profile.of(tx), CH).refusals)
        assert refused == (not fits), days


def test_too_few_customers_to_train_is_refused_naming_the_minimum():
    v = verdict.assess(buyers(4, 500, stop={0: 200, 1: 300}), FC, CH)
    (churn,) = v.refusals
    assert churn.reason.startswith("churn: ") and f"the model needs at least {MIN_TRAIN_ROWS}" in churn.reason


def test_one_outcome_only_is_refused():
    v = verdict.assess(buyers(30, 500), FC, CH)   # everybody keeps buying every two weeks: nobody churns
    (churn,) = v.refusals
    assert "bought again within window_days=90" in churn.reason and "shorter window_days" in churn.fix


def test_churn_limits_that_do_not_stop_it_are_warnings():
    # half the customers stop in the first month: both outcomes at the training cutoffs, but a year later only
    # the stayers are active at the validation cutoff; and few rows
    v = verdict.assess(buyers(40, 500, stop={i: 30 for i in range(0, 40, 2)}), FC, CH)
    assert v.usable, v.refusals
    assert any("logistic regression" in w for w in v.warnings)
    assert any("validation cutoff" in w and "ROC AUC is undefined" in w for w in v.warnings)


def test_the_churn_line_says_when_the_model_learns_from_a_sample_of_the_customers():
    tx = buyers(40, 500)

    def line(cap: int) -> str:
        lines = verdict.assess(tx, FC, CH.model_copy(update={"max_train_customers": cap})).lines()
        return next(li for li in lines if li.startswith("churn         "))

    assert "sample" not in line(0) and "sample" not in line(40)
    assert "a seeded sample of 25 of the 40 customers (max_train_customers)" in line(25)


def test_an_explicit_cutoff_outside_the_data_is_the_churn_stages_message():
    v = verdict.assess(buyers(40, 500), FC, CH.model_copy(update={"cutoff": "2020-01-01"}))
    (churn,) = v.refusals
    assert churn.reason.startswith("churn: cutoff 2020-01-01 is outside the data")


def test_a_forecast_without_room_for_a_backtest_is_a_warning():
    out = verdict.forecast(profile.of(buyers(30, 120)), FC)
    assert not out.refusals and out.line.startswith("forecast      ")
    assert "from the recent level, not backtested" in out.line
    assert out.warnings[0].startswith("the forecast cannot be backtested: one 13-week backtest needs 19 weeks")


def test_a_segment_named_like_the_totals_is_refused():
    tx = buyers(30, 400).assign(region=schema.ALL)
    assert any("named 'All'" in r.reason for r in verdict.forecast(profile.of(tx), FC).refusals)


def test_nobody_to_score_is_a_warning():
    tx = buyers(40, 300)
    late = canonical([("C001", "2025-12-20 10:00", -5.0)])    # the data ends with a return, months later
    out = verdict.churn(profile.of(pd.concat([tx, late], ignore_index=True)), CH)
    assert any(w.startswith("nobody bought in the 365 days before the data end") for w in out.warnings)


def test_assess_refuses_what_is_not_transactions():
    with pytest.raises(DataError, match="missing column"):
        verdict.assess(pd.DataFrame({"amount": [1.0]}), FC, CH)
    with pytest.raises(DataError, match="no rows"):
        verdict.assess(canonical([("C1", "2025-03-31", 1.0)]).iloc[0:0], FC, CH)


def test_verdict_lines_end_with_the_verdict():
    v = verdict.Verdict((verdict.Outlook("a line", (), ("careful",)),
                         verdict.Outlook("", (verdict.Refusal("r1", "f1"), verdict.Refusal("r2", "f1")))))
    assert v.lines() == ["a line", "warning: careful", "verdict       unusable: r1; r2"]
    assert v.error("x").fix == "f1"   # the same fix once
    assert np.all([not verdict.Verdict(()).refusals, verdict.Verdict(()).usable])
