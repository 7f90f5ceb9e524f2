"""The email's words for one audience, from its pack: everything the message says that comes from the data.

The report stage writes them to reports/<audience>/email.json (`facts`); the deliver stage composes the message
from that file (deliver.compose) with the report's PDF, workbook and chart. So the email reads as the report
does (the same words, from the same pack and the same build), and the deliver stage needs neither the pack nor
pandas: it starts in a fraction of the time, and DVC re-runs it only when the report stage's files change.

Every value is text or a whole number, as the email shows it. Escaping HTML and refusing line breaks in headers
are compose's part (promise 3), on these values as on the params'.
"""

from __future__ import annotations

from typing import Any

from ..errors import DataError
from ..pack import Pack
from . import story, words
from .change import what_changed

TOP_N_NAMES = 5  # red-list customers named in the body


def kpi_change(pack: Pack) -> tuple[dict | None, str]:
    """(the KPI change the report shows, "") or (None, why it is unavailable).

    present.story.headline_change: the last COMPLETE period against the one before. Too little history is
    not fatal for the email: the body then says why the comparison is missing instead of failing the delivery.
    """
    if pack.kpis.empty:
        return None, "no KPI data for this audience"
    try:
        change = story.headline_change(pack)
    except DataError as exc:
        return None, exc.problem
    return (change, "") if change is not None else (None, words.NO_EARLIER_PERIOD)


def facts(pack: Pack) -> dict[str, Any]:
    """The email's words of `pack` (a JSON object; deliver.compose.FACTS lists the keys and their types):
    - who and when: audience, label, title, company, currency, period_start, period_end, footer;
    - the KPI comparison: `when` (which periods, or why there is none), `revenue` (the subject's figure, "" when
      there is no comparison) and `kpi_rows` ([label, latest, previous, change] in the report's words);
    - `headlines` (the executive summary), `changed_where`, `changed` and `drivers` (What changed);
    - the call list: `to_call` (customers to call), `top_names` ([name, revenue at risk] of the TOP_N_NAMES with
      the most revenue at risk)."""
    words.require_pack(pack)
    change, why = kpi_change(pack)
    if change:
        when = (f"Latest complete period: {words.period_label(change['period'], change['freq'])} (compared with "
                f"{words.period_label(change['previous_period'], change['freq'])}).")
        rev = change["kpis"]["revenue"]
        revenue = f"revenue {words.fmt_money(rev['value'])} {pack.currency} ({words.kpi_delta('revenue', rev)})"
        rows = [[label, *words.kpi_figures(key, change["kpis"][key])] for key, label in words.KPI_LABELS.items()]
    else:
        when, revenue, rows = f"KPI comparison not available: {why}", "", []
    red = pack.red_list.sort_values("revenue_at_risk", ascending=False, kind="stable").head(TOP_N_NAMES)
    moved = what_changed(pack)
    return {
        "audience": pack.audience, "label": pack.label, "title": pack.title, "company": pack.company,
        "currency": pack.currency, "period_start": pack.provenance.period_start,
        "period_end": pack.provenance.period_end, "footer": pack.provenance.footer(),
        "when": when, "revenue": revenue, "kpi_rows": rows,
        "headlines": list(story.executive_summary(pack)),
        "changed_where": moved.where, "changed": moved.message or moved.sentence,
        "drivers": [[r.label, r.text] for r in moved.drivers()],
        "to_call": int(pack.call_counts["call"]),
        "top_names": [[str(r.customer_name), words.fmt_money(float(r.revenue_at_risk))] for r in red.itertuples()],
    }
