"""The call lists: who a sales manager should call this week, why, and who to keep an eye on.

Two lists, because winning back an established customer who went quiet is a different job from getting
a first-time buyer to come back:
- "win back": customers with two or more purchase days, quiet for longer than their own usual gap (the
  median of their gaps between purchase days);
- "second purchase": customers with one purchase day so far (however many orders that day), quiet for
  longer than repeat buyers usually take to come back (the median first-to-second delay of the data).

A customer is on a list (`status` "call" or "watch") only when both hold:
- quiet: the rule above, and not a recent buyer (quiet RECENT_DAYS at least) - a customer who bought
  yesterday is never called;
- at risk: churn probability at least the list's floor, the churn rate of that kind of customer in the
  training cutoffs (a customer more likely to stay than a typical one of its kind is never called).
In each region and list, customers are ranked by expected revenue at risk (probability x annual value;
a negative value counts as 0); the first `capacity` (win back) or `second_purchase_capacity` are
"call" (red), the rest "watch" (so is a customer with nothing at risk: net returns over the year). So a
list never holds more than a manager can call, and every red row has its quiet rule as a reason.

Reasons are rules on the point-in-time features, at most 3, strongest first: each rule's strength is how
far its feature is past the rule's trigger level (ties: the order below). A spend drop is not repeated
when the customer bought nothing for a quarter and the quiet rule already says so. `reasons_for(row)`
states the rules for one row (readable, the reference); `reasons(frame)` applies them to a whole frame at
once and is what red_list uses (a test keeps the two identical).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from ..config import ChurnParams
from ..errors import DataError

WIN_BACK, SECOND = "win back", "second purchase"
CALL, WATCH = "call", "watch"
MAX_REASONS = 3
RECENT_DAYS = 7           # bought within the last week: never on a list
SPEND_DROP = 0.3          # spend down at least 30% vs the previous quarter
RETURN_SHARE = 0.15       # returns at least 15% of gross purchases
DISCOUNT_AVG = 0.2        # average discount at least 20%
QUARTER_DAYS = 90         # no order in the last quarter: the spend drop is already said by the quiet rule


def _pct(x: float) -> str:
    return f"{round(100 * x):.0f}%"


def _one_day_text(rec: float, orders: float, delay: float) -> str:
    many = orders is not None and not pd.isna(orders) and orders > 1
    what = f"one purchase day so far ({int(orders)} orders that day)" if many else "one purchase so far"
    return f"{what}, {int(rec)} days ago (repeat buyers come back within {round(delay):.0f} days)"


def reasons_for(row: pd.Series) -> str:
    """Plain-words reason codes for one features row, joined by '; ' ('' when none apply)."""
    found: list[tuple[float, int, str]] = []  # (strength, rule order, text)
    rec, gap = row.get("recency_days"), row.get("median_gap_days")
    days, delay = row.get("purchase_days"), row.get("repeat_delay_days")
    quiet = False
    if pd.notna(rec) and rec >= RECENT_DAYS and pd.notna(days):
        if days >= 2 and pd.notna(gap) and gap > 0 and rec > gap:
            quiet = True
            found.append((rec / gap, 0, f"no order for {int(rec)} days (usually every {round(gap):.0f})"))
        elif days == 1 and pd.notna(delay) and delay > 0 and rec > delay:
            quiet = True
            found.append((rec / delay, 0, _one_day_text(rec, row.get("orders_total"), delay)))
    change = row.get("spend_change")
    quiet_quarter = pd.notna(rec) and rec >= QUARTER_DAYS
    if pd.notna(change) and change <= -SPEND_DROP and not (quiet_quarter and quiet):
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


def quiet_rules(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(win back quiet, second purchase quiet) per row: the lists' eligibility rules (see module doc)."""
    rec, gap = _column(features, "recency_days"), _column(features, "median_gap_days")
    days, delay = _column(features, "purchase_days"), _column(features, "repeat_delay_days")
    with np.errstate(invalid="ignore"):
        awake = ~np.isnan(rec) & (rec >= RECENT_DAYS)
        win = awake & (days >= 2) & ~np.isnan(gap) & (gap > 0) & (rec > gap)
        second = awake & (days == 1) & ~np.isnan(delay) & (delay > 0) & (rec > delay)
    return win, second


def reasons(features: pd.DataFrame) -> pd.Series:
    """reasons_for() of every row at once (same texts, same order), as a string Series on features.index.

    Vectorised for large lists (1M customers in seconds rather than minutes); tests check it
    against reasons_for row by row.
    """
    n = len(features)
    rec, gap = _column(features, "recency_days"), _column(features, "median_gap_days")
    delay, orders = _column(features, "repeat_delay_days"), _column(features, "orders_total")
    change, ret = _column(features, "spend_change"), _column(features, "return_share")
    disc = _column(features, "discount_avg")
    now, before = _column(features, "lines_recent"), _column(features, "lines_before")
    win, second = quiet_rules(features)
    with np.errstate(divide="ignore", invalid="ignore"):
        quiet = win | second
        quiet_quarter = ~np.isnan(rec) & (rec >= QUARTER_DAYS)
        spend = ~np.isnan(change) & (change <= -SPEND_DROP) & ~(quiet_quarter & quiet)
        returns = ~np.isnan(ret) & (ret >= RETURN_SHARE)
        discounts = ~np.isnan(disc) & (disc >= DISCOUNT_AVG)
        fewer = ~np.isnan(now) & ~np.isnan(before) & (now > 0) & (now < before)
        # one column per rule, in rule order (the tie-break); -inf where the rule does not apply
        strength = np.full((n, 5), -np.inf)
        strength[:, 0] = np.where(win, rec / gap, np.where(second, rec / delay, -np.inf))
        strength[:, 1] = np.where(spend, np.minimum(-change, 1.0) / SPEND_DROP, -np.inf)
        strength[:, 2] = np.where(returns, ret / RETURN_SHARE, -np.inf)
        strength[:, 3] = np.where(discounts, disc / DISCOUNT_AVG, -np.inf)
        strength[:, 4] = np.where(fewer, before / now, -np.inf)
    orders = np.where(np.isnan(orders), 0.0, orders)
    texts = np.empty((n, 5), dtype=object)
    texts[:, 0] = np.where(
        win, _texts(win, lambda r, g: f"no order for {int(r)} days (usually every {round(g):.0f})", rec, gap),
        _texts(second, _one_day_text, rec, orders, delay))
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


def which_list(features: pd.DataFrame) -> np.ndarray:
    """SECOND for customers with one purchase day so far, WIN_BACK otherwise."""
    return np.where(_column(features, "purchase_days") == 1, SECOND, WIN_BACK).astype(object)


def floors_from(train: pd.DataFrame) -> dict[str, float]:
    """Each list's probability floor: the churn rate of that kind of customer in the training rows (the
    overall rate for a kind the training rows do not hold)."""
    if train.empty or "churned" not in train.columns:
        raise DataError("training rows with a churned column are needed for the floors", column="churned",
                        fix="pass the stacked training cutoffs of churn.run")
    y = train["churned"].to_numpy(dtype=float)
    kind = which_list(train)
    return {name: float(y[kind == name].mean()) if (kind == name).any() else float(y.mean())
            for name in (WIN_BACK, SECOND)}


def red_list(features: pd.DataFrame, probability: np.ndarray, cfg: ChurnParams,
             floors: dict[str, float]) -> pd.DataFrame:
    """schema.CHURN_SCORES rows for the scored customers, by revenue_at_risk desc then customer_id."""
    if len(probability) != len(features):
        raise DataError(f"{len(probability)} probabilities for {len(features)} customers",
                        fix="score the same features frame the probabilities came from")
    prob = np.asarray(probability, dtype="float64")
    if len(prob) and (np.isnan(prob).any() or prob.min() < 0 or prob.max() > 1):
        raise DataError("probabilities must lie in 0..1", column="probability",
                        fix="pass calibrated probabilities from model.predict")
    missing = [k for k in (WIN_BACK, SECOND) if k not in floors]
    if missing:
        raise DataError(f"no probability floor for the list(s) {', '.join(missing)}",
                        fix="pass redlist.floors_from(training rows)")
    out = features.loc[:, ["customer_id", "customer_name", "region", "annual_value", "recency_days",
                           "frequency", "last_order"]].copy()
    out["probability"] = prob
    out["revenue_at_risk"] = np.round(prob * out["annual_value"].clip(lower=0).to_numpy(), 6)
    out["reasons"] = reasons(features).to_numpy()
    out["list"] = which_list(features)
    win, second = quiet_rules(features)
    floor = np.where(out["list"] == SECOND, floors[SECOND], floors[WIN_BACK])
    listed = (win | second) & (prob >= floor)
    out = out.assign(_listed=listed).sort_values(["revenue_at_risk", "customer_id"], ascending=[False, True],
                                                 kind="stable")
    out["rank_in_region"] = out.groupby("region", sort=False).cumcount() + 1
    rank = out[out["_listed"]].groupby(["region", "list"], sort=False).cumcount() + 1
    cap = np.where(out.loc[rank.index, "list"] == SECOND, cfg.second_purchase_capacity, cfg.capacity)
    out["status"] = ""
    worth = out.loc[rank.index, "revenue_at_risk"].to_numpy() > 0  # nothing to save: not worth a call
    out.loc[rank.index, "status"] = np.where((rank.to_numpy() <= cap) & worth, CALL, WATCH)
    out["red"] = out["status"] == CALL
    out["newly_red"] = False  # set by comparing with an earlier red list (see churn.run)
    return schema.conform(out.drop(columns="_listed"), schema.CHURN_SCORES, "churn_scores")


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
