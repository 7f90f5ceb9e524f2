"""The churn run from the transactions file (churn.run_file, history.FromFile) gives the in-memory run's result:
the scores, the metrics and the saved bytes, on awkward customer-log shapes read in small shards; the same
refusals; and the stage reads the file that way when ingest streams (params/data.yaml engine)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from customer_logs import customer_log
from e2e import streaming_project

from datastory import churn, config, io, schema
from datastory.churn import history, shards
from datastory.errors import DatastoryError

CFG = config.ChurnParams(capacity=10, second_purchase_capacity=8)
SHAPES = {
    "mostly one-time buyers, several orders a day": lambda: customer_log(900, seed=2, one_time_share=0.84,
                                                                          same_day_orders=0.3),
    "heavy-tailed B2B with a whale": lambda: customer_log(400, seed=3, one_time_share=0.2, whale_share=0.10),
    "nine months": lambda: customer_log(500, seed=4, start="2025-04-01", end="2025-12-28"),
}


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (the metrics hold NaN where a figure is undefined)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def saved(result: churn.ChurnResult, paths: config.Paths, folder: Path) -> dict[str, bytes]:
    """The bytes churn.save writes for `result` into `folder`."""
    names = ("churn_scores", "churn_metrics", "churn_headline")
    here = paths.model_copy(update={n: folder / getattr(paths, n).name for n in names})
    churn.save(result, here)
    return {n: getattr(here, n).read_bytes() for n in names}


def no_whole_reads(monkeypatch) -> None:
    """Make any read of the whole transactions file fail (the file path must not need one)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the whole file was read")
    monkeypatch.setattr(io, "read_parquet", refuse)
    monkeypatch.setattr(pd, "read_parquet", refuse)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_file_run_gives_the_memory_runs_scores_metrics_and_bytes(shape, project, tmp_path, monkeypatch):
    path = io.write_parquet(SHAPES[shape](), tmp_path / "transactions.parquet")
    tx = io.read_parquet(path)
    memory = churn.run(tx, CFG)
    end = history.InMemory(tx).span[1]
    per_shard = max(50, len(tx) // 6)
    assert len(shards.shard_bounds(path, end, per_shard)) >= 4          # small shards: several of them
    no_whole_reads(monkeypatch)
    stream = churn.run_file(path, CFG, per_shard=per_shard)
    pd.testing.assert_frame_equal(stream.scores, memory.scores, check_exact=True)
    pd.testing.assert_frame_equal(stream.compared, memory.compared, check_exact=True)
    assert same(stream.metrics, memory.metrics)
    assert memory.metrics["n_scored"] > 0 and memory.metrics["n_train"] > 0
    paths = config.paths(project)
    (tmp_path / "m").mkdir()
    (tmp_path / "f").mkdir()
    assert saved(stream, paths, tmp_path / "f") == saved(memory, paths, tmp_path / "m")


def test_the_histories_answer_alike_on_odd_ids_returns_and_missing_names(tmp_path):
    """The interface itself, on test_churn_shards' awkward log (non-ASCII ids, returns, a year's pause)."""
    from test_churn_shards import awkward_log

    path = io.write_parquet(awkward_log(), tmp_path / "t.parquet")
    mem, disk = history.InMemory(io.read_parquet(path)), history.FromFile(path, per_shard=40)
    assert disk.span == mem.span and disk.size() == mem.size()
    assert disk.product_lines == mem.product_lines and disk.regions == mem.regions
    for cutoff in ("2024-03-01", "2025-01-01", "2025-09-15"):
        pd.testing.assert_frame_equal(disk.labels(cutoff, 90, 365), mem.labels(cutoff, 90, 365), check_exact=True)
        pd.testing.assert_frame_equal(disk.features(cutoff, 365, mem.product_lines, mem.regions),
                                      mem.features(cutoff, 365, mem.product_lines, mem.regions), check_exact=True)
    assert mem.labels("2025-01-01", 90, 365)["churned"].nunique() == 2     # both kinds of label were compared


# ---------------------------------------------------------------- the same refusals
def quiet_log() -> pd.DataFrame:
    """Two years of buying, then silence, then one line on the last day: nobody active before the validation
    cutoff with a 30-day lookback."""
    tx = customer_log(200, seed=5, start="2024-01-01", end="2024-12-31")
    last = tx.iloc[[0]].assign(timestamp=pd.Timestamp("2025-12-31 10:00"), order_id="LAST")
    return schema.conform(pd.concat([tx, last], ignore_index=True), schema.TRANSACTIONS, "log")


REFUSALS = {
    "no rows": (lambda: customer_log(50).iloc[:0], CFG, "no rows"),
    "a missing column": (lambda: customer_log(50).drop(columns="discount"), CFG, "missing column.s. discount"),
    "a validation cutoff outside the data": (lambda: customer_log(300), config.ChurnParams(cutoff="2030-01-01"),
                                             "outside the data"),
    "an empty validation set": (quiet_log, config.ChurnParams(lookback_days=30), "no customer bought"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_input_gets_the_same_message_either_way(case, tmp_path):
    make, cfg, words = REFUSALS[case]
    tx = make()
    path = tmp_path / "t.parquet"
    tx.to_parquet(path, index=False)                 # as written: io.write_parquet would refuse some of these
    with pytest.raises(DatastoryError, match=words) as memory:
        churn.run(tx, cfg)
    with pytest.raises(DatastoryError, match=words) as stream:
        churn.run_file(path, cfg, per_shard=100)
    assert type(stream.value) is type(memory.value)
    assert str(stream.value) == str(memory.value)


# ---------------------------------------------------------------- the stage: which history, real files
def write_project(project: Path, tx: pd.DataFrame, engine: str) -> config.Paths:
    return streaming_project(project, tx, engine)


def stage_bytes(project: Path) -> dict[str, bytes]:
    paths = config.paths(project)
    result = churn.run_stage(paths, config.load("churn", project), config.load("data", project), project)
    churn.save(result, paths)
    return {n: getattr(paths, n).read_bytes() for n in ("churn_scores", "churn_metrics", "churn_headline")}


@pytest.mark.parametrize("engine, streamed", [("stream", True), ("memory", False), ("auto", False)])
def test_the_stage_reads_the_file_when_ingest_streams(project, engine, streamed):
    paths = write_project(project, customer_log(60, seed=6), engine)
    opened = churn.open_history(paths, config.load("data", project), project)
    assert isinstance(opened, history.FromFile if streamed else history.InMemory)
    assert opened.size() == (len(io.read_parquet(paths.transactions)), 60)


def test_the_stage_with_engine_stream_writes_the_memory_stages_bytes(project, monkeypatch):
    tx = customer_log(500, seed=7, one_time_share=0.5, whale_share=0.05)
    write_project(project, tx, "memory")
    memory = stage_bytes(project)
    for p in config.paths(project).churn_scores, config.paths(project).churn_metrics:
        p.unlink()
    write_project(project, tx, "stream")
    monkeypatch.setenv("DATASTORY_CHURN_SHARD_ROWS", "1500")   # several shards a cutoff
    no_whole_reads(monkeypatch)
    assert stage_bytes(project) == memory


def test_the_stage_says_when_the_transactions_are_missing(project):
    paths = config.paths(project)
    for engine in ("memory", "stream"):
        data = config.load("data", project).model_copy(update={"engine": engine, "source": "csv"})
        with pytest.raises(DatastoryError, match="ingest stage first"):
            churn.open_history(paths, data, project)
