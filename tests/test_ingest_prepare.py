"""ingest.prepare with a column mapping and rules: every source row accounted for, each rule doing what it says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapes

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
    # countries are mapped through country_regions, the others go to Other (counted); a missing one comes
    # from the customer's other lines
    assert set(tx["region"]) == {ingest.OTHER, "DACH"} and q["missing_region_filled"] == 1
    assert q["unmapped_countries"] == {"United Kingdom": 2, "France": 1}
    assert set(tx["product_line"]) == {ingest.ALL_PRODUCTS}
    assert tx["timestamp"].min() == pd.Timestamp("2025-12-01 08:26")
    assert (tx["customer_name"] == tx["customer_id"]).all()


def test_cancellations_can_be_excluded_and_segments_dropped():
    out = ingest.prepare(raw(), params(cancellations="exclude", segment_by="none"))
    assert out.quality["excluded"]["cancelled order"] == 1 and out.quality["cancelled_lines"] == 0
    assert set(out.tx["region"]) == {ingest.ONE_SEGMENT} and not out.tx["is_return"].any()


def test_fail_mode_names_file_row_column_value_and_fix():
    frame = log()
    frame.loc[3, "quantity"] = "three"
    frame.loc[7, "quantity"] = "x"
    with pytest.raises(DataError) as err:
        ingest.prepare(raw(frame), params())
    msg = str(err.value)
    assert "invoices.csv, row 5, column 'Quantity'" in msg and "'three'" in msg and "2 row(s)" in msg
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


# ---------------------------------------------------------------- real shapes (tests/shapes.py)
def invoice_params(**rules) -> config.DataParams:
    return config.DataParams(source="csv", columns=config.ColumnsParams(**shapes.INVOICE_MAPPING),
                             rules=config.RulesParams(**{**shapes.INVOICE_RULES, **rules}))


def purchase_params(**update) -> config.DataParams:
    return config.DataParams(source="csv", columns=config.ColumnsParams(**shapes.PURCHASE_MAPPING),
                             rules=config.RulesParams(**shapes.PURCHASE_RULES), **update)


def test_bad_debt_and_fee_lines_are_excluded_before_any_value_check():
    """A bad-debt line (code B, negative price, no customer) and fee lines with a negative price (M, AMAZONFEE)
    are set aside by the rules, so on_bad_rows: fail never sees their prices."""
    log = shapes.invoice_log()
    out = ingest.prepare(shapes.as_raw(log, shapes.INVOICE_MAPPING), invoice_params())
    q = out.quality
    assert q["rejected"] == {} and q["rows_read"] == len(log) == accounted(q)
    aside = out.rejected.set_index("row")
    bad_debt = [i + 2 for i in np.flatnonzero(log["StockCode"].eq("B"))]
    fees = [i + 2 for i in np.flatnonzero(log["StockCode"].isin(["M", "AMAZONFEE", "BANK CHARGES"]))]
    assert len(bad_debt) == 2 and len(fees) == 3
    assert (aside.loc[bad_debt, "disposition"] == "excluded").all()
    assert (aside.loc[bad_debt, "reason"] == "no customer id").all()        # the first rule that applies
    assert (aside.loc[fees, "reason"] == "non-product line").all()
    assert (aside.loc[fees, "UnitPrice"].str.startswith("-")).sum() == 2     # negative prices, not rejected
    assert (out.tx["amount"] > -1000).all()                                   # the -11,062.06 never got in


def test_exclusion_comes_before_validation_whatever_the_bad_value():
    """A row a rule sets aside is excluded even when its values are unusable; the same row with a customer and
    an ordinary code is the first error."""
    frame = log()
    frame.loc[4, ["unit_price", "timestamp", "quantity"]] = ["-11062.06", "not a date", "NaN"]   # no customer
    frame.loc[1, "unit_price"] = "-18.00"                                                          # POST
    out = ingest.prepare(raw(frame), params())
    assert out.quality["rejected"] == {}
    assert out.quality["excluded"] == {"no customer id": 1, "non-product line": 1}
    frame.loc[4, "customer_id"] = "12583"
    with pytest.raises(DataError, match="timestamp is not") as err:
        ingest.prepare(raw(frame), params())
    assert "row 6" in str(err.value)
    frame.loc[4, "customer_id"] = pd.NA
    with pytest.raises(DataError, match="unit price is negative") as err:
        ingest.prepare(raw(frame), params(non_product_codes=[]))
    assert "row 3" in str(err.value)   # POST is no longer set aside: its negative price is the first problem


def test_checks_run_rules_first():
    checks = ingest._fields(raw(), params(missing_customer="exclude"), pd.Timestamp("2030-01-01"))[1]
    kinds = [c.disposition for c in checks]
    assert kinds == sorted(kinds, key=lambda d: d != "excluded") and kinds[0] == "excluded"


def test_without_an_order_id_each_customer_and_timestamp_is_one_order():
    log = shapes.purchase_log()
    out = ingest.prepare(shapes.as_raw(log, shapes.PURCHASE_MAPPING, "cd.csv"), purchase_params())
    tx, q = out.tx, out.quality
    assert q["order_ids"] == ingest.ORDER_PER_CUSTOMER_TIME and q["rejected"] == {}
    assert q["n_orders"] == tx[["customer_id", "timestamp"]].drop_duplicates().shape[0] < len(tx)
    first = tx.iloc[0]
    assert first["order_id"] == f"{first['customer_id']}@{first['timestamp']:%Y-%m-%dT%H:%M:%S}"
    # most customers bought once
    assert (tx.groupby("customer_id")["order_id"].nunique() == 1).mean() > 0.5
    # the same ids on every run and whatever the row order
    again = ingest.prepare(shapes.as_raw(log.iloc[::-1].reset_index(drop=True), shapes.PURCHASE_MAPPING, "cd.csv"),
                           purchase_params())
    pd.testing.assert_frame_equal(again.tx, tx)


def test_synthesised_order_ids_keep_fractions_of_a_second_and_skip_missing_values():
    ts = pd.Series(pd.to_datetime(["2025-01-01 08:26", "2025-01-01 08:26:01.5", None], format="ISO8601"))
    ids = ingest.order_ids(pd.Series(["C1", "C1", "C2"], dtype="string[pyarrow]"), ts)
    assert ids.tolist()[:2] == ["C1@2025-01-01T08:26:00", "C1@2025-01-01T08:26:01.5"] and pd.isna(ids[2])


def test_no_order_id_column_needs_no_cancelled_prefix():
    assert config.ColumnsParams(order_id="").order_id == ""
    with pytest.raises(ValueError, match="cancelled_prefix"):
        config.DataParams(columns=config.ColumnsParams(order_id=""), rules=config.RulesParams(cancelled_prefix="C"))
    with pytest.raises(ValueError, match="customer_id is required"):
        config.ColumnsParams(customer_id="")


def test_countries_outside_the_mapping_go_to_other_and_are_counted():
    log = shapes.invoice_log()
    out = ingest.prepare(shapes.as_raw(log, shapes.INVOICE_MAPPING), invoice_params())
    tx, q = out.tx, out.quality
    assert set(tx["region"]) == {"UK", "Europe", ingest.OTHER}
    assert set(q["unmapped_countries"]) == {"EIRE", "Spain"}
    assert list(q["unmapped_countries"].values()) == sorted(q["unmapped_countries"].values(), reverse=True)
    assert sum(q["unmapped_countries"].values()) == (tx["region"] == ingest.OTHER).sum()
    # without a mapping each country is its own segment, and nothing is "unmapped"
    plain = ingest.prepare(shapes.as_raw(log, shapes.INVOICE_MAPPING), invoice_params(country_regions={}))
    assert set(plain.tx["region"]) == set(log["Country"]) and plain.quality["unmapped_countries"] == {}
    # segments by region are not touched
    assert ingest.prepare(raw(), params(segment_by="none")).quality["unmapped_countries"] == {}


@pytest.mark.parametrize(("column", "value", "name"), [
    ("customer_id", "178\x0050", "customer id"), ("customer_id", "\x00", "customer id"),
    ("order_id", "5363\x1b69", "order id"), ("product", "22960\x7f", "product"),
    ("country", "\x01France", "country"), ("customer_id", "\x1f12583", "customer id"),
])
def test_control_characters_in_ids_are_invalid_values(column, value, name):
    frame = log()
    frame.loc[5, column] = value
    with pytest.raises(DataError) as err:
        ingest.prepare(raw(frame), params())
    msg = str(err.value)
    source_column = MAPPING[column]
    assert f"invoices.csv, row 7, column '{source_column}': {name} holds a control character" in msg
    assert repr(value) in msg and "fix:" in msg and "\x00" not in msg   # shown escaped, never raw
    out = ingest.prepare(raw(frame), params().model_copy(update={"on_bad_rows": "quarantine"}))
    assert out.quality["rejected"] == {f"{name} holds a control character": 1}
    bad = out.rejected.set_index("row").loc[7]
    assert (bad["disposition"], bad["column"]) == ("rejected", source_column)
    assert not out.tx["customer_id"].str.contains("\x00", regex=False).any()


def test_surrounding_tabs_and_line_ends_are_trimmed_not_rejected():
    frame = log()
    frame.loc[5, "customer_id"] = "\t12583\r\n"
    out = ingest.prepare(raw(frame), params())
    assert out.quality["rejected"] == {} and "12583" in set(out.tx["customer_id"])


def test_control_characters_in_native_values_from_sql():
    frame = pd.DataFrame({"order_id": ["1", "2"], "customer_id": [17850, "C\x002"],
                          "timestamp": pd.to_datetime(["2025-12-01 08:26", "2025-12-02 09:00"]),
                          "quantity": [6, 2], "unit_price": [2.55, 1.0], "country": ["France", "France"],
                          "product": ["85123A", "22633"]})
    with pytest.raises(DataError, match="row 3, column 'CustomerID': customer id holds a control character"):
        ingest.prepare(raw(frame), params(cancelled_prefix=""))


def test_date_format_fix_suggests_a_format_that_reads_the_value_never_the_one_set():
    fix = ingest.date_format_fix("10/13/2023 14:07", "%d/%m/%Y %H:%M", False)
    assert "'%m/%d/%Y %H:%M'" in fix and "'10/13/2023 14:07'" in fix
    assert "%d/%m/%Y %H:%M'" not in fix.replace("'%m/%d/%Y %H:%M'", "")
    unreadable = ingest.date_format_fix("soon", "%Y-%m-%d %H:%M:%S", False)
    assert "%Y-%m-%d %H:%M:%S" not in unreadable and "e.g." in unreadable
