"""reconcile: coherent forecasts on generated hierarchies (complete and ragged), non-negative, ranges ordered,
the method chosen on backtests, a clear error for bad input, and the same bytes on a rerun."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapes

from datastory import config, schema
from datastory.errors import ModelError
from datastory.forecast import build_series, run, save
from datastory.forecast import reconcile as rc

LABELS = {"All": ("All", "All"), "North": ("North", "All"), "South": ("South", "All"),
          "North / A": ("North", "A"), "North / B": ("North", "B"), "South / A": ("South", "A"),
          "South / B": ("South", "B"), "South / C": ("South", "C")}
DATES = pd.date_range("2026-01-05", periods=4, freq="W-MON")


def full_tree() -> rc.Tree:
    trees, status = rc.trees(rc.parents(LABELS), {sid: DATES for sid in LABELS})
    assert len(trees) == 1 and set(status.values()) == {"reconciled"}
    return trees[0]


def assert_coherent(values: dict[str, np.ndarray], labels: dict[str, tuple[str, str]], families: list[str],
                    rtol: float = 1e-9, atol: float = 0.0) -> None:
    parent = rc.parents(labels)
    for p in families:
        kids = [k for k, q in parent.items() if q == p]
        np.testing.assert_allclose(sum(values[k] for k in kids), values[p], rtol=rtol, atol=atol,
                                   err_msg=f"children of {p} do not add up")


# ---------------------------------------------------------------- hierarchy
def test_parents_follow_the_labels():
    parent = rc.parents(LABELS)
    assert parent["All"] is None and parent["North"] == "All" and parent["South / C"] == "South"
    flat = rc.parents({"a": ("a", ""), "b": ("b", "")})   # forecast-file: no totals, no hierarchy
    assert flat == {"a": None, "b": None}


def test_parents_refuse_bad_labels():
    with pytest.raises(ModelError, match="series_id -> \\(region, product_line\\)"):
        rc.parents({"North": "North"})


def test_summing_matrix_of_a_full_tree():
    t = full_tree()
    assert t.ids[:t.n_agg] == ("All", "North", "South")
    assert t.leaves == ("North / A", "North / B", "South / A", "South / B", "South / C")
    np.testing.assert_array_equal(t.S[0], np.ones(5))
    np.testing.assert_array_equal(t.S[1], [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(t.S[t.n_agg:], np.eye(5))


def test_ragged_families_are_left_out_and_named():
    dates = {sid: DATES for sid in LABELS if sid != "South / C"}          # a line without a forecast
    dates["North / B"] = DATES[1:].append(pd.DatetimeIndex([DATES[-1] + pd.Timedelta(weeks=1)]))  # other dates
    trees, status = rc.trees(rc.parents(LABELS), dates)
    assert status["South"] == "left out: no usable forecast for South / C"
    assert status["North"] == "left out: North / B forecast other dates"
    assert status["All"] == "reconciled"
    assert [t.ids for t in trees] == [("All", "North", "South")]       # the regions are leaves of the company


def test_without_the_company_each_complete_region_is_its_own_tree():
    dates = {sid: DATES for sid in LABELS if sid != "All"}
    trees, status = rc.trees(rc.parents(LABELS), dates)
    assert status["All"] == "left out: no usable forecast for the total"
    assert [t.ids[0] for t in trees] == ["North", "South"]


def test_trees_refuse_a_forecast_outside_the_hierarchy():
    with pytest.raises(ModelError, match="'Elsewhere' has no place"):
        rc.trees(rc.parents(LABELS), {"Elsewhere": DATES})


# ---------------------------------------------------------------- the projection
@pytest.mark.parametrize("method", rc.METHODS)
def test_every_method_adds_up_exactly_in_every_period(method):
    t = full_tree()
    rng = np.random.default_rng(1)
    base = rng.uniform(50, 150, (len(t.ids), 6))
    base[0] *= 3.7                                       # the company far off the sum of its parts
    errors = rng.normal(0, 10, (30, len(t.ids)))
    new = rc.reconcile(base, t, rc.error_weights(method, t, errors), nonneg=False)
    values = dict(zip(t.ids, new, strict=True))
    assert_coherent(values, LABELS, ["All", "North", "South"], rtol=1e-12)
    if method == "bottom_up":
        np.testing.assert_array_equal(new[t.n_agg:], base[t.n_agg:])


@pytest.mark.parametrize("method", rc.METHODS[1:])
def test_coherent_forecasts_are_left_as_they_are(method):
    t = full_tree()
    leaves = np.random.default_rng(2).uniform(10, 20, (len(t.leaves), 3))
    base = t.S @ leaves
    errors = np.random.default_rng(3).normal(0, 1, (12, len(t.ids)))
    np.testing.assert_allclose(rc.reconcile(base, t, rc.error_weights(method, t, errors), False), base, rtol=1e-9)


def test_negative_leaves_are_set_to_zero_and_summed_up_again():
    t = full_tree()
    base = np.array([[10.0], [10.0], [0.0], [0.0], [0.0], [40.0], [0.0], [0.0]])  # the total far below its parts
    free = rc.reconcile(base, t, np.eye(len(t.ids)), nonneg=False)
    assert (free < 0).any()                                   # OLS alone goes negative here
    kept = rc.reconcile(base, t, np.eye(len(t.ids)), nonneg=True)
    assert (kept >= 0).all()
    assert_coherent(dict(zip(t.ids, kept, strict=True)), LABELS, ["All", "North", "South"], rtol=1e-12)


def test_reconcile_refuses_a_matrix_of_the_wrong_shape():
    t = full_tree()
    with pytest.raises(ModelError, match="8 x periods"):
        rc.reconcile(np.ones((3, 2)), t, None, False)
    with pytest.raises(ModelError, match="8 x 8"):
        rc.reconcile(np.ones((8, 2)), t, np.eye(3), False)


def test_shrunk_covariance_is_between_the_sample_and_its_diagonal():
    rng = np.random.default_rng(4)
    common = rng.normal(0, 1, (40, 1))
    e = common + rng.normal(0, 0.5, (40, 4))
    cov, lam = rc.shrunk_covariance(e)
    assert 0 <= lam < 1
    np.testing.assert_allclose(np.diag(cov), np.diag(e.T @ e / 40))
    assert np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() > 0
    assert abs(cov[0, 1]) < abs((e.T @ e / 40)[0, 1])        # correlations pulled towards 0


def test_shrunk_covariance_refuses_missing_errors():
    with pytest.raises(ModelError, match="finite points x series"):
        rc.shrunk_covariance(np.array([[1.0, np.nan]]))


def test_error_weights_need_errors_for_the_estimated_methods():
    t = full_tree()
    assert rc.error_weights("bottom_up", t) is None
    np.testing.assert_array_equal(np.diag(rc.error_weights("wls_struct", t)), [5, 2, 3, 1, 1, 1, 1, 1])
    with pytest.raises(ModelError, match="needs the backtest errors"):
        rc.error_weights("mint_shrink", t)
    with pytest.raises(ModelError, match="unknown reconciliation method 'magic'"):
        rc.error_weights("magic", t)


def test_shifted_ranges_keep_their_width_and_order():
    yhat = np.array([10.0, 5.0, 1.0])
    new = np.array([12.0, 4.0, 0.2])
    lo, hi = rc.shift_bounds(yhat, new, yhat - 3, yhat + 4, nonneg=True)
    np.testing.assert_allclose(hi - lo, [7.0, 7.0, 4.2])      # the last one floored at 0
    np.testing.assert_allclose(lo[:2], new[:2] - 3)
    assert (lo >= 0).all() and (lo <= new).all() and (new <= hi).all()
    with pytest.raises(ModelError, match="same shape"):
        rc.shift_bounds(yhat, new[:2], lo, hi, True)


# ---------------------------------------------------------------- measurement on backtests
def backtests(t: rc.Tree, coherent_base: bool, seed: int = 5) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2025-01-06", periods=12, freq="W-MON")
    leaves_y = rng.uniform(50, 100, (len(t.leaves), 12))
    y = t.S @ leaves_y
    yhat = t.S @ (leaves_y + rng.normal(0, 5, leaves_y.shape)) if coherent_base else y + rng.normal(0, 8, y.shape)
    fold = np.repeat([2, 1, 0], 4)
    return {sid: pd.DataFrame({"ds": ds, "step": np.tile(np.arange(1, 5), 3), "fold": fold, "y": y[i],
                               "yhat": yhat[i], "scale": 7.0}) for i, sid in enumerate(t.ids)}


@pytest.mark.parametrize("method", rc.METHODS)
def test_backtest_mase_of_coherent_backtests_is_unchanged(method):
    t = full_tree()
    s = rc.backtest_mase(t, backtests(t, coherent_base=True), method, nonneg=False)
    assert list(s["series_id"]) == list(t.ids)
    np.testing.assert_allclose(s["reconciled"], s["base"], rtol=1e-9)


def test_choose_picks_the_lowest_mean_per_level_and_ties_go_to_the_simpler():
    t = full_tree()
    bt = backtests(t, coherent_base=False)
    scores = {m: rc.backtest_mase(t, bt, m, False) for m in rc.METHODS}
    levels = {sid: rc.level(*LABELS[sid]) for sid in LABELS}
    best, by_method = rc.choose(scores, levels)
    assert set(by_method) == set(rc.METHODS) and by_method[best] == min(by_method.values())
    same = {"ols": scores["ols"], "bottom_up": scores["ols"]}
    assert rc.choose(same, levels)[0] == "bottom_up"
    assert rc.choose({}, levels) == (None, {})


def test_backtest_mase_refuses_a_frame_without_its_columns():
    t = full_tree()
    bt = backtests(t, True)
    bt["North"] = bt["North"].drop(columns="scale")
    with pytest.raises(ModelError, match="backtest of 'North': missing column\\(s\\) scale"):
        rc.backtest_mase(t, bt, "ols", False)


def test_apply_refuses_an_unknown_choice():
    with pytest.raises(ModelError, match="allowed: auto, none"):
        rc.apply([], LABELS, "magic")


# ---------------------------------------------------------------- the engine's forecasts
def cfg(**kw) -> config.ForecastParams:
    base = {"freq": "M", "horizon": 3, "folds": 2, "engine": "local", "models": ["seasonal_naive", "ets"]}
    return config.ForecastParams(**{**base, **kw})


def future(frame: pd.DataFrame, col: str = "yhat") -> dict[str, np.ndarray]:
    fut = frame[frame["is_forecast"]]
    return {str(sid): g.sort_values("ds")[col].to_numpy(float) for sid, g in fut.groupby("series_id")}


def labels_of(frame: pd.DataFrame) -> dict[str, tuple[str, str]]:
    first = frame.drop_duplicates("series_id")
    return {str(s): (str(r), str(p)) for s, r, p in zip(first["series_id"], first["region"], first["product_line"],
                                                        strict=True)}


def check_forecast(frame: pd.DataFrame, families: list[str]) -> None:
    """Within 0.5% in every period (in fact up to the 6-decimal rounding), never negative, ranges ordered."""
    values = future(frame)
    assert_coherent(values, labels_of(frame), families, rtol=0.005)
    assert_coherent(values, labels_of(frame), families, rtol=0, atol=1e-5)
    fut = frame[frame["is_forecast"]]
    assert (fut["yhat"] >= 0).all() and (fut["yhat_lower"] >= 0).all()
    assert (fut["yhat_lower"] <= fut["yhat"]).all() and (fut["yhat"] <= fut["yhat_upper"]).all()


@pytest.fixture(scope="module")
def dominant_sparse():
    return build_series(shapes.hierarchy_log(), "M")


@pytest.mark.parametrize("method", ["auto", "bottom_up", "mint_shrink"])
def test_a_dominant_region_with_sparse_lines_adds_up(dominant_sparse, method):
    res = run(dominant_sparse, cfg(reconcile=method), progress=False)
    check_forecast(res.frame, ["All", "North", "South", "East"])
    info = res.metrics["reconciliation"]
    assert info["families"] == {"reconciled": 4, "left_out": {}, "structural": []}
    assert info["gap_before"] > 0.005 and info["gap_after"] < 1e-9
    assert info["method"] == (method if method != "auto" else min(info["by_method"], key=info["by_method"].get))
    assert set(info["backtest_mase"]) == set(rc.LEVELS)
    assert info["chosen_by"] == ("lowest backtest MASE" if method == "auto" else "params")


def test_the_shipped_models_and_accuracy_stay_those_of_each_series(dominant_sparse):
    on = run(dominant_sparse, cfg(), progress=False)
    off = run(dominant_sparse, cfg(reconcile="none"), progress=False)
    moved = ("total", "total_lower", "total_upper")   # the total and its range follow the reconciled forecast
    assert ({sid: {k: v for k, v in m.items() if k not in moved} for sid, m in on.metrics["series"].items()}
            == {sid: {k: v for k, v in m.items() if k not in moved} for sid, m in off.metrics["series"].items()})
    fut = on.frame[on.frame["is_forecast"]]
    for sid, g in fut.groupby("series_id"):
        m = on.metrics["series"][sid]
        assert m["total"] == pytest.approx(g["yhat"].sum(), abs=1e-4) and m["total_lower"] <= m["total"]
        assert m["total_upper"] - m["total"] == pytest.approx(   # the range moved with its forecast, width kept
            off.metrics["series"][sid]["total_upper"] - off.metrics["series"][sid]["total"], abs=1e-4)
    pd.testing.assert_frame_equal(on.frame[~on.frame["is_forecast"]], off.frame[~off.frame["is_forecast"]])
    assert off.metrics["reconciliation"]["method"] == "none"
    assert off.metrics["reconciliation"]["gap_before"] == on.metrics["reconciliation"]["gap_before"]


def test_a_ragged_hierarchy_reconciles_its_complete_families():
    lines = (("Hardware", 1.0, 0), ("Services", 0.3, 0), ("Software", 1.0, 3 * 365 - 50))  # launched 7 weeks ago
    series = build_series(shapes.hierarchy_log(lines=lines, seed=11), "M")
    res = run(series, cfg(reconcile="mint_shrink"), progress=False)
    left = res.metrics["reconciliation"]["families"]["left_out"]
    for reg in ("North", "South", "East"):
        assert left[reg] == f"no usable forecast for {reg} / Software"
        assert res.metrics["series"][f"{reg} / Software"]["status"] == "no_forecast"
    assert res.metrics["reconciliation"]["families"]["reconciled"] == 1
    check_forecast(res.frame, ["All"])


def test_a_short_line_without_backtest_is_reconciled_structurally():
    lines = (("Hardware", 1.0, 0), ("Software", 1.0, 3 * 365 - 200))   # about 6 months: recent level only
    series = build_series(shapes.hierarchy_log(lines=lines, seed=12), "M")
    res = run(series, cfg(horizon=6, reconcile="mint_shrink"), progress=False)
    assert res.metrics["series"]["North / Software"]["status"] == "recent_level"
    info = res.metrics["reconciliation"]
    assert info["families"] == {"reconciled": 4, "left_out": {}, "structural": ["All"]}
    check_forecast(res.frame, ["All", "North", "South", "East"])


def test_a_forecast_with_a_gap_leaves_its_family_out():
    t = full_tree()
    frames = {sid: pd.DataFrame({"yhat": 10.0 * t.S[i].sum(), "yhat_lower": 1.0, "yhat_upper": 99.0}, index=DATES)
              for i, sid in enumerate(t.ids)}
    frames["South / C"].iloc[2, 0] = np.nan
    done = [{"series_id": sid, "frame": f, "chosen_bt": None, "nonneg": True} for sid, f in frames.items()]
    out, info = rc.apply(done, LABELS, "auto")
    assert info["families"]["left_out"] == {"South": "no usable forecast for South / C"}
    assert info["method"] == "bottom_up" and info["chosen_by"].startswith("no backtest")
    assert out[-1]["frame"] is frames["South / C"]                       # left as it was


def test_a_flat_table_has_nothing_to_reconcile():
    ys = {sid: shapes.seasonal_series(36, seed=i, name=sid) for i, sid in enumerate(["a", "b"])}
    res = run(shapes.long_frame(ys), cfg(), progress=False)
    info = res.metrics["reconciliation"]
    assert info["method"] == "none" and info["families"] == {"reconciled": 0, "left_out": {}, "structural": []}


def test_reconciled_output_is_byte_identical_on_rerun(dominant_sparse, project):
    paths = config.paths(project)
    first = [p.read_bytes() for p in save(run(dominant_sparse, cfg(reconcile="mint_shrink"), progress=False), paths)]
    second = [p.read_bytes() for p in save(run(dominant_sparse, cfg(reconcile="mint_shrink"), progress=False), paths)]
    assert first == second
    assert b'"reconciliation"' in first[1] and schema.ALL.encode() in first[0]
