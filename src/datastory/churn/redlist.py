"""The red list: who a sales manager should call this week, and why, in plain words.

red = probability >= threshold OR among the top_k_per_region of its region by
revenue_at_risk = probability x annual_value (annual_value below 0, i.e. more returned than bought,
counts as 0 at risk). Reasons are rules on the point-in-time features, at most 3, strongest first:
each rule's strength is how far its feature is past the rule's trigger level (ties: the order below).
A spend drop is not repeated when the customer bought nothing for a quarter and recency already says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from ..config import ChurnParams
from ..errors import DataError

MAX_REASONS = 3
OVERDUE_RATIO = 2.0       # no order for more than twice the usual gap
ONE_ORDER_DAYS = 60       # a single order so far, this many days ago or more
SPEND_DROP = 0.3          # spend down at least 30% vs the previous quarter
RETURN_SHARE = 0.15       # returns at least 15% of gross purchases
DISCOUNT_AVG = 0.2        # average discount at least 20%
QUARTER_DAYS = 90         # no order in the last quarter: the spend drop is already said by recency


def _pct(x: float) -> str:
    return f"{round(100 * x):.0f}%"


def reasons_for(row: pd.Series) -> str:
    """Plain-words reason codes for one features row, joined by '; ' ('' when none apply)."""
    found: list[tuple[float, int, str]] = []  # (strength, rule order, text)
    rec, gap = row.get("recency_days"), row.get("avg_gap_days")
    if pd.notna(gap) and gap > 0 and pd.notna(rec) and rec > OVERDUE_RATIO * gap:
        found.append((rec / (OVERDUE_RATIO * gap), 0,
                      f"no order for {int(rec)} days (usually every {round(gap):.0f})"))
    elif pd.isna(gap) and pd.notna(rec) and rec >= ONE_ORDER_DAYS:
        found.append((rec / ONE_ORDER_DAYS, 0, f"only one order so far, {int(rec)} days ago"))
    change = row.get("spend_change")
    quiet_quarter = pd.notna(rec) and rec >= QUARTER_DAYS
    if pd.notna(change) and change <= -SPEND_DROP and not (quiet_quarter and found):
        text = ("no net spend in the last quarter" if change <= -1
                else f"spend down {_pct(-change)} vs previous quarter")
        found.append((min(-change, 1.0) / SPEND_DROP, 1, text))
    ret = row.get("return_share")
    if pd.notna(ret) and ret >= RETURN_SHARE:
        found.append((ret / RETURN_SHARE, 2, f"returns were {_pct(ret)} of purchases"))
    disc = row.get("discount_avg")
    if pd.notna(disc) and disc >= DISCOUNT_AVG:
        found.append((disc / DISCOUNT_AVG, 3, f"heavy discounts (avg {_pct(disc)})"))
    now, before = row.get("lines_recent", 0), row.get("lines_before", 0)
    if pd.notna(now) and pd.notna(before) and 0 < now < before:
        found.append((before / now, 4, f"orders fewer product lines ({int(now)} now, {int(before)} before)"))
    found.sort(key=lambda t: (-t[0], t[1]))
    return "; ".join(text for _, _, text in found[:MAX_REASONS])


def red_list(features: pd.DataFrame, probability: np.ndarray, cfg: ChurnParams) -> pd.DataFrame:
    """schema.CHURN_SCORES rows for the scored customers, by revenue_at_risk desc then customer_id."""
    if len(probability) != len(features):
        raise DataError(f"{len(probability)} probabilities for {len(features)} customers",
                        fix="score the same features frame the probabilities came from")
    prob = np.asarray(probability, dtype="float64")
    if len(prob) and (np.isnan(prob).any() or prob.min() < 0 or prob.max() > 1):
        raise DataError("probabilities must lie in 0..1", column="probability",
                        fix="pass calibrated probabilities from model.predict")
    out = features.loc[:, ["customer_id", "customer_name", "region", "annual_value", "recency_days",
                           "frequency", "last_order"]].copy()
    out["probability"] = prob
    out["revenue_at_risk"] = np.round(prob * out["annual_value"].clip(lower=0).to_numpy(), 6)
    out["reasons"] = [reasons_for(row) for _, row in features.iterrows()] if len(features) else []
    out = out.sort_values(["revenue_at_risk", "customer_id"], ascending=[False, True], kind="stable")
    out["rank_in_region"] = out.groupby("region", sort=False).cumcount() + 1
    out["red"] = (out["probability"] >= cfg.threshold) | (out["rank_in_region"] <= cfg.top_k_per_region)
    return schema.conform(out, schema.CHURN_SCORES, "churn_scores")


def changes(previous: pd.DataFrame, scores: pd.DataFrame) -> dict[str, list[str]]:
    """Customer ids newly red since `previous`, and those red before but not now (incl. no longer scored)."""
    for name, frame in (("previous churn scores", previous), ("churn scores", scores)):
        missing = [c for c in ("customer_id", "red") if c not in frame.columns]
        if missing:
            raise DataError(f"{name}: missing column(s) {', '.join(missing)}", column=missing[0],
                            fix="compare two data/processed/churn_scores.parquet files")
    was = set(previous.loc[previous["red"].astype(bool), "customer_id"].astype(str))
    now = set(scores.loc[scores["red"].astype(bool), "customer_id"].astype(str))
    return {"newly_red": sorted(now - was), "cleared": sorted(was - now)}
