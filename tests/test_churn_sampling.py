"""The training sample of a large customer base (churn.sampling): its share, which customers it takes (by id,
whatever the frame), and what the churn run does with it: fewer training rows from fewer customers, every
customer still validated and scored, and the same result from the file as from memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from customer_logs import customer_log

from datastory import churn, config, io
from datastory.churn import history, sampling

IDS = pd.Series([f"C{i:06d}" for i in range(20_000)], dtype="string")


@pytest.mark.parametrize(("active", "cap", "want"), [(1000, 0, 1.0), (1000, 1000, 1.0), (999, 1000, 1.0),
                                                     (1000, 250, 0.25), (0, 10, 1.0), (3, 1, 1 / 3)])
def test_the_share_is_the_cap_over_the_active_customers_past_the_cap(active, cap, want):
    assert sampling.share(active, cap) == pytest.approx(want)


@pytest.mark.parametrize(("active", "cap"), [(-1, 10), (10, -1)])
def test_a_negative_count_is_refused(active, cap):
    with pytest.raises(ValueError, match=">= 0"):
        sampling.share(active, cap)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_a_share_outside_zero_to_one_is_refused(fraction):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        sampling.sampled(IDS, fraction, 0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        sampling.picker(fraction, 0)


def test_the_sample_takes_about_its_share_by_id_whatever_the_order():
    got = sampling.sampled(IDS, 0.3, seed=0)
    assert 0.28 < got.mean() < 0.32
    shuffled = IDS.sample(frac=1.0, random_state=4)
    again = pd.Series(sampling.sampled(shuffled, 0.3, seed=0), index=shuffled.index).sort_index()
    np.testing.assert_array_equal(again.to_numpy(), got)
    # text or object ids, the same answer
    np.testing.assert_array_equal(sampling.sampled(IDS.astype(object).to_numpy(), 0.3, seed=0), got)


def test_the_seed_changes_the_sample_and_a_larger_share_only_adds_customers():
    a, b = sampling.sampled(IDS, 0.3, seed=0), sampling.sampled(IDS, 0.3, seed=1)
    assert (a != b).sum() > 1000
    wider = sampling.sampled(IDS, 0.6, seed=0)
    assert wider[a].all() and wider.sum() > a.sum()
    assert sampling.sampled(IDS, 1.0, seed=0).all()


def test_the_picked_rows_are_a_customers_rows_in_every_frame():
    pick = sampling.picker(0.25, seed=3)
    assert sampling.picker(1.0, seed=3) is None
    one = pd.DataFrame({"customer_id": IDS[:4000], "x": np.arange(4000)}).iloc[::-1]
    two = pd.DataFrame({"customer_id": IDS[2000:6000], "x": np.arange(4000)})
    p1, p2 = sampling.rows(one, pick), sampling.rows(two, pick)
    assert sampling.rows(one, None) is one
    assert list(p1.index) == list(range(len(p1))) and 800 < len(p1) < 1200
    both = set(IDS[2000:4000])
    assert set(p1["customer_id"]) & both == set(p2["customer_id"]) & both
    assert (p1["x"].to_numpy() == one.set_index("customer_id").loc[p1["customer_id"], "x"].to_numpy()).all()


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return customer_log(900, seed=2, one_time_share=0.5)


def test_both_histories_count_the_active_customers_alike(log, tmp_path):
    path = io.write_parquet(log, tmp_path / "t.parquet")
    mem, disk = history.InMemory(io.read_parquet(path)), history.FromFile(path, per_shard=300)
    for lo, hi in (("2024-01-01", "2026-01-01"), ("2025-01-01", "2025-04-01"), ("2030-01-01", "2031-01-01")):
        assert disk.active(lo, hi) == mem.active(lo, hi)
    buys = log.loc[~log["is_return"] & (log["timestamp"] >= "2025-01-01") & (log["timestamp"] < "2025-04-01")]
    assert mem.active("2025-01-01", "2025-04-01") == buys["customer_id"].nunique() > 0
    assert mem.active("2030-01-01", "2031-01-01") == 0


def test_picked_features_are_the_whole_frames_rows_from_memory_and_from_the_file(log, tmp_path):
    path = io.write_parquet(log, tmp_path / "t.parquet")
    mem, disk = history.InMemory(io.read_parquet(path)), history.FromFile(path, per_shard=300)
    lines, regions = mem.product_lines, mem.regions
    cutoffs = ["2025-06-01", "2025-09-01"]
    pick = sampling.picker(0.4, seed=0)
    whole = mem.features_many(cutoffs, 365, lines, regions)
    picked = mem.features_many(cutoffs, 365, lines, regions, picks=[pick, None])
    from_file = disk.features_many(cutoffs, 365, lines, regions, picks=[pick, None])
    pd.testing.assert_frame_equal(picked[0], sampling.rows(whole[0], pick), check_exact=True)
    pd.testing.assert_frame_equal(picked[1], whole[1], check_exact=True)
    for a, b in zip(from_file, picked, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    # the repeat buyers' delay is still every customer's median, not the sample's
    assert picked[0]["repeat_delay_days"].iloc[0] == whole[0]["repeat_delay_days"].iloc[0]
    assert 0 < len(picked[0]) < len(whole[0])
    with pytest.raises(ValueError, match="1 picks for 2 cutoffs"):
        disk.features_many(cutoffs, 365, lines, regions, picks=[pick])


def test_past_the_cap_the_model_learns_from_a_sample_and_still_scores_everyone(log, tmp_path):
    cfg = config.ChurnParams(capacity=10, second_purchase_capacity=8)
    everyone = churn.run(log, cfg.model_copy(update={"max_train_customers": 0}))
    m0 = everyone.metrics
    assert m0["train_share"] == 1.0
    # a cap at or above the active customers changes nothing
    same = churn.run(log, cfg.model_copy(update={"max_train_customers": m0["train_customers"] * 2}))
    pd.testing.assert_frame_equal(same.scores, everyone.scores, check_exact=True)
    cap = m0["train_customers"] // 2
    sampled = churn.run(log, cfg.model_copy(update={"max_train_customers": cap}))
    m = sampled.metrics
    assert 0 < m["train_share"] < 1
    assert 0.8 * cap < m["train_customers"] < 1.2 * cap
    assert m["n_train"] < m0["n_train"]
    assert (m["n_valid"], m["n_scored"]) == (m0["n_valid"], m0["n_scored"])
    assert sorted(sampled.scores["customer_id"]) == sorted(everyone.scores["customer_id"])
    assert m["model"]["roc_auc"] > 0.6 and abs(m["model"]["roc_auc"] - m0["model"]["roc_auc"]) < 0.1
    # from the file, shard by shard, the same sample and the same result
    path = io.write_parquet(log, tmp_path / "t.parquet")
    stream = churn.run_file(path, cfg.model_copy(update={"max_train_customers": cap}), per_shard=400)
    pd.testing.assert_frame_equal(stream.scores, sampled.scores, check_exact=True)
    assert stream.metrics["n_train"] == m["n_train"] and stream.metrics["train_share"] == m["train_share"]


def test_picked_features_from_small_shards_of_an_awkward_log_are_the_memory_ones(tmp_path):
    """Non-ASCII ids, returns, a year's pause, customers seen only before the lookback: each shard's lines are
    picked before its features, and the delays stay every customer's."""
    from test_churn_shards import awkward_log

    path = io.write_parquet(awkward_log(), tmp_path / "t.parquet")
    mem, disk = history.InMemory(io.read_parquet(path)), history.FromFile(path, per_shard=40)
    cutoffs = ["2025-09-15", "2024-03-01", "2025-01-01"]
    picks = [sampling.picker(0.5, seed=1), None, sampling.picker(0.5, seed=1)]
    got = disk.features_many(cutoffs, 365, mem.product_lines, mem.regions, picks=picks)
    want = mem.features_many(cutoffs, 365, mem.product_lines, mem.regions, picks=picks)
    whole = mem.features_many(cutoffs, 365, mem.product_lines, mem.regions)
    for g, w, full, p in zip(got, want, whole, picks, strict=True):
        pd.testing.assert_frame_equal(g, w, check_exact=True)
        assert (len(g) < len(full)) == (p is not None) and len(g) > 0
