"""The whole pipeline on a small sample company, every artifact opened back by its reader."""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml
from e2e import GIT_DATES, REPO, sh
from pypdf import PdfReader

from datastory import workbook
from datastory.present import words

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

AUDIENCES = yaml.safe_load((REPO / "params/report.yaml").read_text())["audiences"]


# `built` (the project after one `dvc repro`) is a session fixture in conftest.py, shared with
# test_promises_*.py.


def _pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def _regions(aud: dict, all_regions: set[str]) -> set[str]:
    return all_regions if aud["regions"] == "all" else set(aud["regions"])


def test_every_audience_gets_a_full_pack_and_an_email(built):
    for key in AUDIENCES:
        for ext in ("xlsx", "html", "pdf"):
            f = built / "reports" / key / f"report.{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f
        assert (built / "reports" / "outbox" / f"{key}.eml").is_file()
        assert (built / "reports" / "runs" / f"05_report_{key}.ipynb").is_file()


def test_every_audience_gets_a_dashboard_with_only_its_customers(built):
    """dashboard.html per audience, under 3 MB, its embedded data holding only its own regions' customers."""
    scores = pd.read_parquet(built / "data/processed/churn_scores.parquet")
    regions = set(scores["region"])
    for key, aud in AUDIENCES.items():
        html = (built / "reports" / key / "dashboard.html").read_text(encoding="utf-8")
        assert 100_000 < len(html.encode("utf-8")) <= 3_000_000, key
        start = html.index('<script type="application/json" id="dashboard-data">')
        embedded = json.loads(html[html.index(">", start) + 1:html.index("</script>", start)])
        mine = _regions(aud, regions)
        assert {c["region"] for c in embedded["calls"]} == mine
        others = scores.loc[~scores["region"].isin(mine), "customer_id"]
        assert not any(f'"{c}"' in html for c in others), key
        # the same figures as the PDF: its headline sentence and the forecast's central estimate
        pdf = " ".join(_pdf_text(built / "reports" / key / "report.pdf").split())
        head = "All" if aud["regions"] == "all" else aud["regions"][0]
        tiles = {t["kpi"]: t for t in embedded["tiles"]["M"][head]["items"]}
        assert f"Revenue was {tiles['revenue']['now']} {embedded['currency']} in {embedded['tiles']['M'][head]['period']}" \
            in pdf, key
        sentence = next(s["sentence"] for s in embedded["series"] if s["id"] == head)
        assert sentence.split("(central estimate ")[1].split(")")[0] in pdf, key
        # active customers: the KPI table's at its own period, distinct customers per quarter and year (counted
        # here straight from the transactions, independently of kpis.active)
        kpis = pd.read_parquet(built / "data/processed/kpis.parquet")
        row = kpis[(kpis["region"] == head) & (kpis["period"] == _period_start(embedded["tiles"]["M"][head]["period"]))]
        assert tiles["active_customers"]["now"] == words.fmt_count(int(row["active_customers"].iloc[0])), key
        assert f"{tiles['active_customers']['now']}" in pdf, key
        tx = pd.read_parquet(built / "data/interim/transactions.parquet")
        sales = tx[(tx["amount"] > 0) & ((tx["region"] == head) | (head == "All"))]
        checked = 0
        for grain in ("Q", "Y"):
            got = embedded["tiles"][grain][head]
            if got["message"]:
                continue
            start = _period_start(got["period"])
            inside = sales[sales["timestamp"].dt.to_period(grain).dt.start_time == start]
            active = next(t for t in got["items"] if t["kpi"] == "active_customers")
            assert active["value"] == inside["customer_id"].nunique() > 0, (key, grain)
            checked += 1
        assert checked == 2, key


def _period_start(label: str) -> pd.Timestamp:
    """The first day of a dashboard period label: 'May 2026', 'Q2 2026' or '2025'."""
    if label.startswith("Q"):
        q, year = label[1:].split()
        return pd.Timestamp(int(year), 3 * int(q) - 2, 1)
    return pd.Timestamp(int(label), 1, 1) if label.isdigit() else pd.Timestamp(label)


def test_second_repro_runs_no_stage_and_status_is_clean(built):
    res = sh(built, "dvc", "repro")
    assert "Running stage" not in res.stdout, res.stdout
    status = sh(built, "dvc", "status")
    assert "up to date" in status.stdout, status.stdout


def test_console_of_a_full_run_has_no_error_warning_or_traceback(built):
    console = (built.parent / "repro.log").read_text()
    assert "Running stage 'forecast'" in console
    noisy = [line for line in console.splitlines()
             if any(word in line for word in ("ERROR", "WARNING", "Traceback", "KeyboardInterrupt"))]
    assert not noisy, "\n".join(noisy)


def test_metrics_show_lists_forecast_and_churn(built):
    res = sh(built, "dvc", "metrics", "show", "--json")
    shown = json.dumps(json.loads(res.stdout))
    assert "metrics/forecast.json" in shown and "metrics/churn.json" in shown
    churn = json.loads((built / "metrics/churn.json").read_text())
    assert 0.5 < churn["roc_auc"] <= 1.0
    forecast = json.loads((built / "metrics/forecast.json").read_text())
    assert forecast["mase"] > 0 and forecast["n_series"] > 1
    series = pd.read_csv(built / "metrics/forecast_series.csv")
    assert len(series) == forecast["n_series"] and "prophet" in set(series["model"]) | set(
        json.loads((built / "data/processed/forecast_metrics.json").read_text())["wins"])


def test_workbook_red_rows_match_the_scores(built):
    scores = pd.read_parquet(built / "data/processed/churn_scores.parquet")
    all_regions = set(scores["region"])
    for key, aud in AUDIENCES.items():
        wb = openpyxl.load_workbook(built / "reports" / key / "report.xlsx")
        names = [n.lower() for n in wb.sheetnames]
        assert any("summary" in n for n in names) and any("forecast" in n for n in names)
        churn_name = next(n for n in wb.sheetnames if "churn" in n.lower())
        ws = wb[churn_name]
        header_row = next(r for r in range(1, 20) if any(
            str(ws.cell(r, c).value).lower().startswith("customer id") for c in range(1, 10)))
        headers = [str(c.value).lower() if c.value is not None else "" for c in ws[header_row]]
        id_col = next(i for i, h in enumerate(headers) if h.startswith("customer id"))
        region_col = next(i for i, h in enumerate(headers) if h == "region")
        red_ids, seen_regions = set(), set()
        for row in ws.iter_rows(min_row=header_row + 1):
            if row[id_col].value is None:
                continue
            seen_regions.add(row[region_col].value)
            fill = row[id_col].fill
            if fill.fill_type == "solid" and str(fill.fgColor.rgb).upper().endswith(workbook.RED_FILL_RGB):
                red_ids.add(str(row[id_col].value))
        mine = scores[scores["region"].isin(_regions(aud, all_regions))]
        assert red_ids == set(mine.loc[mine["red"], "customer_id"]), key
        assert seen_regions <= _regions(aud, all_regions), key


def test_pdf_shows_sections_and_forecast_figures(built):
    from datastory.present import words as present_words

    fc = pd.read_parquet(built / "data/processed/forecast.parquet")
    for key, aud in AUDIENCES.items():
        text = _pdf_text(built / "reports" / key / "report.pdf")
        assert "forecast" in text.lower() and "churn" in text.lower(), key
        sid = "All" if aud["regions"] == "all" else aud["regions"][0]
        future = fc[(fc["series_id"] == sid) & fc["is_forecast"]]
        assert present_words.fmt_money(future["yhat"].sum()) in text.replace("\n", " "), key


def test_pdf_numbers_match_the_metrics_files_and_the_data(built):
    churn = json.loads((built / "data/processed/churn_metrics.json").read_text())
    dq = json.loads((built / "data/interim/data_quality.json").read_text())
    scores = pd.read_parquet(built / "data/processed/churn_scores.parquet")
    for key, aud in AUDIENCES.items():
        text = " ".join(_pdf_text(built / "reports" / key / "report.pdf").split())
        scorers = {"model": churn["model"], **churn["baselines"]}
        assert f"its ROC AUC is {scorers[churn['scorer']]['roc_auc']:.2f}" in text, key
        for name, said in (("recency", "recency alone"), ("rfm", "an RFM score")):
            if name != churn["scorer"]:  # every other scorer's figure stands beside the chosen one's
                assert f"{said} {churn['baselines'][name]['roc_auc']:.2f}" in text, key
        company = f"Rows read {dq['rows_read']:,}" in text and f"Rows kept {dq['rows_kept']:,}" in text
        assert company == (aud["regions"] == "all"), key  # a region reads its own counts, never the company's
        mine = scores[scores["region"].isin(_regions(aud, set(scores["region"])))]
        if aud["regions"] != "all":
            assert f"Customers scored ({aud['regions'][0]}) {len(mine):,}" in text, key
        n_red = int(mine["red"].sum())
        assert f"{n_red:,} customer{'s' if n_red != 1 else ''} to call this week" in text, key


def test_regional_pdf_has_no_other_regions_customers(built):
    scores = pd.read_parquet(built / "data/processed/churn_scores.parquet")
    for key, aud in AUDIENCES.items():
        if aud["regions"] == "all":
            continue
        text = _pdf_text(built / "reports" / key / "report.pdf")
        others = scores[~scores["region"].isin(aud["regions"]) & scores["red"]]
        leaked = [cid for cid in others["customer_id"] if cid in text]
        assert not leaked, (key, leaked[:5])


def test_html_has_no_code_prompts_or_scripts(built):
    for key in AUDIENCES:
        html = (built / "reports" / key / "report.html").read_text()
        assert "<script" not in html.lower()
        assert "In&nbsp;[" not in html and "In [" not in html
        assert "config.from_namespace" not in html and "injected-parameters" not in html


def test_eml_carries_both_attachments_byte_identical(built):
    for key, aud in AUDIENCES.items():
        msg = email.message_from_bytes((built / "reports/outbox" / f"{key}.eml").read_bytes(), policy=policy.default)
        parts = {p.get_filename(): p.get_content() for p in msg.iter_attachments() if p.get_filename()}
        pdf = next(v for k, v in parts.items() if k.endswith(".pdf"))
        xlsx = next(v for k, v in parts.items() if k.endswith(".xlsx"))
        assert pdf == (built / "reports" / key / "report.pdf").read_bytes()
        assert xlsx == (built / "reports" / key / "report.xlsx").read_bytes()
        assert set(aud["to"]) <= {a.addr_spec for a in msg["To"].addresses}


def test_what_changed_adds_up_to_the_kpi_tiles_in_every_pack(built):
    """dvc repro writes the bridge and the movers; each pack carries its segments' share, whose steps add up
    to the change between the KPI tiles' revenue figures, to the cent."""
    from datastory import bridge, kpis, pack

    for key in AUDIENCES:
        p = pack.load(key, built)
        assert not p.bridge.empty and not p.movers.empty
        assert set(p.bridge["region"]) == set(p.kpis["region"]) == set(p.movers["region"])
        view = bridge.segment(p.bridge, p.headline_region)
        tile = kpis.latest_change(p.kpis, p.headline_region, p.provenance.period_end)["kpis"]["revenue"]
        assert view["period"] == kpis.latest_change(p.kpis, p.headline_region, p.provenance.period_end)["period"]
        assert (round(view["previous"] * 100), round(view["current"] * 100)) == \
            (round(tile["previous"] * 100), round(tile["value"] * 100))
        steps = sum(round(view["steps"][k] * 100) for k in bridge.STEPS)
        assert steps == round(view["current"] * 100) - round(view["previous"] * 100)


def test_an_experiment_compares_with_the_committed_baseline(built, tmp_path):
    """The README's analyst steps after a build: an experiment, then `dvc metrics diff` and `dvc exp show`
    load both the committed baseline and the experiment, in a table a person can read."""
    import csv
    import io
    import shutil

    root = tmp_path / "exp"
    shutil.copytree(built, root, symlinks=True)
    # this copy's sample is smaller than the repository's: its build becomes the baseline, as the README says
    sh(root, "git", "add", "dvc.lock", "metrics")
    sh(root, "git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "baseline", **GIT_DATES)
    sh(root, "dvc", "exp", "run", "-S", "params/forecast.yaml:horizon=26")
    diff = json.loads(sh(root, "dvc", "metrics", "diff", "--json").stdout)
    fc = diff.get("diff", diff)["metrics/forecast.json"]
    assert fc["mase"]["old"] is not None and fc["mase"]["new"] is not None, fc
    assert "DVC failed to load" not in sh(root, "dvc", "metrics", "diff").stderr
    for extra in ((), ("--only-changed",)):
        res = sh(root, "dvc", "exp", "show", "--csv", *extra)
        rows = list(csv.DictReader(io.StringIO(res.stdout)))
        assert "failed to load" not in res.stderr.lower(), res.stderr
        base = [r for r in rows if r["typ"] == "baseline" and r["rev"] != "workspace"]   # the commit
        exps = [r for r in rows if r["typ"] in ("branch_commit", "branch_base")]
        assert base and exps, rows
        assert base[0]["mase"] not in ("", "!") and exps[0]["mase"] not in ("", "!"), (base, exps)
        assert exps[0]["horizon"] == "26" and base[0]["horizon"] == "13"
        if extra:
            assert len(rows[0]) <= 60, f"{len(rows[0])} columns: {list(rows[0])}"
    # the README's command: what changed, without the hashes of the files passed between stages
    shown = sh(root, "dvc", "exp", "show", "--only-changed", "--drop", ".*/.*", COLUMNS="200").stdout
    assert "mase" in shown and "horizon" in shown
    assert max(len(line.rstrip()) for line in shown.splitlines()) <= 200, shown


def test_a_stage_that_fails_keeps_the_outputs_of_the_last_good_build(built, tmp_path):
    """DVC deletes a stage's outputs before running it unless they persist: with a bad file path, ingest stops
    with its clear message, and the transactions, KPIs, forecasts, packs and metrics stay those of the last
    good build. Only the sample stage, which did run, replaced its output (an empty placeholder for a CSV
    source). Back on the sample, one stage re-runs and the build is byte-identical to the one before."""
    import shutil

    from e2e import sha256s, stages_run

    root = tmp_path / "bad-path"
    shutil.copytree(built, root, symlinks=True)
    before = sha256s(root)
    params = root / "params/data.yaml"
    good = params.read_text()
    data = yaml.safe_load(good)
    data["source"], data["file"]["path"] = "csv", "data/raw/no-such-export.csv"
    params.write_text(yaml.safe_dump(data, sort_keys=False))
    res = sh(root, "dvc", "repro", check=False)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "data/raw/no-such-export.csv: file not found" in out and "fix:" in out and "Traceback" not in out
    after = sha256s(root)
    changed = {k for k in before if before[k] != after.get(k)}
    assert changed == {"data/raw/sample/transactions.parquet", "dvc.lock"}, changed
    params.write_text(good)
    again = sh(root, "dvc", "repro")
    assert stages_run(again.stdout) == ["sample"], again.stdout
    assert sha256s(root) == before
    assert "up to date" in sh(root, "dvc", "status").stdout
