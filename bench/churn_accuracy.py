"""Benchmark: out-of-time accuracy of the churn scorers and of the call lists, on generated and real logs.

Run: .venv/bin/python bench/churn_accuracy.py

- Logs: the embedded sample company (datastory.sample); three generated shapes from tests/customer_logs.py
  (mostly one-time buyers; a heavy-tailed B2B log with one account at ~10% of revenue; nine months of
  history); and CDNOW (a real CD retailer's 69,659 purchases by 23,570 customers, 1997-1998, most of whom
  bought once), read from the data file inside the `lifetimes` wheel (the `bench` extra; skipped with the
  pip line when absent). Nothing is downloaded at run time.
- Each log runs through churn.run with the default params/churn.yaml settings: training cutoffs, the scorer
  chosen on them (out-of-fold, never on the validation cutoff), and everything judged at the validation
  cutoff (the latest whose 90-day window is fully observed).
- Printed per log and scorer (model, recency, RFM, blend of model and RFM): ROC AUC, Brier, and the call
  lists each would have made at the validation cutoff: how many were called and the share who really did
  not buy within the window (precision), against the base rate (lift).
- Goals (issue): the chosen scorer beats recency-only by >= 0.02 AUC and never loses to RFM; called
  customers churn at >= 2x the base rate.
Not a test: the figures depend on the data and library versions.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's generators of real log shapes
from customer_logs import customer_log  # noqa: E402

from datastory import churn, config, ingest, sample, schema  # noqa: E402

SCORERS = ("model", "recency", "rfm", "blend")


def cdnow() -> pd.DataFrame | None:
    """CDNOW master file from the lifetimes package's data folder as schema.TRANSACTIONS; None if absent."""
    spec = importlib.util.find_spec("lifetimes")
    path = Path(spec.origin).parent / "datasets" / "CDNOW_master.txt" if spec and spec.origin else None
    if path is None or not path.is_file():
        print("CDNOW skipped: pip install lifetimes==0.11.3 (its wheel carries CDNOW_master.txt)", file=sys.stderr)
        return None
    raw = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    ts = pd.to_datetime(raw["date"], format="%Y%m%d")
    df = pd.DataFrame({"order_id": [f"{c}-{d}-{i}" for i, (c, d) in enumerate(zip(raw["customer_id"], raw["date"],
                                                                                     strict=True))],
                       "customer_id": raw["customer_id"], "customer_name": "Customer " + raw["customer_id"],
                       "timestamp": ts, "region": "All", "product_line": "CDs",
                       "quantity": raw["number_of_cds"].astype(float), "amount": raw["dollar_value"].astype(float),
                       "discount": 0.0})
    df = df[df["amount"] > 0].assign(is_return=False)
    return schema.conform(df, schema.TRANSACTIONS, "CDNOW")


def logs() -> dict[str, pd.DataFrame]:
    out = {"sample company": ingest.clean(sample.generate(config.SampleParams()), "sample")[0],
           "generated: 84% one-time buyers": customer_log(3000, seed=12, one_time_share=0.84),
           "generated: B2B, one account 10%": customer_log(1500, seed=13, one_time_share=0.2, whale_share=0.10),
           "generated: nine months": customer_log(2000, seed=14, start="2025-04-01", end="2025-12-28")}
    real = cdnow()
    if real is not None:
        out["CDNOW (real, 1997-98)"] = real
    return out


def main() -> int:
    cfg = config.ChurnParams()
    rows, summary = [], []
    for name, tx in logs().items():
        t0 = time.perf_counter()
        m = churn.run(tx, cfg).metrics
        secs = time.perf_counter() - t0
        scorers = {"model": m["model"], **m["baselines"]}
        for s in SCORERS:
            lst = m["call_list_validation"][s]
            rows.append({"log": name, "scorer": s + (" *" if s == m["scorer"] else ""),
                         "ROC AUC": scorers[s]["roc_auc"], "Brier": scorers[s]["brier"],
                         "called": lst["n_call"], "precision": lst["precision"], "lift": lst["lift"]})
        chosen = scorers[m["scorer"]]["roc_auc"]
        summary.append({"log": name, "customers": tx["customer_id"].nunique(), "scored": m["n_valid"],
                        "base rate": m["base_rate"], "chosen": m["scorer"],
                        "AUC - recency": chosen - scorers["recency"]["roc_auc"],
                        "AUC - RFM": chosen - scorers["rfm"]["roc_auc"],
                        "call lift": m["call_list_validation"][m["scorer"]]["lift"], "seconds": secs})
    fmt = {"float_format": lambda v: f"{v:.3f}"}
    print("Out-of-time, at the validation cutoff (* = the scorer chosen on the training cutoffs):")
    print(pd.DataFrame(rows).to_string(index=False, **fmt))
    print("\nGoals: AUC - recency >= 0.02, AUC - RFM >= 0, call lift >= 2")
    print(pd.DataFrame(summary).to_string(index=False, **fmt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
