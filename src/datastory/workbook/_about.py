"""Data quality and About sheets: what was read and kept, what every figure means, and provenance."""

from __future__ import annotations

from typing import Any

from ..present import Pack
from ..present.story import quality_rows
from ..present.words import REVENUE_AT_RISK
from . import _cells as c
from ._summary import LABELS

_DEFINED = {
    "revenue": "Net revenue of all order lines in the period (returns are negative).",
    "orders": "Distinct orders placed in the period.",
    "active_customers": "Distinct customers with at least one order in the period.",
    "new_customers": "Customers whose first ever order falls in the period.",
    "avg_order_value": "Gross sales divided by orders.",
    "return_rate": "Returned amount divided by gross sales amount.",
    "churn_rate": "Mean churn probability of the scored customers: the share expected not to buy again "
                  "within the churn window (as of the score date; no earlier score to compare).",
}
KPI_DEFINITIONS = [(LABELS[k], _DEFINED[k]) for k in LABELS] + [
    ("Change", "Last complete period compared with the one before it: amounts and counts relative to the "
               "earlier value (+8%), rates in percentage points (-0.2 pt); ▲ up, ▼ down (no arrow when it "
               "rounds to 0), green when the move is good for the business, red when it is bad. The same "
               "figures as the PDF report and the email."),
    ("Churn probability", "Calibrated probability that the customer places no order within the window."),
    ("Revenue at risk", REVENUE_AT_RISK + " On the Churn risk sheet, each customer's own share."),
    ("MASE", "Mean absolute scaled error of the rolling-origin backtest; below 1 beats a naive forecast."),
]

HIDDEN_KEYS = {"to", "cc", "bcc"}  # recipients are delivery details, not analysis parameters


def kv_rows(add: c.Appender, rows: list[tuple[str, Any]], fmt: str | None = None) -> None:
    """Append (bold key, wrapped value) rows; a number is left-aligned like the text values."""
    ws = add.ws
    for key, value in rows:
        add([c.cell(ws, key, font=c.BOLD, align=c.TOP), c.cell(ws, value, fmt=fmt, align=c.WRAP_LEFT)],
            text=value if isinstance(value, str) else None)


def write_data_quality(ws, pack: Pack) -> None:
    """The data-quality counts of the pack's own audience (present.story.quality_rows) and the period."""
    c.widths(ws, {"A": 40, "B": 60})
    add = c.Appender(ws, 60)
    dq = pack.data_quality or {}
    add([c.cell(ws, "Data quality", font=c.TITLE)])
    add([])
    for label, value in quality_rows(pack):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        kv_rows(add, [(label, value)], fmt=c.FMT_INT if number else None)
    kv_rows(add, [("Period covered", f"{dq.get('period_start', '?')} to {dq.get('period_end', '?')}")])
    if "source" in dq:
        kv_rows(add, [("Source", f"{dq['source']} (bad rows: {dq.get('on_bad_rows', '?')})")])


def readable(value: Any) -> Any:
    """A parameter or metric value as a reader writes it: yes/no, lists joined, mappings as 'key value; ...'."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return "yes" if value.strip().lower() == "true" else "no"
    if isinstance(value, dict):
        return "; ".join(f"{k} {readable(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(readable(v)) for v in value) or "none"
    if isinstance(value, (int, float, str)):
        return value
    return str(value)


def flatten(params: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested params as sorted (dotted key, value) rows; lists joined with ", "."""
    out: list[tuple[str, Any]] = []
    for key in sorted(params, key=str):
        if str(key) in HIDDEN_KEYS:
            continue
        value, name = params[key], f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.extend(flatten(value, f"{name}."))
        else:
            out.append((name, readable(value)))
    return out


def red_definition(params: dict[str, Any] | None, churn_metrics: dict[str, Any]) -> str:
    """The call-list rule in words, from the churn params (or, failing those, the churn metrics)."""
    churn = (params or {}).get("churn") or {}
    cap = churn.get("capacity", churn_metrics.get("capacity"))
    second = churn.get("second_purchase_capacity", churn_metrics.get("second_purchase_capacity"))
    window = churn.get("window_days", churn_metrics.get("window_days"))
    w = f" within {window} days" if window is not None else ""
    return ("Two lists. Win back: customers who bought on two days or more and have been quiet for longer than "
            "their usual gap. Second purchase: customers who bought on one day only, quiet for longer than "
            "repeat buyers take to come back. On a list when also at risk: a probability of not buying again"
            f"{w} at least that kind of customer's usual rate; never a customer who bought in the last week. "
            f"Red (call this week): in each region the {cap if cap is not None else 'first'} win-back and "
            f"{second if second is not None else 'first'} second-purchase customers with the most revenue at "
            "risk (probability x annual value); the others on a list are 'watch'.")


def write_about(ws, pack: Pack, params: dict[str, Any] | None) -> None:
    """Definitions, the red-label rule, the parameters used and provenance."""
    c.widths(ws, {"A": 34, "B": 90})
    add = c.Appender(ws, 90)
    add([c.cell(ws, "About this workbook", font=c.TITLE)])
    add([])
    add([c.cell(ws, "Definitions", font=c.SUBTITLE)])
    kv_rows(add, KPI_DEFINITIONS)
    kv_rows(add, [("Red label", red_definition(params, pack.churn_metrics or {}))])
    add([])
    add([c.cell(ws, "Provenance", font=c.SUBTITLE)])
    p = pack.provenance
    kv_rows(add, [("Audience", f"{pack.audience} ({pack.label})"), ("Data period", f"{p.period_start} to "
                 f"{p.period_end}"), ("Git commit", p.commit), ("Parameters hash", p.params_hash),
                 ("Footer", p.footer())])
    add([])
    add([c.cell(ws, "Parameters used", font=c.SUBTITLE)])
    if params:
        kv_rows(add, flatten(params))
    else:
        add([c.cell(ws, "Not supplied to this build; see the parameters hash above.", font=c.MUTED)])
    metrics = model_metrics(pack)
    if metrics:
        add([])
        add([c.cell(ws, "Model quality", font=c.SUBTITLE)])
        kv_rows(add, metrics)


def model_metrics(pack: Pack) -> list[tuple[str, Any]]:
    """How good the models are, in words: the forecasts' overall backtest and the churn model's scores.

    Only what holds for every audience (model scores, settings); counts of customers or revenue are the
    company's in the metrics files, so they stay out of a regional workbook (its own are on Data quality).
    """
    fm, cm = pack.forecast_metrics or {}, pack.churn_metrics or {}
    out: list[tuple[str, Any]] = []
    if fm:
        out.append(("Forecast set-up", f"frequency {fm.get('freq', '?')}, {fm.get('horizon', '?')} periods ahead, "
                                       f"up to {fm.get('folds', '?')} rolling backtests"))
        overall = fm.get("overall") or {}
        if pack.is_company and overall:
            out.append(("Forecast accuracy, all series", readable({k: round(v, 3) if isinstance(v, float) else v
                                                                  for k, v in overall.items()})))
    model = cm.get("model") or {}
    if model:
        out.append(("Churn model", f"{cm.get('model_kind', 'classifier')}, scored on {cm.get('score_date', '?')}, "
                                   f"window {cm.get('window_days', '?')} days"))
        out.append(("Churn model scores (held-out)", readable({k: round(v, 3) if isinstance(v, float) else v
                                                              for k, v in model.items()})))
        for name, scores in sorted((cm.get("baselines") or {}).items()):
            if isinstance(scores, dict):
                out.append((f"Baseline: {name}", readable({k: round(v, 3) if isinstance(v, float) else v
                                                           for k, v in scores.items()})))
    return out
