"""The I/O edges that DVC stages call: one function per stage.

Analysis stages run their notebook through `runner.execute`. The report stage turns the executed
report notebook into HTML and PDF and builds the workbook, and writes all three only when all
three were built. Delivery composes the email from the finished pack.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import config, io, runner


def sample(root: str | os.PathLike | None = None) -> Path:
    """Write the seeded sample company to data/raw/."""
    from . import sample as sample_mod

    return sample_mod.run(root)


def invoice_log(sample_path: Path, out: str | os.PathLike) -> Path:
    """Write the sample company as a retail invoice-line CSV (the README's worked example)."""
    from . import invoicelog

    return invoicelog.write_csv(invoicelog.from_transactions(io.read_parquet(sample_path)), out)


def check_data(root: str | os.PathLike | None = None) -> list[str]:
    """Validate the configured source with the current params; the summary lines. Writes nothing."""
    from . import ingest, quality
    from .forecast.history import outlook

    cfg = config.load("data", root)
    fc = config.load("forecast", root)
    raw = ingest.read_source(cfg, config.paths(root), root)
    result = ingest.prepare(raw, cfg)
    ts = result.tx["timestamp"]
    forecast = f"forecast      {outlook(ts.min(), ts.max(), fc.freq, fc.horizon, fc.folds)}" if len(ts) else (
        "forecast      no transactions: nothing to forecast")
    return [*quality.summary(result.quality, result.tx, raw.name), forecast, "verdict       usable"]


def notebook(stage: str, root: str | os.PathLike | None = None) -> Path:
    """Run one analysis notebook (ingest, kpis, forecast, churn)."""
    if stage == "report":
        raise runner.StageError("the report stage needs an audience: use `datastory report --audience NAME`")
    return runner.execute(stage, root)


def report(audience: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Build reports/<audience>/report.html, report.pdf and report.xlsx."""
    from . import pack, workbook
    from . import report as report_mod

    base = config.project_root(root)
    rep = config.load("report", base)
    p = pack.load(audience, base, rep)  # validates the audience before a kernel starts
    executed = runner.execute("report", base, extra={"audience": audience}, suffix=audience)
    html, pdf = report_mod.build(executed, rep.page_size)
    xlsx = workbook.build(p, params=config.pack_params(audience, base, rep))
    paths = config.paths(base)
    outs = [paths.report(audience, "html"), paths.report(audience, "pdf"), paths.report(audience, "xlsx")]
    io.write_text(html, outs[0])
    io.write_bytes(pdf, outs[1])
    io.write_bytes(xlsx, outs[2])
    return outs


def deliver(audience: str, root: str | os.PathLike | None = None, force: bool = False):
    """Compose the audience's email (always written to the outbox) and send it when enabled."""
    from . import deliver as deliver_mod

    return deliver_mod.run(audience, root, force=force)
