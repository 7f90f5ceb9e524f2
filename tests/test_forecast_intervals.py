"""forecast.intervals: ranges from pooled backtest errors per step, robust to one bad fold, never negative."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory.errors import ModelError
from datastory.forecast import intervals as iv


def pool(errors: np.ndarray, horizon: int, folds: int = 3, series: int = 1) -> pd.DataFrame:
    """A pool laid out series x fold x step from a flat error array."""
    rows = [(f"s{s}", k, h) for s in range(series) for k in range(folds) for h in range(1, horizon + 1)]
    df = pd.DataFrame(rows, columns=["series_id", "fold", "step"])
    return df.assign(e=np.asarray(errors, dtype=float))


def test_rank_quantiles_are_the_conformal_order_statistics():
    v = np.arange(1.0, 11.0)  # 1..10
    lo, hi = iv.rank_quantiles(v, 0.8)  # ceil(11 x 0.9) = 10th, floor(11 x 0.1) = 1st
    assert (lo, hi) == (1.0, 10.0)
    lo, hi = iv.rank_quantiles(np.arange(1.0, 101.0), 0.8)
    assert (lo, hi) == (10.0, 91.0)
    assert iv.rank_quantiles(np.array([]), 0.8) == (-np.inf, np.inf)


def test_band_widens_with_the_step_and_matches_the_pooled_spread():
    rng = np.random.default_rng(0)
    h, folds, series = 6, 3, 40
    steps = np.tile(np.arange(1, h + 1), folds * series)
    errors = rng.normal(0, 1, len(steps)) * np.sqrt(steps)  # spread grows with the step
    band = iv.fit(pool(errors, h, folds, series), h, 0.8)
    assert band.backtested
    width = band.upper - band.lower
    assert np.all(np.diff(width) >= 0)
    assert width[-1] > 1.5 * width[0]
    # about 80% of the pooled errors fall inside their step's band
    inside = (errors >= band.lower[steps - 1]) & (errors <= band.upper[steps - 1])
    assert 0.75 <= inside.mean() <= 0.9


def test_one_outlier_fold_does_not_set_the_range():
    rng = np.random.default_rng(1)
    h = 8
    calm = rng.normal(0, 1, 3 * h)
    broken = calm.copy()
    broken[2 * h:] += 40.0  # the latest fold holds a structural break
    clean_band = iv.fit(pool(calm, h), h, 0.8)
    band = iv.fit(pool(broken, h), h, 0.8)
    naive_hi = iv.rank_quantiles(broken, 0.8)[1]  # what a plain quantile over all folds would give
    assert naive_hi > 30
    assert band.upper.max() < 10 and band.upper.max() < clean_band.upper.max() + 5


def test_apply_scales_per_series_and_never_goes_below_zero():
    band = iv.Band(lower=np.array([-1.0, -2.0]), upper=np.array([1.0, 3.0]), backtested=True)
    lo, hi = iv.apply(np.array([100.0, 100.0]), 10.0, band, nonneg=False)
    np.testing.assert_allclose(lo, [90, 80])
    np.testing.assert_allclose(hi, [110, 130])
    lo, hi = iv.apply(np.array([5.0, 5.0]), 10.0, band, nonneg=True)
    np.testing.assert_allclose(lo, [0, 0])
    lo, hi = iv.apply(np.array([5.0, 5.0]), 0.0, band, nonneg=True)  # a constant history: no width
    np.testing.assert_allclose(hi - lo, [0, 0])


def test_empty_pool_gives_a_random_walk_band_marked_not_backtested():
    band = iv.fit(pd.DataFrame(columns=iv.POOL_COLUMNS), 4, 0.8)
    assert not band.backtested
    np.testing.assert_allclose(band.upper / band.upper[0], np.sqrt([1, 2, 3, 4]))
    np.testing.assert_allclose(band.lower, -band.upper)


def test_out_of_fold_coverage_checks_each_fold_against_the_others():
    rng = np.random.default_rng(2)
    h, folds, series = 4, 3, 30
    errors = rng.normal(0, 1, h * folds * series)
    p = pool(errors, h, folds, series)
    inside = iv.out_of_fold_inside(p, h, 0.8)
    assert inside.shape == (len(p),)
    assert 0.7 <= inside.mean() <= 0.9
    # a fold unlike the others is caught out of fold (its own errors did not set its band)
    p.loc[p["fold"] == 0, "e"] *= 10
    assert iv.out_of_fold_inside(p, h, 0.8)[p["fold"].to_numpy() == 0].mean() < 0.5


def test_bad_input():
    with pytest.raises(ModelError, match="between 0 and 1"):
        iv.fit(pool(np.zeros(3), 3, 1), 3, 1.5)
    with pytest.raises(ModelError, match="missing column"):
        iv.fit(pd.DataFrame({"e": [1.0]}), 3, 0.8)


# ---------------------------------------------------------------- the total over the horizon
def test_min_totals_is_the_fewest_whose_ranks_are_not_the_extremes():
    n = iv.min_totals(0.8)
    v = np.arange(1.0, n + 1)
    assert iv.rank_quantiles(v, 0.8) != (1.0, float(n))   # n totals: the bounds are inner ones
    lo, hi = iv.rank_quantiles(v[:-1], 0.8)
    assert lo == 1.0 or hi == float(n - 1)               # one fewer: one bound is the most extreme seen
    assert iv.min_totals(0.95) > n > iv.min_totals(0.5)


def test_totals_sum_each_fold_that_covers_every_step():
    p = pool(np.arange(12.0), 4, folds=3)
    p = p[~((p["fold"] == 1) & (p["step"] == 3))]        # fold 1 lacks a step: no total for it
    tot = iv.totals(p, 4)
    assert tot["fold"].tolist() == [0, 2]
    np.testing.assert_allclose(tot["e"], [0 + 1 + 2 + 3, 8 + 9 + 10 + 11])


def _steps_and_total(errors: np.ndarray, h: int, folds: int, series: int) -> tuple[iv.Band, iv.TotalBand]:
    p = pool(errors, h, folds, series)
    band = iv.fit(p, h, 0.8)
    return band, iv.fit_total(iv.totals(p, h), 0.8, band)


def test_perfectly_correlated_errors_give_about_the_summed_step_ranges():
    rng = np.random.default_rng(3)
    h, folds, series = 8, 3, 60
    shock = rng.normal(0, 1, folds * series)             # one error per (series, fold), the same at every step
    band, total = _steps_and_total(np.repeat(shock, h), h, folds, series)
    assert total.backtested and total.how == "pooled" and total.effective > 0.8 * total.n
    ratio = (total.upper - total.lower) / (band.upper.sum() - band.lower.sum())
    assert 0.85 <= ratio <= 1.15


def test_independent_errors_give_a_much_narrower_total_range_than_the_sum():
    rng = np.random.default_rng(4)
    h, folds, series = 9, 3, 60
    band, total = _steps_and_total(rng.normal(0, 1, h * folds * series), h, folds, series)
    width, summed = total.upper - total.lower, band.upper.sum() - band.lower.sum()
    assert width < 0.5 * summed                          # about sqrt(9) / 9 = 1/3 of it
    assert total.lower < 0 < total.upper


def test_effective_totals_count_a_folds_shared_shock_once():
    rng = np.random.default_rng(8)
    tot = pd.DataFrame({"series_id": [f"s{i}" for i in range(40)] * 3, "fold": np.repeat([0, 1, 2], 40)})
    n_eff, icc = iv.effective_totals(tot.assign(e=rng.normal(0, 1, 120)))
    assert n_eff > 80 and icc < 0.1                        # independent totals count about fully
    shocked = tot.assign(e=np.repeat([-5.0, 1.0, 6.0], 40) + rng.normal(0, 1, 120))
    n_eff, icc = iv.effective_totals(shocked)
    assert n_eff < 4 and icc > 0.9                          # three periods, three shocks: about 3 totals
    assert iv.effective_totals(tot[tot["fold"] == 0].assign(e=rng.normal(0, 1, 40)))[0] == 1.0


def test_totals_moving_together_within_a_fold_fall_back_to_the_summed_steps():
    rng = np.random.default_rng(9)
    h, folds, series = 6, 3, 40
    p = pool(rng.normal(0, 1, h * folds * series), h, folds, series)
    p["e"] += p["fold"].map({0: -2.0, 1: 0.5, 2: 3.0})      # each fold's period lifts or sinks every series
    band = iv.fit(p, h, 0.8)
    total = iv.fit_total(iv.totals(p, h), 0.8, band)
    assert not total.backtested and total.n == folds * series and total.effective < iv.min_totals(0.8)
    assert (total.lower, total.upper) == pytest.approx((band.lower.sum(), band.upper.sum()))


def test_few_totals_per_fold_are_pooled_and_too_few_fall_back_to_the_summed_steps():
    rng = np.random.default_rng(5)
    h = 4
    _, pooled = _steps_and_total(rng.normal(0, 1, h * 3 * 10), h, 3, 10)   # 30 totals, 10 a fold
    assert pooled.how == "pooled" and pooled.n == 30 and pooled.backtested
    band, few = _steps_and_total(rng.normal(0, 1, h * 3 * 5), h, 3, 5)     # 15 totals
    assert few.how == "summed" and not few.backtested and few.n == 15
    assert (few.lower, few.upper) == pytest.approx((band.lower.sum(), band.upper.sum()))
    assert iv.TOTAL_HOW[few.how].startswith("not backtested")


def test_apply_total_holds_the_central_estimate_and_never_goes_below_zero():
    tb = iv.TotalBand(lower=-3.0, upper=2.0, how="pooled", n=30)
    assert iv.apply_total(np.array([10.0, 20.0]), 2.0, tb, nonneg=False) == (24.0, 30.0, 34.0)
    assert iv.apply_total(np.array([1.0, 2.0]), 2.0, tb, nonneg=True) == (0.0, 3.0, 7.0)
    assert iv.apply_total(np.array([1.0, 2.0]), 2.0, tb, nonneg=False)[0] == -3.0
    assert iv.apply_total(np.array([1.0, 2.0]), float("nan"), tb, nonneg=True) == (3.0, 3.0, 3.0)


def test_total_out_of_fold_coverage_is_about_the_level_and_catches_an_odd_fold():
    rng = np.random.default_rng(6)
    h, folds, series = 5, 3, 60
    p = pool(rng.normal(0, 1, h * folds * series), h, folds, series)
    tot = iv.totals(p, h)
    inside = iv.total_out_of_fold_inside(tot, p, h, 0.8)
    assert inside.shape == (len(tot),) and 0.7 <= inside.mean() <= 0.9
    p.loc[p["fold"] == 0, "e"] *= 10
    tot = iv.totals(p, h)
    assert iv.total_out_of_fold_inside(tot, p, h, 0.8)[tot["fold"].to_numpy() == 0].mean() < 0.5


def test_total_out_of_fold_with_too_few_totals_uses_the_other_folds_summed_steps():
    rng = np.random.default_rng(7)
    h = 4
    p = pool(rng.normal(0, 1, h * 3 * 2), h, 3, 2)        # 6 totals: never enough for a total band
    tot = iv.totals(p, h)
    inside = iv.total_out_of_fold_inside(tot, p, h, 0.8)
    assert np.isfinite(inside).all() and set(inside) <= {0.0, 1.0}
    held = (p["fold"] == 0).to_numpy()
    lo, hi = iv.fit(p[~held], h, 0.8).lower.sum(), iv.fit(p[~held], h, 0.8).upper.sum()
    e0 = tot.loc[tot["fold"] == 0, "e"].to_numpy()
    np.testing.assert_array_equal(inside[tot["fold"].to_numpy() == 0], ((e0 >= lo) & (e0 <= hi)).astype(float))


def test_total_bad_input():
    with pytest.raises(ModelError, match="missing column"):
        iv.totals(pd.DataFrame({"e": [1.0]}), 3)
    with pytest.raises(ModelError, match="between 0 and 1"):
        iv.fit_total(iv.totals(pool(np.zeros(3), 3, 1), 3), 0.0, iv.Band(np.zeros(3), np.zeros(3), True))
