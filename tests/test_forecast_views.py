"""views: accuracy/wins tables and the history + forecast plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory.errors import DataError
from datastory.forecast import views


def metrics() -> dict:
    return {"series": {"North": {"region": "North", "product_line": "All", "model": "ets", "mase": 0.6,
                                 "smape": 0.1, "coverage": 0.8, "naive_mase": 1.2, "naive_smape": 0.2, "error": None},
                       "All": {"region": "All", "product_line": "All", "model": "seasonal_naive", "mase": 1.0,
                               "smape": 0.2, "coverage": 0.7, "naive_mase": 1.0, "naive_smape": 0.2,
                               "error": "ets: RuntimeError: boom"}},
            "wins": {"prophet": 0, "ets": 1, "seasonal_naive": 1}}


def test_accuracy_table():
    table = views.accuracy_table(metrics())
    assert list(table.index) == ["All", "North"]
    assert list(table["beats_naive"]) == [False, True]
    assert table.loc["All", "error"] == "ets: RuntimeError: boom"


def test_wins_table_orders_by_wins_then_name():
    table = views.wins_table(metrics())
    assert list(table["model"]) == ["ets", "seasonal_naive", "prophet"]
    assert list(table["series_won"]) == [1, 1, 0]


def test_plot_series(tiny_frames_forecast):
    import matplotlib.pyplot as plt

    fig = views.plot_series(tiny_frames_forecast, "All")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "actual"
    assert len(ax.lines) == 2  # history and forecast
    plt.close(fig)


@pytest.fixture
def tiny_frames_forecast():
    from conftest import tiny_frames

    return tiny_frames()["forecast"]


def test_bad_input(tiny_frames_forecast):
    with pytest.raises(DataError, match="no 'series'"):
        views.accuracy_table({"wins": {}})
    with pytest.raises(DataError, match="no 'series'"):
        views.wins_table([])
    with pytest.raises(DataError, match="no series 'Nowhere'"):
        views.plot_series(tiny_frames_forecast, "Nowhere")


def backtest_rows(tiny_frames_forecast) -> pd.DataFrame:
    """Two models' backtest of the last 4 history periods of "All" (one fold), as the engine records it."""
    hist = tiny_frames_forecast[(tiny_frames_forecast["series_id"] == "All") & ~tiny_frames_forecast["is_forecast"]]
    last = hist.sort_values("ds").tail(4)
    return pd.concat([pd.DataFrame({"series_id": "All", "model": name, "fold": 0, "ds": last["ds"].to_numpy(),
                                    "y": last["y"].to_numpy(), "yhat": last["y"].to_numpy() * k})
                      for name, k in (("seasonal_naive", 0.9), ("ets", 1.1))], ignore_index=True)


def test_backtest_plot_is_one_line_per_model_plus_actuals(tiny_frames_forecast):
    bt = backtest_rows(tiny_frames_forecast)
    out = views.backtest_plot(tiny_frames_forecast, bt, "All")
    assert list(out.columns) == views.PLOT_COLUMNS
    assert list(dict.fromkeys(out["line"])) == ["actual", "ets", "seasonal_naive"]
    actual = out[out["line"] == "actual"]
    assert len(actual) == 8  # the 4 backtest periods and 4 before them, for context
    assert actual["ds"].is_monotonic_increasing and not actual["ds"].duplicated().any()
    ets = out[out["line"] == "ets"].set_index("ds")["value"]
    np.testing.assert_allclose(ets, actual.set_index("ds")["value"].reindex(ets.index) * 1.1)


def test_backtest_plot_bad_input(tiny_frames_forecast):
    bt = backtest_rows(tiny_frames_forecast)
    with pytest.raises(DataError, match="no backtest of series 'North'"):
        views.backtest_plot(tiny_frames_forecast, bt, "North")
    with pytest.raises(DataError, match="missing column"):
        views.backtest_plot(tiny_frames_forecast, bt.drop(columns="yhat"))
