"""The `datastory` console script, run as a user would: exit status and what reaches the terminal."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"


def run(project: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "datastory"
    return subprocess.run([str(exe), *args], cwd=project, capture_output=True, text=True, timeout=120)


def test_check_params_ok(project):
    res = run(project, "check-params")
    assert res.returncode == 0, res.stderr
    assert "params/forecast.yaml: ok" in res.stdout


def test_bad_param_exits_2_with_one_clear_message(project):
    (project / "params" / "churn.yaml").write_text("window_days: lots\n")
    res = run(project, "check-params")
    assert res.returncode == 2
    assert "params/churn.yaml" in res.stderr and "window_days" in res.stderr and "lots" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_failing_stage_exits_2_without_traceback_unless_debug(project):
    (project / "notebooks").mkdir()
    shutil.copy(FIXTURES / "raises_data_error.ipynb", project / "notebooks" / "02_kpis.ipynb")
    res = run(project, "kpis")
    assert res.returncode == 2
    assert "x.csv, row 3, column 'amount'" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    dbg = run(project, "--debug", "kpis")
    assert dbg.returncode == 2 and "Traceback" in dbg.stderr


def test_report_needs_an_audience(project):
    res = run(project, "report")
    assert res.returncode == 2 and "--audience" in res.stderr


def test_outside_a_project(tmp_path):
    res = run(tmp_path, "check-params")
    assert res.returncode == 2 and "no datastory project" in res.stderr


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help(project, args):
    res = run(project, *args)
    assert res.returncode == 0 and "datastory" in res.stdout
