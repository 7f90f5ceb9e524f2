"""The sample company re-told as a retail invoice-line log, the layout most shops export.

Columns InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country:
quantity times unit price instead of an amount, returns as cancelled invoices ("C" prefix, negative
quantity), postage lines (StockCode POST) that are not products, a few lines without a customer id,
non-ASCII descriptions, US-style dates (12/1/2025 8:26) and countries instead of regions. It lets the
README's worked example and the tests run the whole pipeline from a CSV mapped only through params.
`from_transactions` is pure; `write_csv` is the I/O edge (`datastory sample --invoice-log PATH`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import io

COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
# region -> its countries (a customer's country is fixed; a region with no entry keeps its own name)
COUNTRIES = {"North": ["Norway", "Sweden"], "South": ["Spain", "Italy"], "East": ["Poland", "Czechia"],
             "West": ["Portugal", "Ireland"]}
PRODUCTS = {  # product line -> (stock code, description)
    "Hardware": [("HW1001", "Drehmomentschlüssel Größe 2"), ("HW1002", "Câble d'acier 5 m"),
                 ("HW1003", "Ørsted brass fittings")],
    "Software": [("SW2001", "Licence Pro – 1 seat"), ("SW2002", "Mjukvara Årsabonnemang")],
    "Services": [("SV3001", "Instalación in situ"), ("SV3002", "Szkolenie zdalne (2 h)")],
}
POSTAGE = ("POST", "POSTAGE", 18.0)
NO_CUSTOMER_SHARE = 0.01   # lines exported without a customer id (guest orders)
POSTAGE_SHARE = 0.05       # invoices with a postage line


def _pick(keys: pd.Series, options: int) -> np.ndarray:
    """A stable choice among `options` from a text key (the same key always picks the same option)."""
    return (pd.util.hash_pandas_object(keys, index=False).to_numpy() % np.uint64(options)).astype(int)


def from_transactions(tx: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The invoice-line log of sample transactions (datastory.sample.generate's layout)."""
    rng = np.random.default_rng(seed)
    tx = tx.reset_index(drop=True)
    ret = tx["amount"].to_numpy() < 0
    order_no = pd.factorize(tx["order_id"], sort=True)[0] + 536365
    invoice = pd.Series(order_no.astype(str), dtype=object)
    invoice[ret] = "C" + invoice[ret]
    cust_no = pd.factorize(tx["customer_id"], sort=True)[0] + 12346
    customer = pd.Series(cust_no.astype(str), dtype=object)
    customer[rng.random(len(tx)) < NO_CUSTOMER_SHARE] = ""
    cust_keys = tx["customer_id"].astype(str)
    country = pd.Series("", index=tx.index, dtype=object)
    for region, names in COUNTRIES.items():
        here = (tx["region"] == region).to_numpy()
        country[here] = np.asarray(names, dtype=object)[_pick(cust_keys[here], len(names))]
    known = tx["region"].notna().to_numpy() & ~tx["region"].isin(list(COUNTRIES)).to_numpy()
    country[known] = tx.loc[known, "region"]
    code = pd.Series("", index=tx.index, dtype=object)
    desc = pd.Series("", index=tx.index, dtype=object)
    for line, items in PRODUCTS.items():
        here = (tx["product_line"] == line).to_numpy()
        k = _pick(tx.loc[here, "order_id"].astype(str) + line, len(items))
        code[here] = [items[i][0] for i in k]
        desc[here] = [items[i][1] for i in k]
    qty = tx["quantity"].round().astype(int).where(lambda q: q != 0, 1).to_numpy()
    qty = np.where(ret, -np.abs(qty), np.abs(qty))
    price = np.round(np.abs(tx["amount"].to_numpy()) / np.abs(qty), 2)
    ts = tx["timestamp"]
    date = (ts.dt.month.astype(str) + "/" + ts.dt.day.astype(str) + "/" + ts.dt.year.astype(str) + " "
            + ts.dt.hour.astype(str) + ":" + ts.dt.minute.map("{:02d}".format))
    log = pd.DataFrame({"InvoiceNo": invoice, "StockCode": code, "Description": desc, "Quantity": qty,
                        "InvoiceDate": date, "UnitPrice": price, "CustomerID": customer, "Country": country})
    first = ~pd.Series(order_no).duplicated().to_numpy() & ~ret
    post = np.flatnonzero(first & (rng.random(len(tx)) < POSTAGE_SHARE))
    extra = log.iloc[post].assign(StockCode=POSTAGE[0], Description=POSTAGE[1], Quantity=1, UnitPrice=POSTAGE[2])
    out = pd.concat([log, extra]).sort_index(kind="stable").reset_index(drop=True)
    return out[COLUMNS]


def write_csv(log: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the log as UTF-8 CSV, atomically."""
    return io.write_text(log.to_csv(index=False, lineterminator="\n", float_format="%.2f"), path)
