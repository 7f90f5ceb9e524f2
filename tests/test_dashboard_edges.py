"""Dashboards of the awkward audiences, built for real by `dvc repro` and opened in headless Chromium.

A project copy reads a CSV customer log (tests/customer_logs.py) with two extra regions:
- Lapsed: its customers all bought in early 2024 and never again, so at the data's end (31 Dec 2025) nobody
  in it is within the churn model's look-back: the region has no customers to score or call;
- Newland: it opened on 24 December 2025, a week before the data ends: too short to forecast.
Each has its audience in params/report.yaml. Their dashboards must open without a console message, become
interactive (`data-ready`) and say in words why a part is empty.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from customer_logs import customer_log
from e2e import copy_repo, sh
from test_dashboard_chromium import driver, open_page, updates, wait_update  # noqa: F401  (driver: a fixture)

from datastory import schema
from datastory.dashboard import data

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

END = "2025-12-31"


def edge_log() -> pd.DataFrame:
    """customer_log's three regions over 2024-2025, plus Lapsed (early 2024 only) and Newland (from 24 Dec 2025)."""
    base = customer_log(n_customers=240, seed=4, start="2024-01-01", end=END)
    rows = []
    for i in range(12):
        for k, day in enumerate(pd.date_range("2024-01-08", "2024-03-25", freq="14D")):
            rows.append((f"L{i}-{k}", f"L{i:03d}", f"Lapsed {i}", day, "Lapsed", "Hardware", 120.0 + i))
    for i in range(8):
        for k, day in enumerate(pd.date_range("2025-12-24", END, freq="2D")):
            rows.append((f"N{i}-{k}", f"N{i:03d}", f"Newland {i}", day, "Newland", "Software", 90.0 + i))
    extra = pd.DataFrame(rows, columns=["order_id", "customer_id", "customer_name", "timestamp", "region",
                                        "product_line", "amount"]).assign(quantity=1.0, discount=0.0,
                                                                          is_return=False)
    log = pd.concat([base, schema.conform(extra, schema.TRANSACTIONS, "extra")], ignore_index=True)
    return log.sort_values(["timestamp", "order_id"], kind="stable").drop(columns="is_return")


def set_yaml(path: Path, update) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    update(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")


@pytest.fixture(scope="module")
def edges(tmp_path_factory) -> Path:
    root = copy_repo(tmp_path_factory.mktemp("edges"))
    log = edge_log()
    log["timestamp"] = log["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    log.to_csv(root / "data/raw/transactions.csv", index=False)
    set_yaml(root / "params/data.yaml", lambda d: d.update(source="csv"))
    set_yaml(root / "params/forecast.yaml", lambda d: d.update(models=["seasonal_naive", "theta"], engine="local"))
    set_yaml(root / "params/report.yaml", lambda d: d.update(audiences={
        "lapsed": {"label": "Lapsed sales", "regions": ["Lapsed"], "to": ["lapsed@example.com"]},
        "newland": {"label": "Newland sales", "regions": ["Newland"], "to": ["newland@example.com"]}}))
    sh(root, "dvc", "repro", "report@lapsed", "report@newland")
    return root


def embedded(root: Path, key: str) -> dict:
    html = (root / "reports" / key / "dashboard.html").read_text(encoding="utf-8")
    start = html.index('<script type="application/json" id="dashboard-data">')
    return json.loads(html[html.index(">", start) + 1:html.index("</script>", start)])


def test_the_builds_hold_what_the_cases_need(edges):
    scores = pd.read_parquet(edges / "data/processed/churn_scores.parquet")
    assert "Lapsed" not in set(scores["region"]) and "Newland" in set(scores["region"])
    fm = json.loads((edges / "data/processed/forecast_metrics.json").read_text())
    series = pd.read_csv(edges / "metrics/forecast_series.csv").set_index("series_id")
    assert series.loc["Newland", "status"] in ("too_short", "no_forecast"), series.loc["Newland"].to_dict()
    assert fm["freq"] == "W"


def test_an_audience_with_no_customers_opens_and_says_so(driver, edges):  # noqa: F811
    from selenium.webdriver.common.by import By

    open_page(driver, edges / "reports/lapsed/dashboard.html")
    assert [m for m in driver.get_log("browser") if m["level"] in ("SEVERE", "WARNING")] == []
    assert driver.find_element(By.ID, "calls-msg").text == data.NO_SCORED
    assert driver.find_element(By.ID, "capacity").get_attribute("disabled") == "true"
    assert driver.find_elements(By.CSS_SELECTOR, "#calls tbody tr") == []
    assert driver.find_element(By.ID, "churn-sentence").text.startswith("No customer needs a call")
    d = embedded(edges, "lapsed")
    assert d["calls"] == [] and d["capacity"]["Lapsed"]["scored"] == 0
    # the rest of the page still answers: a period choice updates the tiles and the charts
    n = updates(driver)
    driver.find_element(By.CSS_SELECTOR, '#grain button[data-grain="Q"]').click()
    wait_update(driver, n)
    q = d["tiles"]["Q"]["Lapsed"]
    assert driver.find_element(By.ID, "tiles-msg").text == q["message"]
    assert driver.find_element(By.CSS_SELECTOR, '#grain button[data-grain="Q"]').get_attribute("aria-pressed") == "true"


def test_a_region_too_short_to_forecast_opens_and_says_why(driver, edges):  # noqa: F811
    from selenium.webdriver.common.by import By

    open_page(driver, edges / "reports/newland/dashboard.html")
    assert [m for m in driver.get_log("browser") if m["level"] in ("SEVERE", "WARNING")] == []
    d = embedded(edges, "newland")
    notes = pd.read_csv(edges / "metrics/forecast_series.csv").set_index("series_id").loc["Newland", "notes"]
    why = driver.find_element(By.ID, "fc-msg").text
    assert why.startswith("No forecast for Newland: ") and notes in why
    assert "too little to forecast" in why
    assert not driver.find_element(By.ID, "fc-own").is_displayed()
    # its customers are scored: the call list is there, or says that nobody is at risk
    rows = driver.find_elements(By.CSS_SELECTOR, "#calls tbody tr")
    assert len(rows) == len(d["calls"]) and (rows or driver.find_element(By.ID, "calls-msg").text == data.NO_CUSTOMERS)
    assert d["capacity"]["Newland"]["scored"] == 8
