"""The embedded sample company: a seeded, deterministic fictional transaction log.

`generate` is the pure core (typed params in, raw order lines out); `run` is the I/O edge.
The company is built so that every later stage has something real to find:
customers are acquired over time (growth), orders follow weekly and yearly seasonality with a
holiday peak, and customers churn with a hazard driven by behaviour a model can observe
(long recency relative to their usual gap, low frequency, heavy discounts, returns).
Like real exports it is a little messy: returns as negative lines, a few exact duplicate rows
and a few missing regions, which ingest must find and report.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import config, io
from .config import SampleParams
from .errors import ParamsError

RAW_COLUMNS = ["order_id", "customer_id", "customer_name", "timestamp", "region", "product_line",
               "quantity", "unit_price", "discount", "amount"]

# Weekday multipliers (Mon..Sun): a B2B supplier is quiet at the weekend.
_WEEKDAY = np.array([1.20, 1.25, 1.20, 1.15, 1.00, 0.15, 0.05])
_REGION_SHARE = np.array([0.38, 0.27, 0.21, 0.14])     # unequal region sizes, cycled if more regions
_LINE_PRICE = np.array([120.0, 450.0, 900.0])          # list price by product line index (cycled)
_LINE_QTY = np.array([4.0, 1.5, 0.8])                  # extra units per line beyond one (Poisson mean)
_LINE_PREF = np.array([0.45, 0.35, 0.20])              # share of customers whose main line it is
_BASE_SHARE = 0.15          # customers already on the books on the first day
_COOLING_RATE = 0.25        # order-rate multiplier once a customer starts drifting away
_COOLING_DAYS = 25.0        # mean days from drifting to gone
_BASE_HAZARD = 0.0008       # daily hazard of starting to drift, before behaviour effects
_WIN_BACK = 1 / 700          # daily chance that a lost customer comes back (non-contractual)

_SURNAMES = [
    "Müller", "Schmidt", "Novak", "Jensen", "Åkesson", "Dubois", "Rossi", "García", "Kowalski", "Nieminen",
    "Smith", "O'Brien", "Van Dijk", "Svensson", "Horváth", "Łukasik", "Gößling", "Petit", "Ferreira", "Olsen",
    "Brennan", "Marchetti", "Lindqvist", "Weber", "Fischer", "Moreau", "Costa", "Dvořák", "Hughes", "Berg",
    "Bauer", "Nilsson", "Kovač", "Walsh", "Leclerc", "Romero", "Wagner", "Sørensen", "Byrne", "Conti",
    "Hoffmann", "Laine", "Peeters", "Çelik", "Janssen", "Keller", "Martín", "Nowak", "Quinn", "Renard",
]
_NOUNS = [
    "Logistics", "Metalworks", "Foods", "Print", "Engineering", "Textiles", "Builders", "Pharma", "Optics",
    "Timber", "Electric", "Packaging", "Trading", "Robotics", "Dental", "Marine", "Plastics", "Software",
    "Tools", "Hydraulics", "Bakery", "Motors", "Interiors", "Glass", "Solar",
]
_LEGAL = ["GmbH", "KG", "Ltd", "SA", "AB", "BV", "Oy", "AS", "S.r.l.", "plc", "SARL", "& Co."]


def _day_multiplier(days: pd.DatetimeIndex) -> np.ndarray:
    """Relative order intensity per day: weekday x yearly (summer dip) x holiday peak."""
    wd = _WEEKDAY[days.dayofweek.to_numpy()]
    doy = days.dayofyear.to_numpy()
    summer = 1.0 - 0.15 * np.exp(-(((doy - 215) / 20.0) ** 2))
    month, dom = days.month.to_numpy(), days.day.to_numpy()
    peak = (month == 11) & (dom >= 20) | (month == 12) & (dom <= 22)
    lull = (month == 12) & (dom >= 24) | (month == 1) & (dom == 1)
    holiday = np.where(peak, 1.7, np.where(lull, 0.5, 1.0))
    return wd * summer * holiday


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Plausible, mostly unique company names (some non-ASCII), deterministic for the seed."""
    total = len(_SURNAMES) * len(_NOUNS) * len(_LEGAL)
    rounds = -(-n // total)
    pick = rng.choice(total * rounds, size=n, replace=False)
    combo, rnd = pick % total, pick // total
    s = combo // (len(_NOUNS) * len(_LEGAL))
    k = (combo // len(_LEGAL)) % len(_NOUNS)
    legal = combo % len(_LEGAL)
    out = [f"{_SURNAMES[a]} {_NOUNS[b]} {_LEGAL[c]}" + (f" {r + 1}" if r else "")
           for a, b, c, r in zip(s, k, legal, rnd, strict=True)]
    return np.array(out, dtype=object)


def _cycled(base: np.ndarray, k: int) -> np.ndarray:
    return np.resize(base, k)


def _simulate_orders(rng: np.random.Generator, n_days: int, mult: np.ndarray, acq: np.ndarray,
                     lam: np.ndarray, risk: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Day-by-day simulation over all customers at once: who orders, who drifts away, who is gone.

    State 0 = active, 1 = drifting (orders slow down), 2 = gone. The daily hazard of drifting is
    `risk` (the customer's discount/return/frequency profile) times a factor that grows with the
    current gap relative to the customer's usual gap, so recency and frequency carry signal.
    A few lost customers come back (non-contractual business), so a long gap is not proof of loss.
    """
    n = len(lam)
    state = np.zeros(n, dtype=np.int8)
    last = np.where(base, -rng.uniform(1, 60, n), acq.astype(float))
    days_out, cust_out = [], []
    for d in range(n_days):
        act = (acq <= d) & (state < 2)
        rate = lam * mult[d] * np.where(state == 1, _COOLING_RATE, 1.0)
        buy = act & ((rng.random(n) < rate) | ((acq == d) & ~base))
        idx = np.flatnonzero(buy)
        days_out.append(np.full(len(idx), d, dtype=np.int32))
        cust_out.append(idx.astype(np.int32))
        last[idx] = d
        rel_gap = (d - last) * lam
        hazard = risk * (0.5 + 0.5 * np.minimum(rel_gap, 4.0))
        u = rng.random(n)
        drift = act & (state == 0) & (u < hazard)
        gone = act & (state == 1) & (u < 1.0 / _COOLING_DAYS)
        back = (state == 2) & (u < _WIN_BACK)
        state[drift] = 1
        state[gone] = 2
        state[back] = 0
    return np.concatenate(days_out), np.concatenate(cust_out)


def _check(p: SampleParams) -> None:
    """Refuse settings the typed params allow but the generator cannot honour."""
    for key in ("regions", "product_lines"):
        values = getattr(p, key)
        if len(set(values)) != len(values) or any(not str(v).strip() for v in values):
            raise ParamsError(f"key 'sample.{key}' has value {values!r}: names must be unique and non-empty",
                              file="params/data.yaml", fix=f"list each of sample.{key} once")


def generate(p: SampleParams) -> pd.DataFrame:
    """The raw order lines of the sample company for params `p` (same params, same frame)."""
    _check(p)
    rng = np.random.default_rng(p.seed)
    days = pd.date_range(p.start_date, p.end_date, freq="D")
    n_days, n = len(days), p.n_customers
    mult = _day_multiplier(days)
    n_reg, n_pl = len(p.regions), len(p.product_lines)

    # --- customers: who, where, when acquired, and their behaviour profile
    region_share = _cycled(_REGION_SHARE, n_reg)
    region = rng.choice(n_reg, size=n, p=region_share / region_share.sum())
    base = rng.random(n) < _BASE_SHARE
    t = np.arange(n_days) / n_days
    acq_w = (1.0 + 2.0 * t) * _WEEKDAY[days.dayofweek.to_numpy()]
    acq = np.where(base, 0, rng.choice(n_days, size=n, p=acq_w / acq_w.sum()))
    lam = np.exp(rng.normal(np.log(1 / 25), 0.9, n))                  # orders per day when active
    heavy_disc = rng.random(n) < 0.12
    disc_trait = np.where(heavy_disc, rng.beta(6, 14, n), rng.beta(1.5, 25, n))
    heavy_ret = rng.random(n) < 0.08
    ret_trait = np.where(heavy_ret, rng.beta(3, 20, n), rng.beta(1.2, 70, n))
    size = np.exp(rng.normal(0.0, 0.5, n))
    price_factor = np.exp(rng.normal(0.0, 0.12, n))
    pref_w = _cycled(_LINE_PREF, n_pl)
    main_line = rng.choice(n_pl, size=n, p=pref_w / pref_w.sum())
    z_freq = (np.log(lam) - np.log(1 / 25)) / 0.9
    risk = _BASE_HAZARD * np.exp(10.0 * (disc_trait - 0.06) + 20.0 * (ret_trait - 0.03) - 1.0 * z_freq)

    o_day, o_cust = _simulate_orders(rng, n_days, mult, acq, lam, risk, base)

    # --- order lines: 1-3 distinct product lines per order
    n_orders = len(o_day)
    n_lines = np.minimum(rng.choice([1, 2, 3], size=n_orders, p=[0.55, 0.30, 0.15]), n_pl)
    first = np.where(rng.random(n_orders) < 0.7, main_line[o_cust], rng.integers(0, n_pl, n_orders))
    o_sec = np.round(rng.normal(11.5 * 3600, 2.5 * 3600, n_orders)).clip(6 * 3600, 20 * 3600).astype(np.int64)
    line_order = np.repeat(np.arange(n_orders), n_lines)
    line_pos = np.arange(len(line_order)) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines)
    cust = o_cust[line_order]
    pl = (first[line_order] + line_pos) % n_pl
    qty = 1 + rng.poisson(_cycled(_LINE_QTY, n_pl)[pl] * size[cust])
    list_price = _cycled(_LINE_PRICE, n_pl) * (1 + 0.5 * (np.arange(n_pl) // 3))
    unit_price = np.round(list_price[pl] * price_factor[cust] * np.exp(rng.normal(0, 0.04, len(pl))), 2)
    disc = np.clip(disc_trait[cust] + rng.normal(0, 0.03, len(pl)), 0, 0.6)
    disc = np.round(np.where(rng.random(len(pl)) < 0.3, 0.0, disc), 2)
    day = o_day[line_order].astype(np.int64)
    sec = o_sec[line_order]

    # --- returns: part of a line comes back 3-45 days later, as its own negative line
    is_ret = rng.random(len(pl)) < ret_trait[cust]
    r_src = np.flatnonzero(is_ret)
    r_day = day[r_src] + rng.integers(3, 46, len(r_src))
    keep = r_day < n_days
    r_src, r_day = r_src[keep], r_day[keep]
    r_qty = -(1 + np.floor(rng.random(len(r_src)) * qty[r_src]).astype(np.int64))
    r_sec = rng.integers(8 * 3600, 17 * 3600, len(r_src))

    ev_day = np.concatenate([day, r_day])
    ev_sec = np.concatenate([sec, r_sec])
    ev_cust = np.concatenate([cust, cust[r_src]])
    ev_pl = np.concatenate([pl, pl[r_src]])
    ev_qty = np.concatenate([qty, r_qty])
    ev_price = np.concatenate([unit_price, unit_price[r_src]])
    ev_disc = np.concatenate([disc, disc[r_src]])
    # an order id per sale order and per return; numbered in time order
    ev_key = np.concatenate([line_order, n_orders + np.arange(len(r_src))])
    key_day = np.concatenate([o_day, r_day])
    key_sec = np.concatenate([o_sec, r_sec])
    key_cust = np.concatenate([o_cust, cust[r_src]])
    key_rank = np.empty(len(key_day), dtype=np.int64)
    key_rank[np.lexsort((key_cust, key_sec, key_day))] = np.arange(len(key_day))
    order_no = key_rank[ev_key]

    # --- assemble, in time order
    sort = np.lexsort((ev_pl, order_no))
    width_o = max(7, len(str(len(key_day))))
    width_c = max(5, len(str(n)))
    cust_ids = np.array([f"C{i:0{width_c}d}" for i in range(n)], dtype=object)
    names = _names(rng, n)
    ev_cust, ev_pl, ev_qty = ev_cust[sort], ev_pl[sort], ev_qty[sort]
    ev_price, ev_disc = ev_price[sort], ev_disc[sort]
    ts = (days[0].to_datetime64() + (ev_day[sort] * 86400 + ev_sec[sort]).astype("timedelta64[s]"))
    region_names = np.array(p.regions, dtype=object)
    frame = pd.DataFrame({
        "order_id": [f"O{i:0{width_o}d}" for i in order_no[sort]],
        "customer_id": cust_ids[ev_cust],
        "customer_name": names[ev_cust],
        "timestamp": ts.astype("datetime64[ns]"),
        "region": region_names[region[ev_cust]],
        "product_line": np.array(p.product_lines, dtype=object)[ev_pl],
        "quantity": ev_qty.astype(np.float64),
        "unit_price": ev_price,
        "discount": ev_disc,
        "amount": np.round(ev_qty * ev_price * (1 - ev_disc), 2),
    })
    return _add_mess(rng, frame)


def _add_mess(rng: np.random.Generator, frame: pd.DataFrame) -> pd.DataFrame:
    """A few missing regions (~0.2%) and exact duplicate rows (~0.1%), as real exports have."""
    m = len(frame)
    # never a customer's first line, so every blank region is knowable from the customer's other lines
    candidates = np.flatnonzero(frame["customer_id"].duplicated().to_numpy())
    missing = rng.choice(candidates, size=min(len(candidates), max(1, m // 500)), replace=False)
    frame.loc[np.sort(missing), "region"] = None
    dup = np.sort(rng.choice(m, size=max(1, m // 1000), replace=False))
    take = np.sort(np.concatenate([np.arange(m), dup]), kind="stable")
    return frame.iloc[take].reset_index(drop=True)


def placeholder() -> pd.DataFrame:
    """What the sample stage writes when the source is not the sample: the sample's columns, no rows."""
    dtypes = {c: "string" for c in RAW_COLUMNS} | {"timestamp": "datetime64[ns]", "quantity": "float64",
                                                    "unit_price": "float64", "discount": "float64", "amount": "float64"}
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in dtypes.items()})


def run(root: str | os.PathLike | None = None) -> Path:
    """The sample stage: write paths.sample.

    With `source: sample` it is the seeded company of params/data.yaml. With any other source nothing is
    generated: the stage still writes its declared output, as `placeholder()` (no rows), so DVC finds it; the
    stage depends on `source`, so switching back to the sample runs it again and generates the company."""
    cfg = config.load("data", root)
    frame = generate(cfg.sample) if cfg.source == "sample" else placeholder()
    return io.write_parquet(frame, config.paths(root).sample)
