"""Executed notebook -> HTML: outputs only, no code/prompts/params/streams/errors/scripts, deterministic."""

from __future__ import annotations

import nbformat
import pytest

from datastory.errors import DataError
from datastory.report import render, sections

CODE_MARK = "CODE_MARKER_0xC0DE"
PARAM_MARK = "PARAM_MARKER_secret_value"
STREAM_MARK = "STREAM_MARKER_stdout"


def _nb(html_output: str) -> nbformat.NotebookNode:
    """A small executed-looking notebook: params cell, code with stream + HTML output, an error, markdown."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"audience": PARAM_MARK}}
    params = nbformat.v4.new_code_cell(f'audience = "{PARAM_MARK}"', metadata={"tags": ["parameters"]})
    params.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": PARAM_MARK}, execution_count=1)]
    injected = nbformat.v4.new_code_cell(f'audience = "{PARAM_MARK}"', metadata={"tags": ["injected-parameters"]})
    injected.outputs = [nbformat.v4.new_output("display_data", data={"text/html": f"<p>{PARAM_MARK}</p>"})]
    code = nbformat.v4.new_code_cell(f"HTML(sections.cover(p))  # {CODE_MARK}", execution_count=3)
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=STREAM_MARK),
        nbformat.v4.new_output("stream", name="stderr", text=STREAM_MARK + "_err"),
        nbformat.v4.new_output("execute_result", execution_count=3,
                               data={"text/html": html_output, "text/plain": "<IPython.core.display.HTML object>"}),
    ]
    err = nbformat.v4.new_code_cell("1/0")
    err.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="ERROR_MARKER",
                                          traceback=["Traceback ERROR_MARKER"])]
    md = nbformat.v4.new_code_cell("display(Markdown(...))")
    md.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": "**MD_MARKER** text"})]
    note = nbformat.v4.new_markdown_cell("Analyst note NOTE_MARKER")
    return nbformat.v4.new_notebook(cells=[note, params, injected, code, err, md], metadata=nb.metadata)


def test_only_reader_outputs_survive(tiny_pack):
    html = render.to_html(_nb(sections.cover(tiny_pack)))
    for mark in (CODE_MARK, PARAM_MARK, STREAM_MARK, "ERROR_MARKER", "NOTE_MARKER", "papermill", "In [",
                 "Out[", "sections.cover", "IPython.core.display"):
        assert mark not in html, mark
    assert "<h1>Customer &amp; Revenue Review</h1>" in html
    assert "<strong>MD_MARKER</strong>" in html
    assert "<title>Customer &amp; Revenue Review</title>" in html
    assert '<meta content="2025-05-31" name="dcterms.created"' in html


def test_no_script_and_no_external_resources(tiny_pack):
    html = render.to_html(_nb(sections.kpi_tiles(tiny_pack)))
    low = html.lower()
    assert "<script" not in low and "require.js" not in low and "mathjax" not in low
    assert "http://" not in low and "https://" not in low and "<link" not in low
    assert 'src="data:image/png;base64,' in html and 'alt="Bar chart of revenue' in html


def test_sanitiser_strips_active_content():
    evil = ('<p onclick="x()">ok</p><script>alert(1)</script><img src="http://evil/x.png" alt="a">'
            '<a href="javascript:x">l</a><style>p{}</style><iframe src="x"></iframe><svg onload=x><p>in svg</p></svg>')
    out = render.sanitise(evil)
    assert out == '<p>ok</p><img alt="a"><a>l</a>'


def test_hostile_output_is_text(hostile_pack):
    html = render.to_html(_nb(sections.churn(hostile_pack)))
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_render_is_deterministic_and_from_path(tmp_path, tiny_pack):
    nb = _nb(sections.summary(tiny_pack))
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    assert render.to_html(path) == render.to_html(nb)


def test_missing_notebook_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="executed report notebook not found"):
        render.to_html(tmp_path / "nope.ipynb")


def test_unreadable_notebook_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not a readable notebook"):
        render.to_html(bad)
    with pytest.raises(DataError, match="expected a notebook or a path"):
        render.to_html(42)
