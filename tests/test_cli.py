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


# ------------------------------------------------------------------ forecast-file
def _long_csv(path: Path, n: int = 30) -> Path:
    import numpy as np
    import pandas as pd

    ds = pd.date_range("2020-01-01", periods=n, freq="MS").strftime("%Y-%m-%d")
    season = 100 + 20 * np.sin(2 * np.pi * np.arange(n) / 12)
    pd.concat([pd.DataFrame({"unique_id": sid, "ds": ds, "y": (season * k).round(2)})
               for k, sid in ((1, "north"), (2, "south"))]).to_csv(path, index=False)
    return path


def test_forecast_file_round_trip_outside_a_project(tmp_path):
    import pandas as pd

    src = _long_csv(tmp_path / "sales.csv")
    res = run(tmp_path, "forecast-file", "sales.csv", "--freq", "MS", "--horizon", "6", "--out", "fc.csv",
              "--folds", "2", "--models", "seasonal_naive,ets", "--engine", "local", "--seed", "1")
    assert res.returncode == 0, res.stderr
    assert "wrote fc.csv: 2 series x 6 periods" in res.stdout and "wrote fc.series.csv" in res.stdout
    assert "forecast (local): 2/2 series" in res.stderr and "forecast 2 of 2 series" in res.stderr
    assert "Traceback" not in res.stderr
    out = pd.read_csv(tmp_path / "fc.csv")
    assert list(out.columns) == ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model"]
    assert len(out) == 12 and out["ds"].iloc[0] == "2022-07-01" and src.exists()
    assert (out.loc[out["unique_id"] == "south", "yhat"].to_numpy() > out.loc[out["unique_id"] == "north",
                                                                             "yhat"].to_numpy()).all()
    assert list(pd.read_csv(tmp_path / "fc.series.csv")["status"]) == ["forecast", "forecast"]


def test_forecast_file_bad_value_skips_its_series_and_exits_3(tmp_path):
    src = _long_csv(tmp_path / "sales.csv")
    text = src.read_text().splitlines()
    text[4] = text[4].replace(text[4].split(",")[2], "n/a")
    src.write_text("\n".join(text) + "\n")
    res = run(tmp_path, "forecast-file", "sales.csv", "--freq", "MS", "--horizon", "6", "--out", "fc.csv",
              "--engine", "local", "--models", "seasonal_naive,ets")
    assert res.returncode == 3, res.stderr
    assert "forecast 1 of 2 series; skipped 1" in res.stderr
    assert "skipped north: sales.csv, row 5, column 'y'" in res.stderr and "'n/a'" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fc.csv", "fc.series.csv", "sales.csv"]


def test_forecast_file_with_no_usable_series_exits_2_and_writes_nothing(tmp_path):
    src = _long_csv(tmp_path / "sales.csv")
    src.write_text(src.read_text().replace("-01,", "-15,"))  # no date is a month's first day
    res = run(tmp_path, "forecast-file", "sales.csv", "--freq", "MS", "--horizon", "6", "--out", "fc.csv",
              "--engine", "local")
    assert res.returncode == 2 and "no series can be forecast" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sales.csv"]


def test_forecast_file_unknown_freq_exits_2(tmp_path):
    _long_csv(tmp_path / "sales.csv")
    res = run(tmp_path, "forecast-file", "sales.csv", "--freq", "fortnightly", "--horizon", "6", "--out", "fc.csv")
    assert res.returncode == 2 and "unknown frequency 'fortnightly'" in res.stderr
    assert not (tmp_path / "fc.csv").exists()


@pytest.mark.slow
def test_forecast_file_dask_engine_matches_local(tmp_path):
    _long_csv(tmp_path / "sales.csv")
    args = ["forecast-file", "sales.csv", "--freq", "MS", "--horizon", "6", "--folds", "2"]
    local = run(tmp_path, *args, "--out", "local.csv", "--engine", "local")
    dask = run(tmp_path, *args, "--out", "dask.csv", "--engine", "dask")
    assert local.returncode == 0 and dask.returncode == 0, local.stderr + dask.stderr
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()
    assert "distributed" not in dask.stderr  # no cluster chatter


# ------------------------------------------------------------------ deliver
def test_deliver_flags_are_exclusive_and_documented(project):
    res = run(project, "deliver", "--audience", "north", "--resend", "--force")
    assert res.returncode == 2 and "not allowed with" in res.stderr
    helped = run(project, "deliver", "--help")
    assert all(flag in helped.stdout for flag in ("--resend", "--mark-sent", "--force"))


def test_deliver_exits_3_when_the_gate_holds_the_send_and_0_for_a_dry_run(project):
    import yaml
    from conftest import tiny_frames, write_artifacts, write_report_files

    frames = tiny_frames()
    frames["data_quality"]["excluded"] = {"no customer id": 700}
    write_artifacts(project, frames)
    write_report_files(project, b"%PDF-1.4 tiny", b"PK tiny", b"")   # b"": the report had no chart
    dry = run(project, "deliver", "--audience", "north")
    assert dry.returncode == 0 and "not sent: dry run" in dry.stdout, dry.stderr
    params = yaml.safe_load((project / "params/deliver.yaml").read_text())
    (project / "params/deliver.yaml").write_text(yaml.safe_dump({**params, "send": True, "smtp_port": 9}))
    held = run(project, "deliver", "--audience", "north")
    assert held.returncode == 3, held.stderr
    assert "not sent: quality gate: 70.0% of the rows read were excluded by the rules" in held.stdout
    assert "no customer id: 700 rows (70.0%)" in held.stdout


def test_check_params_checks_paths_and_audiences(project):
    res = run(project, "check-params")
    assert res.returncode == 0, res.stderr
    assert "params/paths.yaml: ok" in res.stdout and "audiences: ok" in res.stdout


def test_a_stage_refuses_a_bad_value_in_another_params_file_before_it_writes(project):
    (project / "params" / "paths.yaml").write_text(
        (project / "params" / "paths.yaml").read_text().replace("reports/outbox", "../escape_outbox"))
    res = run(project, "sample")
    assert res.returncode == 2 and "params/paths.yaml: key 'paths.outbox_dir'" in res.stderr
    assert sorted(p.name for p in project.iterdir()) == ["params"] and not (project.parent / "escape_outbox").exists()


def test_check_params_prints_the_effective_settings(project):
    (project / "params" / "forecast.yaml").write_text("horizon: 8\n")   # every other key from the defaults
    res = run(project, "check-params")
    assert res.returncode == 0, res.stderr
    assert "params/forecast.yaml  horizon = 8" in res.stdout
    assert "params/forecast.yaml  freq = " in res.stdout and "params/churn.yaml  window_days = " in res.stdout
    assert 'params/data.yaml  sql.password_env = "DATASTORY_DB_PASSWORD"' in res.stdout
    assert not list(project.glob("data")) and not list(project.glob("reports"))   # writes nothing


def test_misspelt_key_suggests_the_nearest(project):
    (project / "params" / "forecast.yaml").write_text("horizn: 8\nprophet:\n  growth: linear\n")
    res = run(project, "check-params")
    assert res.returncode == 2 and "unknown key 'horizn' (did you mean horizon?)" in res.stderr


def test_the_command_exits_with_mains_status_after_freezing_the_collector(monkeypatch):
    from datastory import cli

    calls = []
    monkeypatch.setattr(cli, "main", lambda: calls.append("main") or 3)
    monkeypatch.setattr(cli.gc, "freeze", lambda: calls.append("freeze"))
    with pytest.raises(SystemExit) as exc:
        cli.entry()
    assert exc.value.code == 3 and calls == ["main", "freeze"]


def test_the_installed_command_is_entry_not_main():
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="datastory")
    assert script.value == "datastory.cli:entry"
