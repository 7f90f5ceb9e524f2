"""Outlier clipping: a one-off spike is pulled back, ordinary points are left alone, `none` changes nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory.errors import ModelError
from datastory.forecast import outliers


def weekly(n: int = 80, spike_at: int | None = 40, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    y = 100 + 0.5 * np.arange(n) + rng.normal(0, 2, n)
    if spike_at is not None:
        y[spike_at] += 60
    return pd.Series(y, index=pd.date_range("2024-01-07", periods=n, freq="W-SUN"), name="s")


def test_a_spike_is_clipped_and_the_rest_kept():
    y = weekly()
    out, n = outliers.clip(y, "W", 5.0)
    assert n == 1 and out.iloc[40] < y.iloc[40] - 40
    np.testing.assert_array_equal(np.delete(out.to_numpy(), 40), np.delete(y.to_numpy(), 40))
    assert out.index.equals(y.index) and out.name == "s"


def test_clean_data_is_untouched_and_none_is_identity():
    y = weekly(spike_at=None)
    assert outliers.clip(y, "W", 5.0)[1] == 0
    spiky = weekly()
    assert outliers.clean(spiky, "W", "none", 5.0) is spiky
    assert outliers.clean(spiky, "W", "clip", 5.0).iloc[40] < spiky.iloc[40]


def test_short_or_flat_series_pass_through():
    flat = pd.Series(5.0, index=pd.date_range("2024-01-01", periods=30, freq="D"))
    assert outliers.clip(flat, "D", 3.0)[1] == 0
    short = weekly(n=3, spike_at=None)
    assert outliers.clip(short, "W", 3.0)[1] == 0


def test_bad_settings_are_refused():
    with pytest.raises(ModelError, match="outlier_threshold"):
        outliers.clip(weekly(), "W", 0)
    with pytest.raises(ModelError, match="none or clip"):
        outliers.clean(weekly(), "W", "winsor", 5.0)
