"""The sample company as an invoice-line log: the layout, the mess and the revenue it promises."""

from __future__ import annotations

import numpy as np
import pandas as pd

from datastory import invoicelog, sample
from datastory.config import SampleParams


def test_log_layout_mess_and_revenue():
    tx = sample.generate(SampleParams(n_customers=60))
    log = invoicelog.from_transactions(tx)
    assert list(log.columns) == invoicelog.COLUMNS
    post = log["StockCode"] == "POST"
    assert len(log) == len(tx) + post.sum() and post.sum() > 0 and (log.loc[post, "UnitPrice"] == 18.0).all()
    cancelled = log["InvoiceNo"].str.startswith("C")
    assert cancelled.any() and (cancelled == (log["Quantity"] < 0)).all()
    goods = log[~post].reset_index(drop=True)
    np.testing.assert_allclose((goods["Quantity"] * goods["UnitPrice"]).abs(), tx["amount"].abs(),
                               atol=0.005 * goods["Quantity"].abs().max())
    assert (log["CustomerID"] == "").any() and (log["CustomerID"] == "").mean() < 0.05
    dates = pd.to_datetime(log["InvoiceDate"], format="%m/%d/%Y %H:%M")
    assert dates.notna().all() and dates.min() >= tx["timestamp"].min().floor("min")
    # one country per customer, inside its region's countries
    per = log[(log["CustomerID"] != "") & (log["Country"] != "")]   # "" where the sample's region is missing
    assert per.groupby("CustomerID")["Country"].nunique().max() == 1
    assert set(log["Country"]) - {""} <= {c for cs in invoicelog.COUNTRIES.values() for c in cs}


def test_log_is_deterministic_and_written_as_utf8(tmp_path):
    tx = sample.generate(SampleParams(n_customers=30))
    a = invoicelog.write_csv(invoicelog.from_transactions(tx), tmp_path / "a.csv").read_bytes()
    b = invoicelog.write_csv(invoicelog.from_transactions(tx), tmp_path / "b.csv").read_bytes()
    assert a == b and a.startswith(b"InvoiceNo,StockCode,") and "Ø".encode() in a
