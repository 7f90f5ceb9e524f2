"""Benchmark: how many customers the churn model needs to learn from (the max_train_customers default).

Run: .venv/bin/python bench/churn_sample.py [--customers N] [--caps 12500,25000,...]
     defaults: N = 400,000 customers in the generated logs; caps 12.5k to 400k, and 0 (every customer)

- Logs: bench/churn.py's seeded log of N customers (Poisson buyers with exponential lifetimes, 3% returns,
  two years), and the three shapes of tests/customer_logs.py at N / 4 customers (mostly one-time buyers; a
  B2B log with one account at ~10% of revenue; a third of them one-time buyers).
- Only training data: the stage's own setup moved one window back. The cutoff the stage would train on first
  (its latest training cutoff, validation cutoff - window_days) plays the validation cutoff here, and four
  training cutoffs before it, as params/churn.yaml spaces them, are what the model learns from. No label
  window of those reaches it, and the stage's validation cutoff, whose figures the report prints, is never
  read: the cap is chosen without it.
- Per cap: the seeded customer sample the stage would take (datastory.churn.sampling), the classifier fitted
  on it as the stage fits it (boosting + isotonic calibration on 3 GroupKFold splits), and at the held cutoff
  (every customer) its ROC AUC and Brier score, next to the same figures for every customer; the fit's
  seconds and its rows; and the scorer the stage would choose from it (out-of-fold ROC AUC on the sample's
  rows: model, recency, RFM or blend) with that scorer's ROC AUC at the held cutoff.
- The cap chosen: the smallest whose ROC AUC is within 0.001 and Brier within 0.0003 of every customer's on
  every log (printed at the end, against params/churn.yaml's max_train_customers).
Not a test: the figures depend on the data and library versions.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

try:
    from churn import synthetic_log  # bench/churn.py
    from customer_logs import customer_log  # tests/customer_logs.py
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from datastory import config
    from datastory.churn import sampling
    from datastory.churn.model import fit, labelled_at, plan_cutoffs, predict
    from datastory.churn.scorer import fit_scorer, probabilities
except ImportError as exc:  # e.g. no scikit-learn
    print(f"bench/churn_sample.py skipped: {exc}")
    sys.exit(0)

CAPS = [12_500, 25_000, 50_000, 100_000, 200_000, 400_000]
AUC_TOL, BRIER_TOL = 0.001, 0.0003


def logs(n: int) -> dict[str, pd.DataFrame]:
    regions, lines = ["East", "North", "South", "West"], ["Hardware", "Services", "Software", "Supplies"]
    return {
        f"Poisson buyers, {n:,} customers": synthetic_log(n, regions, lines, seed=1),
        f"84% one-time buyers, {n // 4:,}": customer_log(n // 4, seed=12, one_time_share=0.84),
        f"B2B, one account 10%, {n // 4:,}": customer_log(n // 4, seed=13, one_time_share=0.2, whale_share=0.10),
        f"a third one-time buyers, {n // 4:,}": customer_log(n // 4, seed=15, one_time_share=0.33),
    }


def held_back(tx: pd.DataFrame, cfg: config.ChurnParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the stacked training rows, the held cutoff's rows): the stage's plan one window earlier."""
    first = plan_cutoffs(tx, cfg).train[0]            # the stage's latest training cutoff
    back = plan_cutoffs(tx, cfg.model_copy(update={"cutoff": first.date().isoformat()}))
    lines = sorted(tx["product_line"].astype(str).unique())
    regions = sorted(tx["region"].astype(str).unique())
    learn = pd.concat([labelled_at(tx, c, cfg, lines, regions) for c in back.train], ignore_index=True)
    return learn, labelled_at(tx, back.valid, cfg, lines, regions)


def curve(learn: pd.DataFrame, held: pd.DataFrame, caps: list[int], seed: int) -> list[dict[str, float]]:
    active = int(learn["customer_id"].nunique())
    y = held["churned"].to_numpy(dtype=bool)
    out = []
    for cap in caps:
        pick = sampling.picker(sampling.share(active, cap), seed)
        rows = sampling.rows(learn, pick)
        t0 = time.perf_counter()
        fitted = fit(rows, seed)
        sec = time.perf_counter() - t0
        prob = predict(fitted, held)
        scorer = fit_scorer(rows, seed, fitted)     # the stage's choice: out-of-fold on the learning rows
        out.append({"cap": cap, "customers": int(rows["customer_id"].nunique()), "rows": len(rows),
                    "auc": float(roc_auc_score(y, prob)), "brier": float(brier_score_loss(y, prob)),
                    "fit_s": sec, "kind": fitted.kind, "scorer": scorer.name,
                    "scorer_auc": float(roc_auc_score(y, probabilities(scorer, held)))})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=400_000)
    ap.add_argument("--caps", default=",".join(str(c) for c in CAPS))
    args = ap.parse_args(argv)
    caps = sorted({int(float(c)) for c in args.caps.split(",") if c.strip()}) + [0]
    cfg = config.load("churn", ROOT)
    ok: dict[int, bool] = {c: True for c in caps}
    same: dict[int, bool] = {c: True for c in caps}
    print(f"held cutoff = the stage's latest training cutoff; learning from {cfg.n_train_cutoffs} cutoffs "
          f"{cfg.cutoff_step_days} days apart before it; tolerance ROC AUC {AUC_TOL}, Brier {BRIER_TOL}")
    for name, tx in logs(args.customers).items():
        learn, held = held_back(tx, cfg)
        rows = curve(learn, held, caps, cfg.seed)
        full = rows[-1]
        print(f"\n{name}: {len(tx):,} lines; learning rows {len(learn):,} "
              f"({learn['customer_id'].nunique():,} customers), held {len(held):,} customers "
              f"({held['churned'].mean():.0%} churned)")
        print(f"  {'cap':>9} {'customers':>10} {'rows':>9} {'ROC AUC':>8} {'d AUC':>7} {'Brier':>7} "
              f"{'d Brier':>8} {'fit s':>7}  {'scorer chosen':<14} {'its AUC':>7}  model")
        for r in rows:
            d_auc, d_brier = r["auc"] - full["auc"], r["brier"] - full["brier"]
            if r["cap"] and r["customers"] < full["customers"]:
                ok[r["cap"]] &= d_auc >= -AUC_TOL and d_brier <= BRIER_TOL
                same[r["cap"]] &= r["scorer"] == full["scorer"]
            cap = f"{r['cap']:,}" if r["cap"] else "all"
            print(f"  {cap:>9} {r['customers']:>10,} {r['rows']:>9,} {r['auc']:8.4f} {d_auc:+7.4f} "
                  f"{r['brier']:7.4f} {d_brier:+8.4f} {r['fit_s']:7.1f}  {r['scorer']:<14} {r['scorer_auc']:7.4f}  "
                  f"{r['kind']}")
    chosen = next((f"{c:,} customers" for c in caps if c and ok[c]), "none of the caps")
    print(f"\nsmallest cap within tolerance on every log: {chosen} "
          f"(params/churn.yaml max_train_customers: {cfg.max_train_customers:,})")
    print("caps whose sample chose the scorer every customer chose, on every log: "
          + (", ".join(f"{c:,}" for c in caps if c and same[c]) or "none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
