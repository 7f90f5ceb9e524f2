"""Report HTML -> PDF with WeasyPrint: page size, running header/footer, page numbers, stable bytes.

The running header (title · audience) and footer (provenance) come from the HTML itself through
CSS named strings (`string-set` on the cover's elements, see templates/datastory_report/report.css),
so this module needs nothing but the HTML. Two renders of the same HTML give identical bytes:
the PDF /ID is a hash of the input, the creation/modification dates are the data period's end
(from <meta name="dcterms.created"> in the HTML), never the clock; fonts are subset-embedded.
The font subsetter (fontTools) stamps each embedded font's 'head' table with the current time
unless SOURCE_DATE_EPOCH is set, so it is set to that same date for the duration of the render.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any

from ..errors import DataError, ParamsError

PAGE_SIZES = ("A4", "Letter")

PAGE_CSS = """
@page {
  size: %(size)s;
  margin: 22mm 18mm 22mm 18mm;
  @top-left { content: string(doctitle) " \\00B7  " string(audience); font-family: "DejaVu Sans", sans-serif;
              font-size: 7.5pt; color: #555555; vertical-align: bottom; padding-bottom: 4mm; }
  @bottom-left { content: string(provenance); font-family: "DejaVu Sans", sans-serif; font-size: 6.5pt;
                 color: #777777; vertical-align: top; padding-top: 4mm; width: 75%%; }
  @bottom-right { content: "Page " counter(page) " of " counter(pages); font-family: "DejaVu Sans", sans-serif;
                  font-size: 7.5pt; color: #555555; vertical-align: top; padding-top: 4mm; }
}
@page :first { @top-left { content: none; } }
html { font-size: 9.5pt; }
"""


def check_page_size(page_size: str) -> str:
    """`page_size` when it is one WeasyPrint is set up for (A4, Letter); a ParamsError naming the key otherwise."""
    if page_size not in PAGE_SIZES:
        raise ParamsError(f"key 'page_size' has value {page_size!r}; allowed: {', '.join(PAGE_SIZES)}",
                          file="params/report.yaml", fix="set page_size to A4 or Letter")
    return page_size


def page_css(page_size: str) -> str:
    """The @page stylesheet for `page_size` ('A4' or 'Letter')."""
    return PAGE_CSS % {"size": check_page_size(page_size)}


def weasyprint() -> tuple[Any, Any, Any]:
    """WeasyPrint's CSS, HTML and URLFetcher. A heavy import (about 1.5 s): only when a PDF is made."""
    with warnings.catch_warnings():  # "HarfBuzz-Subset will be required": fontTools subsets meanwhile
        warnings.simplefilter("ignore", DeprecationWarning)
        from weasyprint import CSS, HTML
        from weasyprint.urls import URLFetcher
    return CSS, HTML, URLFetcher


def html_to_pdf(html: str, page_size: str = "A4", base_url: str | None = None) -> bytes:
    """Render report HTML to PDF bytes on `page_size` paper; deterministic for the same input."""
    css_text = page_css(page_size)
    if not isinstance(html, str) or not html.strip():
        raise DataError("html_to_pdf: the HTML is empty", fix="render the report notebook first (render.to_html)")
    CSS, HTML, URLFetcher = weasyprint()  # noqa: N806 (classes)
    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # its font/CSS chatter is not the reader's concern
    ident = hashlib.sha256(f"{page_size}\n{html}".encode()).hexdigest()[:32].encode("ascii")
    options: dict[str, Any] = {"pdf_identifier": ident, "uncompressed_pdf": False, "full_fonts": False,
                               "hinting": False, "optimize_images": False, "custom_metadata": False}
    with _source_date_epoch(_epoch(html)):
        doc = HTML(string=html, base_url=base_url or ".", url_fetcher=URLFetcher(allowed_protocols=["data"]))  # no requests
        return doc.write_pdf(stylesheets=[CSS(string=css_text)], **options)


def _epoch(html: str) -> int:
    """Seconds since 1970 of the document's dcterms.created date (0 when it has none)."""
    m = re.search(r'<meta[^>]*(?:name="dcterms.created"[^>]*content="(\d{4}-\d{2}-\d{2})"'
                  r'|content="(\d{4}-\d{2}-\d{2})"[^>]*name="dcterms.created")', html)
    if not m:
        return 0
    day = dt.date.fromisoformat(m.group(1) or m.group(2))
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


@contextlib.contextmanager
def _source_date_epoch(seconds: int) -> Iterator[None]:
    """Set SOURCE_DATE_EPOCH for the block, then restore what was there."""
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(seconds)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old

