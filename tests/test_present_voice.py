"""One voice: a value reads the same in the PDF, the workbook and the email, a regional pack speaks only
of its region, and the pages of the PDF and of the workbook really render.

Each format is built by its own renderer and read back by its own reader: the PDF through pdftotext, the
workbook through openpyxl, the email through the standard library's parser.
"""

from __future__ import annotations

import email
import email.policy
import io
import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import openpyxl
import pytest
from conftest import make_pack
from PIL import Image
from test_report_pdf import full_notebook as notebook  # what papermill leaves: one display per section

from datastory import config, workbook
from datastory.deliver import compose
from datastory.present import figures, story, words
from datastory.present.email import facts
from datastory.report import pdf, render

needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext") or not shutil.which("pdftoppm"),
                                   reason="poppler-utils (pdftotext, pdftoppm) not installed")




def squash(text: str) -> str:
    """Whitespace-free text: a PDF wraps lines where it likes, a spreadsheet not at all."""
    return "".join(text.split())


class Rendered:
    def __init__(self, audience: str):
        p = make_pack(audience)
        self.pack = p
        self.html = render.to_html(notebook(p))
        self.pdf = pdf.html_to_pdf(self.html, "A4")
        self.xlsx = workbook.build(p)
        aud = config.Audience(label=p.label, regions="all" if p.is_company else list(p.regions),
                              to=["reader@example.com"])
        msg = compose.compose(facts(p), self.pdf, self.xlsx, aud, config.DeliverParams(),
                              {"revenue": figures.revenue_by_period(p)})
        self.email = email.message_from_bytes(compose.to_bytes(msg), policy=email.policy.default)

    def pdf_text(self, tmp: Path) -> str:
        src = tmp / "report.pdf"
        src.write_bytes(self.pdf)
        return subprocess.run(["pdftotext", "-enc", "UTF-8", str(src), "-"], capture_output=True, text=True,
                              check=True).stdout

    def workbook_text(self) -> str:
        wb = openpyxl.load_workbook(io.BytesIO(self.xlsx))
        return "\n".join(str(v) for ws in wb for row in ws.iter_rows(values_only=True) for v in row
                         if v is not None)

    def email_text(self) -> tuple[str, str]:
        return (self.email.get_body(("plain",)).get_content(), self.email.get_body(("html",)).get_content())


@pytest.fixture(scope="module")
def executive() -> Rendered:
    return Rendered("executive")


@pytest.fixture(scope="module")
def north() -> Rendered:
    return Rendered("north")


@needs_poppler
@pytest.mark.parametrize("which", ["executive", "north"])
def test_same_headline_words_in_pdf_workbook_and_email(which, request, tmp_path):
    r: Rendered = request.getfixturevalue(which)
    headlines = story.executive_summary(r.pack)
    assert len(headlines) == 4
    pdf_text = squash(r.pdf_text(tmp_path))
    book = squash(r.workbook_text())
    plain, html = r.email_text()
    for sentence in headlines:  # revenue, return rate in points, forecast range, customers to call
        assert squash(sentence) in pdf_text, sentence
        assert squash(sentence) in book, sentence
        assert sentence in plain, sentence
        assert escape(sentence) in html, sentence


@needs_poppler
def test_one_amount_and_one_rate_read_identically_everywhere(executive, tmp_path):
    change = story.headline_change(executive.pack)
    revenue = words.fmt_money(change["kpis"]["revenue"]["value"])
    rate = words.kpi_move("return_rate", change["kpis"]["return_rate"])
    assert "pt" in rate and "%," not in rate.split("\u2192")[1].split(",")[1]  # points, never a relative %
    texts = {"pdf": executive.pdf_text(tmp_path), "workbook": executive.workbook_text(),
             **dict(zip(("email text", "email html"), executive.email_text(), strict=True))}
    for where, text in texts.items():
        assert f"Revenue was {revenue} EUR" in " ".join(text.split()), where
        assert squash(rate) in squash(text), where
    # and the KPI tables: the email's row is the report's tile, figure for figure
    for kpi in ("revenue", "return_rate"):
        now, prev, delta = words.kpi_figures(kpi, change["kpis"][kpi])
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", executive.email_text()[1])
        at = cells.index(words.KPI_LABELS[kpi])
        assert cells[at + 1:at + 4] == [now, prev, delta], kpi
        assert f'<div class="value">{escape(now)}</div><div class="delta">{escape(delta)} vs previous month' \
            in executive.html, kpi


def company_only_figures(company: Rendered, region: str) -> dict[str, str]:
    """Figures that describe the whole company, as the company pack writes them."""
    p = company.pack
    dq = p.data_quality
    others = sorted(set(p.regions) - {region})
    return {
        "rows read": f"Rows read {words.fmt_count(dq['rows_read'])}",
        "rows kept": f"Rows kept {words.fmt_count(dq['rows_kept'])}",
        "company customers": f"Customers {words.fmt_count(dq['n_customers'])}",
        "company revenue at risk": f"revenue at risk {words.fmt_money(story.revenue_at_risk(p.churn_scores))} EUR",
        "company name of the total": "Whole company",
        **{f"region {o}": o for o in others},
    }


@needs_poppler
def test_a_regional_pack_contains_no_company_only_figure(executive, north, tmp_path):
    leaks = company_only_figures(executive, "North")
    # the company pack does show them (so the check below could fail)
    company_text = " ".join((executive.pdf_text(tmp_path) + executive.workbook_text()).split())
    assert all(squash(v) in squash(company_text) for v in leaks.values()), leaks
    texts = {"pdf": north.pdf_text(tmp_path), "html": north.html, "workbook": north.workbook_text(),
             **dict(zip(("email text", "email html"), north.email_text(), strict=True))}
    for where, text in texts.items():
        flat = squash(text)
        for what, figure in leaks.items():
            assert squash(figure) not in flat, f"{where} shows the company's {what}: {figure!r}"
    # the region's own counts are there instead
    own = story.quality_rows(north.pack)
    assert own[0][0].startswith("Orders (North") and own[0][1] == int(north.pack.kpis["orders"].sum())
    assert squash(f"revenue at risk {words.fmt_money(story.revenue_at_risk(north.pack.churn_scores))} EUR") in \
        squash(texts["pdf"])
    wb = openpyxl.load_workbook(io.BytesIO(north.xlsx))
    churn_rate = next(r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0] == "Churn rate")
    assert churn_rate == pytest.approx(north.pack.churn_scores["probability"].mean())
    assert churn_rate != pytest.approx(executive.pack.churn_scores["probability"].mean())
    about = [str(v) for row in wb["About"].iter_rows(values_only=True) for v in row if v is not None]
    assert not any(v.startswith("{") or "': " in v for v in about)  # no Python dicts
    assert "false" not in about and "true" not in about  # yes / no, as a reader writes it


def non_blank(png: Path) -> bool:
    with Image.open(png) as im:
        lo, hi = im.convert("L").getextrema()
        return lo < 128 and hi > 200


@needs_poppler
def test_pdf_pages_render(north, tmp_path):
    src = tmp_path / "report.pdf"
    src.write_bytes(north.pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "30", str(src), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    info = subprocess.run(["pdfinfo", str(src)], capture_output=True, text=True, check=True).stdout
    n = int(next(x for x in info.splitlines() if x.startswith("Pages:")).split()[1])
    assert len(pages) == n >= 3 and all(non_blank(p) for p in pages)


@needs_poppler
@pytest.mark.skipif(not shutil.which("soffice"), reason="LibreOffice not installed")
@pytest.mark.slow
def test_workbook_pages_render_through_libreoffice(north, tmp_path):
    src = tmp_path / "report.xlsx"
    src.write_bytes(north.xlsx)
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), str(src)], check=True, capture_output=True, timeout=180, env=env)
    out = tmp_path / "report.pdf"
    subprocess.run(["pdftoppm", "-png", "-r", "30", "-l", str(len(workbook.SHEETS)), str(out), str(tmp_path / "sheet")], check=True)
    pages = sorted(tmp_path.glob("sheet-*.png"))
    assert len(pages) >= len(workbook.SHEETS) and all(non_blank(p) for p in pages)
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    for title in ("Headlines", "What changed", "Series", "Accuracy per segment", "Data quality", "About this workbook"):
        assert title in text, title
