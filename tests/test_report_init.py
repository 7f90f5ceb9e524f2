"""report.build: an executed 05_report notebook in, (html, pdf) out; real PDFs read back."""

from __future__ import annotations

import dataclasses
import io as _io
import json
import shutil

import nbformat
import pytest
from conftest import REPO, make_pack, tiny_frames, write_artifacts
from pypdf import PdfReader

from datastory import config, report, runner
from datastory.errors import DataError, ParamsError
from datastory.present import figures, words
from datastory.report import sections
from datastory.report.render import to_html as render_html


def full_notebook(p, fns=(sections.cover, sections.summary, sections.footer)) -> nbformat.NotebookNode:
    """Code cells with their HTML display outputs, as papermill leaves them (default: no figures, fast)."""
    cells = []
    for fn in fns:
        cell = nbformat.v4.new_code_cell(f"HTML(sections.{fn.__name__}(p))")
        cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": fn(p)})]
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(_io.BytesIO(pdf)).pages)


@pytest.fixture(scope="module")
def built():
    nb = full_notebook(make_pack())
    return nb, report.build(nb, "Letter")


def test_build_returns_html_and_pdf_on_the_page_size(built):
    _, (html, pdf) = built
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html.lower()
    box = PdfReader(_io.BytesIO(pdf)).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (612, 792)
    assert "Executive summary" in _pdf_text(pdf)


def test_prepare_changes_nothing_that_build_makes(built):
    """prepare() renders an empty notebook to load the templates; the next build is the same, byte for byte."""
    nb, made = built
    report.prepare()
    assert report.build(nb, "Letter") == made


def test_build_rejects_unknown_page_size(built):
    nb, _ = built
    with pytest.raises(ParamsError, match="page_size.*'A5'"):
        report.build(nb, "A5")


def test_build_missing_notebook_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="executed report notebook not found"):
        report.build(tmp_path / "nope.ipynb", "A4")


def test_build_renders_with_too_few_complete_periods():
    p = make_pack()
    short = dataclasses.replace(p, provenance=dataclasses.replace(p.provenance, period_end="2025-02-27"))
    html, pdf = report.build(full_notebook(short, (sections.cover, sections.summary, sections.kpi_tiles)), "A4")
    assert words.NO_EARLIER_PERIOD in html
    squashed = "".join(_pdf_text(pdf).split())
    assert "".join(words.NO_EARLIER_PERIOD.split()) in squashed


def test_the_emails_chart_is_the_reports_revenue_chart_or_none():
    """The revenue chart of the key figures comes back byte for byte from the rendered HTML; not the figure
    of another section, and nothing from a report without key figures."""
    p = make_pack()
    html = render_html(full_notebook(p, (sections.cover, sections.what_changed, sections.kpi_tiles,
                                         sections.forecasts)))
    chart = report.email_chart(html)
    assert chart.startswith(b"\x89PNG") and chart == figures.revenue_by_period(p)
    assert report.email_chart(render_html(full_notebook(p, (sections.cover, sections.forecasts)))) == b""
    bare = dataclasses.replace(p, kpis=p.kpis.iloc[:0])   # "No KPI data for this audience"
    assert report.email_chart(render_html(full_notebook(bare, (sections.kpi_tiles, sections.forecasts)))) == b""


@pytest.mark.slow
def test_runner_executes_05_report_and_build_renders_it(project, monkeypatch):
    import time

    monkeypatch.delenv("DATASTORY_ROOT", raising=False)
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    write_artifacts(project, tiny_frames())
    t0 = time.perf_counter()
    executed = runner.execute("report", project, extra={"audience": "north"}, suffix="north")
    t1 = time.perf_counter()
    html, pdf = report.build(executed, config.load("report", project).page_size)
    t2 = time.perf_counter()
    print(f"05_report north: notebook {t1 - t0:.1f}s, render {t2 - t1:.1f}s")
    assert executed == runner.executed_path("report", project, "north") and executed.is_file()
    assert "North sales" in html and "Delta BV" not in html  # north sees only its customers
    assert "pack.load" not in html and "north.manager@example.com" not in html
    text = _pdf_text(pdf)
    assert "Customers at risk" in text and "Page 1 of" in text
    # re-rendering the same executed notebook gives the same bytes
    assert report.build(executed, "A4") == (html, pdf)
    nb = nbformat.read(executed, as_version=4)
    assert nb.metadata["papermill"]["parameters"]["audience"] == "north"
    assert json.dumps(nb.metadata["papermill"]) not in html


def test_the_notebooks_sections_import_neither_nbconvert_nor_weasyprint():
    """The report kernel imports `report.sections` per audience; the renderers load only when `build` runs."""
    import subprocess
    import sys

    code = ("import sys; from datastory.report import sections; import datastory.report as r; "
            "before = sorted(m for m in ('nbconvert', 'weasyprint', 'nbformat') if m in sys.modules); "
            "r.to_html, r.html_to_pdf; "
            "after = sorted(m for m in ('nbconvert', 'datastory.report.pdf') if m in sys.modules); print(before, after)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] ['datastory.report.pdf', 'nbconvert']"
    with pytest.raises(AttributeError):
        report.no_such_renderer  # noqa: B018
