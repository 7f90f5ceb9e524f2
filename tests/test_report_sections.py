"""HTML sections: escaped data, embedded images with alt text, numbers from the pack."""

from __future__ import annotations

import dataclasses
import html
import re

import pytest
from conftest import HOSTILE

from datastory.errors import DataError
from datastory.present import story, words
from datastory.report import sections


def test_hostile_name_is_escaped(hostile_pack):
    body = sections.churn(hostile_pack)
    assert "<script>" not in body
    assert html.escape(HOSTILE) in body  # shown as text, not markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_every_section_escapes_title_and_label(tiny_pack):
    evil = dataclasses.replace(tiny_pack, title="<b onload=x>T</b>", label='"><img src=x>', company="A&B")
    body = sections.document_body(evil)
    assert "<b onload" not in body and '"><img src=x>' not in body
    assert "&lt;b onload=x&gt;T&lt;/b&gt;" in body
    assert "A&amp;B" in body


def test_images_are_embedded_with_alt_and_caption(tiny_pack):
    body = sections.forecasts(tiny_pack)
    imgs = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]+)">', body)
    assert len(imgs) == 2 and all(alt.strip() for alt in imgs)
    assert body.count("<figcaption>") == 2
    assert "http" not in body


def test_kpi_tiles_show_the_formatted_revenue(tiny_pack):
    ch = story.headline_change(tiny_pack)
    body = sections.kpi_tiles(tiny_pack)
    assert f'<div class="value">{words.fmt_money(ch["kpis"]["revenue"]["value"])}</div>' in body
    assert "Key figures: May 2025" in body
    assert body.count('<div class="tile ') == len(words.KPI_LABELS)
    assert 'class="tile up good"' in body  # revenue rose: good news
    assert "+4.3% vs previous month" in body


def test_kpi_tile_with_a_zero_previous_value(tiny_pack):
    k = tiny_pack.kpis.copy()
    k.loc[(k["region"] == "All") & (k["period"] == "2025-04-01"), "new_customers"] = 0
    body = sections.kpi_tiles(dataclasses.replace(tiny_pack, kpis=k))
    tile = re.search(r'<div class="tile (\w+)"><div class="label">New customers</div>.*?</div></div>', body)
    assert tile and tile.group(1) == "flat" and "previous month: 0" in tile.group(0)


def test_too_few_complete_periods_still_render(tiny_pack):
    short = dataclasses.replace(tiny_pack, provenance=dataclasses.replace(tiny_pack.provenance,
                                                                          period_end="2025-02-27"))
    tiles = sections.kpi_tiles(short)
    assert html.escape(words.NO_EARLIER_PERIOD) in tiles
    assert 'class="tile' not in tiles and "<h2>Key figures</h2>" in tiles
    assert 'alt="Bar chart of revenue per period, Whole company"' in tiles  # the chart still shows
    body = sections.document_body(short)
    assert body.count(html.escape(words.NO_EARLIER_PERIOD)) == 2  # summary and tiles
    assert "Customers at risk" in body


def test_forecast_accuracy_is_one_table_with_a_row_per_series(tiny_pack):
    body = sections.forecasts(tiny_pack)
    assert body.count('<table class="accuracy">') == 1
    table = body[body.index('<table class="accuracy">'):]
    head = re.findall(r"<th>([^<]*)</th>", table[:table.index("</thead>")])
    assert head == ["Segment", "Next 4 weeks", "Range", "Backtest error", "Gain over the baseline", "Model"]
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>"
                      r"<td>([^<]*)</td></tr>", table)
    ids = tiny_pack.forecast["series_id"].unique()
    assert [r[0] for r in rows] == ["Whole company", *sorted(words.series_name(s) for s in ids if s != "All")]
    fut = tiny_pack.forecast[(tiny_pack.forecast["series_id"] == "North") & tiny_pack.forecast["is_forecast"]]
    north = next(r for r in rows if r[0] == "North")
    assert north[1] == words.fmt_money(fut["yhat"].sum())
    assert north[2] == f"{words.fmt_money(fut['yhat_lower'].sum())} to {words.fmt_money(fut['yhat_upper'].sum())}"
    assert north[3:] == ("12%", "25% better", "Prophet")  # smape 0.12 against the baseline's 0.16
    assert 'class="segment"' not in body  # no more one paragraph per series
    assert html.escape("repeating last year's figures") in body  # the baseline is named once, in the caption


def test_north_pack_sees_only_north(north_pack):
    body = sections.document_body(north_pack)
    assert "South" not in body
    assert "Ada Ltd" in body and "Delta BV" not in body


def test_churn_list_is_ranked_and_limited(tiny_pack):
    body = sections.churn(tiny_pack, top_n=2)
    names = re.findall(r"<tr><td>([^<]+)</td><td>(?:North|South)</td>", body)
    red = tiny_pack.red_list.sort_values("revenue_at_risk", ascending=False)["customer_name"].head(2)
    assert names == list(red)  # the customers to call come first, most revenue at risk first
    listed = tiny_pack.churn_scores["status"].isin(["call", "watch"]).sum()
    assert f"top 2 of {listed};" in body
    everyone = sections.churn(tiny_pack, top_n=50)
    assert everyone.count("<td>watch</td>") == (tiny_pack.churn_scores["status"] == "watch").sum()
    assert everyone.index("<td>call</td>") < everyone.index("<td>watch</td>")
    with pytest.raises(DataError, match="top_n must be >= 0"):
        sections.churn(tiny_pack, top_n=-1)


def test_footer_and_cover_carry_provenance(tiny_pack):
    footer = tiny_pack.provenance.footer()
    assert html.escape(footer) in sections.footer(tiny_pack)
    cover = sections.cover(tiny_pack)
    assert 'data-doc-date="2025-05-31"' in cover and html.escape(footer) in cover
    assert "Report date 2025-05-31" in cover and "Prepared for" in cover and html.escape(tiny_pack.title) in cover


def test_notes_list_data_quality_and_rejections(tiny_pack):
    dq = {**tiny_pack.data_quality, "rejected": {"negative <quantity>": 4}, "excluded": {"non-product line": 7},
          "empty_periods": ["2025-02"]}
    body = sections.notes(dataclasses.replace(tiny_pack, data_quality=dq))
    assert "<td>Rows read</td><td>1,000</td>" in body
    assert "Rejected (unusable, set aside): negative &lt;quantity&gt;</td><td>4</td>" in body
    assert "Excluded by rule: non-product line</td><td>7</td>" in body
    assert "Months without any row</td><td>2025-02</td>" in body
    assert "comes from the classifier, which ranked customers best on the training data" in body
    assert "its ROC AUC is 0.81 (recency alone 0.74, an RFM score 0.76)" in body


def test_figure_rejects_non_png():
    with pytest.raises(DataError, match="not a PNG"):
        sections.figure(b"GIF89a", "alt", "caption")


def test_empty_pack_sections_say_so(tiny_pack):
    empty = dataclasses.replace(tiny_pack, churn_scores=tiny_pack.churn_scores.iloc[0:0],
                                forecast=tiny_pack.forecast.iloc[0:0])
    assert "No scored customers" in sections.churn(empty)
    assert "No forecast for this audience" in sections.forecasts(empty)


@pytest.mark.parametrize("fn", [*sections.ALL_SECTIONS, sections.document_body], ids=lambda f: f.__name__)
def test_sections_need_a_pack(fn):
    with pytest.raises(DataError, match="expected a datastory Pack, got str"):
        fn("executive")


def test_kpi_tiles_without_the_headline_region_is_a_clear_error(tiny_pack):
    no_total = dataclasses.replace(tiny_pack, kpis=tiny_pack.kpis[tiny_pack.kpis["region"] != "All"])
    with pytest.raises(DataError, match="region 'All'"):
        sections.kpi_tiles(no_total)


def test_tile_colour_follows_good_news_not_direction(tiny_pack):
    import pandas as pd

    kpis = tiny_pack.kpis.copy()
    last = kpis["period"] == pd.Timestamp("2025-05-01")
    kpis.loc[last, "return_rate"] = 0.01  # down from 2%: good news
    html_ = sections.kpi_tiles(dataclasses.replace(tiny_pack, kpis=kpis))
    assert '<div class="tile down good"><div class="label">Return rate' in html_
    assert '<div class="tile up good"><div class="label">Revenue' in html_
    kpis.loc[last, "return_rate"] = 0.05  # up: bad news
    html_ = sections.kpi_tiles(dataclasses.replace(tiny_pack, kpis=kpis))
    assert '<div class="tile up bad"><div class="label">Return rate' in html_
