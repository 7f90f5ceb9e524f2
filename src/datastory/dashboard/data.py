"""What a dashboard shows, taken from one audience's pack: plain, JSON-ready values and the words for them.

Pure: a Pack in, a dict out. Every figure is worded here in Python through `present.words`, `present.story`
and `present.change`, so a tile reads exactly as the report's table and the browser only looks words up.

- KPI tiles per period granularity (month, quarter, year) and segment: the latest complete period against
  the one before. The kpis stage's own period (params/kpis.yaml) is taken as it is (the same figures as the
  report); quarters and years are summed from it. Active customers are distinct per period and cannot be
  summed: a coarser period takes them from the kpis stage's distinct counts (`pack.active`, `kpis.active`), or
  says so when the pack has none.
- Revenue per period, the forecast series with their range (and their totals per month, quarter and year,
  without a range: see `totals`), the call list and the "what changed" bridge,
  each limited to what the pack holds: a regional pack holds only its region's rows, so its dashboard
  embeds no other region's customers in any form.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pandas as pd

from .. import kpis as kpis_mod
from ..errors import DataError
from ..present import Pack, palette, story, words
from ..present.change import what_changed
from ..schema import ALL
from . import totals

GRAINS = {"M": "Month", "Q": "Quarter", "Y": "Year"}
COARSER = {"M": ("M", "Q", "Y"), "Q": ("Q", "Y")}
OFFSETS = {"M": pd.offsets.MonthEnd(0), "Q": pd.offsets.QuarterEnd(0), "Y": pd.offsets.YearEnd(0)}
ADDITIVE = ("revenue", "orders", "new_customers")
NOT_SUMMED = "not counted for this period: choose the report's period"
NO_FORECAST = "No forecast is available for this selection."
NO_CUSTOMERS = "No customer is at risk in this selection: nobody to call."
NO_SCORED = ("No customers in this selection: nobody in it bought within the churn model's look-back before the "
             "data's last day, so there is nobody to score or to call.")


def base_grain(kpis: pd.DataFrame) -> str:
    """The kpis stage's period, as `kpis.latest_change` infers it."""
    periods = pd.DatetimeIndex(kpis["period"].drop_duplicates().sort_values())
    return kpis_mod.infer_period(periods)


def aggregate(kpis: pd.DataFrame, grain: str, active: pd.DataFrame | None = None) -> pd.DataFrame:
    """KPI rows of `kpis` (schema.KPIS at its own period) summed to `grain` (Q or Y) per region.

    Revenue, orders and new customers add up. The average order value and the return rate are re-derived
    from the gross sales they were computed from (gross = value x orders, returned = gross x rate).
    Active customers are distinct per period: they come from `active` (schema.ACTIVE, the distinct counts
    at each grain), NaN where it has no count for the period."""
    k = kpis.copy()
    k["period"] = k["period"].dt.to_period(grain).dt.start_time
    k["gross"] = k["avg_order_value"] * k["orders"]
    k["returned"] = k["gross"] * k["return_rate"]
    g = k.groupby(["region", "period"], observed=True, sort=True)
    out = g[[*ADDITIVE, "gross", "returned"]].sum().reset_index()
    out["avg_order_value"] = (out["gross"] / out["orders"]).where(out["orders"] > 0, 0.0)
    out["return_rate"] = (out["returned"] / out["gross"]).where(out["gross"] > 0, 0.0)
    out["active_customers"] = math.nan
    if active is not None and not active.empty:
        counts = active[active["grain"] == grain].set_index(["region", "period"])["active_customers"]
        found = counts.reindex(pd.MultiIndex.from_frame(out[["region", "period"]]))
        out["active_customers"] = found.to_numpy(dtype=float)
    return out.drop(columns=["gross", "returned"])


def latest(table: pd.DataFrame, region: str, grain: str, end: str | None) -> dict[str, Any] | None:
    """Each KPI of `region`'s last complete `grain` period next to the one before; None without two."""
    rows = table[table["region"] == region].sort_values("period", kind="stable")
    if end is not None:
        rows = rows[rows["period"] + OFFSETS[grain] <= pd.Timestamp(end).normalize()]
    if len(rows) < 2:
        return None
    cur, prev = rows.iloc[-1], rows.iloc[-2]
    items = {}
    for m in kpis_mod.MEASURES:
        v, pv = float(cur[m]), float(prev[m])
        items[m] = None if math.isnan(v) or math.isnan(pv) else {"value": v, "previous": pv,
                                               "change": (v - pv) / abs(pv) if pv else None}
    return {"period": cur["period"], "previous_period": prev["period"], "kpis": items}


def label(period: pd.Timestamp, grain: str) -> str:
    return str(pd.Timestamp(period).year) if grain == "Y" else words.period_label(period, grain)


def tile_set(change: dict[str, Any] | None, grain: str) -> dict[str, Any]:
    """The tiles of one selection, worded as the report's KPI table words them."""
    if change is None:
        return {"message": words.NO_EARLIER_PERIOD, "items": []}
    items = []
    for kpi, item in change["kpis"].items():
        name = words.KPI_LABELS.get(kpi, kpi)
        if item is None:
            items.append({"kpi": kpi, "label": name, "value": None, "now": "n/a", "prev": "", "delta": "",
                          "trend": "flat", "good": None, "note": NOT_SUMMED})
            continue
        now, prev, delta = words.kpi_figures(kpi, item)
        direction = words.kpi_trend(kpi, item)
        items.append({"kpi": kpi, "label": name, "value": item["value"], "now": now, "prev": prev,
                      "delta": delta, "trend": direction, "good": words.is_good(kpi, direction), "note": ""})
    return {"message": "", "period": label(change["period"], grain),
            "previous": label(change["previous_period"], grain), "items": items}


def scopes(p: Pack) -> list[str]:
    """The segments the audience may choose: the company and each region, or its one region."""
    return [ALL, *p.regions] if p.is_company else list(p.regions)


def tiles(p: Pack) -> dict[str, dict[str, Any]]:
    """{grain: {segment: tile_set}}; the kpis stage's own grain uses `kpis.latest_change`, as the report."""
    end = None if p.provenance.period_end in ("", "?") else p.provenance.period_end
    base = base_grain(p.kpis)
    out: dict[str, dict[str, Any]] = {}
    for grain in COARSER[base]:
        table = p.kpis if grain == base else aggregate(p.kpis, grain, p.active)
        per = {}
        for seg in scopes(p):
            if grain == base:
                try:
                    change = kpis_mod.latest_change(p.kpis, seg, end)
                except DataError:
                    change = None
                if change is not None:
                    change = {**change, "period": pd.Timestamp(change["period"]),
                              "previous_period": pd.Timestamp(change["previous_period"])}
            else:
                change = latest(table, seg, grain, end)
            per[seg] = tile_set(change, grain)
        out[grain] = per
    return out


def revenue(p: Pack) -> dict[str, dict[str, list[list[Any]]]]:
    """{grain: {segment: [[period label, revenue, worded revenue, partial]]}} for the revenue bars."""
    end = None if p.provenance.period_end in ("", "?") else pd.Timestamp(p.provenance.period_end).normalize()
    base = base_grain(p.kpis)
    out: dict[str, dict[str, list[list[Any]]]] = {}
    for grain in COARSER[base]:
        table = p.kpis if grain == base else aggregate(p.kpis, grain)
        per = {}
        for seg in scopes(p):
            rows = table[table["region"] == seg].sort_values("period", kind="stable")
            per[seg] = [[label(r.period, grain), round(float(r.revenue), 2), words.fmt_money(r.revenue),
                         bool(end is not None and r.period + OFFSETS[grain] > end)]
                        for r in rows.itertuples(index=False)]
        out[grain] = per
    return out


def _num(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else round(float(x), 2)


def forecast_freq(p: Pack) -> str:
    return str(p.forecast_metrics.get("freq", ""))


def no_forecast_why(p: Pack, sid: str) -> str:
    """Why series `sid` has no forecast, as the forecast stage recorded it (its notes), else the plain fact."""
    m = p.forecast_metrics.get("series", {}).get(sid) or {}
    why = m.get("notes") or m.get("error")
    return f"No forecast for {words.series_name(sid)}" + (f": {why}." if why else ".")


def series(p: Pack, grains: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Each forecast series of the pack: history, fit and forecast with its range, its sentence, and its totals
    at each of `grains` the forecast's frequency can be summed to (`totals.to_grain`)."""
    out = []
    freq = forecast_freq(p)
    for sid, g in p.forecast.groupby("series_id", sort=True, observed=True):
        g = g.sort_values("ds", kind="stable")
        fc = g["is_forecast"].astype(bool)
        cols = zip(g["ds"], g["y"], g["yhat"], g["yhat_lower"], g["yhat_upper"], fc, strict=True)
        points = [[d.date().isoformat(), _num(y), _num(yh) if f else None, _num(lo) if f else None,
                   _num(hi) if f else None] for d, y, yh, lo, hi, f in cols]
        first = g.iloc[0]
        ahead = bool(fc.any())
        out.append({"id": str(sid), "region": str(first["region"]), "line": str(first["product_line"]),
                    "name": words.series_name(str(sid)),
                    "model": words.model_name(first["model"]) if ahead else "",
                    "sentence": story.forecast_sentence(p, str(sid)) if ahead else no_forecast_why(p, str(sid)),
                    "points": points,
                    "grains": {gr: totals.to_grain(g, freq, gr) for gr in grains if totals.can_sum(freq, gr)}})
    return out


def calls(p: Pack) -> list[dict[str, Any]]:
    """The customers at risk (to call, then on watch), riskiest revenue first, with their reasons."""
    cs = p.churn_scores
    cs = cs[cs["status"].astype(str) != ""]
    cs = cs.assign(_watch=cs["status"].astype(str) != "call").sort_values(
        ["_watch", "revenue_at_risk", "customer_id"], ascending=[True, False, True], kind="stable")
    return [{"id": str(r.customer_id), "name": str(r.customer_name), "region": str(r.region),
             "list": str(r.list), "status": str(r.status), "p": round(float(r.probability), 4),
             "pText": words.fmt_pct(r.probability), "value": round(float(r.annual_value), 2),
             "valueText": words.fmt_money(r.annual_value), "risk": round(float(r.revenue_at_risk), 2),
             "riskText": words.fmt_money(r.revenue_at_risk), "reasons": str(r.reasons),
             "last": pd.Timestamp(r.last_order).date().isoformat(), "days": int(r.recency_days)}
            for r in cs.itertuples(index=False)]


def capacity(p: Pack, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{segment: what a capacity of k calls covers}: `cum[k]` is the revenue at risk of the first k customers
    at risk in `calls` order (worded): the call list first, so at k = `calls` (the slider's starting point, the
    churn stage's call list) it is the report's "revenue at risk", then those on watch by revenue at risk;
    `total` is that of all of them."""
    out = {}
    for seg in scopes(p):
        mine = [r for r in rows if seg == ALL or r["region"] == seg]
        cum, run = ["0"], 0.0
        for r in mine:
            run += r["risk"]
            cum.append(words.fmt_money(run))
        scores = p.churn_scores
        out[seg] = {"cum": cum, "total": words.fmt_money(run),
                    "calls": sum(r["status"] == "call" for r in mine),
                    "scored": int(len(scores) if seg == ALL else (scores["region"].astype(str) == seg).sum())}
    return out


def bridges(p: Pack) -> dict[str, dict[str, Any]]:
    """{segment: the 'what changed' section}, from `present.change.what_changed` as the report has it."""
    out = {}
    for seg in scopes(p):
        view = p if seg == p.headline_region else dataclasses.replace(p, regions=(seg,), is_company=False)
        c = what_changed(view)
        out[seg] = {"title": c.title, "message": c.message, "sentence": c.sentence, "note": c.split_note,
                    "rows": [[r.label, r.text, r.customers_text, r.explain, r.kind, round(r.amount, 2)]
                             for r in [*c.rows, *c.split]]}
    return out


def no_total_ahead(freq: str, grain: str) -> str:
    """The note when the forecast covers no complete period at `grain`."""
    return (f"The forecast covers no complete {totals.UNIT[grain]}, so only the history is totalled per "
            f"{totals.UNIT[grain]}: choose a shorter period, or \u201c{totals.PLURAL[freq].capitalize()}, "
            "with range\u201d.")


def extract(p: Pack) -> dict[str, Any]:
    """Everything the dashboard embeds, for pack `p`."""
    words.require_pack(p)
    base = base_grain(p.kpis) if not p.kpis.empty else "M"
    fcs = series(p, COARSER[base])
    freq = forecast_freq(p)
    rows = calls(p)
    return {
        "audience": p.audience, "label": p.label, "title": p.title, "company": p.company, "currency": p.currency,
        "periodStart": p.provenance.period_start, "periodEnd": p.provenance.period_end,
        # the build stamp is derived from the inputs (commit and parameters), never a clock: reruns are byte-identical
        "built": f"commit {p.provenance.commit} · params {p.provenance.params_hash}",
        "grains": [[g, GRAINS[g]] for g in COARSER[base]],
        "scopes": [[s, words.series_name(s)] for s in scopes(p)],
        "lines": sorted({s["line"] for s in fcs if s["line"] != ALL}),
        "tiles": tiles(p) if not p.kpis.empty else {},
        "revenue": revenue(p) if not p.kpis.empty else {},
        "series": fcs, "calls": rows, "capacity": capacity(p, rows),
        "churnSentence": story.churn_sentence(p),
        "bridge": bridges(p),
        "colors": {"actual": palette.ACTUAL, "forecast": palette.FORECAST, "band": palette.BAND,
                   "neutral": palette.NEUTRAL},
        "messages": {"noForecast": NO_FORECAST, "noCustomers": NO_CUSTOMERS, "noScored": NO_SCORED,
                     "noEarlier": words.NO_EARLIER_PERIOD},
        "fcOwnLabel": f"{totals.PLURAL.get(freq, 'periods').capitalize()}, with range",
        "fcNotes": {"own": totals.note(freq, None), **{g: totals.note(freq, g) for g in COARSER[base]},
                    **{"none" + g: no_total_ahead(freq, g) for g in COARSER[base] if totals.can_sum(freq, g)}},
    }
