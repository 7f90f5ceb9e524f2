"""The red list: who a sales manager should call this week, and why, in plain words.

red = probability >= threshold OR among the top_k_per_region of its region by
revenue_at_risk = probability x annual_value (annual_value below 0, i.e. more returned than bought,
counts as 0 at risk). Reasons are rules on the point-in-time features, at most 3, strongest first:
each rule's strength is how far its feature is past the rule's trigger level (ties: the order below).
A spend drop is not repeated when the customer bought nothing for a quarter and recency already says so.
`reasons_for(row)` states the rules for one row (readable, the reference); `reasons(frame)` applies
them to a whole frame at once and is what red_list uses (a test keeps the two identical).
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


def _column(features: pd.DataFrame, name: str) -> np.ndarray:
    """A feature as float64 with NaN for missing values (all NaN when the column is absent)."""
    if name not in features.columns:
        return np.full(len(features), np.nan)
    try:
        return features[name].to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        raise DataError(f"feature {name!r} is not numeric", column=name,
                        fix="pass a features_at() frame") from None


def _texts(mask: np.ndarray, make, *values: np.ndarray) -> np.ndarray:
    """Object array: make(*values at i) where mask[i], else ''. Formats only the rows a rule fires on."""
    out = np.full(len(mask), "", dtype=object)
    idx = np.flatnonzero(mask)
    out[idx] = [make(*args) for args in zip(*(v[idx].tolist() for v in values), strict=True)]
    return out


def reasons(features: pd.DataFrame) -> pd.Series:
    """reasons_for() of every row at once (same texts, same order), as a string Series on features.index.

    Vectorised for large lists (1M customers in seconds rather than minutes); tests check it
    against reasons_for row by row.
    """
    n = len(features)
    rec, gap = _column(features, "recency_days"), _column(features, "avg_gap_days")
    change, ret = _column(features, "spend_change"), _column(features, "return_share")
    disc = _column(features, "discount_avg")
    now, before = _column(features, "lines_recent"), _column(features, "lines_before")
    with np.errstate(divide="ignore", invalid="ignore"):
        overdue = ~np.isnan(gap) & (gap > 0) & ~np.isnan(rec) & (rec > OVERDUE_RATIO * gap)
        one_order = np.isnan(gap) & ~np.isnan(rec) & (rec >= ONE_ORDER_DAYS)
        recency_rule = overdue | one_order
        quiet_quarter = ~np.isnan(rec) & (rec >= QUARTER_DAYS)
        spend = ~np.isnan(change) & (change <= -SPEND_DROP) & ~(quiet_quarter & recency_rule)
        returns = ~np.isnan(ret) & (ret >= RETURN_SHARE)
        discounts = ~np.isnan(disc) & (disc >= DISCOUNT_AVG)
        fewer = ~np.isnan(now) & ~np.isnan(before) & (now > 0) & (now < before)
        # one column per rule, in rule order (the tie-break); -inf where the rule does not apply
        strength = np.full((n, 5), -np.inf)
        strength[:, 0] = np.where(overdue, rec / (OVERDUE_RATIO * gap),
                                  np.where(one_order, rec / ONE_ORDER_DAYS, -np.inf))
        strength[:, 1] = np.where(spend, np.minimum(-change, 1.0) / SPEND_DROP, -np.inf)
        strength[:, 2] = np.where(returns, ret / RETURN_SHARE, -np.inf)
        strength[:, 3] = np.where(discounts, disc / DISCOUNT_AVG, -np.inf)
        strength[:, 4] = np.where(fewer, before / now, -np.inf)
    texts = np.empty((n, 5), dtype=object)
    texts[:, 0] = np.where(
        overdue, _texts(overdue, lambda r, g: f"no order for {int(r)} days (usually every {round(g):.0f})",
                        rec, gap),
        _texts(one_order, lambda r: f"only one order so far, {int(r)} days ago", rec))
    texts[:, 1] = _texts(spend, lambda c: ("no net spend in the last quarter" if c <= -1
                                           else f"spend down {_pct(-c)} vs previous quarter"), change)
    texts[:, 2] = _texts(returns, lambda x: f"returns were {_pct(x)} of purchases", ret)
    texts[:, 3] = _texts(discounts, lambda x: f"heavy discounts (avg {_pct(x)})", disc)
    texts[:, 4] = _texts(fewer, lambda a, b: f"orders fewer product lines ({int(a)} now, {int(b)} before)",
                         now, before)
    # strongest first; a stable sort keeps rule order among equal strengths
    order = np.argsort(-strength, axis=1, kind="stable")[:, :MAX_REASONS]
    rows = np.arange(n)[:, None]
    picked, fired = texts[rows, order], strength[rows, order] > -np.inf
    out = np.where(fired[:, 0], picked[:, 0], "").astype(object)
    for k in range(1, MAX_REASONS):
        out = np.where(fired[:, k], out + "; " + picked[:, k], out)
    return pd.Series(out, index=features.index, dtype="string")


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
    out["reasons"] = reasons(features).to_numpy()
    out = out.sort_values(["revenue_at_risk", "customer_id"], ascending=[False, True], kind="stable")
    out["rank_in_region"] = out.groupby("region", sort=False).cumcount() + 1
    out["red"] = (out["probability"] >= cfg.threshold) | (out["rank_in_region"] <= cfg.top_k_per_region)
    out["newly_red"] = False  # set by comparing with an earlier red list (see churn.run)
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
