"""Report figures: PNG bytes, stable across calls, no global pyplot state, clear errors on empty input."""

from __future__ import annotations

import io
import sys

import pandas as pd
import pytest
from PIL import Image

from datastory.errors import DataError
from datastory.present import figures


def _size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        assert "Software" not in im.info
        return im.size


ALL = (figures.revenue_by_period, figures.forecast_chart, figures.segment_multiples, figures.churn_risk,
       figures.churn_calibration)


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_figures_are_stable_pngs_at_print_width(tiny_pack, fn):
    png = fn(tiny_pack)
    assert png == fn(tiny_pack)  # same pack, same bytes
    width, _ = _size(png)
    assert width == int(figures.WIDTH_IN * figures.DPI)


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_figures_need_a_pack(fn):
    with pytest.raises(DataError, match="expected a datastory Pack, got dict"):
        fn({"kpis": None})


def test_figures_do_not_touch_pyplot(tiny_pack):
    figures.revenue_by_period(tiny_pack)
    plt = sys.modules.get("matplotlib.pyplot")
    assert plt is None or plt.get_fignums() == []


def test_headline_region_differs_between_packs(tiny_pack, north_pack):
    assert figures.revenue_by_period(tiny_pack) != figures.revenue_by_period(north_pack)


def test_palette_is_okabe_ito():
    assert figures.ACTUAL == "#0072B2"
    assert figures.FORECAST == "#E69F00"
    assert figures.RISK == "#D55E00"


def test_unknown_series_is_a_clear_error(tiny_pack):
    with pytest.raises(DataError, match="forecast series 'Mars'"):
        figures.forecast_chart(tiny_pack, "Mars")


def test_empty_churn_scores_is_a_clear_error(tiny_pack):
    import dataclasses
    empty = dataclasses.replace(tiny_pack, churn_scores=tiny_pack.churn_scores.iloc[0:0])
    with pytest.raises(DataError, match="churn scores has no rows"):
        figures.churn_risk(empty)


def test_segment_multiples_needs_segments(tiny_pack):
    import dataclasses
    only_head = dataclasses.replace(tiny_pack, forecast=tiny_pack.forecast[tiny_pack.forecast["series_id"] == "All"])
    with pytest.raises(DataError, match="no segment series"):
        figures.segment_multiples(only_head)


def test_segment_multiples_unknown_series(tiny_pack):
    with pytest.raises(DataError, match="unknown forecast series"):
        figures.segment_multiples(tiny_pack, ["North", "Atlantis"])


def test_partial_periods_are_the_ones_the_data_covers_only_in_part():
    periods = pd.Series(pd.date_range("2025-01-01", periods=6, freq="MS"))
    assert figures.partial_periods(periods, "2025-01-15", "2025-05-20") == [True, False, False, False, True, True]
    assert figures.partial_periods(periods, "2025-01-01", "2025-06-30") == [False] * 6
    quarters = pd.Series(pd.date_range("2025-01-01", periods=2, freq="QS"))
    assert figures.partial_periods(quarters, "2025-01-01", "2025-05-31", "Q") == [False, True]
    assert figures.partial_periods(periods, "?", "?") == [False] * 6  # no known period: nothing is marked


def test_revenue_chart_marks_a_partial_last_month(tiny_pack):
    import dataclasses

    whole = dataclasses.replace(tiny_pack, provenance=dataclasses.replace(tiny_pack.provenance,
                                                                          period_end="2025-06-30"))
    assert figures.revenue_by_period(whole) != figures.revenue_by_period(tiny_pack)  # June ends after the data


_SEABORN_RUN = """
import hashlib, sys
sys.path.insert(0, {tests!r})
if {scipy_first}:
    import scipy.stats
from conftest import make_pack
from datastory.present import figures
p = make_pack()
pngs = [hashlib.sha256(f(p)).hexdigest() for f in (figures.segment_multiples, figures.churn_risk,
                                                    figures.churn_calibration)]
import seaborn._statistics
loaded = "scipy.stats" in sys.modules
import scipy.stats
print(seaborn._statistics._no_scipy, loaded, scipy.stats.norm.cdf(0.0), *pngs)
"""


def _seaborn_run(scipy_first: bool) -> list[str]:
    import subprocess
    from pathlib import Path

    code = _SEABORN_RUN.format(tests=str(Path(__file__).parent), scipy_first=scipy_first)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_seaborn_loads_without_scipy_stats_and_draws_the_same_bytes():
    """figures.seaborn leaves scipy.stats out of seaborn's import (a fresh process), and importable after it; the
    seaborn figures are the same bytes as with scipy.stats loaded first, where seaborn then uses it."""
    alone, with_scipy = _seaborn_run(False), _seaborn_run(True)
    assert alone[:3] == ["True", "False", "0.5"]   # seaborn without scipy; scipy.stats not loaded; then it is
    assert with_scipy[:2] == ["False", "True"]
    assert alone[3:] == with_scipy[3:] and len(alone) == 6
