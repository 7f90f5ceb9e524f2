"""Column contracts of the artifacts passed between stages, declared once.

Each mapping is column -> pandas dtype. Producers call `conform` before saving, consumers
may rely on exactly these columns in this order.
"""

from __future__ import annotations

import pandas as pd

from .errors import DataError

ALL = "All"  # the region / product_line label of an aggregate

# data/interim/transactions.parquet: one row per order line, cleaned.
TRANSACTIONS = {
    "order_id": "string",
    "customer_id": "string",
    "customer_name": "string",
    "timestamp": "datetime64[ns]",
    "region": "string",
    "product_line": "string",
    "quantity": "float64",
    "amount": "float64",      # net revenue of the line, negative for returns
    "discount": "float64",    # fraction 0..1 of list price given away
    "is_return": "bool",
}

# data/processed/kpis.parquet: one row per period and region (ALL = whole company).
KPIS = {
    "period": "datetime64[ns]",   # first day of the period
    "region": "string",
    "revenue": "float64",
    "orders": "int64",
    "active_customers": "int64",
    "new_customers": "int64",
    "avg_order_value": "float64",
    "return_rate": "float64",     # returned amount / gross sales amount
}

# data/processed/bridge.parquet: the revenue bridge from the previous complete period to the latest one,
# per segment (ALL first, then each region). No rows at all when there is no previous complete period.
# Per segment: kind "total" rows previous and current; kind "step" rows new, reactivated, lost, growth,
# decline, returns (they sum exactly to current - previous); kind "pvm" rows price, volume, mix (they sum
# exactly to growth + decline), or one "unsplit" row with the reason in `note` when quantities are missing.
BRIDGE = {
    "region": "string",           # ALL for the company
    "period": "datetime64[ns]",   # first day of the latest complete period
    "previous_period": "datetime64[ns]",  # first day of the period before it
    "kind": "string",             # total | step | pvm
    "part": "string",             # see bridge.STEPS, bridge.PVM
    "amount": "float64",          # net revenue or its change, a whole number of cents
    "customers": "int64",         # customers in the part (returns: customers with a return line this period)
    "note": "string",             # why a split is missing; "" otherwise
}

# data/processed/movers.parquet: per segment, the customers and product lines whose net revenue rose or fell
# most from the previous complete period to the latest one (params/kpis.yaml movers each way).
MOVERS = {
    "region": "string",           # ALL for the company
    "period": "datetime64[ns]",
    "previous_period": "datetime64[ns]",
    "kind": "string",             # customer | product_line
    "direction": "string",        # rise | fall
    "rank": "int64",              # 1 = the largest rise (or fall)
    "key": "string",              # customer_id, or the product line
    "name": "string",             # customer_name (customer_id when it has none), or the product line
    "previous": "float64",        # net revenue in the previous period
    "current": "float64",         # net revenue in the latest period
    "change": "float64",          # current - previous, a whole number of cents
}

# data/processed/active.parquet: distinct customers with a sale per period at each grain (M, Q, Y), per region
# and ALL, computed as kpis.compute counts them; a distinct count cannot be summed from shorter periods.
ACTIVE = {
    "grain": "string",            # M, Q or Y
    "period": "datetime64[ns]",   # first day of the period
    "region": "string",
    "active_customers": "int64",
}

# data/processed/forecast.parquet: history and forecast of each series.
FORECAST = {
    "series_id": "string",        # "All", "North", "North / Hardware"
    "region": "string",           # ALL for the company total
    "product_line": "string",     # ALL for region totals
    "ds": "datetime64[ns]",
    "y": "float64",               # actual; NaN in the future
    "yhat": "float64",            # fitted (history) or forecast (future)
    "yhat_lower": "float64",
    "yhat_upper": "float64",
    "model": "string",            # the model selected for this series
    "is_forecast": "bool",
}

# data/processed/churn_scores.parquet: one row per current customer, riskiest value first.
CHURN_SCORES = {
    "customer_id": "string",
    "customer_name": "string",
    "region": "string",
    "probability": "float64",     # calibrated P(no purchase within window_days)
    "red": "bool",                # call this customer (status == "call")
    "list": "string",             # "win back" (2+ purchase days) or "second purchase" (one so far)
    "status": "string",           # "call" (within the region's capacity), "watch" (past it), "" (not at risk)
    "annual_value": "float64",    # net revenue over the last 365 days
    "revenue_at_risk": "float64", # probability x annual_value
    "recency_days": "int64",
    "frequency": "int64",         # orders in the lookback window
    "last_order": "datetime64[ns]",
    "reasons": "string",          # plain-words reason codes joined by "; "
    "rank_in_region": "int64",    # 1 = highest revenue at risk in the region
    "newly_red": "bool",          # red now, not red compare_days earlier (params/churn.yaml)
}


def conform(df: pd.DataFrame, schema: dict[str, str], name: str, copy: bool = True) -> pd.DataFrame:
    """Exactly the schema's columns, in order, with its dtypes; a clear error if one is missing.

    copy=False shares the columns with `df` (for a producer that owns `df` and drops it: ten million rows
    are not copied once more); the default copies, so the result is independent of `df`.
    """
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {', '.join(missing)}",
                        fix="this is a bug in the stage that produced it; please report it")
    out = pd.DataFrame({c: df[c] for c in schema}, copy=copy)
    for col, dtype in schema.items():
        if str(out[col].dtype) != dtype:
            out[col] = out[col].astype(dtype)
    return out if out.index.equals(pd.RangeIndex(len(out))) else out.reset_index(drop=True)
