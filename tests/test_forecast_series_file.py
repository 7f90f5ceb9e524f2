"""build_series_file: the transactions file read in batches gives build_series' frame to the bit, and its messages.

Each shape is written as a real Parquet file (io.write_parquet, in time order as ingest writes it) and read in
batches of a few lines (7, 97), so that periods span many batches; the frame must equal
build_series(io.read_parquet(path)) exactly, and so must the bytes both write.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapes
import yaml
from customer_logs import customer_log
from e2e import streaming_project
from test_kpis_stage import awkward_tx

from datastory import config, forecast, io, schema
from datastory.errors import DataError
from datastory.forecast import series as fs
from datastory.forecast import series_file

FILLS = ("zero", "interpolate", "none")


def in_order(tx: pd.DataFrame) -> pd.DataFrame:
    return tx.sort_values("timestamp", kind="stable").reset_index(drop=True)


def fine_amounts(seed: int = 4) -> pd.DataFrame:
    """Many lines per cell whose amounts span six orders of magnitude, unrounded (returns among them): the order
    and the grouping of the additions show in the last bits."""
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp("2024-02-14") + pd.to_timedelta(np.sort(rng.integers(0, 200 * 24 * 3600, 3000)), unit="s")
    regions, lines = np.array(["North", "South"]), np.array(["Hardware", "Software", "Services"])
    amount = rng.lognormal(0, 3, len(ts)) * np.where(rng.random(len(ts)) < 0.1, -1, 1)
    return pd.DataFrame({"timestamp": ts, "region": regions[rng.integers(0, 2, len(ts))],
                         "product_line": lines[rng.integers(0, 3, len(ts))], "amount": amount})


SHAPES = {
    # gappy: closed days every year and a five-week outage (a week and a month-long stretch with no line)
    "gappy, outage": lambda: in_order(shapes.with_outage(
        shapes.daily_log("2023-03-15", 500, closed=("12-25", "12-26", "01-01")), "2023-09-03", "2023-10-07")),
    # short, starting on a Wednesday afternoon, ending mid-month: partial first and last periods
    "short, partial edges": lambda: in_order(shapes.daily_log("2024-05-08", 150, end_hour=15)),
    # one region makes 75% of revenue; a line sells on 8% of days, another launches late
    "dominant region, sparse lines": lambda: in_order(shapes.hierarchy_log(days=420)),
    # returns (negative lines), two months without any line, a region silent for months, ends mid-period
    "returns, empty months": lambda: awkward_tx(),
    # nine months of one-time buyers and a whale account
    "short customer log": lambda: customer_log(n_customers=150, seed=2, start="2025-01-01", end="2025-09-30",
                                               one_time_share=0.6, whale_share=0.2),
    "fine amounts": fine_amounts,
}


def both(tx: pd.DataFrame, tmp_path: Path, freq: str, fill: str, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    path = tmp_path / "transactions.parquet"
    if not path.exists():
        io.write_parquet(tx, path)
    return fs.build_series(io.read_parquet(path), freq, fill), series_file.build_series_file(path, freq, fill, rows)


@pytest.mark.parametrize("freq", fs.FREQS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_file_in_batches_gives_build_series_frame_and_bytes(shape, freq, tmp_path):
    tx = SHAPES[shape]()
    for rows in (7, 97):
        for fill in FILLS:
            memory, stream = both(tx, tmp_path, freq, fill, rows)
            pd.testing.assert_frame_equal(stream, memory, check_exact=True)
            a = io.write_parquet(memory, tmp_path / "memory.parquet").read_bytes()
            b = io.write_parquet(stream, tmp_path / "stream.parquet").read_bytes()
            assert a == b, f"{shape}, {freq}, fill {fill}, rows {rows}: the written series differ"


def test_the_shapes_hold_what_they_are_meant_to(tmp_path):
    """The cases above are hard ones: an empty period inside the range (filled NaN unless fill zero), partial
    edges dropped, and sums whose bits depend on adding each cell's lines at once (per-batch partial sums differ)."""
    tx = SHAPES["returns, empty months"]()
    assert (tx["amount"] < 0).any()
    assert fs.build_series(tx, "M", "none")["y"].isna().any()
    tx = SHAPES["short, partial edges"]()
    weeks = fs.build_series(tx, "W")["ds"]
    assert weeks.min() > tx["timestamp"].min() and weeks.max() + pd.Timedelta(days=7) < tx["timestamp"].max()
    tx = fine_amounts()
    tx["ds"] = tx["timestamp"].dt.to_period("M").dt.start_time
    whole = tx.groupby(["region", "product_line", "ds"])["amount"].sum()
    batch = np.arange(len(tx)) // 97
    partial = tx.groupby(["region", "product_line", "ds", batch])["amount"].sum()
    assert (partial.groupby(level=[0, 1, 2]).sum() != whole).any()


def test_a_tz_aware_clock_and_float32_amounts_read_as_in_memory(tmp_path):
    tx = in_order(shapes.daily_log("2024-01-03", 120))
    tx["timestamp"] = tx["timestamp"].dt.tz_localize("Europe/Berlin")
    tx["amount"] = tx["amount"].astype("float32")
    memory, stream = both(tx, tmp_path, "W", "zero", 13)
    pd.testing.assert_frame_equal(stream, memory, check_exact=True)


def test_a_period_without_any_line_and_no_line_in_any_full_period(tmp_path):
    tx = pd.DataFrame({"timestamp": pd.to_datetime(["2025-01-30 10:00", "2025-03-02 09:00"]),
                       "region": ["North", "South"], "product_line": ["Hardware", "Software"], "amount": [1.0, 2.0]})
    for fill, y in (("zero", 0.0), ("none", np.nan)):
        memory, stream = both(tx, tmp_path, "M", fill, 1)
        pd.testing.assert_frame_equal(stream, memory, check_exact=True)
        assert list(stream["series_id"]) == [schema.ALL] and stream["y"].iloc[0] is not None
        np.testing.assert_array_equal(stream["y"].to_numpy(), [y])


# ---------------------------------------------------------------- bad input: build_series' message, the file's row
def messages(tx: pd.DataFrame, tmp_path: Path, freq: str = "W", rows: int = 7) -> tuple[DataError, DataError]:
    path = io.write_parquet(tx, tmp_path / "transactions.parquet")
    with pytest.raises(DataError) as memory:
        fs.build_series(io.read_parquet(path), freq)
    with pytest.raises(DataError) as stream:
        series_file.build_series_file(path, freq, rows=rows)
    assert stream.value.file == str(path)
    return memory.value, stream.value


def same_message(memory: DataError, stream: DataError) -> None:
    assert (stream.problem, stream.row, stream.column, stream.fix) == (memory.problem, memory.row, memory.column,
                                                                       memory.fix)


def test_a_missing_amount_is_reported_at_its_row_in_the_file(tmp_path):
    tx = in_order(shapes.daily_log("2024-01-01", 90))
    tx.loc[123, "amount"] = np.nan
    memory, stream = messages(tx, tmp_path)
    same_message(memory, stream)
    assert stream.row == 123 and stream.column == "amount" and "amount is missing" in str(stream)


def test_the_first_problem_is_build_series_one_whatever_batch_it_is_in(tmp_path):
    """A timestamp missing in the first batch and an amount missing far later: the amount, as in memory."""
    tx = in_order(shapes.daily_log("2024-01-01", 90))
    tx["timestamp"] = tx["timestamp"].astype("datetime64[ns]")
    tx.loc[3, "timestamp"] = pd.NaT
    tx.loc[300, "amount"] = np.nan
    tx.loc[5, "region"] = None
    memory, stream = messages(tx, tmp_path)
    same_message(memory, stream)
    assert stream.row == 300
    tx.loc[300, "amount"] = 1.0
    memory, stream = messages(tx, tmp_path)
    same_message(memory, stream)
    assert (stream.row, stream.column) == (3, "timestamp")
    tx.loc[3, "timestamp"] = tx.loc[4, "timestamp"]
    tx.loc[200, "product_line"] = None
    memory, stream = messages(tx, tmp_path)
    same_message(memory, stream)
    assert (stream.row, stream.column) == (5, "region")


@pytest.mark.parametrize("case", ["missing column", "no rows", "text timestamps", "text amounts", "All label",
                                  "no full period"])
def test_whole_file_problems_get_build_series_message(case, tmp_path):
    tx = in_order(shapes.daily_log("2024-01-01", 60))
    if case == "missing column":
        tx = tx.drop(columns="product_line")
    elif case == "no rows":
        tx = tx.iloc[:0]
    elif case == "text timestamps":
        tx["timestamp"] = tx["timestamp"].astype(str)
        tx.loc[40, "amount"] = np.nan      # the amount comes first, as in memory
    elif case == "text amounts":
        tx["amount"] = tx["amount"].astype(str)
    elif case == "All label":
        tx.loc[tx["region"] == "South", "region"] = schema.ALL
    else:
        tx = tx[tx["timestamp"] < "2024-01-20"]
    memory, stream = messages(tx, tmp_path, freq="M")
    same_message(memory, stream)
    if case == "text timestamps":
        assert stream.row == 40
    if case == "no full period":
        assert "not one full period of freq 'M'" in stream.problem


def test_a_file_out_of_time_order_is_refused(tmp_path):
    path = io.write_parquet(awkward_tx().iloc[::-1], tmp_path / "t.parquet")
    with pytest.raises(DataError, match="not in time order") as err:
        series_file.build_series_file(path, "W", rows=100)
    assert err.value.file == str(path) and err.value.column == "timestamp"
    tx = in_order(shapes.daily_log("2024-01-01", 60))   # within one batch too
    tx.loc[11:12, "timestamp"] = tx.loc[11:12, "timestamp"].to_numpy()[::-1]   # day 3's last line, day 4's first
    assert tx.loc[11, "timestamp"] > tx.loc[12, "timestamp"]
    with pytest.raises(DataError, match="not in time order"):
        series_file.build_series_file(io.write_parquet(tx, tmp_path / "u.parquet"), "W", rows=1000)


def test_not_a_parquet_file_or_no_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        series_file.build_series_file(tmp_path / "none.parquet", "W")
    (tmp_path / "t.parquet").write_text("order_id,amount\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        series_file.build_series_file(tmp_path / "t.parquet", "W")
    with pytest.raises(DataError, match="unknown forecast frequency"):
        series_file.build_series_file(tmp_path / "t.parquet", "Y")


# ---------------------------------------------------------------- load_series: which way, real project files
def write_project(project: Path, tx: pd.DataFrame, engine: str) -> None:
    streaming_project(project, tx, engine)


@pytest.mark.parametrize("engine, streamed", [("stream", True), ("memory", False), ("auto", False)])
def test_load_series_follows_the_ingest_engine(project, engine, streamed, monkeypatch):
    tx = awkward_tx()
    write_project(project, tx, engine)
    paths, cfg = config.paths(project), config.load("forecast", project)
    calls = []
    real = series_file.build_series_file
    monkeypatch.setattr(series_file, "build_series_file", lambda *a, **k: calls.append(a) or real(*a, **k))
    monkeypatch.setenv("DATASTORY_STREAM_BATCH", "300")
    out = forecast.load_series(paths, cfg, config.load("data", project), project)
    assert bool(calls) is streamed
    if streamed:
        assert calls[0][3] == 300
    pd.testing.assert_frame_equal(out, fs.build_series(tx, cfg.freq, cfg.fill), check_exact=True)


def test_load_series_without_transactions_says_run_ingest(project):
    with pytest.raises(DataError, match="ingest stage first"):
        forecast.load_series(config.paths(project), config.load("forecast", project), config.load("data", project),
                             project)


# ---------------------------------------------------------------- the stage's notebook
@pytest.mark.slow
def test_the_forecast_notebook_with_engine_stream_writes_the_memory_runs_bytes(project, monkeypatch):
    """The stage's notebook (papermill, as `datastory forecast` runs it) with engine: stream and batches of 50
    lines writes data/processed/forecast.parquet byte for byte as with engine: memory; and it did read the file
    in batches: a file out of time order, which the in-memory path takes, is refused."""
    import shutil

    from datastory import runner

    shutil.copytree(Path(__file__).resolve().parents[1] / "notebooks", project / "notebooks")
    params = yaml.safe_load((project / "params/forecast.yaml").read_text(encoding="utf-8"))
    params.update(freq="M", horizon=3, folds=2, engine="local", models=["seasonal_naive", "theta"])
    (project / "params/forecast.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    monkeypatch.delenv("DATASTORY_ROOT", raising=False)
    monkeypatch.setenv("DATASTORY_STREAM_BATCH", "50")
    tx = awkward_tx()
    out = {}
    for engine in ("memory", "stream"):
        write_project(project, tx, engine)
        runner.execute("forecast", project)
        out[engine] = config.paths(project).forecast.read_bytes()
    assert out["stream"] == out["memory"]
    assert len(io.read_parquet(config.paths(project).forecast)) > 0
    write_project(project, tx.iloc[::-1], "stream")
    with pytest.raises(runner.StageError, match="not in time order"):
        runner.execute("forecast", project)
