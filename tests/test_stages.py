"""The stage edges the command line calls: `datastory check-data` on real shapes of logs (verdict, exit status,
nothing written), and the sample stage with another source (no company, an empty placeholder)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import shapes
import yaml
from conftest import tiny_frames, write_artifacts

from datastory import cli, config, dashboard, io, pack, runner, sample, stages, workbook
from datastory import report as report_mod
from datastory.errors import DataError, ParamsError
from datastory.present import email, figures

REPO = Path(__file__).resolve().parents[1]


def set_data(root: Path, **over) -> None:
    """params/data.yaml with `over` merged in (mappings key by key; `columns` replaced whole)."""
    path = root / "params" / "data.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in over.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key != "columns" else value
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def write_log(root: Path, log: pd.DataFrame, name: str) -> str:
    rel = f"data/raw/{name}"
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    log.to_csv(root / rel, index=False, lineterminator="\n")
    return rel


def invoice_project(root: Path, log: pd.DataFrame, **over) -> Path:
    rel = write_log(root, log, "invoices.csv")
    set_data(root, source="csv", file={"path": rel}, columns=shapes.INVOICE_MAPPING,
             rules={**shapes.INVOICE_RULES, "max_timestamp": "2030-01-01"}, **over)
    return root


def files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def check(root: Path, capsys) -> tuple[int, str, str]:
    before = files(root)
    status = cli.main(["--root", str(root), "check-data"])
    out, err = capsys.readouterr()
    assert files(root) == before, "check-data writes nothing"
    assert "Traceback" not in out + err
    return status, out, err


# ---------------------------------------------------------------- check-data
def test_a_real_invoice_log_is_usable(project, capsys):
    status, out, err = check(invoice_project(project, shapes.invoice_log()), capsys)
    assert status == 0, err
    assert "\nforecast      103 weeks (about 2 years) of full weeks" in out
    assert "\nchurn         validation cutoff " in out
    assert "warning: 2 countries are not in rules.country_regions and go to the region Other: " in out
    assert "non-product line" in out and "rejected      0 (0.0%)" in out
    assert out.endswith("\nverdict       usable\n") and err == ""


def test_the_readme_example_without_an_order_id_is_usable(project, capsys):
    """The README's block for a log without order ids, on a generated log of that shape (a CD retailer's)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = yaml.safe_load(text.split("<!-- no-order-id-example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0])
    assert block["columns"]["order_id"] == ""
    write_log(project, shapes.purchase_log(), Path(block["file"]["path"]).name)
    set_data(project, **{**block, "rules": {**block["rules"], "max_timestamp": "2030-01-01"}})
    status, out, err = check(project, capsys)
    assert status == 0, err
    assert "\norders        one per customer and timestamp (no order id column)\n" in out
    assert "segments      1: Company" in out and out.endswith("verdict       usable\n")


@pytest.mark.parametrize(("shape", "reason"), [
    ("one line", "forecast: 0 full weeks of history, and the forecast needs at least 3"),
    ("returns only", "no sales: all "),
    ("six weeks", "days of history, and churn needs more than 270: window_days=90 twice"),
])
def test_what_cannot_run_is_refused_with_its_reason(project, capsys, shape, reason):
    log = shapes.invoice_log()
    sales = log[log["StockCode"].isin([c for c, _, _ in shapes.CATALOGUE]) & log["CustomerID"].ne("")]
    if shape == "one line":
        log = sales.iloc[:1]
    elif shape == "returns only":   # every invoice cancelled: all returns
        log = sales.assign(InvoiceNo="C" + sales["InvoiceNo"].str.lstrip("C"))
    else:
        log = sales[pd.to_datetime(sales["InvoiceDate"], format="%m/%d/%Y %H:%M") < "2024-01-11"]
    status, out, err = check(invoice_project(project, log), capsys)
    assert status == 2
    assert "rows read     " in out   # the summary is printed first: what the data holds
    verdict = out.splitlines()[-1]
    assert verdict.startswith("verdict       unusable: ") and reason in verdict, verdict
    assert err.startswith("datastory: error: data/raw/invoices.csv: the data cannot run the whole pipeline: ")
    assert reason in err and "\n  fix: " in err


def test_a_nul_in_a_customer_id_is_a_bad_value_not_a_usable_file(project, capsys):
    log = shapes.invoice_log()
    at = log.index[log["CustomerID"].ne("")][[10, 400]]
    log.loc[at, "CustomerID"] = [f"{c[:3]}\x00{c[3:]}" for c in log.loc[at, "CustomerID"]]   # (numpy drops NULs)
    status, out, err = check(invoice_project(project, log), capsys)
    assert status == 2 and "verdict" not in out
    assert f"data/raw/invoices.csv, row {at[0] + 2}, column 'CustomerID': customer id holds a control character" in err
    assert "2 row(s) have this problem" in err and "\\x00" in err and "\x00" not in err
    status, out, err = check(invoice_project(project, log, on_bad_rows="quarantine"), capsys)
    assert status == 0, err
    assert "  customer id holds a control character: 2" in out and out.endswith("verdict       usable\n")


# ---------------------------------------------------------------- the sample stage
def test_sample_stage_generates_nothing_for_another_source(project, capsys):
    set_data(project, source="csv")
    assert cli.main(["--root", str(project), "sample"]) == 0
    out = capsys.readouterr().out
    assert "source is csv: the sample company is not generated" in out
    written = config.paths(project).sample
    first = written.read_bytes()
    placeholder = io.read_parquet(written)
    assert placeholder.empty and list(placeholder.columns) == sample.RAW_COLUMNS
    assert stages.sample(project)[1] is False and written.read_bytes() == first   # the same bytes every run
    # switched back to the sample without running the stage: a clear message, not "no data rows"
    set_data(project, source="sample")
    status = cli.main(["--root", str(project), "check-data"])
    err = capsys.readouterr().err
    assert status == 2 and "the sample company has not been generated" in err and "datastory sample" in err
    path, generated = stages.sample(project)
    assert generated and len(io.read_parquet(path)) > 0


def test_invoice_log_of_the_sample_whatever_the_source(project, capsys):
    set_data(project, source="csv", sample={"n_customers": 60})
    assert cli.main(["--root", str(project), "sample", "--invoice-log", str(project / "inv.csv")]) == 0
    log = pd.read_csv(project / "inv.csv", dtype=str)
    assert len(log) > 100 and list(log.columns)[:2] == ["InvoiceNo", "StockCode"]
    assert io.read_parquet(config.paths(project).sample).empty
    set_data(project, source="sample")
    path, _ = stages.sample(project)
    assert stages.invoice_log(project / "b.csv", project, path).read_bytes() == (project / "inv.csv").read_bytes()


def test_check_data_without_a_source_is_an_error(project):
    set_data(project, source="csv", file={"path": "data/raw/none.csv"})
    with pytest.raises(DataError, match="file not found"):
        stages.check_data(project)


def report_project(root: Path, monkeypatch, notebook_raises: str | None = None) -> Path:
    """A project with the earlier stages' artifacts and the notebooks (the report notebook failing if asked)."""
    monkeypatch.delenv("DATASTORY_ROOT", raising=False)
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    write_artifacts(root, tiny_frames())
    if notebook_raises:
        nb_path = root / "notebooks" / "05_report.ipynb"
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "fails", "metadata": {},
                            "outputs": [], "source": [f"raise RuntimeError({notebook_raises!r})"]})
        nb_path.write_text(json.dumps(nb), encoding="utf-8")
    return root


@pytest.mark.slow
def test_report_stage_writes_what_its_renderers_make_one_after_the_other(project, monkeypatch):
    """The notebook runs while the workbook and dashboard are built: the files are still exactly those of the
    renderers run in turn on the same executed notebook and pack."""
    report_project(project, monkeypatch)
    outs = stages.report("north", project)
    assert [o.name for o in outs] == ["report.html", "report.pdf", "report.xlsx", "dashboard.html", "revenue.png",
                                      "email.json"]
    rep = config.load("report", project)
    p = pack.load("north", project, rep)
    html, pdf = report_mod.build(runner.executed_path("report", project, "north"), rep.page_size)
    assert outs[0].read_text(encoding="utf-8") == html and outs[1].read_bytes() == pdf
    assert outs[2].read_bytes() == workbook.build(p, params=config.pack_params("north", project, rep))
    assert outs[3].read_text(encoding="utf-8") == dashboard.build(p)
    assert outs[4].read_bytes() == figures.revenue_by_period(p)   # the chart the deliver stage inlines
    assert io.read_json(outs[5]) == email.facts(p)                 # the words it composes the email from
    assert list((project / dashboard.page.BUNDLE_CACHE).iterdir())  # the next audience reads the bundle


@pytest.mark.slow
def test_report_stage_reports_the_notebooks_failure_first_and_writes_nothing(project, monkeypatch):
    report_project(project, monkeypatch, notebook_raises="the notebook broke")

    def broken(*_a, **_k):
        raise DataError("the workbook broke")

    monkeypatch.setattr(workbook, "build", broken)
    with pytest.raises(runner.StageError, match="the notebook broke"):
        stages.report("north", project)
    assert not (project / "reports" / "north").exists()


@pytest.mark.slow
def test_report_stage_waits_for_the_notebook_then_reports_a_renderers_failure(project, monkeypatch):
    report_project(project, monkeypatch)

    def broken(*_a, **_k):
        raise DataError("the workbook broke")

    monkeypatch.setattr(workbook, "build", broken)
    with pytest.raises(DataError, match="the workbook broke"):
        stages.report("north", project)
    assert runner.executed_path("report", project, "north").is_file()  # the notebook ran to its end
    assert not (project / "reports" / "north").exists()


@pytest.mark.slow
def test_report_stage_refuses_an_audience_the_pack_cannot_have_with_the_packs_message(project, monkeypatch):
    """The kernel starts before the pack loads; a region the data lacks still gets pack.load's own message
    (file and fix), after the notebook stopped on the same input, and nothing is written."""
    report_project(project, monkeypatch)
    path = project / "params" / "report.yaml"
    rep = yaml.safe_load(path.read_text(encoding="utf-8"))
    rep["audiences"]["north"]["regions"] = ["Atlantis"]
    path.write_text(yaml.safe_dump(rep, sort_keys=False), encoding="utf-8")
    with pytest.raises(ParamsError, match="Atlantis") as err:
        stages.report("north", project)
    assert err.value.file == "params/report.yaml"
    assert not runner.executed_path("report", project, "north").exists()
    assert not (project / "reports" / "north").exists()
    with pytest.raises(ParamsError, match="unknown audience 'nowhere'"):
        stages.report("nowhere", project)


def test_frozen_leaves_the_objects_of_before_out_of_the_collector_for_the_block_only():
    import gc

    before = gc.get_freeze_count()
    with stages.frozen():
        assert gc.get_freeze_count() > before and gc.isenabled()
        made = [[] for _ in range(10)]   # objects made in the block are collected as usual
        assert gc.is_tracked(made)
    assert gc.get_freeze_count() == before
    with pytest.raises(RuntimeError, match="inside"), stages.frozen():
        raise RuntimeError("inside")
    assert gc.get_freeze_count() == before
