"""Churn labels on a hand example, and refusals when the label window is not observed."""

from __future__ import annotations

import pandas as pd
import pytest
from test_churn_features import tx_frame

from datastory.churn.labels import labels_at
from datastory.errors import ModelError

ROWS = [
    ("A", "2025-01-31 10:00", "Hardware", 80.0, 0.0, False),
    ("A", "2025-03-05 10:00", "Hardware", -80.0, 0.0, True),    # a return is not a purchase
    ("C", "2025-02-20 10:00", "Services", 300.0, 0.0, False),
    ("C", "2025-03-10 10:00", "Services", 300.0, 0.0, False),
    ("E", "2025-02-01 10:00", "Services", 10.0, 0.0, False),
    ("E", "2025-03-31 00:00", "Services", 10.0, 0.0, False),    # first instant after the window
    ("F", "2025-02-01 10:00", "Services", 10.0, 0.0, False),
    ("F", "2025-03-30 23:00", "Services", 10.0, 0.0, False),    # last hour of the window
    ("G", "2024-01-01 10:00", "Services", 10.0, 0.0, False),    # inactive in the lookback
    ("G", "2025-03-02 10:00", "Services", 10.0, 0.0, False),
    ("D", "2025-04-05 10:00", "Hardware", 10.0, 0.0, False),    # new after the cutoff
]


def test_hand_example():
    lab = labels_at(tx_frame(ROWS), "2025-03-01", window_days=30, lookback_days=365)
    assert lab["customer_id"].tolist() == ["A", "C", "E", "F"]
    assert lab["churned"].tolist() == [True, False, True, False]
    assert str(lab["customer_id"].dtype) == "string" and lab["churned"].dtype == bool


def test_lookback_decides_who_is_labelled():
    lab = labels_at(tx_frame(ROWS), "2025-03-01", window_days=30, lookback_days=20)
    assert lab["customer_id"].tolist() == ["C"]


def test_window_past_the_data_end_is_refused():
    with pytest.raises(ModelError, match="lower window_days") as err:
        labels_at(tx_frame(ROWS), "2025-03-20", window_days=30, lookback_days=365)
    assert "2025-04-05" in str(err.value) and "2025-03-07" in str(err.value)


@pytest.mark.parametrize("cutoff", ["2023-06-01", "2025-05-01"])
def test_cutoff_outside_the_data_is_refused(cutoff):
    with pytest.raises(ModelError, match="outside the data"):
        labels_at(tx_frame(ROWS), cutoff, window_days=30, lookback_days=365)


def test_bad_window_and_lookback_are_refused():
    tx = tx_frame(ROWS)
    with pytest.raises(ModelError, match="window_days"):
        labels_at(tx, pd.Timestamp("2025-03-01"), window_days=0, lookback_days=365)
    with pytest.raises(ModelError, match="lookback_days"):
        labels_at(tx, pd.Timestamp("2025-03-01"), window_days=30, lookback_days=0)
