"""The report's sections as HTML fragments (strings), one function per section, Pack in, HTML out.

Every value that comes from data or parameters passes through `html.escape`, so a customer
called `<script>` is shown as text. Figures are embedded as base64 data: URIs inside
<figure>/<figcaption>, so the HTML is one self-contained file with no external requests.
"""

from __future__ import annotations

import base64
from html import escape

import pandas as pd

from ..errors import DataError
from ..present import Pack, figures
from ..present.change import what_changed as change_section
from ..present.story import (
    accuracy_rows,
    churn_sentence,
    coherence_sentence,
    executive_summary,
    headline_change,
    quality_rows,
)
from ..present.waterfall import axis_cut, waterfall
from ..present.words import (
    FREQ_WORDS,
    KPI_LABELS,
    NO_EARLIER_PERIOD,
    REVENUE_AT_RISK,
    baseline_words,
    fmt_count,
    fmt_money,
    fmt_pct,
    is_good,
    kpi_figures,
    kpi_trend,
    period_label,
    require_pack,
    series_name,
)

PANELS_PER_FIGURE = 9  # small multiples per figure: 3 rows of 3 fit a page
TOP_N = 15  # customers shown in the report's risk list (the workbook has all of them)


def e(value: object) -> str:
    """Escaped text of any value (quotes included, so it is also safe inside attributes)."""
    return escape(str(value), quote=True)


def figure(png: bytes, alt: str, caption: str) -> str:
    """A <figure> holding the PNG as a data: URI, with alt text and a caption."""
    if not png.startswith(b"\x89PNG"):
        raise DataError("figure: the image is not a PNG", fix="pass the bytes returned by present.figures")
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{e(alt)}">'
            f"<figcaption>{e(caption)}</figcaption></figure>")


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table from already-escaped cells; thead repeats on each printed page."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    klass = f' class="{e(cls)}"' if cls else ""
    return f"<table{klass}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def cover(p: Pack) -> str:
    """Title page: title, company, audience, data period, report date and provenance.

    The report is dated by its data, never by the clock, so a re-run gives the same bytes.

    The data-* attributes carry the document title and date for render.py (HTML <title>, PDF
    metadata); the `.running-*` elements feed the PDF's running header and footer.
    """
    require_pack(p)
    prov = p.provenance
    return (
        f'<section class="cover" data-doc-title="{e(p.title)}" data-doc-date="{e(prov.period_end)}">'
        f'<p class="company">{e(p.company)}</p>'
        f"<h1>{e(p.title)}</h1>"
        f'<p class="audience">Prepared for <span class="running-audience">{e(p.label)}</span></p>'
        f'<p class="period">Data from {e(prov.period_start)} to {e(prov.period_end)}</p>'
        f'<p class="date">Report date {e(prov.period_end)} (the last day of data)</p>'
        f'<p class="running-provenance">{e(prov.footer())}</p>'
        "</section>"
    )


def summary(p: Pack) -> str:
    """Executive summary: the headline numbers in plain sentences."""
    require_pack(p)
    items = "".join(f"<li>{e(s)}</li>" for s in executive_summary(p))
    scope = "the whole company" if p.is_company else ", ".join(p.regions)
    return (f'<section class="summary"><h2>Executive summary</h2>'
            f"<p>Scope: {e(scope)}. Amounts in {e(p.currency)}.</p><ul>{items}</ul></section>")


def _tile(kpi: str, item: dict, word: str) -> str:
    """One KPI tile from an item of kpis.latest_change's "kpis" ({value, previous, change})."""
    cls = kpi_trend(kpi, item)
    good = is_good(kpi, cls)
    if good is not None:
        cls += " good" if good else " bad"
    value, _, delta = kpi_figures(kpi, item)
    delta = f"previous {word}: 0" if delta == "n/a" else f"{delta} vs previous {word}"
    return (f'<div class="tile {cls}"><div class="label">{e(KPI_LABELS[kpi])}</div>'
            f'<div class="value">{e(value)}</div>'
            f'<div class="delta">{e(delta)}</div></div>')


def kpi_tiles(p: Pack) -> str:
    """KPI tiles (last complete period vs previous) and the revenue-by-period chart.

    With fewer than two complete periods (headline_change is None) the tiles give way to
    NO_EARLIER_PERIOD; the chart of what there is still shows.
    """
    require_pack(p)
    if p.kpis.empty:
        return '<section class="kpis"><h2>Key figures</h2><p>No KPI data for this audience.</p></section>'
    ch = headline_change(p)
    word = FREQ_WORDS[ch["freq"]] if ch else "period"
    where = series_name(p.headline_region)
    chart = figure(figures.revenue_by_period(p), f"Bar chart of revenue per {word}, {where}",
                   f"Revenue per {word} ({p.currency}); the latest {word} is the darker bar.")
    note = f'<p class="note">{e(where)}; amounts in {e(p.currency)}.</p>'
    if ch is None:
        return (f'<section class="kpis"><h2>Key figures</h2>{note}<p class="no-comparison">{e(NO_EARLIER_PERIOD)}</p>'
                f"{chart}</section>")
    tiles = "".join(_tile(k, ch["kpis"][k], word) for k in KPI_LABELS)
    return (f'<section class="kpis"><h2>Key figures: {e(period_label(ch["period"], ch["freq"]))}</h2>'
            f'{note}<div class="tiles">{tiles}</div>{chart}</section>')


def what_changed(p: Pack) -> str:
    """The revenue bridge from the previous period to the latest (waterfall and table), its price/volume/mix
    split where there is one, and the top movers; a plain sentence when there is no previous period."""
    ch = change_section(p)
    if ch.message:
        return f'<section class="change"><h2>What changed</h2><p>{e(ch.message)}</p></section>'
    cut = " The value axis does not start at zero." if axis_cut(ch) else ""
    out = [f'<section class="change"><h2>{e(ch.title)}</h2><p>{e(ch.sentence)}</p>',
           figure(waterfall(p, ch), f"Waterfall chart of revenue from {ch.previous_period} to {ch.period}, {ch.where}",
                  f"{ch.where}, {p.currency}: rises in green, falls in red.{cut}"),
           _table(["Revenue bridge", f"Amount ({e(p.currency)})", "Customers", "Who"],
                  [[e(r.label), e(r.text), e(r.customers_text), e(r.explain)] for r in ch.rows], "bridge")]
    if ch.split:
        out.append(_table(["Existing customers' change", f"Amount ({e(p.currency)})", "Customers", "What"],
                          [[e(r.label), e(r.text), e(r.customers_text), e(r.explain)] for r in ch.split], "bridge split"))
    else:
        out.append(f'<p class="note">{e(ch.split_note)}</p>')
    for kind in dict.fromkeys(m.kind for m in ch.movers):
        rows = [[e(m.direction), e(m.name), e(m.previous_text), e(m.current_text), e(m.change_text)]
                for m in ch.movers if m.kind == kind]
        moves = " and ".join(dict.fromkeys(f"{m.direction.lower()}s" for m in ch.movers if m.kind == kind))
        out.append(f'<h3 class="sub">{e(kind)}: largest {e(moves)}</h3>'
                   + _table(["", "Name", e(ch.previous_period), e(ch.period), "Change"], rows, "movers"))
    return "".join(out) + "</section>"


def forecasts(p: Pack) -> str:
    """Headline forecast chart, small multiples per segment, and per segment its accuracy in words."""
    require_pack(p)
    if p.forecast.empty:
        return '<section class="forecast"><h2>Revenue forecast</h2><p>No forecast for this audience.</p></section>'
    parts = ['<section class="forecast"><h2>Revenue forecast</h2>']
    ids = list(dict.fromkeys(p.forecast["series_id"]))
    head = p.headline_region if p.headline_region in ids else ids[0]
    parts.append(figure(figures.forecast_chart(p, head), f"Line chart of actual and forecast revenue, {series_name(head)}",
                        "Actual revenue (blue), forecast (orange) and its likely range (shaded)."))
    segs = figures.segment_ids(p)
    for i in range(0, len(segs), PANELS_PER_FIGURE):  # a figure never outgrows a printed page
        chunk = segs[i:i + PANELS_PER_FIGURE]
        parts.append(figure(figures.segment_multiples(p, chunk),
                            "Small multiples of the revenue forecast per segment: " + ", ".join(chunk),
                            "The same view for each segment" + (f" ({i // PANELS_PER_FIGURE + 1})."
                                                               if len(segs) > PANELS_PER_FIGURE else ".")))
    parts.append(accuracy_table(p))
    return "".join(parts) + "</section>"


def accuracy_table(p: Pack) -> str:
    """Accuracy per segment as one table: forecast, range, backtest error, gain over the baseline, model."""
    require_pack(p)
    headers, rows = accuracy_rows(p)
    if not rows:
        return ""
    freq = str(p.forecast_metrics.get("freq", ""))
    series = p.forecast_metrics.get("series", {}) or {}
    baselines = sorted({baseline_words(m.get("baseline"), freq) for m in series.values() if isinstance(m, dict)})
    notes = [(series_name(sid), str(m["notes"])) for sid, m in sorted(series.items())
             if isinstance(m, dict) and m.get("notes") and int(m.get("folds") or 0)]
    caption = (f"Amounts in {p.currency}. Backtest error: how far the forecast was off on average over up to "
               f"{p.forecast_metrics.get('folds', '?')} rolling backtests (sMAPE). Gain over the baseline: how "
               f"much smaller that error is than {' or '.join(baselines) or 'a naive forecast'}.")
    cells = [[e(c) for c in r] for r in rows]
    coherent = coherence_sentence(p)
    out = (f'<h3 class="sub">Accuracy per segment</h3><p class="note">{e(caption)}</p>'
           + (f'<p class="note">{e(coherent)}</p>' if coherent else "")
           + _table([e(h) for h in headers], cells, "accuracy"))
    if notes:
        out += ('<ul class="note">' + "".join(f"<li>{e(name)}: {e(text)}.</li>" for name, text in notes) + "</ul>")
    return out


def churn(p: Pack, top_n: int = TOP_N) -> str:
    """Churn-risk chart and the top red-listed customers with their reasons."""
    require_pack(p)
    if top_n < 0:
        raise DataError(f"top_n must be >= 0, got {top_n}", fix="pass how many customers to list")
    out = ['<section class="churn"><h2>Customers at risk</h2>', f"<p>{e(churn_sentence(p))}</p>"]
    if p.churn_scores.empty:
        return "".join(out) + "<p>No scored customers for this audience.</p></section>"
    by = "region" if p.is_company else "call list"
    out.append(figure(figures.churn_risk(p), f"Histogram of churn probabilities and bar chart of revenue at risk by {by}",
                      f"Left: how likely customers are to leave. Right: expected loss per {by}, every scored customer "
                      "in grey, the red list's revenue at risk in red."))
    if (p.churn_metrics or {}).get("calibration"):
        out.append(figure(figures.churn_calibration(p), "Calibration plot of the churn model",
                          "Left: predicted probability against the share of customers who really left, on held-out "
                          "customers of every region; points near the diagonal mean the risk figures can be "
                          "taken at face value. Right: how the risk spreads within each call list "
                          "(the share of customers at or below each probability)."))
    listed = p.churn_scores[p.churn_scores["status"].isin(["call", "watch"])]
    ranked = listed.assign(_watch=listed["status"] == "watch").sort_values(
        ["_watch", "revenue_at_risk", "customer_id"], ascending=[True, False, True], kind="stable")
    top = ranked.head(top_n)
    if top.empty:
        return "".join(out) + "</section>"
    rows = [[e(r.customer_name), e(r.region), e(r.list), e(r.status),
             e(fmt_pct(r.probability)), e(fmt_money(r.annual_value)), e(fmt_money(r.revenue_at_risk)),
             e(pd.Timestamp(r.last_order).strftime("%Y-%m-%d")), e(r.reasons or "")]
            for r in top.itertuples(index=False)]
    out.append(f"<h3>To call, then to watch, most revenue at risk first (top {len(top)} of "
               f"{fmt_count(len(ranked))}; the workbook has every scored customer)</h3>")
    out.append(_table(["Customer", "Region", "List", "Status", "Risk", "Annual value", "At risk",
                       "Last order", "Why"], rows, "risk"))
    return "".join(out) + "</section>"


def _count(value: object) -> str:
    """An escaped data-quality count: '1,234' for numbers, the value's text otherwise."""
    return e(fmt_count(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value)


def notes(p: Pack) -> str:
    """Data quality counts and method notes, so a reader can judge how far to trust the numbers."""
    require_pack(p)
    rows = [[e(label), _count(value)] for label, value in quality_rows(p)]
    fm, cm = p.forecast_metrics, p.churn_metrics
    method = [
        f"Forecasts: each series is forecast with the model that did best in up to {fm.get('folds', '?')} "
        f"rolling backtests (Prophet, exponential smoothing, Theta, complex exponential smoothing, a naive "
        f"baseline, or an average of them weighted by their backtest accuracy); a history too short to backtest is forecast from "
        f"its recent level, and seasonality is only used with two full years of history. The shaded range "
        f"comes from the backtest errors: at each step ahead, the range that held "
        f"{fm.get('interval_width', 0.8):.0%} of the actual values over all series; the totals quoted add "
        f"these up, so they are a wide range.",
    ]
    model = cm.get("model") or {}
    if "roc_auc" in model:
        scorers = {"model": model, **(cm.get("baselines") or {})}
        chosen = str(cm.get("scorer") or "model")
        names = {"model": "the classifier", "recency": "recency alone", "rfm": "an RFM score",
                 "blend": "the classifier blended with RFM"}
        others = ", ".join(f"{names.get(k, k)} {v['roc_auc']:.2f}" for k, v in scorers.items()
                           if k != chosen and isinstance(v, dict) and "roc_auc" in v)
        mine = (scorers.get(chosen) or {}).get("roc_auc")
        method.append(f"Churn risk: the chance that a customer orders nothing in the next "
                      f"{cm.get('window_days', '?')} days comes from {names.get(chosen, chosen)}, which ranked "
                      f"customers best on the training data. On later, held-out data its ROC AUC is "
                      + (f"{mine:.2f}" if isinstance(mine, (int, float)) else "n/a")
                      + (f" ({others})" if others else "") + "; 0.5 is a coin toss, 1.0 is perfect. "
                      "Two call lists: win back (customers who bought on two days or more, quiet for longer than "
                      "usual) and second purchase (first-time buyers late to come back), each capped per region at "
                      f"{cm.get('capacity', '?')} and {cm.get('second_purchase_capacity', '?')} calls; the others "
                      "at risk are on watch.")
    method.append(REVENUE_AT_RISK)
    items = "".join(f"<li>{e(m)}</li>" for m in method)
    return (f'<section class="notes"><h2>Data quality and method</h2>{_table(["Check", "Count"], rows, "dq")}'
            f"<ul>{items}</ul></section>")


def footer(p: Pack) -> str:
    """Provenance footer: data period, git commit and parameters hash."""
    require_pack(p)
    return f'<footer class="provenance"><p>{e(p.provenance.footer())}</p></footer>'


ALL_SECTIONS = (cover, summary, kpi_tiles, what_changed, forecasts, churn, notes, footer)


def document_body(p: Pack) -> str:
    """Every section in order: what the notebook displays cell by cell, in one string (for tests/tools)."""
    require_pack(p)
    return "".join(fn(p) for fn in ALL_SECTIONS)
