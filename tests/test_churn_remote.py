"""remote.py: the fixed row chunks of the cluster scoring, and the local predictor (the cluster itself is tested
with real `dask scheduler` / `dask worker` processes in test_cluster.py)."""

from __future__ import annotations

import pytest

from datastory.churn import model, remote


def test_chunks_cover_every_row_once_in_order():
    parts = remote.chunks(2500, 1000)
    assert [(p.start, p.stop) for p in parts] == [(0, 1000), (1000, 2000), (2000, 2500)]
    assert remote.chunks(0) == []
    assert remote.chunks(3, 1) == [slice(0, 1), slice(1, 2), slice(2, 3)]


def test_chunks_refuse_a_size_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        remote.chunks(10, 0)


def test_without_a_client_the_predictor_is_the_local_one():
    assert remote.predictor(None) is model.predict
