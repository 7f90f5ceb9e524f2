"""Headline figures for DVC, per-series detail as CSV, and the forecast dict put back together from both."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from conftest import tiny_frames

from datastory import config, io, metrics


def _numbers_only(d: dict) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in d.values())


def test_headlines_are_flat_numbers_and_few():
    f = tiny_frames()
    heads = [metrics.quality_headline(f["data_quality"]), metrics.forecast_headline(f["forecast_metrics"]),
             metrics.churn_headline(f["churn_metrics"])]
    for h in heads:
        assert h and _numbers_only(h)
    assert sum(len(h) for h in heads) <= 32


def test_forecast_headline_gain_over_the_baseline():
    f = tiny_frames()["forecast_metrics"]
    h = metrics.forecast_headline(f)
    assert h["gain"] == pytest.approx(1 - f["overall"]["mase"] / f["overall"]["naive_mase"])
    assert h["n_series"] == len(f["series"]) == h["n_backtested"]
    worse = {**f, "overall": {**f["overall"], "mase": 1.3}}
    assert metrics.forecast_headline(worse)["gain"] < 0


def test_churn_headline_takes_the_best_simple_baseline():
    c = tiny_frames()["churn_metrics"]
    h = metrics.churn_headline(c)
    assert h["roc_auc"] == c["model"]["roc_auc"]
    assert h["baseline_roc_auc"] == max(b["roc_auc"] for b in c["baselines"].values())
    assert h["baseline_brier"] == min(b["brier"] for b in c["baselines"].values())
    assert "model_kind" not in h and "scorer" not in h


def test_quality_headline_totals_rejected_and_excluded_and_drops_words():
    dq = {**tiny_frames()["data_quality"], "rejected": {"bad date": 3, "bad amount": 4},
          "excluded": {"no customer id": 5}, "currency": "EUR", "source": "sample"}
    h = metrics.quality_headline(dq)
    assert h["rows_rejected"] == 7 and h["rows_excluded"] == 5
    assert "currency" not in h and "period_end" not in h


def test_headline_skips_missing_and_non_finite_values():
    assert metrics.forecast_headline({"overall": {"mase": float("nan"), "naive_mase": 1.0}}) == {
        "naive_mase": 1.0, "n_series": 0, "n_backtested": 0}
    assert metrics.churn_headline({}) == {}
    assert metrics.quality_headline({"rows_read": "many", "rejected": {"x": "y"}}) == {}


def test_series_round_trip_gives_the_same_dict():
    series = {
        "All": {"region": "All", "product_line": "All", "status": "backtested", "model": "ets", "folds": 3,
                "history": 156, "mase": 0.25, "naive_mase": 1.3, "coverage": 1.0, "notes": None, "error": None,
                "baseline": "seasonal naive"},
        "2024 / A,\"B\"": {"region": "2024", "product_line": 'A,"B"', "status": "level only", "model": None,
                           "folds": None, "history": 7, "mase": None, "naive_mase": None, "coverage": None,
                           "notes": "short history:\nforecast from the level", "error": None, "baseline": None},
    }
    text = metrics.series_csv(series)
    back = metrics.series_from_csv(text)
    assert back == json.loads(json.dumps(series))
    assert isinstance(back["All"]["folds"], int) and isinstance(back["All"]["coverage"], float)
    assert back["2024 / A,\"B\""]["region"] == "2024"     # a word column stays text
    assert text.splitlines()[0].startswith("series_id,region,product_line,status,model")


def test_series_from_csv_refuses_a_table_without_ids():
    with pytest.raises(KeyError):
        metrics.series_from_csv("region,mase\nNorth,0.5\n")


def test_save_and_read_forecast_rebuild_the_stage_dict(project):
    paths = config.paths(project)
    fm = {**tiny_frames()["forecast_metrics"], "reconciliation": {"method": "none"}}
    written = metrics.save_forecast(fm, paths)
    assert [p.name for p in written] == [paths.forecast_metrics.name, paths.forecast_series.name,
                                         paths.forecast_headline.name]
    assert metrics.read_forecast(paths) == fm
    assert "series" not in io.read_json(paths.forecast_metrics)
    assert len(pd.read_csv(paths.forecast_series)) == len(fm["series"])
    assert io.read_json(paths.forecast_headline) == metrics.forecast_headline(fm)


def test_read_forecast_without_its_series_file_fails(project):
    paths = config.paths(project)
    metrics.save_forecast(tiny_frames()["forecast_metrics"], paths)
    paths.forecast_series.unlink()
    with pytest.raises(FileNotFoundError):
        metrics.read_forecast(paths)
