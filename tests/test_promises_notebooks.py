"""Promise 1 for the executed notebooks (reports/runs/): what varies between two executions is normalised away.

Found by the byte-identical rerun test: nbformat gives v4.4 cells random ids on upgrade, and pandas Styler
output carries a random table uuid and a memory address. runner.normalise now replaces all three.
"""

from __future__ import annotations

import nbformat
import pandas as pd

from datastory import runner


def _executed(tmp_path, cell_id: str, uuid: str, address: str):
    """A notebook as papermill leaves it: a random cell id and a displayed Styler."""
    html = pd.DataFrame({"value": [1.5]}).style.set_uuid(uuid).to_html()
    cell = nbformat.v4.new_code_cell("df.style", id=cell_id, outputs=[nbformat.v4.new_output(
        "execute_result", data={"text/html": html, "text/plain": f"<pandas.io.formats.style.Styler at {address}>"},
        execution_count=1)])
    path = tmp_path / f"{cell_id}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t", id="intro"), cell]), path)
    return path


def test_two_executions_normalise_to_the_same_bytes(tmp_path):
    a = _executed(tmp_path, "f75cb687", "07257", "0x7f24e301bd90")
    b = _executed(tmp_path, "dc71ec33", "0a063", "0x7fdc3ecf8350")
    assert a.read_bytes() != b.read_bytes()
    for path in (a, b):
        runner.normalise(path, "notebooks/x.ipynb", "reports/runs/x.ipynb")
    assert a.read_bytes() == b.read_bytes()
    nb = nbformat.read(a, as_version=4)
    assert [c["id"] for c in nb.cells] == ["intro", "cell-01"]  # a meaningful id is kept
    out = nb.cells[1].outputs[0]["data"]
    assert "0x7f" not in out["text/plain"] and "07257" not in out["text/html"]
    assert '<table id="T_c01t0">' in out["text/html"] and 'id="T_c01t0_row0_col0"' in out["text/html"]
