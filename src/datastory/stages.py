"""The I/O edges that DVC stages call: one function per stage.

Analysis stages run their notebook through `runner.execute`. The report stage turns the executed
report notebook into HTML and PDF, builds the workbook and the dashboard, takes the email's chart from the
report and its words from the pack, and writes all six only when all six were built. Delivery composes the email
from those files and sends it.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import config, io, runner
from .errors import DataError, DatastoryError

log = logging.getLogger(__name__)


def sample(root: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """The sample stage: write the seeded sample company to data/raw/ when `source` is sample, else an empty
    placeholder; the path and whether the company was generated."""
    from . import sample as sample_mod

    return sample_mod.run(root), config.load("data", root).source == "sample"


def invoice_log(out: str | os.PathLike, root: str | os.PathLike | None = None,
                sample_path: Path | None = None) -> Path:
    """Write the sample company as a retail invoice-line CSV (the README's worked example): read from
    `sample_path` when the sample stage just wrote it, else generated from params/data.yaml's `sample:`."""
    from . import invoicelog
    from . import sample as sample_mod

    tx = io.read_parquet(sample_path) if sample_path is not None else sample_mod.generate(config.load("data", root).sample)
    return invoicelog.write_csv(invoicelog.from_transactions(tx), out)


def check_data(root: str | os.PathLike | None = None) -> tuple[list[str], DataError | None]:
    """Validate the configured source with the current params and judge what it supports. Writes nothing.

    Returns the summary lines (ending with the verdict) and, when the data cannot run the whole pipeline,
    the error `datastory check-data` exits with. A CSV file the ingest stage would stream is checked by the same
    streaming pass (`ingest_stream.check`: bounded memory, its temp files removed); any other source in memory."""
    from . import ingest, ingest_stream, profile, quality, streaming, verdict

    cfg = config.load("data", root)
    fc = config.load("forecast", root)
    churn = config.load("churn", root)
    if streaming.streams(cfg, root):
        checked = ingest_stream.check(cfg, root)
        q, kept, name = checked.quality, checked.kept, checked.source_name
    else:
        raw = ingest.read_source(cfg, config.paths(root), root)
        result = ingest.prepare(raw, cfg)
        q, kept, name = result.quality, profile.of(result.tx), raw.name
        del raw, result
    judged = verdict.judge(kept, fc, churn)
    return [*quality.summary(q, kept, name), *judged.lines()], judged.error(name)


def notebook(stage: str, root: str | os.PathLike | None = None) -> Path:
    """Run one analysis notebook (ingest, kpis, forecast, churn)."""
    if stage == "report":
        raise runner.StageError("the report stage needs an audience: use `datastory report --audience NAME`")
    return runner.execute(stage, root)


def report(audience: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Build reports/<audience>/report.html, report.pdf, report.xlsx, dashboard.html, and the email's chart and words
    (revenue.png, email.json) that the deliver stage composes the message from.

    The notebook runs in its kernel (another process) while this one loads the pack, builds the workbook and the
    dashboard, which need only the pack, and imports the HTML and PDF renderers: on two cores the kernel's start,
    imports and figures cost no extra wall time. The kernel starts first, once the audience is known to be one
    of params/report.yaml's, so its start overlaps this process's imports. The HTML and PDF come from the
    executed notebook, after it.
    """
    base = config.project_root(root)
    rep = config.load("report", base)
    rep.audience(audience)  # an unknown audience stops before a kernel starts
    with ThreadPoolExecutor(1, thread_name_prefix="report-notebook") as pool:
        notebook_run = pool.submit(runner.execute, "report", base, extra={"audience": audience}, suffix=audience)
        from . import dashboard, pack, workbook
        from . import report as report_mod
        from .present import email

        try:
            p = pack.load(audience, base, rep)
        except DatastoryError:
            notebook_run.exception()  # the notebook loads the same pack and stops on the same input: wait for it
            raise  # this message is the one that names the file and the fix
        try:
            facts = email.facts(p)   # the email's words: the deliver stage composes the message from them
            with runner.timed("report", "workbook", audience):
                xlsx = workbook.build(p, params=config.pack_params(audience, base, rep))
            with runner.timed("report", "dashboard", audience):
                board = dashboard.build(p, dashboard.page.bundle(base / dashboard.page.BUNDLE_CACHE))
            report_mod.prepare()
        except Exception:
            first = notebook_run.exception()  # waits for the notebook: its failure, if any, is the one to report
            if first is not None:
                raise first from None
            raise
        executed = notebook_run.result()
    with runner.timed("report", "html+pdf", audience), frozen():
        html, pdf = report_mod.build(executed, rep.page_size)
    chart = report_mod.email_chart(html)   # the report's revenue chart: the deliver stage inlines it
    if not chart:
        log.warning("no revenue chart in the %s email: its report shows no key figures", audience)
    paths = config.paths(base)
    outs = [paths.report(audience, "html"), paths.report(audience, "pdf"), paths.report(audience, "xlsx"),
            paths.dashboard(audience), paths.email_chart(audience), paths.email_facts(audience)]
    io.write_text(html, outs[0])
    io.write_bytes(pdf, outs[1])
    io.write_bytes(xlsx, outs[2])
    io.write_text(board, outs[3])
    io.write_bytes(chart, outs[4])
    io.write_json(facts, outs[5])
    return outs


@contextlib.contextmanager
def frozen() -> Iterator[None]:
    """Run the block with every object that exists now left out of the cyclic collector's walks (gc.freeze), and
    put them back after it (gc.unfreeze). WeasyPrint makes objects by the hundred thousand, so the collector runs
    often while a PDF is laid out, and each oldest-generation pass would walk the modules, the pack and the
    executed notebook again: about a quarter of a report's HTML and PDF time."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def deliver(audience: str, root: str | os.PathLike | None = None, force: bool = False, *,
            resend: bool = False, mark_sent: bool = False):
    """Compose the audience's email (always written to the outbox) and send it when enabled."""
    from . import deliver as deliver_mod

    return deliver_mod.run(audience, root, force=force, resend=resend, mark_sent=mark_sent)
