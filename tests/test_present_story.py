"""present.story: the headline sentences, the accuracy table and the data-quality counts of a pack."""

from __future__ import annotations

import dataclasses

import pytest

from datastory import schema
from datastory.errors import DataError
from datastory.present import story, words


def ends_on(p, period_end: str):
    """The pack with its data ending on `period_end` (what decides which periods are complete)."""
    return dataclasses.replace(p, provenance=dataclasses.replace(p.provenance, period_end=period_end))


def _change(value, previous, freq="M", period="2025-05-01"):
    item = {"value": value, "previous": previous, "change": (value - previous) / previous if previous else None}
    return {"region": schema.ALL, "freq": freq, "period": period, "kpis": {"revenue": item}}


def test_headline_change_is_kpis_latest_change_up_to_the_data_end(tiny_pack, north_pack):
    # tiny KPIs run Jan..Jun 2025 but the data ends 2025-05-31: June is incomplete, May vs April counts
    ch = story.headline_change(tiny_pack)
    assert (ch["region"], ch["period"], ch["previous_period"], ch["freq"]) == (schema.ALL, "2025-05-01",
                                                                               "2025-04-01", "M")
    rev = ch["kpis"]["revenue"]
    assert (rev["value"], rev["previous"]) == (2 * (1000 + 50 * 4), 2 * (1000 + 50 * 3))
    assert rev["change"] == pytest.approx(2400 / 2300 - 1)
    assert story.headline_change(north_pack)["region"] == "North"  # a one-region audience leads with its region
    # an unknown data end ("?" in the provenance) counts every period as complete
    assert story.headline_change(ends_on(tiny_pack, "?"))["period"] == "2025-06-01"


def test_headline_change_is_none_with_too_few_complete_periods(tiny_pack):
    short = ends_on(tiny_pack, "2025-02-27")  # only January is complete
    assert story.headline_change(short) is None
    assert story.executive_summary(short)[0] == words.NO_EARLIER_PERIOD
    assert story.revenue_sentence(None, "EUR") == words.NO_EARLIER_PERIOD


def test_headline_change_without_the_headline_region_is_an_error(tiny_pack):
    no_total = dataclasses.replace(tiny_pack, kpis=tiny_pack.kpis[tiny_pack.kpis["region"] != schema.ALL])
    with pytest.raises(DataError, match="no KPIs for region 'All'"):
        story.headline_change(no_total)


def test_revenue_sentence_growth_and_decline():
    assert story.revenue_sentence(_change(108.0, 100.0), "EUR") == \
        "Revenue was 108 EUR in May 2025, up 8% on the previous month."
    assert story.revenue_sentence(_change(1_150_000.0, 1_250_000.0), "EUR") == \
        "Revenue was 1.1 M EUR in May 2025, down 8% on the previous month."
    assert "flat on the previous month" in story.revenue_sentence(_change(100.0, 100.0), "EUR")


def test_revenue_sentence_quarterly_and_previous_zero():
    assert story.revenue_sentence(_change(90.0, 100.0, "Q", "2025-04-01"), "EUR") == \
        "Revenue was 90 EUR in Q2 2025, down 10% on the previous quarter."
    assert story.revenue_sentence(_change(50.0, 0.0), "EUR") == "Revenue was 50 EUR in May 2025."


def test_revenue_sentence_needs_a_kpi_change():
    with pytest.raises(DataError, match="lacks kpis"):
        story.revenue_sentence({"period": "2025-05-01", "freq": "M"}, "EUR")
    with pytest.raises(DataError, match="lacks kpis.revenue"):
        story.revenue_sentence({"period": "2025-05-01", "freq": "M", "kpis": {}}, "EUR")


@pytest.mark.parametrize("fn", [story.executive_summary, story.forecast_sentence, story.churn_sentence, story.headline_change])
def test_pack_functions_need_a_pack(fn):
    with pytest.raises(DataError, match="expected a datastory Pack"):
        fn(None)
    with pytest.raises(DataError, match="expected a datastory Pack"):
        story.forecast_total(None, schema.ALL)


def test_executive_summary_from_pack(tiny_pack):
    text = story.executive_summary(tiny_pack)
    assert text[0] == "Revenue was 2.4 k EUR in May 2025, up 4.3% on the previous month."
    fut = tiny_pack.forecast[(tiny_pack.forecast["series_id"] == schema.ALL) & tiny_pack.forecast["is_forecast"]]
    ch = story.headline_change(tiny_pack)["kpis"]["return_rate"]
    prev, now, delta = words.rate_pair(ch["value"], ch["previous"])
    assert text[1] == f"Return rate {prev} \u2192 {now}, {delta} on the previous month."
    assert text[2].startswith(f"We expect {words.fmt_money(fut['yhat_lower'].sum())} to "
                              f"{words.fmt_money(fut['yhat_upper'].sum())} EUR over the next {len(fut)} weeks")
    red = tiny_pack.red_list
    assert text[3].startswith(f"{len(red)} customers to call this week (2 to win back, 1 for a second "
                              f"purchase), worth {words.fmt_money(red['annual_value'].sum())} EUR a year")
    assert f"revenue at risk {words.fmt_money(red['revenue_at_risk'].sum())} EUR" in text[3]
    assert text[3].endswith("1 more is on watch.")


def test_north_summary_uses_its_own_numbers(north_pack):
    text = story.executive_summary(north_pack)
    assert text[0].startswith("Revenue was 1.2 k EUR")  # North alone, not the company's 2.4 k
    assert text[3].startswith("2 customers to call this week (2 to win back, 0 for a second purchase)")


def test_forecast_sentence_without_series(tiny_pack):
    assert story.forecast_sentence(tiny_pack, "Nowhere") == "No forecast is available for Nowhere."


def test_forecast_total_sums_the_future_rows(tiny_pack):
    fut = tiny_pack.forecast[(tiny_pack.forecast["series_id"] == "North") & tiny_pack.forecast["is_forecast"]]
    count, unit, lo, mid, hi = story.forecast_total(tiny_pack, "North")
    assert (count, unit) == (len(fut), "weeks")
    assert (lo, mid, hi) == pytest.approx((fut["yhat_lower"].sum(), fut["yhat"].sum(), fut["yhat_upper"].sum()))
    no_freq = dataclasses.replace(tiny_pack, forecast_metrics={**tiny_pack.forecast_metrics, "freq": None})
    assert story.forecast_total(no_freq, "North")[1] == "periods"
    assert story.forecast_total(tiny_pack, "Nowhere")[:2] == (0, "weeks")


def test_churn_sentence_counts_the_audiences_newly_red(tiny_pack, north_pack):
    import dataclasses

    assert "newly" not in story.churn_sentence(tiny_pack)  # no compare date in the metrics: no claim
    metrics = {**tiny_pack.churn_metrics, "compare_date": "2025-05-01"}
    text = story.churn_sentence(dataclasses.replace(tiny_pack, churn_metrics=metrics))
    assert text.startswith("3 customers to call") and "1 of them new on the list (since 2025-05-01)" in text
    north = story.churn_sentence(dataclasses.replace(north_pack, churn_metrics=metrics))
    assert "newly" not in north  # the newly red customer is South's, not North's


def test_revenue_at_risk_is_the_red_list_only(tiny_pack):
    cs = tiny_pack.churn_scores
    assert story.revenue_at_risk(cs) == pytest.approx(cs.loc[cs["red"], "revenue_at_risk"].sum())
    assert story.revenue_at_risk(cs) < cs["revenue_at_risk"].sum()  # the fixture has at-risk customers off the list
    with pytest.raises(KeyError):
        story.revenue_at_risk(cs.drop(columns="red"))


def _reconciled(p, method="bottom_up", reconciled=3, left_out=None):
    rc = {"method": method, "families": {"reconciled": reconciled, "left_out": left_out or {}, "structural": []}}
    return dataclasses.replace(p, forecast_metrics={**p.forecast_metrics, "reconciliation": rc})


def test_coherence_sentence_says_the_forecasts_add_up_and_the_ranges_do_not(tiny_pack):
    text = story.coherence_sentence(_reconciled(tiny_pack))
    assert text.startswith("The forecasts add up") and "summing the product lines up" in text
    assert "ranges do not add up" in text and "Not reconciled" not in text
    assert "MinT" in story.coherence_sentence(_reconciled(tiny_pack, method="mint_shrink"))


def test_coherence_sentence_is_silent_when_nothing_was_reconciled(tiny_pack):
    bare = {k: v for k, v in tiny_pack.forecast_metrics.items() if k != "reconciliation"}
    assert story.coherence_sentence(dataclasses.replace(tiny_pack, forecast_metrics=bare)) is None
    assert story.coherence_sentence(_reconciled(tiny_pack, method="none")) is None
    assert story.coherence_sentence(_reconciled(tiny_pack, reconciled=0)) is None


def test_coherence_sentence_names_only_the_audiences_own_left_out_families(tiny_pack, north_pack):
    left = {"North": "a product line has no forecast", "South": "a product line has no forecast"}
    company = story.coherence_sentence(_reconciled(tiny_pack, left_out=left))
    north = story.coherence_sentence(_reconciled(north_pack, left_out=left))
    assert "Not reconciled" in company and "North" in company and "South" in company
    assert "North" in north and "South" not in north


def test_coherence_sentence_needs_a_pack():
    with pytest.raises(DataError, match="expected a datastory Pack"):
        story.coherence_sentence({"forecast_metrics": {}})


def _with_total(p, sid, lo, mid, hi, how="backtested", periods=13):
    series = {k: dict(v) for k, v in p.forecast_metrics["series"].items()}
    series[sid] |= {"total_periods": periods, "total": mid, "total_lower": lo, "total_upper": hi, "total_range": how}
    return dataclasses.replace(p, forecast_metrics={**p.forecast_metrics, "series": series})


def test_forecast_total_reads_the_stages_record_of_the_total(tiny_pack):
    p = _with_total(tiny_pack, schema.ALL, 1500.0, 2000.0, 2600.0)
    assert story.forecast_total(p, schema.ALL) == (13, "weeks", 1500.0, 2000.0, 2600.0)
    text = story.forecast_sentence(p)
    assert text == "We expect 1.5 k to 2.6 k EUR over the next 13 weeks (central estimate 2.0 k)."
    assert story.executive_summary(p)[2] == text
    headers, rows = story.accuracy_rows(p)
    assert headers[1] == "Next 13 weeks"
    assert rows[0][1:3] == ["2.0 k", "1.5 k to 2.6 k"]   # the table's range is the sentence's


def test_a_total_range_not_backtested_says_so(tiny_pack):
    p = _with_total(tiny_pack, schema.ALL, 1000.0, 2000.0, 3000.0, how="not backtested: per-period ranges summed")
    assert not story.total_backtested(p, schema.ALL)
    word = story.FREQ_WORDS[tiny_pack.forecast_metrics["freq"]]
    assert story.forecast_sentence(p).endswith(f"(central estimate 2.0 k; a cautious range, summed {word} by {word}).")
    assert story.total_backtested(tiny_pack, schema.ALL)   # an old metrics file makes no claim
    assert "cautious" not in story.forecast_sentence(tiny_pack)
