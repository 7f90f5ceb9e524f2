"""streaming's small helpers: which sources stream, and a Parquet file's columns read back in batches."""

from __future__ import annotations

import pandas as pd
import pytest

from datastory import io, schema, streaming


def test_column_batches_give_the_files_columns_in_order_a_batch_at_a_time(tmp_path):
    frame = schema.conform(pd.DataFrame({
        "order_id": [f"O{i}" for i in range(10)], "customer_id": ["Zoë", None, *[f"C{i}" for i in range(8)]],
        "customer_name": "n", "timestamp": pd.date_range("2025-01-01", periods=10, freq="D"), "region": "North",
        "product_line": "Hardware", "quantity": 1.0, "amount": [float(i) for i in range(10)], "discount": 0.0,
        "is_return": False}), schema.TRANSACTIONS, "t")
    path = io.write_parquet(frame, tmp_path / "t.parquet")
    parts = list(streaming.column_batches(path, ["customer_id", "amount"], rows=4))
    assert [len(p) for p in parts] == [4, 4, 2]
    whole = pd.concat(parts, ignore_index=True)
    assert list(whole.columns) == ["customer_id", "amount"]
    assert whole["customer_id"].dtype == pd.StringDtype() and whole["customer_id"].isna().sum() == 1
    pd.testing.assert_series_equal(whole["amount"], frame["amount"])
    assert whole["customer_id"].iloc[0] == "Zoë"


def test_column_batches_of_a_missing_column_or_file_are_refused(tmp_path):
    with pytest.raises(OSError):
        list(streaming.column_batches(tmp_path / "none.parquet", ["amount"]))
