"""ingest.prepare with a column mapping and rules: every source row accounted for, each rule doing what it says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory import config, ingest, schema
from datastory.errors import DataError
from datastory.sources import Raw

MAPPING = {"order_id": "InvoiceNo", "customer_id": "CustomerID", "timestamp": "InvoiceDate", "amount": "",
           "quantity": "Quantity", "unit_price": "UnitPrice", "discount": "", "region": "", "country": "Country",
           "product": "StockCode", "product_line": "", "customer_name": ""}


def log() -> pd.DataFrame:
    """Nine invoice lines as text: a cancellation, postage, a guest line, a duplicate, a missing country."""
    rows = [
        ("536365", "85123A", "6", "12/1/2025 8:26", "2.55", "17850", "United Kingdom"),
        ("536365", "POST", "1", "12/1/2025 8:26", "18.00", "17850", "United Kingdom"),
        ("536366", "22633", "6", "12/1/2025 8:28", "1.85", "17850", ""),
        ("C536367", "85123A", "-2", "12/2/2025 9:00", "2.55", "17850", "United Kingdom"),
        ("536368", "22960", "3", "12/3/2025 10:15", "4.25", "", "France"),
        ("536369", "22960", "12", "1/5/2026 11:00", "4.25", "12583", "France"),
        ("536369", "22960", "12", "1/5/2026 11:00", "4.25", "12583", "France"),
        ("536370", "21730", "4", "1/6/2026 12:30", "4.25", "12662", "Germany"),
        ("536371", "21730", "1", "1/7/2026 13:00", "4.25", "12662", "Germany"),
    ]
    cols = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
    frame = pd.DataFrame(rows, columns=cols).astype("string[pyarrow]")
    frame = frame.mask(frame == "")
    inv = {v: k for k, v in MAPPING.items() if v}
    return frame.rename(columns=inv)


def params(**rules) -> config.DataParams:
    base = {"date_format": "%m/%d/%Y %H:%M", "cancelled_prefix": "C", "non_product_codes": ["post"],
            "segment_by": "country", "country_regions": {"Germany": "DACH"}}
    return config.DataParams(source="csv", columns=config.ColumnsParams(**MAPPING),
                             rules=config.RulesParams(**{**base, **rules}))


def raw(frame: pd.DataFrame | None = None) -> Raw:
    return Raw(frame=log() if frame is None else frame, name="invoices.csv", first_row=2,
               source_columns={k: v for k, v in MAPPING.items() if v})


def accounted(q: dict) -> int:
    return q["rows_kept"] + q["duplicates_removed"] + sum(q["excluded"].values()) + sum(q["rejected"].values())


def test_every_row_is_accounted_for_and_rules_apply():
    out = ingest.prepare(raw(), params())
    q, tx = out.quality, out.tx
    assert list(tx.columns) == list(schema.TRANSACTIONS)
    assert q["rows_read"] == 9 == accounted(q)
    assert q["excluded"] == {"no customer id": 1, "non-product line": 1} and q["duplicates_removed"] == 1
    assert q["rejected"] == {} and q["rows_kept"] == 6
    assert len(out.rejected) == 3 and sorted(out.rejected["row"]) == [3, 6, 8]   # file rows (header = row 1)
    assert set(out.rejected["disposition"]) == {"excluded", "duplicate"}
    assert "InvoiceNo" in out.rejected.columns            # the user's own column names, values as text
    # amount = quantity x unit price; the cancellation is a return with negative revenue
    assert tx["amount"].sum() == pytest.approx(6 * 2.55 + 6 * 1.85 - 2 * 2.55 + 12 * 4.25 + 4 * 4.25 + 4.25)
    assert q["cancelled_lines"] == 1 == q["return_lines"] == int(tx["is_return"].sum())
    # countries are the segments, mapped through country_regions; a missing one comes from the customer
    assert set(tx["region"]) == {"United Kingdom", "France", "DACH"} and q["missing_region_filled"] == 1
    assert set(tx["product_line"]) == {ingest.ALL_PRODUCTS}
    assert tx["timestamp"].min() == pd.Timestamp("2025-12-01 08:26")
    assert (tx["customer_name"] == tx["customer_id"]).all()


def test_cancellations_can_be_excluded_and_segments_dropped():
    out = ingest.prepare(raw(), params(cancellations="exclude", segment_by="none"))
    assert out.quality["excluded"]["cancelled order"] == 1 and out.quality["cancelled_lines"] == 0
    assert set(out.tx["region"]) == {ingest.ONE_SEGMENT} and not out.tx["is_return"].any()


def test_fail_mode_names_file_row_column_value_and_fix():
    frame = log()
    frame.loc[4, "quantity"] = "three"
    frame.loc[7, "quantity"] = "x"
    with pytest.raises(DataError) as err:
        ingest.prepare(raw(frame), params())
    msg = str(err.value)
    assert "invoices.csv, row 6, column 'Quantity'" in msg and "'three'" in msg and "2 row(s)" in msg
    assert "fix:" in msg and "quarantine" in msg


def test_quarantine_sets_bad_rows_aside_with_reasons():
    frame = log()
    frame.loc[0, "quantity"] = "three"
    frame.loc[5, "timestamp"] = "2026-13-45"
    frame.loc[7, "unit_price"] = "-4.25"
    cfg = params().model_copy(update={"on_bad_rows": "quarantine"})
    out = ingest.prepare(raw(frame), cfg)
    q = out.quality
    assert q["rejected"] == {"quantity is not a finite number": 1, "unit price is negative": 1,
                             "timestamp is not the column's format (%m/%d/%Y %H:%M)": 1}
    assert q["rows_read"] == accounted(q) == 9
    bad = out.rejected[out.rejected["disposition"] == "rejected"].set_index("row")
    assert bad.loc[2, "column"] == "Quantity" and bad.loc[2, "Quantity"] == "three"
    assert bad.loc[9, "reason"] == "unit price is negative"
    # the duplicate of the rejected row 7 is not counted twice
    assert q["duplicates_removed"] == 0 and len(out.rejected) == q["rows_read"] - q["rows_kept"]


def test_nothing_usable_is_an_error():
    with pytest.raises(DataError, match="no usable rows"):
        ingest.prepare(raw(log().assign(customer_id=pd.NA)), params())


def test_future_rows_are_rejected_against_max_timestamp():
    with pytest.raises(DataError, match="future") as err:
        ingest.prepare(raw(), params(max_timestamp="2025-12-31"))
    assert "row 7" in str(err.value)
    ok = ingest.prepare(raw(), params(), now=pd.Timestamp("2026-02-01"))
    assert ok.quality["rejected"] == {}


def test_empty_months_warn_or_fail():
    frame = log()
    frame.loc[frame["order_id"] == "536371", "timestamp"] = "3/7/2026 13:00"
    assert ingest.prepare(raw(frame), params()).quality["empty_periods"] == ["2026-02"]
    with pytest.raises(DataError, match="2026-02"):
        ingest.prepare(raw(frame), params(empty_periods="fail"))


@pytest.mark.parametrize(("values", "fmt_rule", "expected"), [
    (["2025-03-31", "2025-03-31 14:05", "2025-04-01T09:00:00"], {}, "2025-03-31 00:00"),
    (["31/03/2025 14:05", "01/04/2025 09:00"], {"dayfirst": True}, "2025-03-31 14:05"),
    (["03/31/2025 14:05", "04/01/2025 09:00"], {}, "2025-03-31 14:05"),
    (["31.03.2025", "01.04.2025"], {"date_format": "%d.%m.%Y"}, "2025-03-31 00:00"),
])
def test_date_formats(values, fmt_rule, expected):
    parsed, _ = ingest.parse_timestamps(pd.Series(values, dtype="string[pyarrow]"), **fmt_rule)
    assert parsed.notna().all() and parsed.min() == pd.Timestamp(expected)


def test_mixed_date_formats_mark_the_minority():
    values = pd.Series(["12/1/2025 8:26", "12/2/2025 9:00", "2025-12-03 10:00"], dtype="string[pyarrow]")
    parsed, fmt = ingest.parse_timestamps(values)
    assert fmt == "%m/%d/%Y %H:%M" and parsed.isna().tolist() == [False, False, True]


def test_offsets_convert_to_the_declared_zone():
    values = pd.Series(["2025-03-31T12:00:00+02:00", "2025-03-31 12:00"], dtype="string[pyarrow]")
    parsed, _ = ingest.parse_timestamps(values, timezone="Europe/London")
    assert parsed.tolist() == [pd.Timestamp("2025-03-31 11:00"), pd.Timestamp("2025-03-31 12:00")]


@pytest.mark.parametrize(("text", "decimal", "thousands", "expected"), [
    ("1234.56", ".", "", 1234.56), ("1234,56", ",", "", 1234.56), ("1.234,56", ",", ".", 1234.56),
    ("1,234.56", ".", ",", 1234.56), (" 7 ", ".", "", 7.0),
])
def test_number_marks(text, decimal, thousands, expected):
    out = ingest.parse_numbers(pd.Series([text, None], dtype="string[pyarrow]"), decimal, thousands)
    assert out.iloc[0] == pytest.approx(expected) and np.isnan(out.iloc[1])


def test_decimal_comma_without_the_param_is_a_clear_error():
    frame = log()
    frame["unit_price"] = frame["unit_price"].str.replace(".", ",", regex=False)
    with pytest.raises(DataError, match="decimal") as err:
        ingest.prepare(raw(frame), params())
    assert "column 'UnitPrice'" in str(err.value)
    cfg = params().model_copy(update={"file": config.FileParams(decimal=",")})
    assert ingest.prepare(raw(frame), cfg).quality["rows_kept"] == 6


def test_prepare_is_deterministic_and_order_independent():
    a = ingest.prepare(raw(), params())
    b = ingest.prepare(raw(log().iloc[::-1].reset_index(drop=True)), params())
    pd.testing.assert_frame_equal(a.tx, b.tx)
    assert a.quality == b.quality


def test_native_values_from_excel_or_sql():
    frame = pd.DataFrame({"order_id": [536365.0, 536366.0], "customer_id": [17850.0, np.nan],
                          "timestamp": pd.to_datetime(["2025-12-01 08:26", "2025-12-02 09:00"]),
                          "quantity": [6, 2], "unit_price": [2.55, 1.0], "country": ["France", "France"],
                          "product": ["85123A", "22633"]})
    out = ingest.prepare(raw(frame), params())
    assert out.tx["order_id"].tolist() == ["536365"] and out.tx["customer_id"].tolist() == ["17850"]
    assert out.quality["excluded"] == {"no customer id": 1}


def test_params_refuse_inconsistent_mappings():
    with pytest.raises(ValueError, match="amount"):
        config.ColumnsParams(amount="", unit_price="")
    with pytest.raises(ValueError, match="more than one"):
        config.ColumnsParams(order_id="id", customer_id="id")
    with pytest.raises(ValueError, match="segment_by"):
        config.DataParams(columns=config.ColumnsParams(region=""))
    with pytest.raises(ValueError, match="password"):
        config.SqlParams(url="postgresql://u:secret@h/db")


def test_repeated_rows_match_pandas_duplicated():
    rng = np.random.default_rng(3)
    n = 3000
    frame = pd.DataFrame({
        "order_id": pd.array(rng.integers(0, 40, n).astype(str), dtype="string[pyarrow]"),
        "product": pd.array(rng.choice(["A", "B", None], n), dtype="string[pyarrow]"),
        "quantity": pd.array(rng.integers(1, 3, n).astype(str), dtype="string[pyarrow]"),
        "customer_id": pd.array(rng.integers(0, 3, n).astype(str), dtype="string[pyarrow]"),
    })
    expected = frame.duplicated(keep="first").to_numpy()
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(ingest._repeated(frame), expected)
