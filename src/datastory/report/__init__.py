"""The HTML and PDF report of one audience, built from the executed notebooks/05_report.ipynb.

The notebook displays the sections (datastory.report.sections) cell by cell; its *outputs*
become the HTML (render.to_html, nbconvert + the project template) and WeasyPrint turns that
HTML into the PDF (pdf.html_to_pdf). `build` is pure (notebook in, bytes out). The I/O edge is
`datastory.stages.report`, which executes the notebook with `runner.execute`, calls `build` and
writes the HTML, PDF and workbook together.
"""

from __future__ import annotations

import base64
import re
from typing import Any

__all__ = ["build", "email_chart", "html_to_pdf", "prepare", "to_html"]
# the first image of the key-figures section (sections.kpi_tiles): the revenue chart
_KPI_CHART = re.compile(r'<section class="kpis">(?:(?!</section>).)*?<img\b[^>]*\ssrc="data:image/png;base64,'
                        r'([A-Za-z0-9+/=]+)"', re.S)


def __getattr__(name: str) -> Any:
    """`to_html` and `html_to_pdf` on first use: the report notebook's kernel imports `report.sections`, and
    nbconvert (with nbformat and jsonschema) and WeasyPrint would add about 2 s to every audience's kernel."""
    if name == "to_html":
        from .render import to_html

        return to_html
    if name == "html_to_pdf":
        from .pdf import html_to_pdf

        return html_to_pdf
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def prepare() -> None:
    """Import the HTML and PDF renderers (nbconvert, WeasyPrint: about 2 s) ahead of `build`, e.g. while the
    notebook runs in its kernel, and render an empty notebook once: nbconvert's first page loads and compiles its
    templates (about 0.15 s that `build` then saves)."""
    import nbformat

    from . import pdf
    from .render import to_html

    pdf.weasyprint()
    to_html(nbformat.v4.new_notebook())


def build(executed_nb: Any, pack_page_size: str) -> tuple[str, bytes]:
    """(html, pdf_bytes) of an executed 05_report notebook (node or path) on `pack_page_size` paper."""
    from .pdf import check_page_size, html_to_pdf
    from .render import to_html

    check_page_size(pack_page_size)  # fail before the (slower) rendering
    html = to_html(executed_nb)
    return html, html_to_pdf(html, pack_page_size)


def email_chart(html: str) -> bytes:
    """The revenue chart of a report's key figures (sections.kpi_tiles) as PNG bytes, for the email to show
    inline: the picture the notebook drew, not drawn a second time. Empty when the report shows none."""
    found = _KPI_CHART.search(html)
    return base64.b64decode(found.group(1)) if found else b""
