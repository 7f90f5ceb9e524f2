"""runner.execute on tiny fixture notebooks, one per behaviour, with a real kernel."""

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from datastory import runner

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"


def _install(project: Path, fixture: str, as_stage: str = "kpis") -> None:
    (project / "notebooks").mkdir(exist_ok=True)
    shutil.copy(FIXTURES / f"{fixture}.ipynb", project / "notebooks" / f"{runner.NOTEBOOKS[as_stage][0]}.ipynb")


def test_params_are_injected_and_cwd_is_the_project(project):
    (project / "params" / "kpis.yaml").write_text("period: Q\n")
    _install(project, "writes_param")
    out = runner.execute("kpis", project)
    assert out == project / "reports" / "runs" / "02_kpis.ipynb"
    assert (project / "ran_with.txt").read_text() == "Q"
    nb = nbformat.read(out, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert not list(out.parent.glob(".*tmp*"))


def test_executed_notebook_has_no_timings_or_machine_paths_and_is_stable(project):
    _install(project, "writes_param")
    first = runner.execute("kpis", project).read_bytes()
    text = first.decode()
    for leak in ("start_time", "end_time", "duration", "iopub", str(project)):
        assert leak not in text, leak
    meta = nbformat.reads(text, as_version=4).metadata["papermill"]
    assert meta["input_path"] == "notebooks/02_kpis.ipynb"
    assert meta["output_path"] == "reports/runs/02_kpis.ipynb"
    assert meta["parameters"] == {"period": "M", "movers": 5, "write_outputs": True}  # params/kpis.yaml, every key; the stage writes the real outputs
    assert runner.execute("kpis", project).read_bytes() == first


def test_bad_params_stop_before_a_kernel_starts(project):
    (project / "params" / "kpis.yaml").write_text("period: Y\n")
    _install(project, "writes_param")
    with pytest.raises(Exception, match="params/kpis.yaml"):
        runner.execute("kpis", project)
    assert not (project / "ran_with.txt").exists()


def test_user_error_in_notebook_comes_back_as_its_message(project):
    _install(project, "raises_data_error")
    with pytest.raises(runner.StageError) as exc:
        runner.execute("kpis", project)
    assert "x.csv, row 3, column 'amount': amount is not a number" in str(exc.value)
    assert not (project / "reports" / "runs" / "02_kpis.ipynb").exists()


def test_bug_in_notebook_names_cell_and_exception(project):
    _install(project, "raises_bug")
    with pytest.raises(runner.StageError, match="ZeroDivisionError"):
        runner.execute("kpis", project)
    assert not (project / "reports" / "runs" / "02_kpis.ipynb").exists()


def test_missing_notebook_and_unknown_stage(project):
    with pytest.raises(runner.StageError, match="notebook is missing"):
        runner.execute("kpis", project)
    with pytest.raises(runner.StageError, match="unknown notebook stage"):
        runner.execute("train", project)


def test_a_killed_runs_temp_record_is_removed_by_the_next_run(project):
    _install(project, "writes_param")
    runs = project / "reports" / "runs"
    runs.mkdir(parents=True)
    stale = runs / ".02_kpis.abc123.tmp.ipynb"
    stale.write_text("{half")
    runner.execute("kpis", project)
    assert not stale.exists() and (runs / "02_kpis.ipynb").is_file()


def test_timings_go_to_the_named_side_file_never_into_the_record(project, monkeypatch, tmp_path):
    _install(project, "writes_param")
    plain = runner.execute("kpis", project).read_bytes()
    side = tmp_path / "timings.jsonl"
    monkeypatch.setenv(runner.TIMINGS_ENV, str(side))
    timed = runner.execute("kpis", project).read_bytes()
    runner.execute("kpis", project)
    assert timed == plain  # the executed record is the same with or without timings
    records = [json.loads(line) for line in side.read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in records] == [("kpis", "papermill")] * 2
    for rec in records:
        cells = rec["cells"]
        code = [c for c in nbformat.read(project / "reports" / "runs" / "02_kpis.ipynb", as_version=4).cells
                if c.cell_type == "code"]
        assert len(cells) == len(code)
        assert all(c["seconds"] >= 0 for c in cells)
        assert rec["seconds"] >= sum(c["seconds"] for c in cells)  # kernel start and stop are outside the cells


def test_without_the_variable_no_side_file_is_written(monkeypatch, tmp_path):
    monkeypatch.delenv(runner.TIMINGS_ENV, raising=False)
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    with runner.timed("kpis", "papermill") as figures:
        figures["cells"] = []
    assert runner.timings_path() is None
    assert list(here.iterdir()) == []


def test_the_iri_grammar_is_skipped_and_notebooks_still_validate(tmp_path):
    import subprocess
    import sys

    nb = tmp_path / "n.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), nb)
    code = ("import sys; from datastory import runner; runner.skip_iri_grammar(); import nbformat; "
            f"n = nbformat.read({str(nb)!r}, as_version=4); nbformat.validate(n); "
            "print(sys.modules.get('rfc3987_syntax') is None, len(n.cells))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "1"]


def test_a_command_timed_since_its_process_started_counts_the_time_before_the_block(monkeypatch, tmp_path):
    side = tmp_path / "timings.jsonl"
    monkeypatch.setenv(runner.TIMINGS_ENV, str(side))
    age = runner._process_age()
    assert age > 0   # this test process started before this line
    with runner.timed("deliver", "command", "north", since_start=True):
        pass
    with runner.timed("deliver", "block", "north"):
        pass
    whole, block = (json.loads(line) for line in side.read_text().splitlines())
    assert (whole["stage"], whole["suffix"], whole["step"]) == ("deliver", "north", "command")
    assert whole["seconds"] >= round(age, 3) - 0.02 > block["seconds"]
