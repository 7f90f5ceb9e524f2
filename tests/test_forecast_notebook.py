"""notebooks/03_forecast.ipynb runs end to end with overridden parameters (defaults: tests/test_notebooks.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from datastory import config, io, schema

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "03_forecast.ipynb"


@pytest.mark.slow
def test_notebook_executes_and_saves(project, tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    from test_forecast_engine import make_tx  # the tests folder is on sys.path (rootdir conftest)

    paths = config.paths(project)
    io.write_parquet(make_tx(), paths.transactions)
    monkeypatch.delenv("DATASTORY_ROOT", raising=False)
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), cwd=str(project), progress_bar=False,
                               parameters={"freq": "M", "horizon": 3, "folds": 2, "engine": "local", "write_outputs": True},
                               kernel_name="python3")
    frame = io.read_parquet(paths.forecast)
    assert list(frame.columns) == list(schema.FORECAST)
    assert io.read_json(paths.forecast_metrics)["freq"] == "M"
    assert paths.forecast_backtest.read_text(encoding="utf-8").startswith("series_id,model,fold,ds,y,yhat\n")
