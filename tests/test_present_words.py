"""Plain-words numbers: formatting, KPI change, and the summary sentences."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from datastory import schema
from datastory.errors import DataError
from datastory.present import words as n


def ends_on(p, period_end: str):
    """The pack with its data ending on `period_end` (what decides which periods are complete)."""
    return dataclasses.replace(p, provenance=dataclasses.replace(p.provenance, period_end=period_end))


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (950, "950"), (9_540, "9.5 k"), (210_400, "210 k"), (999_999, "1.0 M"), (1_234_567, "1.2 M"),
    (-45_000, "-45 k"), (3.4e9, "3.4 bn"),
])
def test_fmt_money(value, text):
    assert n.fmt_money(value) == text


def test_fmt_pct_and_count():
    assert n.fmt_pct(0.08) == "8%"
    assert n.fmt_pct(0.043) == "4.3%"
    assert n.fmt_pct(0.25) == "25%"
    assert n.fmt_pct(0.08, signed=True) == "+8%"
    assert n.fmt_pct(-0.08, signed=True) == "\u22128%"
    assert n.fmt_pct(-0.0001) == "0%"
    assert n.fmt_count(1234567) == "1,234,567"
    assert n.fmt_money(math.nan) == "n/a"


def test_formatting_ignores_locale(monkeypatch):
    import locale
    try:
        locale.setlocale(locale.LC_ALL, "de_DE.UTF-8")
    except locale.Error:
        pytest.skip("de_DE locale not installed")
    try:
        assert n.fmt_money(1_234_567) == "1.2 M"
        assert n.fmt_count(1234) == "1,234"
    finally:
        locale.setlocale(locale.LC_ALL, "C")


@pytest.mark.parametrize("bad", ["12", None, True])
def test_formatters_reject_non_numbers(bad):
    with pytest.raises(DataError, match="expected a number"):
        n.fmt_money(bad)
    with pytest.raises(DataError, match="expected a number"):
        n.fmt_pct(bad)


def test_fmt_kpi_units_and_unknown():
    assert n.fmt_kpi("revenue", 2400.0) == "2.4 k"
    assert n.fmt_kpi("return_rate", 0.02) == "2.0%"  # rates keep a decimal, so their points can be read off
    assert n.fmt_kpi("orders", 88) == "88"
    with pytest.raises(DataError, match="unknown KPI 'margin'"):
        n.fmt_kpi("margin", 1)


def test_period_label():
    assert n.period_label(pd.Timestamp("2025-05-01"), "M") == "May 2025"
    assert n.period_label(pd.Timestamp("2025-04-01"), "Q") == "Q2 2025"
    with pytest.raises(DataError, match="unknown period 'W'"):
        n.period_label(pd.Timestamp("2025-04-01"), "W")


def test_headline_change_is_kpis_latest_change_up_to_the_data_end(tiny_pack, north_pack):
    # tiny KPIs run Jan..Jun 2025 but the data ends 2025-05-31: June is incomplete, May vs April counts
    ch = n.headline_change(tiny_pack)
    assert (ch["region"], ch["period"], ch["previous_period"], ch["freq"]) == (schema.ALL, "2025-05-01",
                                                                               "2025-04-01", "M")
    rev = ch["kpis"]["revenue"]
    assert (rev["value"], rev["previous"]) == (2 * (1000 + 50 * 4), 2 * (1000 + 50 * 3))
    assert rev["change"] == pytest.approx(2400 / 2300 - 1)
    assert n.headline_change(north_pack)["region"] == "North"  # a one-region audience leads with its region
    # an unknown data end ("?" in the provenance) counts every period as complete
    assert n.headline_change(ends_on(tiny_pack, "?"))["period"] == "2025-06-01"


def test_headline_change_is_none_with_too_few_complete_periods(tiny_pack):
    short = ends_on(tiny_pack, "2025-02-27")  # only January is complete
    assert n.headline_change(short) is None
    assert n.executive_summary(short)[0] == n.NO_EARLIER_PERIOD
    assert n.revenue_sentence(None, "EUR") == n.NO_EARLIER_PERIOD


def test_headline_change_without_the_headline_region_is_an_error(tiny_pack):
    no_total = dataclasses.replace(tiny_pack, kpis=tiny_pack.kpis[tiny_pack.kpis["region"] != schema.ALL])
    with pytest.raises(DataError, match="no KPIs for region 'All'"):
        n.headline_change(no_total)


def _change(value, previous, freq="M", period="2025-05-01"):
    item = {"value": value, "previous": previous, "change": (value - previous) / previous if previous else None}
    return {"region": schema.ALL, "freq": freq, "period": period, "kpis": {"revenue": item}}


def test_revenue_sentence_growth_and_decline():
    assert n.revenue_sentence(_change(108.0, 100.0), "EUR") == \
        "Revenue was 108 EUR in May 2025, up 8% on the previous month."
    assert n.revenue_sentence(_change(1_150_000.0, 1_250_000.0), "EUR") == \
        "Revenue was 1.1 M EUR in May 2025, down 8% on the previous month."
    assert "flat on the previous month" in n.revenue_sentence(_change(100.0, 100.0), "EUR")


def test_revenue_sentence_quarterly_and_previous_zero():
    assert n.revenue_sentence(_change(90.0, 100.0, "Q", "2025-04-01"), "EUR") == \
        "Revenue was 90 EUR in Q2 2025, down 10% on the previous quarter."
    assert n.revenue_sentence(_change(50.0, 0.0), "EUR") == "Revenue was 50 EUR in May 2025."


def test_revenue_sentence_needs_a_kpi_change():
    with pytest.raises(DataError, match="lacks kpis"):
        n.revenue_sentence({"period": "2025-05-01", "freq": "M"}, "EUR")
    with pytest.raises(DataError, match="lacks kpis.revenue"):
        n.revenue_sentence({"period": "2025-05-01", "freq": "M", "kpis": {}}, "EUR")


def test_trend_follows_the_shown_percentage():
    assert [n.trend(c) for c in (0.08, -0.08, 0.0004, -0.0004, 0.0, None, math.nan)] == \
        ["up", "down", "flat", "flat", "flat", "flat", "flat"]
    assert n.trend(0.0006) == "up" and n.fmt_pct(0.0006) == "0.1%"  # shown as non-zero, so not flat


@pytest.mark.parametrize("fn", [n.executive_summary, n.forecast_sentence, n.churn_sentence, n.headline_change])
def test_pack_functions_need_a_pack(fn):
    with pytest.raises(DataError, match="expected a datastory Pack"):
        fn(None)
    with pytest.raises(DataError, match="expected a datastory Pack"):
        n.forecast_total(None, schema.ALL)


def test_accuracy_sentence_better_and_worse():
    m = {"smape": 0.12, "naive_smape": 0.16, "folds": 3, "baseline": "seasonal naive"}
    assert n.accuracy_sentence(m, "W") == ("Over 3 backtests, this forecast was off by 12% on average, "
                                           "25% better than repeating last year's figures.")
    worse = n.accuracy_sentence({**m, "smape": 0.20, "folds": 1}, "M")
    assert worse.startswith("Over 1 backtest, this forecast was off by 20%")
    assert worse.endswith("25% worse than repeating last year's figures.")
    assert "no better than" in n.accuracy_sentence({**m, "smape": 0.16}, "W")


def test_accuracy_sentence_names_the_baseline_that_was_used():
    """Without two years of history the baseline repeats the latest period: never say 'last year'."""
    m = {"smape": 0.12, "naive_smape": 0.16, "folds": 2, "baseline": "naive"}
    assert n.accuracy_sentence(m, "W").endswith("25% better than repeating the latest week's figure.")
    assert "last year" not in n.accuracy_sentence(m, "M")
    daily = n.accuracy_sentence({**m, "baseline": "seasonal naive"}, "D")
    assert daily.endswith("than repeating the same weekday of the week before.")


def test_accuracy_sentence_without_a_backtest_says_why():
    m = {"smape": None, "naive_smape": None, "folds": 0,
         "notes": "8 weeks of history: forecast from the recent level; no backtest possible"}
    assert n.accuracy_sentence(m, "W") == ("This forecast could not be backtested: 8 weeks of history: forecast "
                                           "from the recent level; no backtest possible.")


def test_accuracy_sentence_missing_metrics():
    with pytest.raises(DataError, match="lack naive_smape"):
        n.accuracy_sentence({"smape": 0.1}, "W")


def test_executive_summary_from_pack(tiny_pack):
    text = n.executive_summary(tiny_pack)
    assert text[0] == "Revenue was 2.4 k EUR in May 2025, up 4.3% on the previous month."
    fut = tiny_pack.forecast[(tiny_pack.forecast["series_id"] == schema.ALL) & tiny_pack.forecast["is_forecast"]]
    ch = n.headline_change(tiny_pack)["kpis"]["return_rate"]
    prev, now, delta = n.rate_pair(ch["value"], ch["previous"])
    assert text[1] == f"Return rate {prev} \u2192 {now}, {delta} on the previous month."
    assert text[2].startswith(f"We expect {n.fmt_money(fut['yhat_lower'].sum())} to "
                              f"{n.fmt_money(fut['yhat_upper'].sum())} EUR over the next {len(fut)} weeks")
    red = tiny_pack.red_list
    assert text[3].startswith(f"{len(red)} customers to call this week (2 to win back, 1 for a second "
                              f"purchase), worth {n.fmt_money(red['annual_value'].sum())} EUR a year")
    assert f"revenue at risk {n.fmt_money(red['revenue_at_risk'].sum())} EUR" in text[3]
    assert text[3].endswith("1 more is on watch.")


def test_north_summary_uses_its_own_numbers(north_pack):
    text = n.executive_summary(north_pack)
    assert text[0].startswith("Revenue was 1.2 k EUR")  # North alone, not the company's 2.4 k
    assert text[3].startswith("2 customers to call this week (2 to win back, 0 for a second purchase)")


def test_forecast_sentence_without_series(tiny_pack):
    assert n.forecast_sentence(tiny_pack, "Nowhere") == "No forecast is available for Nowhere."


def test_forecast_total_sums_the_future_rows(tiny_pack):
    fut = tiny_pack.forecast[(tiny_pack.forecast["series_id"] == "North") & tiny_pack.forecast["is_forecast"]]
    count, unit, lo, mid, hi = n.forecast_total(tiny_pack, "North")
    assert (count, unit) == (len(fut), "weeks")
    assert (lo, mid, hi) == pytest.approx((fut["yhat_lower"].sum(), fut["yhat"].sum(), fut["yhat_upper"].sum()))
    no_freq = dataclasses.replace(tiny_pack, forecast_metrics={**tiny_pack.forecast_metrics, "freq": None})
    assert n.forecast_total(no_freq, "North")[1] == "periods"
    assert n.forecast_total(tiny_pack, "Nowhere")[:2] == (0, "weeks")


def test_churn_sentence_counts_the_audiences_newly_red(tiny_pack, north_pack):
    import dataclasses

    assert "newly" not in n.churn_sentence(tiny_pack)  # no compare date in the metrics: no claim
    metrics = {**tiny_pack.churn_metrics, "compare_date": "2025-05-01"}
    text = n.churn_sentence(dataclasses.replace(tiny_pack, churn_metrics=metrics))
    assert text.startswith("3 customers to call") and "1 of them new on the list (since 2025-05-01)" in text
    north = n.churn_sentence(dataclasses.replace(north_pack, churn_metrics=metrics))
    assert "newly" not in north  # the newly red customer is South's, not North's


def test_rates_change_in_percentage_points_never_relative():
    assert n.fmt_pt(-0.002) == "\u22120.2 pt"
    assert n.fmt_pt(0.013) == "+1.3 pt"
    assert n.fmt_pt(0.00001) == "0.0 pt"
    item = {"value": 0.012, "previous": 0.014, "change": 0.012 / 0.014 - 1}
    assert n.kpi_move("return_rate", item) == "Return rate 1.4% \u2192 1.2%, \u22120.2 pt"
    assert "%" not in n.kpi_delta("return_rate", item)  # never the relative -14%
    assert n.kpi_trend("return_rate", item) == "down"
    # the figures shown add up: a move that one decimal would hide gets two, on all three figures
    assert n.rate_pair(0.0116, 0.0124) == ("1.24%", "1.16%", "\u22120.08 pt")
    assert n.rate_pair(0.0121, 0.01209) == ("1.2%", "1.2%", "0.0 pt")  # no visible move: flat
    assert n.kpi_trend("return_rate", {"value": 0.0121, "previous": 0.01209, "change": 0.001}) == "flat"
    assert n.rate_pair(0.0149, 0.0152) == ("1.52%", "1.49%", "\u22120.03 pt")
    assert n.kpi_delta("revenue", {"value": 108.0, "previous": 100.0, "change": 0.08}) == "+8%"
    assert n.kpi_delta("revenue", {"value": 5.0, "previous": 0.0, "change": None}) == "n/a"
    with pytest.raises(DataError, match="fmt_pt: expected a number"):
        n.fmt_pt("0.1")


def test_revenue_at_risk_is_the_red_list_only(tiny_pack):
    cs = tiny_pack.churn_scores
    assert n.revenue_at_risk(cs) == pytest.approx(cs.loc[cs["red"], "revenue_at_risk"].sum())
    assert n.revenue_at_risk(cs) < cs["revenue_at_risk"].sum()  # the fixture has at-risk customers off the list
    with pytest.raises(KeyError):
        n.revenue_at_risk(cs.drop(columns="red"))
