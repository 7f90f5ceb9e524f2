"""Data quality and About sheets: what was read and kept, what every figure means, and provenance."""

from __future__ import annotations

from typing import Any

from ..pack import Pack
from . import _cells as c
from ._summary import LABELS

DQ_ROWS = [
    ("rows_read", "Rows read"),
    ("rows_kept", "Rows kept"),
    ("duplicates_removed", "Duplicates removed"),
    ("missing_region_filled", "Regions filled (missing region)"),
    ("return_lines", "Return lines"),
    ("cancelled_lines", "Cancelled lines (kept as returns)"),
    ("n_customers", "Customers"),
    ("n_orders", "Orders"),
]

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
    ("Change", "Last complete period compared with the one before it, relative to the earlier value; "
               "▲ up, ▼ down (no arrow when it rounds to 0%), green when the move is good for the "
               "business, red when it is bad. The same figures as the PDF report and the email."),
    ("Churn probability", "Calibrated probability that the customer places no order within the window."),
    ("Revenue at risk", "Churn probability × annual value (net revenue over the last 365 days)."),
    ("MASE", "Mean absolute scaled error of the rolling-origin backtest; below 1 beats a naive forecast."),
]

HIDDEN_KEYS = {"to", "cc", "bcc"}  # recipients are delivery details, not analysis parameters


def kv_rows(add: c.Appender, rows: list[tuple[str, Any]], fmt: str | None = None) -> None:
    """Append (bold key, wrapped value) rows; a number is left-aligned like the text values."""
    ws = add.ws
    for key, value in rows:
        add([c.cell(ws, key, font=c.BOLD, align=c.TOP), c.cell(ws, value, fmt=fmt, align=c.WRAP_LEFT)],
            text=value if isinstance(value, str) else None)


def write_data_quality(ws, dq: dict[str, Any]) -> None:
    """Rows read, kept, removed and why, and the period covered."""
    c.widths(ws, {"A": 34, "B": 24})
    add = c.Appender(ws, 24)
    dq = dq or {}
    add([c.cell(ws, "Data quality", font=c.TITLE)])
    add([])
    kv_rows(add, [(label, dq.get(key)) for key, label in DQ_ROWS if key in dq], fmt=c.FMT_INT)
    kv_rows(add, [("Period covered", f"{dq.get('period_start', '?')} to {dq.get('period_end', '?')}")])
    if "source" in dq:
        kv_rows(add, [("Source", f"{dq['source']} (bad rows: {dq.get('on_bad_rows', '?')})")])
    empty = dq.get("empty_periods") or []
    if empty:
        kv_rows(add, [("Months without any row", ", ".join(str(m) for m in empty))])
    for title, key in (("Rows rejected as unusable (set aside), by reason", "rejected"),
                       ("Rows excluded by the data rules, by reason", "excluded")):
        add([])
        add([c.cell(ws, title, font=c.SUBTITLE)])
        counts = dq.get(key) or {}
        if isinstance(counts, dict) and counts:
            kv_rows(add, [(str(k), v if isinstance(v, (int, float)) else str(v))
                         for k, v in sorted(counts.items())], fmt=c.FMT_INT)
        else:
            add([c.cell(ws, "None", font=c.MUTED)])
    known = {k for k, _ in DQ_ROWS} | {"period_start", "period_end", "rejected", "excluded", "empty_periods",
                                        "source", "on_bad_rows"}
    extra = sorted(k for k in dq if k not in known)
    if extra:
        add([])
        add([c.cell(ws, "Other checks", font=c.SUBTITLE)])
        kv_rows(add, [(k, dq[k] if isinstance(dq[k], (int, float, str)) else str(dq[k])) for k in extra])


def flatten(params: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested params as sorted (dotted key, value) rows; lists joined with ", "."""
    out: list[tuple[str, Any]] = []
    for key in sorted(params, key=str):
        if str(key) in HIDDEN_KEYS:
            continue
        value, name = params[key], f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            out.append((name, ", ".join(str(v) for v in value)))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            out.append((name, value if not isinstance(value, bool) else str(value).lower()))
        else:
            out.append((name, str(value)))
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
    metrics = [("forecast." + k, v) for k, v in flatten(pack.forecast_metrics or {}) if not k.startswith("series.")]
    metrics += [("churn." + k, v) for k, v in flatten(pack.churn_metrics or {})]
    if metrics:
        add([])
        add([c.cell(ws, "Model metrics", font=c.SUBTITLE)])
        kv_rows(add, metrics)
