"""check-data's summary: every count from the quality dict, segments capped, warnings when they apply."""

from __future__ import annotations

import pandas as pd

from datastory import profile, quality

Q = {"source": "csv", "on_bad_rows": "quarantine", "rows_read": 1000, "rows_kept": 900, "duplicates_removed": 10,
     "excluded": {"no customer id": 60, "non-product line": 20}, "rejected": {"timestamp is empty": 10},
     "missing_region_filled": 3, "cancelled_lines": 4, "return_lines": 7, "empty_periods": ["2025-02"],
     "period_start": "2025-01-01", "period_end": "2025-03-31", "n_customers": 50, "n_orders": 400, "currency": "EUR"}


def tx(n_regions: int) -> profile.Profile:
    """The profile of one line per region, the first region's the largest."""
    regions = [f"R{i:02d}" for i in range(n_regions)]
    return profile.of(pd.DataFrame({
        "order_id": regions, "customer_id": regions, "customer_name": regions,
        "timestamp": pd.Timestamp("2025-01-01"), "region": regions, "product_line": "All products",
        "quantity": 1.0, "amount": [float(a) for a in range(n_regions, 0, -1)], "discount": 0.0, "is_return": False}))


def test_summary_lists_every_count_and_warning():
    text = "\n".join(quality.summary(Q, tx(3), "data/raw/x.csv"))
    for fragment in ("data/raw/x.csv (csv, on_bad_rows: quarantine)", "rows read     1,000", "kept          900 (90.0%)",
                     "excluded      80 (8.0%)", "  no customer id: 60", "rejected      10 (1.0%)",
                     "  timestamp is empty: 10", "2025-01-01 to 2025-03-31", "4 cancellations",
                     "segments      3: R00 1 lines", "warning: no rows in 1 month(s) inside the period: 2025-02",
                     "warning: 10 rows were rejected"):
        assert fragment in text, fragment
    lines = quality.summary(Q, tx(3), "x")
    assert lines.index("  no customer id: 60") < lines.index("  non-product line: 20")  # largest first


def test_many_segments_are_capped_and_clean_data_has_no_warnings():
    clean = {**Q, "rejected": {}, "empty_periods": []}
    text = "\n".join(quality.summary(clean, tx(12), "x"))
    assert "segments      12:" in text and "and 4 more" in text and "R11" not in text
    assert "warning" not in text


def test_orders_without_an_order_id_are_said():
    text = "\n".join(quality.summary({**Q, "order_ids": "customer and timestamp"}, tx(1), "x"))
    assert "orders        one per customer and timestamp (no order id column)" in text
    assert "orders        one per" not in "\n".join(quality.summary({**Q, "order_ids": "column"}, tx(1), "x"))


def test_countries_outside_the_mapping_are_named_with_their_lines():
    lines = quality.summary({**Q, "unmapped_countries": {"EIRE": 124, "Spain": 1}}, tx(2), "x")
    warning = next(line for line in lines if "country_regions" in line)
    assert warning.startswith("warning: 2 countries are not in rules.country_regions and go to the region Other: ")
    assert "EIRE (124 lines), Spain (1 line)" in warning and "add them to country_regions" in warning
    one = "\n".join(quality.summary({**Q, "unmapped_countries": {"Spain": 3}}, tx(2), "x"))
    assert "1 country is not in rules.country_regions and goes to the region Other: Spain (3 lines)" in one
    assert "country_regions" not in "\n".join(quality.summary(Q, tx(2), "x"))


def test_segments_tied_to_the_cent_are_listed_by_name_whatever_the_last_bits():
    """Two engines sum a region's revenue in different orders: the last bits may differ, the cents do not."""
    def summary_of(sums: list[float]) -> str:
        kept = profile.make(lines=3, sales=3, negatives=0, product_lines=1, named_all=False,
                            segments=pd.DataFrame({"size": [1, 1, 1], "sum": sums}, index=["West", "East", "North"]),
                            days=pd.DataFrame({"customer_id": ["c"], "timestamp": [pd.Timestamp("2025-01-01")],
                                               "is_return": [False]}))
        return next(line for line in quality.summary(Q, kept, "x") if line.startswith("segments"))

    a = summary_of([100.1, 100.1 + 1e-11, 5.0])
    b = summary_of([100.1 + 1e-11, 100.1, 5.0])
    assert a == b == "segments      3: East 1 lines; West 1 lines; North 1 lines"
    assert summary_of([5.0, 100.1, 100.12]) == "segments      3: North 1 lines; East 1 lines; West 1 lines"


# ---------------------------------------------------------------- the ingest notebook's diagnostics
LINES = pd.DataFrame({"timestamp": pd.to_datetime(["2025-01-31 23:59", "2025-01-02 00:00", "2025-04-01 00:00", "2025-01-15 00:00",
                                                   "2025-04-30 12:00"]),
                      "amount": [10.5, -2.25, 7.0, 100.0, 0.75]})


def test_monthly_net_revenue_sums_each_month_and_keeps_the_empty_ones_between():
    got = quality.monthly_net_revenue([LINES])
    assert list(got.index) == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert got.tolist() == [108.25, 0.0, 0.0, 7.75]
    # the same as the in-memory resample the notebook made before
    want = LINES.set_index("timestamp")["amount"].resample("MS").sum().rename(lambda t: t.strftime("%Y-%m"))
    pd.testing.assert_series_equal(got, want.rename("amount").rename_axis(None), check_index_type=False)


def test_monthly_net_revenue_part_by_part_is_the_whole_ones():
    parts = [LINES.iloc[:2], LINES.iloc[2:2], LINES.iloc[2:]]
    pd.testing.assert_series_equal(quality.monthly_net_revenue(iter(parts)), quality.monthly_net_revenue([LINES]))
    assert quality.monthly_net_revenue([]).empty and quality.monthly_net_revenue([LINES.iloc[:0]]).empty


def test_set_aside_rows_counts_each_reason_part_by_part_and_a_missing_reason_too():
    rejected = pd.DataFrame({"disposition": ["rejected", "duplicate", "rejected", "rejected"],
                             "reason": ["amount is empty", "exact duplicate", "amount is empty", None]},
                            dtype="string")
    whole = quality.set_aside_rows([rejected])
    assert whole["rows"].sum() == 4 and whole.loc[("rejected", "amount is empty"), "rows"] == 2
    assert list(whole.index.names) == ["disposition", "reason"]
    pd.testing.assert_frame_equal(quality.set_aside_rows([rejected.iloc[:1], rejected.iloc[1:]]), whole)
    empty = quality.set_aside_rows([])
    assert empty.empty and list(empty.columns) == ["rows"]
