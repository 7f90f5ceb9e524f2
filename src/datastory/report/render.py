"""Executed notebook -> one self-contained HTML page, with nbconvert and the project's template.

Only a reader's content survives: display outputs of type text/html, text/markdown (rendered)
and image/png. Input cells, prompts, parameter cells, stdout/stderr, errors, markdown cells and
notebook metadata (papermill's included) are dropped before the template sees the notebook, and
every HTML fragment is passed through a whitelist sanitiser (no <script>, no on* handlers, no
external URLs). The template inlines its CSS and uses system fonts, so the page makes no requests.
"""

from __future__ import annotations

import copy
import os
import re
from html import escape, unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter

from ..errors import DataError

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"
TEMPLATE_NAME = "datastory_report"
KEEP_MIME = ("text/html", "text/markdown", "image/png")
DROP_TAGS = {"parameters", "injected-parameters", "remove", "hide"}

ALLOWED_TAGS = {
    "section", "article", "header", "footer", "main", "div", "span", "p", "h1", "h2", "h3", "h4", "h5", "h6",
    "ul", "ol", "li", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
    "colgroup", "col", "figure", "figcaption", "img", "strong", "em", "b", "i", "u", "small", "br", "hr",
    "code", "pre", "blockquote", "a", "sup", "sub", "abbr", "time",
}
VOID_TAGS = {"img", "br", "hr", "col"}
SKIP_CONTENT = {"script", "style", "template", "iframe", "object", "embed", "noscript", "svg", "math", "head",
                "title", "textarea", "select"}
ALLOWED_ATTRS = {"class", "id", "alt", "title", "colspan", "rowspan", "scope", "datetime", "lang"}
DATA_URI = re.compile(r"^data:image/png;base64,[A-Za-z0-9+/=\s]+$")


class _Sanitiser(HTMLParser):
    """Rebuild HTML keeping only whitelisted tags/attributes; text is re-escaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> str:
        kept = []
        for name, value in attrs:
            name, value = name.lower(), value or ""
            ok = name in ALLOWED_ATTRS or (name.startswith("data-") and name[5:].replace("-", "").isalnum())
            if tag == "img" and name == "src":
                ok = bool(DATA_URI.match(value))
            if tag == "a" and name == "href":
                ok = value.startswith("#")
            if ok:
                kept.append(f' {name}="{escape(value, quote=True)}"')
        return "".join(kept)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIP_CONTENT:
            self.skip += tag not in VOID_TAGS
            return
        if self.skip or tag not in ALLOWED_TAGS:
            return
        self.out.append(f"<{tag}{self._attrs(tag, attrs)}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.skip and tag in ALLOWED_TAGS:
            self.out.append(f"<{tag}{self._attrs(tag, attrs)}>")
            if tag not in VOID_TAGS:
                self.out.append(f"</{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP_CONTENT:
            self.skip = max(0, self.skip - 1)
        elif not self.skip and tag in ALLOWED_TAGS and tag not in VOID_TAGS:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(escape(data, quote=False))


def sanitise(html: str) -> str:
    """Whitelist-clean an HTML fragment: no scripts, styles, event handlers or external URLs."""
    if not isinstance(html, str):
        raise DataError(f"sanitise: expected HTML text, got {type(html).__name__}")
    parser = _Sanitiser()
    parser.feed(html)
    parser.close()
    return "".join(parser.out)


def read_notebook(nb_or_path: Any) -> nbformat.NotebookNode:
    """A NotebookNode from a node or a path; clear errors for a missing or unreadable file."""
    if isinstance(nb_or_path, nbformat.NotebookNode):
        return nb_or_path
    if not isinstance(nb_or_path, (str, os.PathLike)):
        raise DataError(f"to_html: expected a notebook or a path, got {type(nb_or_path).__name__}")
    path = Path(nb_or_path)
    if not path.is_file():
        raise DataError("executed report notebook not found", file=str(path),
                        fix="execute notebooks/05_report.ipynb with papermill first")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several types for bad JSON/schema
        raise DataError(f"not a readable notebook: {exc}", file=str(path),
                        fix="re-run papermill on notebooks/05_report.ipynb") from None


def reader_cells(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy holding only code cells' display outputs of the kept types; no metadata, no sources."""
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type != "code" or tags & DROP_TAGS:
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") not in ("display_data", "execute_result"):
                continue  # stream (stdout/stderr) and error outputs never reach a reader
            data = {m: _text(out["data"][m]) for m in KEEP_MIME if m in out.get("data", {})}
            if data:
                outputs.append(nbformat.from_dict({"output_type": "display_data", "data": data, "metadata": {}}))
        if outputs:
            cells.append(nbformat.v4.new_code_cell(source="", outputs=outputs))
    clean = nbformat.v4.new_notebook(cells=cells)
    clean.metadata = nbformat.from_dict({"language_info": {"name": "python"}})
    return clean


def _text(value: Any) -> str:
    """nbformat allows multi-line strings as lists of lines: join them."""
    return "".join(value) if isinstance(value, list) else str(value)


def _meta(body: str, attr: str) -> str:
    m = re.search(rf'{attr}="([^"]*)"', body)
    return unescape(m.group(1)) if m else ""


def _b64(data: Any) -> str:
    text = re.sub(r"\s+", "", _text(data))
    if not re.fullmatch(r"[A-Za-z0-9+/=]*", text):
        raise DataError("an image/png output is not valid base64")
    return text


def exporter() -> HTMLExporter:
    """nbconvert's HTMLExporter on the project template, with the sanitiser registered as a filter."""
    exp = HTMLExporter(template_name=TEMPLATE_NAME, extra_template_basedirs=[str(TEMPLATE_DIR)],
                       exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    exp.register_filter("sanitise", sanitise)
    exp.register_filter("png_b64", _b64)
    return exp


def to_html(nb_or_path: Any) -> str:
    """Render an executed 05_report notebook (node or path) as the reader's HTML page (deterministic)."""
    nb = reader_cells(copy.deepcopy(read_notebook(nb_or_path)))
    body = "".join(sanitise(o.data["text/html"]) for c in nb.cells for o in c.outputs if "text/html" in o.data)
    title = _meta(body, "data-doc-title") or "Report"
    date = _meta(body, "data-doc-date")
    resources = {"datastory": {"title": title, "date": date if re.fullmatch(r"\d{4}-\d{2}-\d{2}", date) else ""}}
    html, _ = exporter().from_notebook_node(nb, resources=resources)
    if re.search(r"<script\b", html, flags=re.IGNORECASE):  # defence in depth: the template must never emit one
        raise DataError("rendered HTML contains a <script> element", fix="check the report template")
    return html
