"""Point-in-time customer features: what was knowable just before a cutoff date.

`features_at` looks ONLY at rows with timestamp < cutoff, so a model trained on features at past
cutoffs never sees the future it is asked to predict (the leakage test in tests/ mutates later rows).
A "purchase" is a non-return line; a customer is scored at a cutoff when it made at least one
purchase in [cutoff - lookback_days, cutoff).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from ..errors import DataError, ModelError

QUARTER_DAYS = 90   # spend trend and product-line trend compare the last quarter with earlier ones
YEAR_DAYS = 365     # annual_value is always the last 365 days, whatever lookback_days is

# Columns kept for output and never fed to a model (repeat_delay_days is one value for every customer).
ID_COLUMNS = ["customer_id", "customer_name", "region", "last_order", "repeat_delay_days"]
MIN_REPEATERS = 20  # customers with a second purchase day needed before their delay is a norm
# Numeric model features (plus pl_<product line> shares and region_<region> indicators).
BASE_FEATURES = [
    "recency_days", "frequency", "monetary", "annual_value", "tenure_days", "purchase_days", "orders_total",
    "avg_gap_days", "last_gap_days", "gap_trend", "overdue_ratio",
    "median_gap_days", "overdue_median", "purchase_rate", "missed_purchases",
    "spend_last_90", "spend_prev_90", "spend_change",
    "return_share", "discount_share", "discount_avg",
    "n_lines", "lines_recent", "lines_before",
]


def check_transactions(tx: pd.DataFrame) -> None:
    """Raise DataError unless `tx` has the schema.TRANSACTIONS columns and at least one row."""
    check_table(list(tx.columns), len(tx),
                "timestamp" in tx.columns and pd.api.types.is_datetime64_any_dtype(tx["timestamp"]))


def check_table(columns: list[str], n_rows: int, datetime_timestamp: bool) -> None:
    """check_transactions from a table's column names, row count and whether its timestamp is a datetime
    (so a Parquet file's schema gets the same messages as a frame)."""
    missing = [c for c in schema.TRANSACTIONS if c not in columns]
    if missing:
        raise DataError(f"transactions: missing column(s) {', '.join(missing)}", column=missing[0],
                        fix="pass the cleaned data/interim/transactions.parquet (schema.TRANSACTIONS)")
    if n_rows == 0:
        raise DataError("transactions: no rows, nothing to score", fix="check the ingest stage's output")
    if not datetime_timestamp:
        raise DataError("transactions: timestamp is not a datetime column", column="timestamp",
                        fix="conform the frame with schema.conform(tx, schema.TRANSACTIONS, ...)")


def data_span(tx: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(first day, end) of the data; `end` is exclusive: the day after the last transaction's day."""
    check_transactions(tx)
    return tx["timestamp"].min().normalize(), tx["timestamp"].max().normalize() + pd.Timedelta(days=1)


def as_cutoff(cutoff: object) -> pd.Timestamp:
    """A cutoff as a midnight Timestamp; DataError for something that is not a date."""
    try:
        ts = pd.Timestamp(cutoff)
    except (TypeError, ValueError):
        raise ModelError(f"cutoff {cutoff!r} is not a date", fix="pass a date such as '2026-07-01'") from None
    if ts is pd.NaT or pd.isna(ts):
        raise ModelError("cutoff is missing (NaT)", fix="pass a date such as '2026-07-01'")
    return ts.tz_localize(None).normalize() if ts.tzinfo else ts.normalize()


def check_cutoff(tx: pd.DataFrame, cutoff: pd.Timestamp) -> None:
    """ModelError unless first day < cutoff <= data end (there must be history before the cutoff)."""
    check_cutoff_in(*data_span(tx), cutoff)


def check_cutoff_in(start: pd.Timestamp, end: pd.Timestamp, cutoff: pd.Timestamp) -> None:
    """check_cutoff for data from day `start` to `end` (exclusive, as data_span gives them)."""
    if not start < cutoff <= end:
        raise ModelError(f"cutoff {cutoff.date()} is outside the data ({start.date()} to "
                         f"{(end - pd.Timedelta(days=1)).date()}); it needs history before it",
                         fix=f"choose a cutoff after {start.date()} and no later than {end.date()}")


def _days(delta: pd.Series) -> pd.Series:
    return delta.dt.days.astype("float64")


def features_at(tx: pd.DataFrame, cutoff: object, lookback_days: int, *,
                product_lines: list[str] | None = None, regions: list[str] | None = None) -> pd.DataFrame:
    """One row per customer active in [cutoff - lookback_days, cutoff), sorted by customer_id.

    Only rows with timestamp < cutoff are read. `product_lines` / `regions` fix the one-hot columns
    (default: those seen before the cutoff); pass the full lists so frames of several cutoffs stack.
    """
    cutoff = as_cutoff(cutoff)
    check_cutoff(tx, cutoff)
    check_lookback(lookback_days)
    past = tx.loc[tx["timestamp"] < cutoff, list(schema.TRANSACTIONS)]
    product_lines = sorted(past["product_line"].unique()) if product_lines is None else list(product_lines)
    regions = sorted(past["region"].unique()) if regions is None else list(regions)
    out, delays = features_of_past(past, cutoff, lookback_days, product_lines, regions)
    out["repeat_delay_days"] = median_delay(delays)
    return out


def check_lookback(lookback_days: int) -> None:
    """ModelError unless lookback_days >= 1."""
    if lookback_days < 1:
        raise ModelError(f"lookback_days must be >= 1, got {lookback_days}", fix="set lookback_days: 365")


def features_of_past(past: pd.DataFrame, cutoff: pd.Timestamp, lookback_days: int, product_lines: list[str],
                     regions: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """features_at's frame from `past` (schema.TRANSACTIONS rows, all before the midnight `cutoff`, no checks)
    with repeat_delay_days left NaN, and the first-to-second purchase-day delays of its customers (days,
    float64) that the median for repeat_delay_days is taken over. Any subset of whole customers gives the
    rows of those customers, so shards of customers can be computed apart (shards.py)."""
    look_start = cutoff - pd.Timedelta(days=lookback_days)
    is_buy = ~past["is_return"].astype(bool)
    active_ids = past.loc[is_buy & (past["timestamp"] >= look_start), "customer_id"].unique()
    past = past[past["customer_id"].isin(active_ids)]
    # Integer codes (customers in id order): grouping by them is much faster than by strings, and the
    # working frame carries no string columns through the many filters below.
    codes, active = pd.factorize(past["customer_id"], sort=True)
    pl_codes, pl_names = pd.factorize(past["product_line"], sort=True)
    past = past.assign(cid=codes, oid=pd.factorize(past["order_id"])[0], plc=pl_codes)
    # Time order within each customer by a stable integer sort (ties keep the input order); sorting
    # all rows by the order_id strings as well was half the time at 1M customers.
    stamp = past["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64")
    past = past.take(np.lexsort((stamp, codes))).reset_index(drop=True)
    idx = pd.RangeIndex(len(active), name="cid")
    out = pd.DataFrame(index=idx)
    # Name and region from each customer's last row by (timestamp, order_id): only the rows at the
    # customer's latest timestamp need the order_id tie-break.
    latest = past["timestamp"] == past.groupby("cid")["timestamp"].transform("max")
    last_row = (past.loc[latest, ["cid", "order_id", "customer_name", "region"]]
                .sort_values(["cid", "order_id"], kind="stable")
                .drop_duplicates("cid", keep="last").set_index("cid"))
    out["customer_name"] = last_row["customer_name"]
    out["region"] = last_row["region"]
    past = past[["cid", "oid", "plc", "timestamp", "amount", "discount", "is_return"]]
    buys = past[~past["is_return"].astype(bool)]
    look = past[past["timestamp"] >= look_start]
    look_buys = buys[buys["timestamp"] >= look_start]

    g_buys = buys.groupby("cid", sort=True)["timestamp"]
    last_buy = g_buys.max().reindex(idx)
    first_buy = g_buys.min().reindex(idx)
    out["last_order"] = last_buy
    out["recency_days"] = _days(cutoff - last_buy)
    out["frequency"] = look_buys.groupby("cid")["oid"].nunique().reindex(idx, fill_value=0)
    out["monetary"] = look.groupby("cid")["amount"].sum().reindex(idx, fill_value=0.0)
    year = past[past["timestamp"] >= cutoff - pd.Timedelta(days=YEAR_DAYS)]
    out["annual_value"] = year.groupby("cid")["amount"].sum().reindex(idx, fill_value=0.0)
    out["tenure_days"] = _days(cutoff - first_buy)

    # Purchase rhythm from distinct purchase days over the whole history before the cutoff.
    days = buys[["cid"]].assign(day=buys["timestamp"].dt.normalize()).drop_duplicates()
    n_days = days.groupby("cid").size().reindex(idx, fill_value=0)
    span = _days(days.groupby("cid")["day"].max() - days.groupby("cid")["day"].min())
    out["avg_gap_days"] = (span.reindex(idx) / (n_days - 1).where(n_days > 1)).astype("float64")
    gaps = _days(days.groupby("cid")["day"].diff())
    out["last_gap_days"] = gaps.groupby(days["cid"]).last().reindex(idx)
    out["gap_trend"] = out["last_gap_days"] / out["avg_gap_days"]
    out["overdue_ratio"] = out["recency_days"] / out["avg_gap_days"]
    # The same against the MEDIAN gap, which one long pause does not inflate.
    out["median_gap_days"] = gaps.groupby(days["cid"]).median().reindex(idx).astype("float64")
    out["overdue_median"] = out["recency_days"] / out["median_gap_days"]
    # Purchase days per day since the first one, the open gap up to the cutoff included (the rate a
    # Poisson buyer would be estimated to have); times recency it is the purchases "missed" so far:
    # exp(-missed_purchases) is how likely that silence would be if the customer were still buying.
    first_day = days.groupby("cid")["day"].min().reindex(idx)
    # Counts a customer-base model reads (frequency, recency, age T, value): distinct purchase days and
    # distinct orders over the whole history. Several orders on one day are one purchase occasion.
    out["purchase_days"] = n_days
    out["orders_total"] = buys.groupby("cid")["oid"].nunique().reindex(idx, fill_value=0)
    delays = first_repeat_delays(days)
    out["repeat_delay_days"] = np.nan      # one value over all customers: the caller's median_delay(delays)
    out["purchase_rate"] = (n_days - 1) / _days(cutoff - first_day)
    out["missed_purchases"] = out["recency_days"] * out["purchase_rate"]

    # Spend trend: net revenue in the last quarter vs the quarter before it.
    q1 = cutoff - pd.Timedelta(days=QUARTER_DAYS)
    q2 = cutoff - pd.Timedelta(days=2 * QUARTER_DAYS)
    last_q = past[past["timestamp"] >= q1].groupby("cid")["amount"].sum()
    prev_q = past[(past["timestamp"] >= q2) & (past["timestamp"] < q1)].groupby("cid")["amount"].sum()
    out["spend_last_90"] = last_q.reindex(idx, fill_value=0.0)
    out["spend_prev_90"] = prev_q.reindex(idx, fill_value=0.0)
    prev = out["spend_prev_90"].where(out["spend_prev_90"] > 0)
    out["spend_change"] = (out["spend_last_90"] - prev) / prev

    # Returns and discounts within the lookback.
    gross = look_buys.groupby("cid")["amount"].sum().reindex(idx, fill_value=0.0)
    returned = (-look.loc[look["is_return"].astype(bool), "amount"]).clip(lower=0)
    returned = returned.groupby(look.loc[returned.index, "cid"]).sum().reindex(idx, fill_value=0.0)
    out["return_share"] = (returned / gross.where(gross > 0)).fillna(0.0)
    disc = look_buys.groupby("cid")["discount"]
    out["discount_share"] = (look_buys["discount"] > 0).groupby(look_buys["cid"]).mean().reindex(idx)
    out["discount_avg"] = disc.mean().reindex(idx)

    # Product-line mix: shares of gross purchases in the lookback, and breadth now vs before.
    out["n_lines"] = look_buys.groupby("cid")["plc"].nunique().reindex(idx, fill_value=0)
    recent = look_buys[look_buys["timestamp"] >= q1]
    before = look_buys[look_buys["timestamp"] < q1]
    out["lines_recent"] = recent.groupby("cid")["plc"].nunique().reindex(idx, fill_value=0)
    out["lines_before"] = before.groupby("cid")["plc"].nunique().reindex(idx, fill_value=0)
    mix = look_buys.groupby(["cid", "plc"])["amount"].sum().clip(lower=0).unstack(fill_value=0.0)
    mix.columns = [pl_names[c] for c in mix.columns]
    mix = mix.reindex(index=idx, columns=product_lines, fill_value=0.0)
    total = mix.sum(axis=1)
    for pl in product_lines:
        out[f"pl_{pl}"] = (mix[pl] / total.where(total > 0)).fillna(0.0).astype("float64")
    for reg in regions:
        out[f"region_{reg}"] = (out["region"] == reg).astype("float64")

    for col in ("recency_days", "frequency", "tenure_days", "purchase_days", "orders_total", "n_lines",
                "lines_recent", "lines_before"):
        out[col] = out[col].astype("int64")
    for col in BASE_FEATURES:
        if out[col].dtype != "int64":
            out[col] = out[col].astype("float64")
    out.insert(0, "customer_id", pd.array(np.asarray(active, dtype=object), dtype="string"))
    return out.reset_index(drop=True), delays


def repeat_delays(past: pd.DataFrame, cutoff: pd.Timestamp, lookback_days: int) -> np.ndarray:
    """The delays features_of_past(past, cutoff, lookback_days, ...) returns, without the features: the
    first-to-second purchase-day delays of the customers who bought in the lookback (a sample's features
    still take the median over every customer's)."""
    is_buy = ~past["is_return"].astype(bool)
    stamp = past["timestamp"]
    active_ids = past.loc[is_buy & (stamp >= cutoff - pd.Timedelta(days=lookback_days)), "customer_id"].unique()
    buys = past.loc[is_buy & past["customer_id"].isin(active_ids), ["customer_id", "timestamp"]]
    days = pd.DataFrame({"cid": pd.factorize(buys["customer_id"], sort=True)[0],
                         "day": buys["timestamp"].dt.normalize().to_numpy()}).drop_duplicates()
    return first_repeat_delays(days)


def first_repeat_delays(days: pd.DataFrame) -> np.ndarray:
    """Days from first to second purchase day of each customer who came back (rows: cid, day; one per
    purchase day), float64, in cid order."""
    ordered = days.sort_values(["cid", "day"], kind="stable")
    nth = ordered.groupby("cid").cumcount()
    first = ordered[nth == 0].set_index("cid")["day"]
    second = ordered[nth == 1].set_index("cid")["day"]
    return _days(second - first.reindex(second.index)).to_numpy(dtype="float64")


def median_delay(delays: np.ndarray) -> float:
    """repeat_delay_days: the median of the customers' first-to-second purchase delays (first_repeat_delays,
    over every customer scored); NaN with fewer than MIN_REPEATERS of them. It says when a first-time buyer is
    late for a second purchase."""
    if len(delays) < MIN_REPEATERS:
        return float("nan")
    return float(np.median(delays))


def model_columns(features: pd.DataFrame) -> list[str]:
    """The columns of a features frame a model is trained on (everything but the ID columns)."""
    return [c for c in features.columns if c not in ID_COLUMNS and c not in ("cutoff", "churned")]
