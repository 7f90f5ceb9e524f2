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
    assert whole["customer_id"].dtype == pd.StringDtype("pyarrow") and whole["customer_id"].isna().sum() == 1
    pd.testing.assert_series_equal(whole["amount"], frame["amount"])
    assert whole["customer_id"].iloc[0] == "Zoë"


def test_record_batches_read_a_path_or_an_open_file_alike_and_close_what_they_open(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    frame = pd.DataFrame({"a": range(7), "b": [f"x{i}" for i in range(7)]})
    path = io.write_parquet(frame, tmp_path / "t.parquet")
    from_path = list(streaming.record_batches(path, ["b"], rows=3))
    with pq.ParquetFile(path, pre_buffer=False) as opened:
        from_file = list(streaming.record_batches(opened, ["b"], rows=3))
        assert sum(b.num_rows for b in opened.iter_batches(columns=["a"])) == 7  # the caller's file stays open
    assert [b.num_rows for b in from_path] == [3, 3, 1] == [b.num_rows for b in from_file]
    assert all(b.schema.names == ["b"] for b in from_path)
    assert [v for b in from_path for v in b.column("b").to_pylist()] == list(frame["b"])
    monkeypatch.setenv("DATASTORY_STREAM_BATCH", "5")   # the default batch size
    assert [b.num_rows for b in streaming.record_batches(path, ["a"])] == [5, 2]


def test_arrow_strings_maps_text_only():
    import pyarrow as pa

    assert streaming.arrow_strings(pa.string()) == pd.StringDtype("pyarrow")
    assert streaming.arrow_strings(pa.large_string()) == pd.StringDtype("pyarrow")
    assert streaming.arrow_strings(pa.float64()) is None and streaming.arrow_strings(pa.timestamp("ns")) is None


def test_column_batches_of_a_missing_column_or_file_are_refused(tmp_path):
    with pytest.raises(OSError):
        list(streaming.column_batches(tmp_path / "none.parquet", ["amount"]))


def test_coded_columns_come_as_categoricals_of_the_same_values(tmp_path):
    frame = schema.conform(pd.DataFrame({
        "order_id": [f"O{i}" for i in range(7)], "customer_id": "C", "customer_name": "n",
        "timestamp": pd.date_range("2025-01-01", periods=7, freq="D"),
        "region": ["North", "Süd", None, "North", "East", "Süd", "North"], "product_line": "Hardware",
        "quantity": 1.0, "amount": 1.0, "discount": 0.0, "is_return": False}), schema.TRANSACTIONS, "t")
    path = io.write_parquet(frame, tmp_path / "t.parquet")
    parts = list(streaming.column_batches(path, ["region", "amount"], rows=3, coded=("region",)))
    assert [len(p) for p in parts] == [3, 3, 1]
    assert all(isinstance(p["region"].dtype, pd.CategoricalDtype) for p in parts)
    values = [None if pd.isna(v) else str(v) for p in parts for v in p["region"]]
    assert values == [None if pd.isna(v) else v for v in frame["region"]]
