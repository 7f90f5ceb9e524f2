"""Promise 2 (bad input gets a clear error), fuzzed: ingest.clean either raises a DatastoryError with a message
or returns schema-exact transactions whose row accounting adds up. Nothing else (no KeyError, no TypeError,
no silently lost rows) is allowed.

Bounded and derandomized so CI sees the same examples on every run.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datastory import ingest, schema
from datastory.errors import DatastoryError

COLUMNS = [*ingest.REQUIRED, *ingest.OPTIONAL]

TEXT = st.one_of(st.sampled_from(["A1", "C001", "North", " ", "", "Hardware", "=1+1", "\t@x", "東京"]),
                 st.text(max_size=8), st.none(), st.just(float("nan")))
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6),
                   st.sampled_from(["1.5", "abc", "", " 2 ", "1e400", "-0"]), st.none())
DISCOUNT = st.one_of(st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from(["0.1", "x", ""]), st.none())
STAMP = st.one_of(st.sampled_from(["2025-03-31", "2025-03-31 14:05", "2025-02-30", "not a date", "", "31/12/2025",
                                   "2025-03-31T10:00:00+02:00", "1677-01-01", "9999-12-31"]),
                  st.datetimes(), st.none(), st.integers(-10**12, 10**12), st.just(float("nan")))
CELL = {"order_id": TEXT, "customer_id": TEXT, "customer_name": TEXT, "region": TEXT, "product_line": TEXT,
        "timestamp": STAMP, "quantity": NUMBER, "amount": NUMBER, "discount": DISCOUNT}
GOOD = {"order_id": st.sampled_from(["O1", "O2", "O3"]), "customer_id": st.sampled_from(["C1", "C2"]),
        "customer_name": st.sampled_from(["Ada", "=cmd|' /C calc'!A0", "<b>x</b>"]),
        "region": st.sampled_from(["North", "South", ""]), "product_line": st.sampled_from(["Hardware", "Tools"]),
        "timestamp": st.sampled_from(["2025-01-02", "2025-03-31 14:05"]),
        "quantity": st.integers(-3, 5), "amount": st.floats(-100, 100), "discount": st.floats(0, 1)}


@st.composite
def frames(draw) -> pd.DataFrame:
    """A raw frame: some columns dropped or extra, each column either well-formed or hostile."""
    n = draw(st.integers(0, 6))
    cols = [c for c in COLUMNS if not draw(st.booleans()) or draw(st.integers(0, 9)) > 0]  # mostly all present
    if draw(st.booleans()):
        cols.append(draw(st.sampled_from(["extra", "Unnamed: 0", "amount ", "1"])))
    data = {}
    for col in cols:
        strat = GOOD.get(col, TEXT) if draw(st.integers(0, 5)) else CELL.get(col, TEXT)
        data[col] = draw(st.lists(strat, min_size=n, max_size=n))
    if draw(st.booleans()) and n:  # duplicate the first row, to exercise de-duplication
        data = {k: [*v, v[0]] for k, v in data.items()}
    return pd.DataFrame(data, columns=cols)


def _check_result(raw: pd.DataFrame, tx: pd.DataFrame, quality: dict) -> None:
    assert list(tx.columns) == list(schema.TRANSACTIONS)
    assert {c: str(t) for c, t in tx.dtypes.items()} == schema.TRANSACTIONS
    assert quality["rows_read"] == len(raw)
    assert quality["rows_read"] == (quality["rows_kept"] + quality["duplicates_removed"]
                                    + sum(quality["rejected"].values()))
    assert quality["rows_kept"] == len(tx)
    for col in ("quantity", "amount", "discount"):
        assert np.isfinite(tx[col].to_numpy()).all(), col
    assert tx["timestamp"].notna().all()
    for col in ("order_id", "customer_id", "customer_name", "region", "product_line"):
        assert tx[col].notna().all() and (tx[col].str.len() > 0).all(), col
    assert set(ingest.QUALITY_KEYS) <= set(quality)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=frames())
def test_clean_raises_a_clear_error_or_returns_a_valid_frame(raw):
    try:
        tx, quality = ingest.clean(raw, "fuzz.csv")
    except DatastoryError as exc:
        assert exc.problem and str(exc).strip()
        assert exc.file == "fuzz.csv"
        return
    _check_result(raw, tx, quality)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(raw=frames())
def test_clean_fuzz_smoke(raw):
    """A quick slice of the fuzz run for the default (fast) suite."""
    try:
        tx, quality = ingest.clean(raw, "fuzz.csv")
    except DatastoryError as exc:
        assert exc.problem
        return
    _check_result(raw, tx, quality)


def test_clean_rejects_an_empty_frame_with_a_message():
    with pytest.raises(DatastoryError, match="no rows"):
        ingest.clean(pd.DataFrame({c: [] for c in COLUMNS}), "empty.csv")


def test_clean_rejects_infinite_amount_naming_row_and_column():
    raw = pd.DataFrame({"order_id": ["O1", "O2"], "customer_id": ["C1", "C2"], "timestamp": ["2025-01-01"] * 2,
                        "region": ["North"] * 2, "product_line": ["Tools"] * 2, "quantity": [1, 1],
                        "amount": [1.0, math.inf], "discount": [0.0, 0.0]})
    with pytest.raises(DatastoryError) as info:
        ingest.clean(raw, "inf.csv")
    assert info.value.row == 2 and info.value.column == "amount"


def test_clean_accepts_iso_dates_with_and_without_time_in_one_column():
    """Found by fuzzing: pandas inferred one format from row 1 and rejected the other ISO spelling."""
    raw = pd.DataFrame({"order_id": ["O1", "O2", "O3"], "customer_id": ["C1", "C2", "C3"],
                        "timestamp": ["2025-03-31 14:05", "2025-04-01", "2025-04-02T09:00:00+02:00"],
                        "region": ["North"] * 3, "product_line": ["Tools"] * 3, "quantity": [1, 1, 1],
                        "amount": [1.0, 2.0, 3.0], "discount": [0.0, 0.0, 0.0]})
    tx, _ = ingest.clean(raw, "mixed.csv")
    assert tx["timestamp"].tolist() == [pd.Timestamp("2025-03-31 14:05"), pd.Timestamp("2025-04-01"),
                                        pd.Timestamp("2025-04-02 07:00")]
