import hashlib
import itertools
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from datastory import io


def test_write_json_is_stable_and_null_safe(tmp_path):
    p = tmp_path / "m.json"
    io.write_json({"b": np.float64(1 / 3), "a": float("nan"), "c": [np.int64(2), float("inf")]}, p)
    text = p.read_text()
    assert json.loads(text) == {"a": None, "b": 0.333333, "c": [2, None]}
    assert text.index('"a"') < text.index('"b"')
    first = hashlib.sha256(p.read_bytes()).hexdigest()
    io.write_json({"c": [2, float("inf")], "a": float("nan"), "b": 1 / 3}, p)
    assert hashlib.sha256(p.read_bytes()).hexdigest() == first


def test_parquet_round_trip_and_identical_bytes(tmp_path):
    df = pd.DataFrame({"x": [1.5, 2.5], "s": pd.array(["a", None], dtype="string")})
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    io.write_parquet(df, a)
    io.write_parquet(df, b)
    assert a.read_bytes() == b.read_bytes()
    pd.testing.assert_frame_equal(io.read_parquet(a), df)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    io.write_text("old", target)
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_write_creates_folders(tmp_path):
    target = tmp_path / "a" / "b" / "c.bin"
    io.write_bytes(b"\x00\x01", target)
    assert target.read_bytes() == b"\x00\x01"


def test_read_json_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.read_json(tmp_path / "nope.json")


def test_stale_temps_finds_only_this_targets_leftovers(tmp_path):
    target = tmp_path / "report.pdf"
    stale = tmp_path / ".report.abc123.tmp.pdf"  # what a SIGKILL mid-write leaves behind
    stale.write_bytes(b"%PDF-half")
    (tmp_path / ".other.abc123.tmp.pdf").write_bytes(b"not ours")
    assert io.stale_temps(target) == [stale]
    io.write_bytes(b"%PDF-1.7 whole", target)
    assert stale.exists()  # a plain write never deletes: a concurrent writer's temp file looks the same


def test_row_group_writer_gives_write_parquet_bytes_from_pieces(tmp_path):
    # Large enough for several pages and dictionary fallback: pieces must not move their boundaries.
    n = 1_000_000 + 123_457
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"id": pd.array([f"C{i:08d}" for i in rng.permutation(n)], dtype="string"),
                       "x": rng.normal(size=n), "k": rng.integers(0, 5, n)})
    io.write_parquet(df, tmp_path / "whole.parquet")
    writer = io.RowGroupWriter(tmp_path / "pieces.parquet")
    cuts = [0, 1, 70_001, 70_001, 400_000, 1_000_003, n]
    for a, b in itertools.pairwise(cuts):
        writer.add(pa.Table.from_pandas(df.iloc[a:b], preserve_index=False))
    writer.close()
    assert (tmp_path / "pieces.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()


def test_row_group_writer_takes_frames_too_and_writes_an_empty_frame_as_write_parquet_does(tmp_path):
    df = pd.DataFrame({"id": pd.array(["a", "b", "c"], dtype="string"), "x": [1.0, 2.0, 3.0]})
    io.write_parquet(df, tmp_path / "whole.parquet")
    writer = io.RowGroupWriter(tmp_path / "frames.parquet")
    writer.add(df.iloc[:1])
    writer.add(df.iloc[1:])
    writer.close()
    assert (tmp_path / "frames.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    io.write_parquet(df.iloc[:0], tmp_path / "empty.parquet")
    writer = io.RowGroupWriter(tmp_path / "empty2.parquet")
    writer.add(df.iloc[:0])
    writer.close()
    assert (tmp_path / "empty2.parquet").read_bytes() == (tmp_path / "empty.parquet").read_bytes()
