"""dashboard.data: what a dashboard embeds, worded as the report words it, limited to the audience's rows."""

from __future__ import annotations

import dataclasses

import conftest
import pandas as pd
import pytest
from conftest import make_pack

from datastory import kpis, schema
from datastory.dashboard import data, totals
from datastory.errors import DataError
from datastory.present import story, words
from datastory.present.change import what_changed


def with_end(p, end: str):
    """The pack with its data ending on `end` (so more periods count as complete)."""
    return dataclasses.replace(p, provenance=dataclasses.replace(p.provenance, period_end=end))


def tile(tiles: dict, kpi: str) -> dict:
    return next(t for t in tiles["items"] if t["kpi"] == kpi)


@pytest.mark.parametrize("segment", [schema.ALL, "North", "South"])
def test_monthly_tiles_are_the_reports_figures(tiny_pack, segment):
    got = data.tiles(tiny_pack)["M"][segment]
    change = kpis.latest_change(tiny_pack.kpis, segment, tiny_pack.provenance.period_end)
    assert got["period"] == words.period_label(change["period"], "M")
    assert got["previous"] == words.period_label(change["previous_period"], "M")
    for kpi, item in change["kpis"].items():
        now, prev, delta = words.kpi_figures(kpi, item)
        assert (tile(got, kpi)["now"], tile(got, kpi)["prev"], tile(got, kpi)["delta"]) == (now, prev, delta)
        assert tile(got, kpi)["value"] == item["value"]


def test_quarter_tiles_sum_the_months_and_rederive_the_averages(tiny_pack):
    p = with_end(tiny_pack, "2025-06-30")   # Q1 and Q2 complete
    got = data.tiles(p)["Q"]["North"]
    k = p.kpis[p.kpis["region"] == "North"].set_index("period")
    q1, q2 = k.loc["2025-01-01":"2025-03-01"], k.loc["2025-04-01":"2025-06-01"]
    assert (got["period"], got["previous"]) == ("Q2 2025", "Q1 2025")
    assert tile(got, "revenue")["value"] == pytest.approx(q2["revenue"].sum())
    assert tile(got, "revenue")["prev"] == words.fmt_money(q1["revenue"].sum())
    assert tile(got, "orders")["now"] == words.fmt_count(q2["orders"].sum())
    aov = (q2["avg_order_value"] * q2["orders"]).sum() / q2["orders"].sum()
    assert tile(got, "avg_order_value")["value"] == pytest.approx(aov)
    assert tile(got, "return_rate")["value"] == pytest.approx(0.02)
    # distinct customers per quarter, as the kpis stage counts them: never the sum of the months
    counts = kpis.active(conftest.tiny_transactions(["x"] * 6)).set_index(["grain", "region", "period"])
    active = tile(got, "active_customers")
    assert active["value"] == counts.loc[("Q", "North", pd.Timestamp("2025-04-01")), "active_customers"] == 3
    assert active["prev"] == words.fmt_count(counts.loc[("Q", "North", pd.Timestamp("2025-01-01")),
                                                        "active_customers"])
    assert active["note"] == ""


def test_without_distinct_counts_a_coarser_period_says_so(tiny_pack):
    p = dataclasses.replace(with_end(tiny_pack, "2025-06-30"), active=tiny_pack.active.iloc[0:0])
    active = tile(data.tiles(p)["Q"]["North"], "active_customers")
    assert active["value"] is None and active["now"] == "n/a" and active["note"] == data.NOT_SUMMED
    assert tile(data.tiles(p)["M"]["North"], "active_customers")["note"] == ""


def test_aggregate_takes_active_customers_from_the_distinct_counts(tiny_pack):
    q = data.aggregate(tiny_pack.kpis, "Q", tiny_pack.active).set_index(["region", "period"])
    counts = tiny_pack.active[tiny_pack.active["grain"] == "Q"].set_index(["region", "period"])
    both = q.join(counts["active_customers"], rsuffix="_distinct", how="inner")
    assert len(both) == 3 * 2 and (both["active_customers"] == both["active_customers_distinct"]).all()
    assert data.aggregate(tiny_pack.kpis, "Q")["active_customers"].isna().all()


def test_an_incomplete_quarter_or_year_is_not_compared(tiny_pack):
    got = data.tiles(tiny_pack)   # data ends 2025-05-31: Q2 still running, one year only
    assert got["Q"]["North"] == {"message": words.NO_EARLIER_PERIOD, "items": []}
    assert got["Y"][schema.ALL]["message"] == words.NO_EARLIER_PERIOD
    assert [g for g, _ in data.extract(tiny_pack)["grains"]] == ["M", "Q", "Y"]


def test_revenue_bars_mark_the_running_period(tiny_pack):
    bars = data.revenue(tiny_pack)["M"]["South"]
    south = tiny_pack.kpis[tiny_pack.kpis["region"] == "South"]
    assert [b[1] for b in bars] == pytest.approx(south["revenue"].tolist())
    assert [b[3] for b in bars] == [False] * 5 + [True]   # June 2025 runs past the data's last day


def test_a_regional_pack_embeds_only_its_region(north_pack):
    got = data.extract(north_pack)
    assert [s for s, _ in got["scopes"]] == ["North"]
    assert {c["region"] for c in got["calls"]} == {"North"}
    assert {s["region"] for s in got["series"]} == {"North"}
    text = repr(got)
    south_ids = set(north_pack.churn_scores["customer_id"]) ^ {f"C{i:03d}" for i in range(6)}
    assert south_ids and not any(cid in text for cid in south_ids)


def test_call_list_is_the_at_risk_customers_calls_first_riskiest_first(tiny_pack):
    rows = data.calls(tiny_pack)
    cs = tiny_pack.churn_scores
    at_risk = cs[cs["status"] != ""]
    assert sorted(r["id"] for r in rows) == sorted(at_risk["customer_id"])
    for status in ("call", "watch"):
        risks = [r["risk"] for r in rows if r["status"] == status]
        assert risks == sorted(risks, reverse=True)
    top = rows[0]
    src = cs.set_index("customer_id").loc[top["id"]]
    assert top["riskText"] == words.fmt_money(src["revenue_at_risk"]) and top["reasons"] == src["reasons"]


def test_capacity_covers_the_riskiest_customers(tiny_pack):
    rows = data.calls(tiny_pack)
    cap = data.capacity(tiny_pack, rows)
    north = [r for r in rows if r["region"] == "North"]
    assert len(cap["North"]["cum"]) == len(north) + 1
    assert cap["North"]["cum"][2] == words.fmt_money(north[0]["risk"] + north[1]["risk"])
    assert cap[schema.ALL]["calls"] == tiny_pack.call_counts["call"]
    assert cap[schema.ALL]["total"] == words.fmt_money(sum(r["risk"] for r in rows))


def test_bridge_and_forecast_say_what_the_report_says(tiny_pack):
    got = data.extract(tiny_pack)
    assert got["bridge"][schema.ALL]["sentence"] == what_changed(tiny_pack).sentence
    north = what_changed(make_pack("north"))
    assert got["bridge"]["North"]["sentence"] == north.sentence
    assert got["churnSentence"] == story.churn_sentence(tiny_pack)
    sentences = {s["id"]: s["sentence"] for s in got["series"]}
    assert sentences[schema.ALL] == story.forecast_sentence(tiny_pack, schema.ALL)


def test_no_customers_and_no_forecast_still_extract(north_pack):
    empty = dataclasses.replace(north_pack, churn_scores=north_pack.churn_scores.iloc[0:0],
                                forecast=north_pack.forecast.iloc[0:0])
    got = data.extract(empty)
    assert got["calls"] == [] and got["series"] == []
    assert got["capacity"]["North"] == {"cum": ["0"], "total": "0", "calls": 0, "scored": 0}


def test_scored_but_nobody_at_risk_is_told_apart_from_nobody_scored(north_pack):
    calm = north_pack.churn_scores.assign(status="", red=False)
    got = data.extract(dataclasses.replace(north_pack, churn_scores=calm))
    assert got["calls"] == [] and got["capacity"]["North"]["scored"] == len(calm) > 0
    assert {data.NO_SCORED, data.NO_CUSTOMERS} <= set(got["messages"].values())


def test_extract_refuses_what_is_not_a_pack():
    with pytest.raises(DataError):
        data.extract(pd.DataFrame())


def test_at_the_call_lists_size_the_slider_covers_the_reports_revenue_at_risk(tiny_pack):
    """The call list comes first, so the slider's starting point reads the report's 'revenue at risk'."""
    rows = data.calls(tiny_pack)
    status = [r["status"] for r in rows]
    assert status == sorted(status, key=lambda s: s != "call")   # every 'call' before any 'watch'
    cap = data.capacity(tiny_pack, rows)
    for seg, c in cap.items():
        scores = tiny_pack.churn_scores
        mine = scores if seg == schema.ALL else scores[scores["region"] == seg]
        assert c["cum"][c["calls"]] == words.fmt_money(mine.loc[mine["red"], "revenue_at_risk"].sum())


def test_a_series_without_a_forecast_says_why_from_the_forecast_metrics(north_pack):
    fc = north_pack.forecast
    history_only = fc[~(fc["series_id"].eq("North") & fc["is_forecast"])]
    why = "only 2 weeks of history: too little to forecast (at least 3 weeks are needed)"
    fm = {**north_pack.forecast_metrics, "series": {**north_pack.forecast_metrics["series"],
                                                   "North": {"status": "no_forecast", "notes": why}}}
    got = {s["id"]: s for s in data.extract(dataclasses.replace(north_pack, forecast=history_only,
                                                                forecast_metrics=fm))["series"]}
    assert got["North"]["sentence"] == f"No forecast for North: {why}." and got["North"]["model"] == ""
    assert got["North / Hardware"]["sentence"] == story.forecast_sentence(north_pack, "North / Hardware")
    bare = dataclasses.replace(north_pack, forecast=history_only, forecast_metrics={"series": {}})
    assert {s["id"]: s for s in data.extract(bare)["series"]}["North"]["sentence"] == "No forecast for North."


def test_series_carry_their_totals_at_each_period_the_forecast_can_be_summed_to(tiny_pack):
    got = data.extract(tiny_pack)
    s = next(x for x in got["series"] if x["id"] == schema.ALL)
    assert set(s["grains"]) == {"M", "Q", "Y"}
    g = tiny_pack.forecast[tiny_pack.forecast["series_id"] == schema.ALL]
    assert s["grains"]["M"] == totals.to_grain(g, "W", "M") and s["grains"]["M"]
    assert got["fcNotes"]["M"] == totals.note("W", "M") and got["fcOwnLabel"] == "Weeks, with range"
    monthly = dataclasses.replace(tiny_pack, forecast_metrics={**tiny_pack.forecast_metrics, "freq": "M"})
    assert set(next(x for x in data.extract(monthly)["series"] if x["id"] == schema.ALL)["grains"]) == {"Q", "Y"}
