"""HTML -> PDF: sections, numbers and hostile text in the PDF, page size, running header/footer, stable bytes."""

from __future__ import annotations

import io

import nbformat
import pytest
from conftest import HOSTILE, make_pack
from pypdf import PdfReader

from datastory.errors import DataError, ParamsError
from datastory.present import story, words
from datastory.report import pdf, render, sections

TINY = ('<html><head><meta name="dcterms.created" content="2025-05-31"></head>'
        "<body><h1>T</h1><p>hello</p></body></html>")


def full_notebook(p) -> nbformat.NotebookNode:
    """What papermill leaves behind: one code cell per section, each with its HTML display output."""
    cells = []
    for fn in sections.ALL_SECTIONS:
        cell = nbformat.v4.new_code_cell(f"HTML(sections.{fn.__name__}(p))")
        cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": fn(p)})]
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


@pytest.fixture(scope="module")
def hostile_report() -> tuple:
    p = make_pack(hostile=HOSTILE)
    html = render.to_html(full_notebook(p))
    return p, html, pdf.html_to_pdf(html, "A4")


def _text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_pdf_has_sections_numbers_and_hostile_text(hostile_report):
    p, _, data = hostile_report
    text = _text(data)
    for heading in ("Executive summary", "Key figures: May 2025", "Revenue forecast", "Customers at risk",
                    "Data quality and method"):
        assert heading in text
    ch = story.headline_change(p)
    assert words.fmt_money(ch["kpis"]["revenue"]["value"]) in text
    squashed = "".join(text.split())
    assert "".join(HOSTILE.split()) in squashed  # the <script> is literal text in the PDF


def test_pdf_running_header_footer_and_page_numbers(hostile_report):
    p, _, data = hostile_report
    reader = PdfReader(io.BytesIO(data))
    n = len(reader.pages)
    assert n >= 2
    second = reader.pages[1].extract_text()
    assert f"Page 2 of {n}" in second
    assert f"{p.title} · {p.label}" in second
    assert p.provenance.footer() in second
    assert "Page 1 of" in reader.pages[0].extract_text()


def test_pdf_bookmarks_and_fixed_metadata(hostile_report):
    _, _, data = hostile_report
    reader = PdfReader(io.BytesIO(data))
    top = reader.outline
    assert top[0]["/Title"] == "Customer & Revenue Review"
    assert [b["/Title"] for b in top[1]][:2] == ["Executive summary", "Key figures: May 2025"]
    meta = reader.metadata
    assert meta["/CreationDate"] == "D:20250531" and meta["/ModDate"] == "D:20250531"
    assert meta["/Title"] == "Customer & Revenue Review"


def test_pdf_is_byte_identical_on_rerender(hostile_report):
    _, html, data = hostile_report
    assert pdf.html_to_pdf(html, "A4") == data


def test_page_size_changes_media_box():
    a4 = PdfReader(io.BytesIO(pdf.html_to_pdf(TINY, "A4"))).pages[0].mediabox
    letter = PdfReader(io.BytesIO(pdf.html_to_pdf(TINY, "Letter"))).pages[0].mediabox
    assert (round(float(a4.width)), round(float(a4.height))) == (595, 842)
    assert (round(float(letter.width)), round(float(letter.height))) == (612, 792)


def test_fonts_are_embedded():
    reader = PdfReader(io.BytesIO(pdf.html_to_pdf(TINY, "A4")))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    descs = [f.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"] for f in fonts.values()]
    assert descs and all("/FontFile2" in d or "/FontFile3" in d for d in descs)


def test_source_date_epoch_is_restored(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "123")
    pdf.html_to_pdf(TINY, "A4")
    import os
    assert os.environ["SOURCE_DATE_EPOCH"] == "123"


def test_unknown_page_size_is_a_params_error():
    with pytest.raises(ParamsError, match="page_size.*'A5'.*A4, Letter"):
        pdf.html_to_pdf(TINY, "A5")


def test_empty_html_is_a_clear_error():
    with pytest.raises(DataError, match="the HTML is empty"):
        pdf.html_to_pdf("  ", "A4")


def test_pdf_makes_no_external_requests():
    import socket
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    html = (f'<html><body><img src="http://127.0.0.1:{port}/x.png" alt="x">'
            f'<link rel="stylesheet" href="http://127.0.0.1:{port}/x.css"><p>hi</p></body></html>')
    try:
        assert pdf.html_to_pdf(html, "A4").startswith(b"%PDF-")
        with pytest.raises(TimeoutError):
            server.accept()  # nobody connected
    finally:
        server.close()
