"""engine.run / save: output contracts, failure isolation, Dask workers, determinism, bad input."""

from __future__ import annotations

import logging
import os
import sys

import numpy as np
import pandas as pd
import pytest

from datastory import config, io, schema
from datastory.errors import DataError, ModelError
from datastory.forecast import backtest, build_series, engine, intervals, models, run, save, score


def make_tx(years: int = 3, seed: int = 3) -> pd.DataFrame:
    """Daily order lines for 2 regions x 2 lines with trend and yearly seasonality."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2022-01-01", periods=365 * years, freq="D")
    season = 1 + 0.3 * np.sin(2 * np.pi * days.dayofyear.to_numpy() / 365.25)
    trend = 1 + 0.3 * np.arange(len(days)) / len(days)
    parts = []
    for i, (reg, line) in enumerate([("North", "Hardware"), ("North", "Software"), ("South", "Hardware"),
                                     ("South", "Software")]):
        amount = (100 + 20 * i) * season * trend * rng.lognormal(0, 0.2, len(days))
        parts.append(pd.DataFrame({"timestamp": days + pd.Timedelta(hours=9), "region": reg, "product_line": line,
                                   "amount": amount.round(2)}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def series_long() -> pd.DataFrame:
    return build_series(make_tx(), "M")


def cfg(**kw) -> config.ForecastParams:
    base = {"freq": "M", "horizon": 3, "folds": 2, "engine": "local", "models": ["seasonal_naive", "ets"]}
    return config.ForecastParams(**{**base, **kw})


def test_run_contracts(series_long):
    c = cfg()
    res = run(series_long, c, progress=False)
    frame = res.frame
    assert list(frame.columns) == list(schema.FORECAST)
    assert {str(col): str(t) for col, t in frame.dtypes.items()} == schema.FORECAST
    assert list(frame["series_id"].unique()) == sorted(series_long["series_id"].unique())
    fut = frame[frame["is_forecast"]]
    assert (fut.groupby("series_id").size() == c.horizon).all()
    assert fut["y"].isna().all() and fut["yhat"].notna().all()
    assert (fut["yhat_lower"] <= fut["yhat_upper"]).all()
    hist = frame[~frame["is_forecast"]]
    assert len(hist) == len(series_long) and hist["yhat"].isna().all()
    merged = hist.merge(series_long, on=["series_id", "ds"], suffixes=("", "_in"))
    np.testing.assert_allclose(merged["y"], merged["y_in"].round(6))
    assert fut["ds"].min() > series_long["ds"].max()

    m = res.metrics
    assert (m["freq"], m["horizon"], m["folds"], m["interval_width"]) == ("M", 3, 2, 0.8)
    assert set(m["overall"]) == {"mase", "smape", "coverage", "raw_coverage", "naive_mase", "naive_smape"}
    assert set(m["series"]) == set(series_long["series_id"])
    north = m["series"]["North"]
    assert north["region"] == "North" and north["product_line"] == schema.ALL and north["error"] is None
    assert north["model"] in c.models
    assert sum(m["wins"].values()) == len(m["series"])
    # the selected model has the lowest backtest MASE: never worse than seasonal naive
    for s in m["series"].values():
        assert s["mase"] <= s["naive_mase"] + 1e-9
    assert list(res.backtest.columns) == engine.BACKTEST_CSV_COLUMNS
    assert len(res.backtest) == len(m["series"]) * len(c.models) * c.folds * c.horizon


def test_shipped_band_is_calibrated_on_the_backtest(series_long):
    c = cfg(models=["seasonal_naive"], horizon=6, interval_width=0.5)
    one = series_long[series_long["series_id"] == "All"]
    res = run(one, c, progress=False)
    y = pd.Series(one["y"].to_numpy(), index=pd.DatetimeIndex(one["ds"]), name="All")
    bt = backtest(y, c)
    expected = intervals.apply(models.seasonal_naive(y, 6, "M", c), *intervals.fit(bt, 0.5))
    fut = res.frame[res.frame["is_forecast"]]
    np.testing.assert_allclose(fut["yhat_lower"], expected["yhat_lower"].round(6))
    np.testing.assert_allclose(fut["yhat_upper"], expected["yhat_upper"].round(6))
    s = res.metrics["series"]["All"]
    assert s["interval_factor"] == round(intervals.fit(bt, 0.5)[0], 6)
    assert s["coverage"] == round(intervals.cv_coverage(bt, 0.5), 6)  # leave-one-fold-out, not in-sample
    assert s["raw_coverage"] == round(float(score(bt, y, c)["coverage"].iloc[0]), 6)


def test_progress_bar_has_no_timings(series_long, capsys):
    run(series_long, cfg(models=["seasonal_naive"]), progress=True)
    err = capsys.readouterr().err
    assert "forecast (local): 7/7 series" in err
    assert "s/series" not in err and "<" not in err  # no rate, no elapsed/remaining time


def failing_ets(train, horizon, freq, c):
    raise RuntimeError("boom")


def test_failure_isolation_falls_back_to_naive(series_long):
    res = run(series_long, cfg(), progress=False, fitters={"ets": failing_ets})
    for s in res.metrics["series"].values():
        assert s["model"] == "seasonal_naive"
        assert s["error"] == "ets: RuntimeError: boom"
    assert res.metrics["wins"] == {"seasonal_naive": len(res.metrics["series"]), "ets": 0}
    assert res.frame["is_forecast"].sum() == 3 * len(res.metrics["series"])


def test_failure_on_one_series_only(series_long):
    def fails_on_north(train, horizon, freq, c):
        if train.name == "North":
            raise ValueError("North is special")
        return models.ets(train, horizon, freq, c)

    res = run(series_long, cfg(), progress=False, fitters={"ets": fails_on_north})
    assert res.metrics["series"]["North"]["error"] == "ets: ValueError: North is special"
    others = [s for sid, s in res.metrics["series"].items() if sid != "North"]
    assert all(s["error"] is None for s in others)


def test_final_fit_failure_falls_back(series_long):
    one = series_long[series_long["series_id"] == "All"]
    truth = pd.Series(one["y"].to_numpy(), index=pd.DatetimeIndex(one["ds"]))

    def oracle_until_refit(train, horizon, freq, c):
        """Perfect in the backtest (so it wins), raises on the refit over the whole history."""
        if len(train) == len(truth):
            raise ModelError("cannot refit")
        idx = models.future_index(train.index[-1], horizon, freq)
        v = truth.reindex(idx).to_numpy()
        return pd.DataFrame({"yhat": v, "yhat_lower": v - 1, "yhat_upper": v + 1}, index=idx)

    res = run(one, cfg(), progress=False, fitters={"ets": oracle_until_refit})
    s = res.metrics["series"]["All"]
    assert s["model"] == "seasonal_naive"
    assert s["error"] == "ets: ModelError: cannot refit"
    fut = res.frame[res.frame["is_forecast"]]
    assert len(fut) == 3 and set(fut["model"]) == {"seasonal_naive"}
    expected = models.seasonal_naive(truth, 3, "M", cfg())
    np.testing.assert_allclose(fut["yhat"], expected["yhat"].round(6))


def test_save_writes_readable_deterministic_files(series_long, project):
    paths = config.paths(project)
    c = cfg()
    written = save(run(series_long, c, progress=False), paths)
    first = [p.read_bytes() for p in written]
    save(run(series_long, c, progress=False), paths)
    assert [p.read_bytes() for p in written] == first
    frame = io.read_parquet(paths.forecast)
    assert list(frame.columns) == list(schema.FORECAST)
    metrics = io.read_json(paths.forecast_metrics)
    assert metrics["series"]["All"]["error"] is None
    csv = pd.read_csv(paths.forecast_backtest)
    assert list(csv.columns) == engine.BACKTEST_CSV_COLUMNS
    assert csv["ds"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    plot = pd.read_csv(paths.forecast_backtest_plot)  # what `dvc plots show` draws: the company total
    assert list(plot.columns) == ["ds", "value", "line"]
    assert set(plot["line"]) == {"actual", *c.models}
    total = csv[csv["series_id"] == "All"]
    for name in c.models:
        line = plot[plot["line"] == name]
        assert len(line) == c.folds * c.horizon and not line["ds"].duplicated().any()
        np.testing.assert_allclose(line["value"], total[total["model"] == name]["yhat"])


@pytest.mark.slow
def test_local_cluster_workers_run_the_fits_and_match_local(series_long):
    c = cfg(models=["prophet", "seasonal_naive", "ets"], engine="dask", n_workers=2)
    res = run(series_long, c, progress=False)
    pids = set(res.workers.values())
    assert os.getpid() not in pids and len(pids) >= 1
    local = run(series_long, c.model_copy(update={"engine": "local"}), progress=False)
    assert set(local.workers.values()) == {os.getpid()}
    pd.testing.assert_frame_equal(res.frame, local.frame)
    assert res.metrics == local.metrics


@pytest.mark.slow
def test_local_cluster_workers_fork_warm_and_unprofiled():
    """n_workers 0 (the default) starts one worker per CPU core; workers fork from a server that already imported
    Prophet (no per-worker import on the first fit), with the closing-heartbeat filter installed and Dask's
    statistical profiler off."""
    from dask.system import CPU_COUNT

    probe = lambda: ("prophet" in sys.modules,  # noqa: E731  (shipped to the workers by value)
                     [getattr(f, "prefix", type(f).__name__) for f in logging.getLogger("distributed.worker").filters],
                     __import__("dask").config.get("distributed.worker.profile.enabled"))
    assert config.ForecastParams().n_workers == 0
    with engine._client(cfg(engine="dask", n_workers=0)) as client:
        seen = list(client.run(probe).values())
    assert len(seen) == CPU_COUNT
    heartbeat = ["Failed to communicate with scheduler during heartbeat"]
    assert all(s == (True, heartbeat, False) for s in seen), seen


def test_determinism_with_prophet(series_long, tmp_path):
    c = cfg(models=["prophet", "seasonal_naive", "ets"])
    a = io.write_parquet(run(series_long, c, progress=False).frame, tmp_path / "a.parquet")
    b = io.write_parquet(run(series_long, c, progress=False).frame, tmp_path / "b.parquet")
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Port .* is already in use")  # another cluster on the machine holds 8787
def test_existing_scheduler_from_env(series_long, monkeypatch):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        res = run(series_long, cfg(models=["seasonal_naive"], engine="dask"), progress=False)
        worker_pids = set(client.run(os.getpid).values())
    assert set(res.workers.values()) == worker_pids  # the fits ran on that cluster's worker


# ------------------------------------------------------------------ negative
def test_too_short_series(series_long):
    with pytest.raises(ModelError, match="needs at least"):
        run(series_long, cfg(horizon=20), progress=False)


def test_duplicate_dates(series_long):
    dup = pd.concat([series_long, series_long.iloc[[0]]], ignore_index=True)
    with pytest.raises(DataError, match="duplicate date"):
        run(dup, cfg(), progress=False)


def test_non_numeric_y(series_long):
    bad = series_long.assign(y=series_long["y"].astype(str))
    with pytest.raises(ModelError, match="must be numeric"):
        run(bad, cfg(), progress=False)


def test_unknown_freq(series_long):
    bad = cfg().model_copy(update={"freq": "Y"})
    with pytest.raises(DataError, match="unknown forecast frequency"):
        run(series_long, bad, progress=False)


def test_missing_columns():
    with pytest.raises(DataError, match="missing column"):
        run(pd.DataFrame({"series_id": ["All"], "y": [1.0]}), cfg(), progress=False)


def test_plot_csv_without_any_backtest_is_an_empty_table():
    empty = engine.ForecastResult(frame=pd.DataFrame(columns=list(schema.FORECAST)), metrics={},
                                  backtest=pd.DataFrame(columns=engine.BACKTEST_CSV_COLUMNS))
    assert engine.plot_csv(empty) == "ds,value,line\n"
