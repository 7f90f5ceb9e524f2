"""The stage edges the command line calls: the sample stage with another source (no company, an empty
placeholder)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from datastory import cli, config, io, sample, stages

REPO = Path(__file__).resolve().parents[1]


def set_data(root: Path, **over) -> None:
    """params/data.yaml with `over` merged in (mappings key by key; `columns` replaced whole)."""
    path = root / "params" / "data.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in over.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key != "columns" else value
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


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
