"""views: accuracy/wins tables and the history + forecast plot."""

from __future__ import annotations

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
