"""The training sample of a very large customer base: which customers the churn model learns from.

The stacked training features hold one row per customer active at each training cutoff, and the classifier's
twelve fits (three calibration folds, three out-of-fold refits of three each) grow with them. Past
`max_train_customers` active customers the model learns from a seeded share of them instead, chosen by
customer, not by row: a customer sampled at one training cutoff is sampled at every one, so GroupKFold still
keeps a customer's rows on one side of a split. The validation, scoring and comparison cutoffs keep every
customer: the metrics judge, and the lists call, the whole base.

The choice is a hash of the customer id keyed by the seed (pandas' SipHash of the text, the same on every
machine and run), so a customer is in or out whatever the row order, the shard it is read in, or the history
(in memory or from the file); `bench/churn_sample.py` measured the accuracy a sample keeps, on training
cutoffs only.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import numpy as np
import pandas as pd

Pick = Callable[[pd.Series], np.ndarray]   # customer ids -> whether each is in the sample


def share(active: int, cap: int) -> float:
    """The share of the `active` customers the model learns from: all of them (1.0) up to `cap` (0: no cap),
    else cap / active."""
    if cap < 0 or active < 0:
        raise ValueError(f"customer counts must be >= 0, got active={active}, cap={cap}")
    return 1.0 if cap == 0 or active <= cap else cap / active


def _key(seed: int) -> str:
    """The 16-character SipHash key pandas takes, derived from the seed."""
    return hashlib.sha256(f"datastory churn sample {seed}".encode()).hexdigest()[:16]


def sampled(customer_ids: pd.Series | np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Per id, whether the customer is in the seeded sample of `fraction` of all customers (every id when
    fraction >= 1). The same id gives the same answer in any frame."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"the sample's share must be in (0, 1], got {fraction}")
    ids = np.asarray(pd.Series(customer_ids).astype(str).to_numpy(), dtype=object)
    if fraction >= 1.0:
        return np.ones(len(ids), dtype=bool)
    h = pd.util.hash_array(ids, hash_key=_key(seed), categorize=False)
    # uniform over [0, 2**64): below the share's point of the range; float53 of the bound is exact enough
    return h < np.uint64(min(int(fraction * 2.0**64), 2**64 - 1))


def picker(fraction: float, seed: int) -> Pick | None:
    """`sampled` at this share and seed, or None when every customer is kept."""
    sampled(np.array([], dtype=object), fraction, seed)   # its check of the share
    return None if fraction >= 1.0 else functools.partial(sampled, fraction=fraction, seed=seed)


def rows(frame: pd.DataFrame, pick: Pick | None) -> pd.DataFrame:
    """The frame's rows of the picked customers (by its customer_id column), index reset; the frame itself
    when pick is None."""
    return frame if pick is None else frame.loc[pick(frame["customer_id"])].reset_index(drop=True)
