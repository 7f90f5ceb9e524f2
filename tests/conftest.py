"""Shared fixtures: a tiny project folder and a tiny, schema-exact Pack."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datastory import bridge, config, pack, schema
from datastory import kpis as kpis_mod

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """Ctrl-C reaches the commands the tests start (`serve`, `watch`) even when the suite itself was started with
    SIGINT ignored (a background job of a shell without job control, as some CI runners start it): a child keeps
    an ignored signal ignored, so the tests that stop a command with SIGINT would wait for it in vain."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run slow tests (long fits, e2e)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow") or os.environ.get("RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: use --run-slow or RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def committed_params(name: str) -> str:
    """params/<name> as committed (git HEAD), else the working copy's when not in a git checkout.

    `dvc exp run -S params/forecast.yaml:horizon=26` leaves the experiment's value in the working copy;
    the tests check the project as committed, so an experiment never fails them."""
    res = subprocess.run(["git", "show", f"HEAD:params/{name}"], cwd=REPO, capture_output=True, text=True)
    return res.stdout if res.returncode == 0 else (REPO / "params" / name).read_text(encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh project folder holding a copy of params/ as committed (no data yet)."""
    shutil.copytree(REPO / "params", tmp_path / "params")
    for f in (tmp_path / "params").glob("*.yaml"):
        f.write_text(committed_params(f.name), encoding="utf-8")
    return tmp_path


def tiny_frames(hostile: str | None = None) -> dict:
    """Schema-exact frames for 2 regions, with an optional hostile customer name."""
    regions = ["North", "South"]
    periods = pd.date_range("2025-01-01", periods=6, freq="MS")
    kpi_rows = []
    for reg in [schema.ALL, *regions]:
        scale = 2.0 if reg == schema.ALL else 1.0
        for i, p in enumerate(periods):
            kpi_rows.append({"period": p, "region": reg, "revenue": scale * (1000 + 50 * i),
                             "orders": int(scale * (40 + i)), "active_customers": int(scale * 30),
                             "new_customers": 2, "avg_order_value": 25.0 + i, "return_rate": 0.02})
    kpis = schema.conform(pd.DataFrame(kpi_rows), schema.KPIS, "kpis")

    fc_rows = []
    series = [(schema.ALL, schema.ALL, schema.ALL)] + [(r, r, schema.ALL) for r in regions] + \
             [(f"{r} / Hardware", r, "Hardware") for r in regions]
    days = pd.date_range("2025-01-05", periods=20, freq="W-SUN")
    for sid, reg, pl in series:
        for i, d in enumerate(days):
            fut = i >= 16
            yhat = 100.0 + 3 * i
            fc_rows.append({"series_id": sid, "region": reg, "product_line": pl, "ds": d,
                            "y": np.nan if fut else yhat + (-1) ** i * 4, "yhat": yhat,
                            "yhat_lower": yhat - 10, "yhat_upper": yhat + 10,
                            "model": "prophet" if reg != "South" else "seasonal_naive", "is_forecast": fut})
    forecast = schema.conform(pd.DataFrame(fc_rows), schema.FORECAST, "forecast")
    fmetrics = {
        "freq": "W", "horizon": 4, "folds": 2,
        "overall": {"mase": 0.8, "smape": 0.12, "coverage": 0.78, "naive_mase": 1.1, "naive_smape": 0.16},
        "series": {sid: {"region": reg, "product_line": pl, "model": "prophet", "status": "backtested",
                         "history": 120, "folds": 2, "mase": 0.8, "smape": 0.12, "coverage": 0.8,
                         "naive_mase": 1.1, "naive_smape": 0.16, "baseline": "seasonal naive", "notes": None,
                         "error": None}
                   for sid, reg, pl in series},
        "wins": {"prophet": 3, "seasonal_naive": 2},
    }
    names = ["Ada Ltd", "Bolt GmbH", hostile or "Cobalt SA", "Delta BV", "Echo AB", "Fjord AS"]
    scores = pd.DataFrame({
        "customer_id": [f"C{i:03d}" for i in range(6)],
        "customer_name": names,
        "region": ["North", "North", "North", "South", "South", "South"],
        "probability": [0.91, 0.55, 0.30, 0.72, 0.20, 0.05],
        "annual_value": [1200.0, 800.0, 3000.0, 500.0, 900.0, 100.0],
        "recency_days": [120, 60, 30, 95, 10, 3],
        "frequency": [3, 5, 12, 2, 8, 20],
        "last_order": pd.to_datetime(["2025-02-01", "2025-04-01", "2025-05-01", "2025-02-25",
                                      "2025-05-20", "2025-05-28"]),
        "reasons": ["no order for 120 days (usually every 30)", "spend down 60% vs last quarter",
                    "", "no order for 95 days (usually every 40)", "", ""],
    })
    scores["revenue_at_risk"] = scores["probability"] * scores["annual_value"]
    scores["red"] = scores["probability"] >= 0.5
    scores["list"] = ["win back", "win back", "win back", "second purchase", "win back", "win back"]
    scores["status"] = np.where(scores["red"], "call", np.where(scores["probability"] >= 0.25, "watch", ""))
    scores["newly_red"] = scores["customer_id"].isin(["C003"])
    scores = scores.sort_values("revenue_at_risk", ascending=False, kind="stable")
    scores["rank_in_region"] = scores.groupby("region").cumcount() + 1
    churn_scores = schema.conform(scores, schema.CHURN_SCORES, "churn_scores")
    cmetrics = {"window_days": 90, "cutoff_valid": "2025-03-02", "score_date": "2025-05-31",
                "base_rate": 0.3, "n_scored": 6, "n_red": 3, "n_watch": 1, "n_red_win_back": 2,
                "n_red_second_purchase": 1, "capacity": 30, "second_purchase_capacity": 20, "scorer": "model",
                "model": {"roc_auc": 0.81, "pr_auc": 0.6, "brier": 0.15, "top_decile_lift": 2.5},
                "baselines": {"recency": {"roc_auc": 0.74, "pr_auc": 0.5, "brier": 0.19, "top_decile_lift": 2.0},
                              "rfm": {"roc_auc": 0.76, "pr_auc": 0.52, "brier": 0.18, "top_decile_lift": 2.1}},
                "revenue_at_risk": float(scores.loc[scores["red"], "revenue_at_risk"].sum()),
                "expected_loss_scored": float(scores["revenue_at_risk"].sum()),
                "churn_rate": float(scores["probability"].mean()),
                "calibration": {"model": [
                    {"lower": i / 5, "upper": (i + 1) / 5, "count": 0 if i == 2 else 10 + i,
                     "mean_predicted": None if i == 2 else round(i / 5 + 0.1, 2),
                     "observed": None if i == 2 else round(i / 5 + 0.08 + 0.01 * i, 2)} for i in range(5)]}}
    dq = {"rows_read": 1000, "rows_kept": 990, "duplicates_removed": 10, "missing_region_filled": 3,
          "return_lines": 12, "period_start": "2025-01-01", "period_end": "2025-05-31",
          "n_customers": 6, "n_orders": 300, "rejected": {}}
    tx = tiny_transactions(names)
    return dict(kpis=kpis, forecast=forecast, forecast_metrics=fmetrics, churn_scores=churn_scores,
                churn_metrics=cmetrics, data_quality=dq,
                bridge=bridge.compute(tx, "M", dq["period_end"]), movers=bridge.movers(tx, "M", dq["period_end"]),
                active=kpis_mod.active(tx))


def tiny_transactions(names: list[str]) -> pd.DataFrame:
    """Order lines of tiny_frames' six customers in April and May 2025 (what changed: May vs April)."""
    rows = [  # customer, day, product line, quantity, amount
        (0, "2025-04-03", "Hardware", 2, 200.0), (0, "2025-05-06", "Hardware", 3, 330.0),
        (1, "2025-04-10", "Software", 1, 400.0), (1, "2025-05-12", "Software", 1, 150.0),
        (2, "2025-05-20", "Hardware", 4, 480.0),
        (3, "2025-04-15", "Services", 5, 250.0), (3, "2025-05-15", "Services", -1, -50.0),
        (4, "2025-04-02", "Hardware", 1, 90.0), (4, "2025-05-28", "Software", 2, 260.0),
        (5, "2025-03-01", "Services", 1, 70.0), (5, "2025-05-30", "Services", 2, 140.0),
    ]
    df = pd.DataFrame(rows, columns=["i", "timestamp", "product_line", "quantity", "amount"])
    df["customer_id"] = [f"C{i:03d}" for i in df["i"]]
    df["customer_name"] = [names[i] for i in df["i"]]
    df["region"] = ["North" if i < 3 else "South" for i in df["i"]]
    df["order_id"] = [f"O{k}" for k in range(len(df))]
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df["discount"] = 0.0
    df["is_return"] = df["amount"] < 0
    return schema.conform(df, schema.TRANSACTIONS, "transactions")


def make_pack(audience: str = "executive", hostile: str | None = None) -> pack.Pack:
    report = config.ReportParams(audiences={
        "executive": config.Audience(label="Executive team", regions="all", to=["boss@example.com"]),
        "north": config.Audience(label="North sales", regions=["North"], to=["north@example.com"]),
    })
    prov = pack.Provenance("2025-01-01", "2025-05-31", "abc123def456", "0123456789ab")
    return pack.select(audience, report, "EUR", provenance=prov, **tiny_frames(hostile))


def write_artifacts(project: Path, frames: dict) -> None:
    """Write tiny_frames() as the real artifacts the earlier stages leave in a project folder."""
    from datastory import io, metrics

    paths = config.paths(project)
    for name in ("kpis", "forecast", "churn_scores", "bridge", "movers", "active"):
        io.write_parquet(frames[name], getattr(paths, name))
    metrics.save_forecast(frames["forecast_metrics"], paths)
    metrics.save_churn(frames["churn_metrics"], paths)
    metrics.save_quality(frames["data_quality"], paths)


def email_inputs(pk: pack.Pack | None = None) -> tuple[dict, dict]:
    """(the email's facts, the quality gate's metrics) of a pack (default: North's), as the deliver stage reads
    them from the report stage's email.json and the metrics files."""
    from datastory.present import email

    pk = pk or make_pack("north")
    return email.facts(pk), {"data_quality": pk.data_quality, "churn_metrics": pk.churn_metrics,
                             "forecast_metrics": pk.forecast_metrics}


def write_report_files(project: Path, pdf: bytes, xlsx: bytes, chart: bytes | None = None,
                       audience: str = "north") -> None:
    """What the report stage leaves for the deliver stage, after write_artifacts: the PDF, the workbook, the
    email's chart (None: leave it out; b"": no chart) and the email's words (from the written pack)."""
    from datastory import io
    from datastory.present import email

    paths = config.paths(project)
    io.write_bytes(pdf, paths.report(audience, "pdf"))
    io.write_bytes(xlsx, paths.report(audience, "xlsx"))
    if chart is not None:
        io.write_bytes(chart, paths.email_chart(audience))
    io.write_json(email.facts(pack.load(audience, project)), paths.email_facts(audience))


@pytest.fixture
def tiny_pack() -> pack.Pack:
    return make_pack()


@pytest.fixture
def north_pack() -> pack.Pack:
    return make_pack("north")


HOSTILE = '=HYPERLINK("http://evil.example/","click")<script>alert(1)</script>'


@pytest.fixture
def hostile_pack() -> pack.Pack:
    return make_pack(hostile=HOSTILE)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """One small project built by the real `dvc repro` in the default time zone and locale.

    Session-scoped so every end-to-end test file shares the one ~2-minute build; tests must only read it.
    """
    from e2e import copy_repo, sh

    root = copy_repo(tmp_path_factory.mktemp("e2e"))
    res = sh(root, "dvc", "repro")
    (root.parent / "repro.log").write_text(res.stdout + res.stderr)   # the console of the run, beside the project
    return root
