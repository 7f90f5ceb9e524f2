"""engine.run / save: output contracts, failure isolation, Dask workers, determinism, bad input, and the real
shapes: short, gappy, partial, a closure in a one-year history, a structural break, a strong seasonal swing."""

from __future__ import annotations

import logging
import os
import sys
import time

import numpy as np
import pandas as pd
import pytest
import shapes

from datastory import config, io, schema
from datastory.errors import DataError
from datastory.forecast import build_series, engine, run, save


def make_tx(years: int = 3, seed: int = 3) -> pd.DataFrame:
    """Daily order lines for 2 regions x 2 lines with trend and yearly seasonality."""
    return shapes.daily_log("2022-01-01", 365 * years, seed=seed)


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
    assert (fut["yhat_lower"] <= fut["yhat"]).all() and (fut["yhat"] <= fut["yhat_upper"]).all()
    hist = frame[~frame["is_forecast"]]
    assert len(hist) == len(series_long) and hist["yhat"].isna().all()
    merged = hist.merge(series_long, on=["series_id", "ds"], suffixes=("", "_in"))
    np.testing.assert_allclose(merged["y"], merged["y_in"].round(6))
    assert fut["ds"].min() > series_long["ds"].max()
    wide = fut.pivot(index="ds", columns="series_id", values="yhat")   # the hierarchy adds up (reconcile.py)
    np.testing.assert_allclose(wide["North / Hardware"] + wide["North / Software"], wide["North"], atol=1e-5)
    np.testing.assert_allclose(wide["North"] + wide["South"], wide["All"], atol=1e-5)

    m = res.metrics
    assert (m["freq"], m["horizon"], m["folds"], m["interval_width"], m["fill"]) == ("M", 3, 2, 0.8, "zero")
    assert set(m["overall"]) == {"mase", "smape", "coverage", "total_coverage", "naive_mase", "naive_smape"}
    assert m["selection_margin"] in (0.0, 0.05, 0.1, 0.2, 0.4)
    assert m["reconciliation"]["families"] == {"reconciled": 3, "left_out": {}, "structural": []}
    assert set(m["series"]) == set(series_long["series_id"])
    north = m["series"]["North"]
    assert north["region"] == "North" and north["product_line"] == schema.ALL and north["error"] is None
    assert north["model"] in c.models and north["status"] == "backtested" and north["folds"] == 2
    assert north["baseline"] == "seasonal naive" and north["history"] == 35 and north["notes"] is None
    assert 0 <= north["coverage"] <= 1
    assert sum(m["wins"].values()) == len(m["series"])
    for s in m["series"].values():  # the selected model has the lowest backtest MASE: never worse than naive
        assert s["mase"] <= s["naive_mase"] + 1e-9
    assert list(res.backtest.columns) == engine.BACKTEST_CSV_COLUMNS
    assert len(res.backtest) == len(m["series"]) * len(c.models) * c.folds * c.horizon


def test_too_few_backtest_totals_sum_the_per_period_ranges_and_say_so(series_long):
    res = run(series_long, cfg(), progress=False)   # 7 series x 2 folds: 14 totals, fewer than 20
    m = res.metrics
    assert m["total_range"]["totals"] == 14 and m["total_range"]["how"].startswith("not backtested")
    fut = res.frame[res.frame["is_forecast"]]
    for sid, g in fut.groupby("series_id"):
        s = m["series"][sid]
        assert s["total_range"] == m["total_range"]["how"] and s["total_periods"] == len(g)
        assert (s["total_lower"], s["total"], s["total_upper"]) == pytest.approx(
            (g["yhat_lower"].sum(), g["yhat"].sum(), g["yhat_upper"].sum()), abs=1e-4)


def test_the_totals_range_is_backtested_holds_the_total_and_is_never_negative():
    series = {f"s{i}": shapes.seasonal_series(48, swing=0.6, noise=0.15, seed=200 + i, name=f"s{i}") for i in range(20)}
    res = run(shapes.long_frame(series), cfg(horizon=6, folds=3, models=["seasonal_naive", "theta"]), progress=False)
    m = res.metrics
    assert m["total_range"]["how"] == "backtested" and m["total_range"]["totals"] == 60
    assert m["total_range"]["effective_totals"] >= m["total_range"]["min_totals"] == 20
    assert m["total_range"]["lower"] < 0 < m["total_range"]["upper"]
    assert 0 <= m["overall"]["total_coverage"] <= 1
    fut = res.frame[res.frame["is_forecast"]]
    narrower = 0
    for sid, g in fut.groupby("series_id"):
        s = m["series"][sid]
        assert s["total_range"] == "backtested" and s["total_periods"] == 6
        assert s["total"] == pytest.approx(g["yhat"].sum(), abs=1e-4)
        assert 0 <= s["total_lower"] <= s["total"] <= s["total_upper"]
        assert 0 <= s["total_coverage"] <= 1
        narrower += (s["total_upper"] - s["total_lower"]) < (g["yhat_upper"].sum() - g["yhat_lower"].sum())
    assert narrower == len(series)   # independent errors: narrower than the per-period bounds summed


def test_a_hierarchys_totals_move_together_so_its_total_range_is_the_summed_one():
    res = run(build_series(make_tx(), "W"), weekly_cfg(horizon=8), progress=False)   # 7 series x 3 folds
    tr = res.metrics["total_range"]
    assert tr["totals"] == 21 and tr["effective_totals"] < 20 and tr["between_folds"] > 0.2
    assert tr["how"].startswith("not backtested")
    fut = res.frame[res.frame["is_forecast"]]
    for sid, g in fut.groupby("series_id"):   # the reconciled forecast's sum and its summed bounds
        s = res.metrics["series"][sid]
        assert (s["total_lower"], s["total"], s["total_upper"]) == pytest.approx(
            (g["yhat_lower"].sum(), g["yhat"].sum(), g["yhat_upper"].sum()), abs=1e-4)


def test_progress_bar_has_no_timings(series_long, capsys):
    run(series_long, cfg(models=["seasonal_naive"]), progress=True)
    err = capsys.readouterr().err
    assert "forecast (local): 7/7 series" in err
    assert "s/series" not in err and "<" not in err  # no rate, no elapsed/remaining time


def test_notebook_bar_reads_the_same_whatever_the_batches(series_long, capsys, monkeypatch):
    """Batches of several series come back in any order and size; the notebook's bar still counts one series
    at a time, so the executed notebook is the same text on every run."""
    import contextlib

    from datastory import progress

    c = cfg(models=["seasonal_naive"], engine="dask")
    monkeypatch.setattr(progress, "in_kernel", lambda: True)
    monkeypatch.setattr(engine, "_client", lambda cfg: contextlib.nullcontext(None))

    def texts(sizes):
        def batches(client, series, cfg, fitters):
            items = sorted(series.items())
            at = 0
            for n in sizes:
                yield [engine.forecast_series(sid, y, cfg, fitters) for sid, y in items[at:at + n]]
                at += n
        monkeypatch.setattr(engine, "_on_cluster", batches)
        capsys.readouterr()
        run(series_long, c, progress=True)
        return [ln for ln in capsys.readouterr().err.replace("\r", "\n").splitlines() if "/7 series |" in ln]

    one, other = texts([3, 1, 3]), texts([1, 4, 2])
    assert one == other
    assert list(dict.fromkeys(ln.split(":")[1].split()[0] for ln in one)) == [f"{k}/7" for k in range(8)]


def failing_ets(train, horizon, freq, c):
    raise RuntimeError("boom")


def test_failure_isolation_falls_back_to_naive(series_long):
    res = run(series_long, cfg(), progress=False, fitters={"ets": failing_ets})
    for s in res.metrics["series"].values():
        assert s["model"] == "seasonal_naive"
        assert s["error"] == "ets: RuntimeError: boom"
    assert res.metrics["wins"] == {"seasonal_naive": len(res.metrics["series"]), "ets": 0}
    assert res.frame["is_forecast"].sum() == 3 * len(res.metrics["series"])


def test_each_series_scores_come_with_it_and_finish_uses_them(series_long, monkeypatch):
    """forecast_series scores its own backtest (where it is fitted: a worker on a cluster); finish decides with
    those scores, the same decisions as scoring every series itself afterwards."""
    from datastory.forecast import combine

    c = cfg(models=["seasonal_naive", "ets", "combination"], folds=3)
    series = engine.split(series_long)
    results = [engine.forecast_series(sid, y, c) for sid, y in sorted(series.items())]
    assert all(r["scores"]["outcomes"] is not None and len(r["scores"]["means"]) for r in results)
    bare = [{k: v for k, v in r.items() if k != "scores"} for r in results]
    want, want_info = engine.finish(bare, c)                    # scored here, as before
    monkeypatch.setattr(combine, "holdout_outcomes", lambda *a, **k: pytest.fail("scored again"))
    monkeypatch.setattr(combine, "scored", lambda *a, **k: pytest.fail("scored again"))
    got, info = engine.finish(results, c)
    assert (info["margin"], info["by_margin"]) == (want_info["margin"], want_info["by_margin"])
    for g, w in zip(got, want, strict=True):
        assert g["model"] == w["model"]
        pd.testing.assert_frame_equal(g["frame"], w["frame"])
        pd.testing.assert_frame_equal(g["means"], w["means"])


def test_failure_on_one_series_only(series_long):
    from datastory.forecast import models

    def fails_on_north(train, horizon, freq, c):
        if train.name == "North":
            raise ValueError("North is special")
        return models.ets(train, horizon, freq, c)

    res = run(series_long, cfg(), progress=False, fitters={"ets": fails_on_north})
    assert res.metrics["series"]["North"]["error"] == "ets: ValueError: North is special"
    others = [s for sid, s in res.metrics["series"].items() if sid != "North"]
    assert all(s["error"] is None for s in others)


def test_every_model_failing_falls_back_to_the_recent_level(series_long):
    res = run(series_long[series_long["series_id"] == "All"], cfg(models=["seasonal_naive"]), progress=False,
              fitters={"seasonal_naive": failing_ets})
    s = res.metrics["series"]["All"]
    assert s["model"] == "recent_level" and "every model failed" in s["notes"]
    assert res.frame["is_forecast"].sum() == 3


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
    assert "series" not in metrics and "overall" in metrics
    series = pd.read_csv(paths.forecast_series)
    assert series.loc[series["series_id"] == "All", "error"].isna().all()
    assert io.read_json(paths.forecast_headline)["n_series"] == len(series)
    assert "total_coverage" in io.read_json(paths.forecast_headline)
    assert series["total_range"].str.startswith("not backtested").all() and (series["total_periods"] == 3).all()
    csv = pd.read_csv(paths.forecast_backtest)
    assert list(csv.columns) == engine.BACKTEST_CSV_COLUMNS
    assert csv["ds"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    plot = pd.read_csv(paths.forecast_backtest_plot)  # what `dvc plots show` draws: the company total
    assert list(plot.columns) == ["ds", "value", "line"]
    assert set(plot["line"]) >= {"actual", *c.models}
    total = csv[csv["series_id"] == "All"]
    for name in c.models:
        line = plot[plot["line"] == name]
        assert len(line) == c.folds * c.horizon and not line["ds"].duplicated().any()
        np.testing.assert_allclose(line["value"], total[total["model"] == name]["yhat"])


@pytest.mark.slow
def test_local_cluster_workers_run_the_fits_and_match_local(series_long):
    c = cfg(models=["prophet", "seasonal_naive", "ets", "combination"], engine="dask", n_workers=2)
    res = run(series_long, c, progress=False)
    pids = set(res.workers.values())
    # this process fits the cheapest series while the workers' forkserver starts (none once it is up); the
    # workers fit the rest
    assert pids - {os.getpid()}, "no series ran on a worker"
    here = sorted(sid for sid, pid in res.workers.items() if pid == os.getpid())
    cheapest_first = [sid for sid, _ in reversed(engine.by_cost(engine.split(series_long)))]
    assert here == sorted(cheapest_first[:len(here)])
    local = run(series_long, c.model_copy(update={"engine": "local"}), progress=False)
    assert set(local.workers.values()) == {os.getpid()}
    pd.testing.assert_frame_equal(res.frame, local.frame)
    assert res.metrics == local.metrics


@pytest.mark.slow
def test_local_cluster_workers_fork_warm_and_unprofiled():
    """n_workers 0 (the default) starts one worker per CPU core; workers fork from a server that already imported
    Prophet and statsforecast (no per-worker import on the first fit), with the closing-heartbeat filter installed
    and Dask's statistical profiler off."""
    from dask.system import CPU_COUNT

    probe = lambda: ("prophet" in sys.modules and "statsforecast.models" in sys.modules,  # noqa: E731
                     [getattr(f, "prefix", type(f).__name__) for f in logging.getLogger("distributed.worker").filters],
                     __import__("dask").config.get("distributed.worker.profile.enabled"))
    assert config.ForecastParams().n_workers == 0
    with engine._client(cfg(engine="dask", n_workers=0)) as client:
        seen = list(client.run(probe).values())
    assert len(seen) == CPU_COUNT
    heartbeat = ["Failed to communicate with scheduler during heartbeat"]
    assert all(s == (True, heartbeat, False) for s in seen), seen


def test_while_a_cluster_starts_the_cheapest_series_are_fitted_here_one_at_a_time():
    import threading

    series = {sid: pd.Series(range(n)) for sid, n in (("a", 30), ("b", 10), ("c", 20), ("d", 10))}
    go, fitted = threading.Event(), []

    def fit(sid, y):
        fitted.append(sid)
        if len(fitted) == 2:
            go.set()   # the cluster comes up during the second fit, which lasts long enough for its thread to end
            time.sleep(0.5)
        return {"series_id": sid}

    def start():
        go.wait(10)
        return "client"

    up, here, left = engine.while_starting(start, series, fit)
    assert up == "client"
    # shortest history first (then the id, last): the cluster came up during the second fit; the rest, the
    # costliest, are left to it in cost order
    assert [r["series_id"] for r in here] == fitted == ["d", "b"]
    assert list(left) == ["a", "c"]
    assert engine.while_starting(lambda: "client", {}, fit)[1:] == ([], {})   # no series: nothing to fit here
    failing = threading.Event()

    def broken():
        failing.wait(10)
        raise RuntimeError("no cluster")

    def fit_then_fail(sid, y):
        failing.set()
        return {"series_id": sid}

    with pytest.raises(RuntimeError, match="no cluster"):
        engine.while_starting(broken, series, fit_then_fail)


def test_a_start_done_within_its_head_start_leaves_every_series_to_the_cluster():
    series = {sid: pd.Series(range(n)) for sid, n in (("a", 30), ("b", 10))}
    fitted = []
    up, here, left = engine.while_starting(lambda: "ready", series, lambda sid, y: fitted.append(sid))
    assert (up, here, fitted) == ("ready", [], [])
    assert list(left) == ["a", "b"]   # costliest first, as the cluster takes them


@pytest.mark.slow
def test_warm_forkserver_returns_once_the_server_holds_the_preload():
    """After warm_forkserver, a child forked from the workers' server finds Prophet and statsforecast imported
    (exit 0) without importing anything itself."""
    if engine._start_method() != "forkserver":
        pytest.skip("workers spawn on this platform")
    engine.warm_forkserver()
    with engine._worker_config() as ctx:
        child = ctx.Process(target=exec, args=(
            "import os, sys; os._exit(0 if {'prophet', 'statsforecast.models', 'distributed'} <= set(sys.modules) "
            "else 3)",))
        child.start()
        child.join(30)
    assert child.exitcode == 0


def test_determinism_with_prophet(series_long, tmp_path):
    c = cfg(models=["prophet", "seasonal_naive", "ets", "combination"])
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


# ------------------------------------------------------------------ real shapes
FAST = ["seasonal_naive", "theta", "ets", "combination"]


def weekly_cfg(**kw) -> config.ForecastParams:
    return cfg(**{"freq": "W", "horizon": 13, "folds": 3, "models": FAST, **kw})


def test_nine_months_of_history_never_stops_the_run():
    """The real retailer's case: 9 months, weekly, horizon 13 and 3 folds (42 weeks needed) used to abort."""
    res = run(build_series(shapes.daily_log("2025-01-06", 273), "W"), weekly_cfg(), progress=False)
    assert res.frame["is_forecast"].sum() == 7 * 13
    s = res.metrics["series"]["All"]
    assert s["status"] == "backtested" and s["folds"] == 2 and s["baseline"] == "naive"
    assert "backtested on 2 folds instead of 3" in s["notes"]
    assert "yearly seasonality cannot be estimated" in s["notes"]


def test_a_few_weeks_of_history_are_forecast_from_the_recent_level():
    res = run(build_series(shapes.daily_log("2025-01-06", 56), "W"), weekly_cfg(), progress=False)
    s = res.metrics["series"]["All"]
    assert s["status"] == "recent_level" and s["model"] == "recent_level" and s["folds"] == 0
    assert s["notes"].startswith("8 weeks of history: forecast from the recent level; no backtest possible")
    assert "range not backtested" in s["notes"]
    fut = res.frame[res.frame["is_forecast"] & (res.frame["series_id"] == "All")]
    assert len(fut) == 13 and (fut["yhat_lower"] >= 0).all() and (fut["yhat_upper"] > fut["yhat"]).all()


def test_one_unusable_series_does_not_stop_the_others():
    good = shapes.seasonal_series(36, name="good")
    tiny = pd.Series([5.0, 6.0], index=pd.date_range("2022-11-01", periods=2, freq="MS"), name="tiny")
    zeros = pd.Series(0.0, index=good.index, name="zeros")
    res = run(shapes.long_frame({"good": good, "tiny": tiny, "zeros": zeros}), cfg(models=FAST), progress=False)
    m = res.metrics["series"]
    assert m["good"]["status"] == "backtested"
    assert m["tiny"]["status"] == "no_forecast" and "too little to forecast" in m["tiny"]["notes"]
    assert m["zeros"]["model"] == "zero" and "no non-zero value" in m["zeros"]["notes"]
    fut = res.frame[res.frame["is_forecast"]]
    assert set(fut["series_id"]) == {"good", "zeros"} and (fut.loc[fut["series_id"] == "zeros", "yhat"] == 0).all()


def test_no_series_at_all_can_be_forecast_says_why():
    tiny = pd.Series([5.0, 6.0], index=pd.date_range("2022-11-01", periods=2, freq="MS"), name="tiny")
    with pytest.raises(DataError, match="no series could be forecast .* too little to forecast"):
        run(shapes.long_frame({"tiny": tiny}), cfg(), progress=False)


def test_an_export_with_a_hole_is_interpolated_and_never_scored():
    tx = shapes.with_outage(make_tx(2), "2023-03-06", "2023-03-19")  # two weeks without any line
    series = build_series(tx, "W", fill="interpolate")
    assert series["y"].isna().sum() == 2 * 7
    c = weekly_cfg(fill="interpolate", horizon=40, folds=1)
    res = run(series, c, progress=False)
    assert np.isfinite(res.frame.loc[res.frame["is_forecast"], "yhat"]).all()
    bt = res.backtest
    hole = pd.to_datetime(["2023-03-06", "2023-03-13"])
    assert not bt["ds"].isin(hole).any()  # the missing weeks are not actuals
    assert bt["ds"].between("2023-02-27", "2023-03-27").sum() > 0  # ... their neighbours are


def test_a_partial_last_week_is_not_history():
    tx = shapes.daily_log("2024-01-01", 2 * 365 + 3)  # ends on Wednesday 2 January 2026
    res = run(build_series(tx, "W"), weekly_cfg(), progress=False)
    hist = res.frame[~res.frame["is_forecast"]]
    assert hist["ds"].max() == pd.Timestamp("2025-12-22")  # the week of 29 Dec is not complete
    assert res.frame.loc[res.frame["is_forecast"], "ds"].min() == pd.Timestamp("2025-12-29")


def test_one_year_with_a_christmas_closure_forecasts_the_closure():
    """One year of a shop shut 24-26 December: no model can learn that from one year, the calendar can."""
    tx = shapes.daily_log("2024-11-04", 364, swing=0.0, trend=0.0, closed=("12-24", "12-25", "12-26"))
    series = build_series(tx, "W")
    c = weekly_cfg(horizon=8, closures=["12-24", "12-25", "12-26"])
    res = run(series, c, progress=False)
    fut = res.frame[res.frame["is_forecast"] & (res.frame["series_id"] == "All")].set_index("ds")
    xmas, before = fut.loc["2025-12-22", "yhat"], fut.loc["2025-12-15", "yhat"]
    assert xmas == pytest.approx(before * 4 / 7, rel=0.15)  # 3 of 7 days shut
    s = res.metrics["series"]["All"]
    assert "yearly seasonality cannot be estimated" in s["notes"]
    plain = run(series, weekly_cfg(horizon=8), progress=False)
    nofc = plain.frame[plain.frame["is_forecast"] & (plain.frame["series_id"] == "All")].set_index("ds")
    assert nofc.loc["2025-12-22", "yhat"] > 1.4 * xmas  # without the calendar it would run flat through it


def test_a_structural_break_gets_a_plausible_range():
    tx = shapes.daily_log("2023-01-02", 3 * 364, break_at=0.9, break_factor=0.3)
    res = run(build_series(tx, "W"), weekly_cfg(), progress=False)
    fut = res.frame[res.frame["is_forecast"] & (res.frame["series_id"] == "All")]
    hist = res.frame[~res.frame["is_forecast"] & (res.frame["series_id"] == "All")]
    assert (fut["yhat_lower"] >= 0).all()
    assert fut["yhat_upper"].max() < 1.2 * hist["y"].max()  # never wider than the history makes plausible


def test_a_strong_seasonal_swing_never_goes_negative():
    series = {f"s{i}": shapes.seasonal_series(30, swing=0.97, seed=i, name=f"s{i}") for i in range(6)}
    assert min(s.min() for s in series.values()) > 0
    res = run(shapes.long_frame(series), cfg(horizon=12, folds=2, models=FAST), progress=False)
    fut = res.frame[res.frame["is_forecast"]]
    assert (fut["yhat"] >= 0).all() and (fut["yhat_lower"] >= 0).all()


def test_ranges_hold_their_nominal_coverage_out_of_sample():
    """40 noisy seasonal series: the 80% range of the forecast holds about 80% of what really came next."""
    h = 6
    series = {f"s{i}": shapes.seasonal_series(60 + h, swing=0.3, noise=0.15, seed=100 + i, name=f"s{i}")
              for i in range(40)}
    train = {k: v.iloc[:-h] for k, v in series.items()}
    res = run(shapes.long_frame(train), cfg(horizon=h, folds=3, models=["seasonal_naive", "theta"]),
              progress=False)
    fut = res.frame[res.frame["is_forecast"]]
    inside = [((g["yhat_lower"].to_numpy() <= series[sid].iloc[-h:].to_numpy())
               & (series[sid].iloc[-h:].to_numpy() <= g["yhat_upper"].to_numpy())).mean()
              for sid, g in fut.groupby("series_id")]
    assert 0.7 <= np.mean(inside) <= 0.9
    assert 0.7 <= res.metrics["overall"]["coverage"] <= 0.9  # the backtest's own out-of-fold figure agrees


# ------------------------------------------------------------------ negative
def test_duplicate_dates(series_long):
    dup = pd.concat([series_long, series_long.iloc[[0]]], ignore_index=True)
    with pytest.raises(DataError, match="duplicate date"):
        run(dup, cfg(), progress=False)


def test_non_numeric_y(series_long):
    bad = series_long.assign(y=series_long["y"].astype(str))
    with pytest.raises(DataError, match="must be numeric"):
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
