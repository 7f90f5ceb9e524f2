"""Generators of the shapes real transaction logs and revenue series have, for the tests of every stage.

Real logs are short, gappy and partial; their revenue swings strongly with the season, breaks when a big
customer leaves, and a shop closes on known days. Each generator is seeded, so a test sees the same data
on every run. Most return the pipeline's own formats (transactions as ingest writes them; series as
forecast.build_series gives them); `invoice_log` and `purchase_log` return exports as a shop writes them
(text, the source's own columns), for ingest and `datastory check-data`: a UK online retailer's invoice lines
with bad-debt and fee lines, and a CD retailer's purchases without an order id, most customers buying once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from datastory.sources import Raw

REGIONS_LINES = [("North", "Hardware"), ("North", "Software"), ("South", "Hardware"), ("South", "Software")]


def daily_log(start: str, days: int, seed: int = 3, level: float = 100.0, swing: float = 0.3,
              trend: float = 0.3, closed: tuple[str, ...] = (), break_at: float | None = None,
              break_factor: float = 0.4, end_hour: int = 9) -> pd.DataFrame:
    """Daily order lines for 2 regions x 2 lines: level x (1 + swing x yearly sine) x (1 + trend over the
    span) x lognormal noise. `closed`: MM-DD days with no line at all (the shop is shut). `break_at`: the
    share of the span after which revenue falls to `break_factor` of its level (a big customer left)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=days, freq="D")
    season = 1 + swing * np.sin(2 * np.pi * ts.dayofyear.to_numpy() / 365.25)
    growth = 1 + trend * np.arange(days) / days
    shift = np.where(np.arange(days) >= (break_at or 2.0) * days, break_factor, 1.0)
    open_day = ~ts.strftime("%m-%d").isin(list(closed))
    parts = []
    for i, (reg, line) in enumerate(REGIONS_LINES):
        amount = (level + 20 * i) * season * growth * shift * rng.lognormal(0, 0.2, days)
        parts.append(pd.DataFrame({"timestamp": ts[open_day] + pd.Timedelta(hours=end_hour), "region": reg,
                                   "product_line": line, "amount": amount[open_day].round(2)}))
    return pd.concat(parts, ignore_index=True)


def with_outage(tx: pd.DataFrame, first: str, last: str) -> pd.DataFrame:
    """The log without any line from day `first` to day `last`: an export with a hole."""
    ts = tx["timestamp"].dt.normalize()
    return tx[(ts < pd.Timestamp(first)) | (ts > pd.Timestamp(last))].reset_index(drop=True)


def seasonal_series(n: int, freq: str = "MS", start: str = "2020-01-01", level: float = 1000.0,
                    swing: float = 0.9, period: int = 12, noise: float = 0.1, seed: int = 0,
                    name: str = "s") -> pd.Series:
    """A strictly positive series whose season swings between (1 - swing) and (1 + swing) of its level."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = level * (1 + swing * np.sin(2 * np.pi * t / period)) * rng.lognormal(0, noise, n)
    return pd.Series(y, index=pd.date_range(start, periods=n, freq=freq), name=name)


def long_frame(series: dict[str, pd.Series]) -> pd.DataFrame:
    """The engine's series frame (series_id, region, product_line, ds, y) of named series."""
    out = pd.concat([pd.DataFrame({"series_id": sid, "region": sid, "product_line": "", "ds": y.index,
                                   "y": y.to_numpy(float)}) for sid, y in series.items()], ignore_index=True)
    return out.astype({"series_id": "string", "region": "string", "product_line": "string",
                       "ds": "datetime64[ns]", "y": "float64"})



# Region (share of revenue) and product line (share of days it sells on, day it launches) of hierarchy_log.
DOMINANT = (("North", 0.75), ("South", 0.18), ("East", 0.07))
SPARSE = (("Hardware", 1.0, 0), ("Services", 0.08, 0), ("Software", 0.5, 200))


def hierarchy_log(start: str = "2023-01-02", days: int = 3 * 365, seed: int = 7,
                  regions: tuple[tuple[str, float], ...] = DOMINANT,
                  lines: tuple[tuple[str, float, int], ...] = SPARSE, level: float = 2000.0,
                  swing: float = 0.3) -> pd.DataFrame:
    """Daily order lines of a company shaped like real ones: one region dominates (`regions`: name, share of
    revenue), some product lines sell on few days in lumps (`lines`: name, share of days with a sale, day of
    launch), some launch late (a short history). Yearly season, lognormal noise; seeded."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=days, freq="D")
    season = 1 + swing * np.sin(2 * np.pi * ts.dayofyear.to_numpy() / 365.25)
    parts = []
    for reg, share in regions:
        for line, density, launch in lines:
            sells = (rng.random(days) < density) & (np.arange(days) >= launch)
            amount = level * share * season * rng.lognormal(0, 0.4, days) / (density * len(lines))
            parts.append(pd.DataFrame({"timestamp": ts[sells] + pd.Timedelta(hours=10), "region": reg,
                                       "product_line": line, "amount": amount[sells].round(2)}))
    return pd.concat(parts, ignore_index=True)

# ---------------------------------------------------------------- transaction logs as exported (text)
INVOICE_COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
                   "Country"]
INVOICE_MAPPING = {"order_id": "InvoiceNo", "customer_id": "CustomerID", "timestamp": "InvoiceDate", "amount": "",
                   "quantity": "Quantity", "unit_price": "UnitPrice", "discount": "", "region": "",
                   "country": "Country", "product": "StockCode", "product_line": "", "customer_name": ""}
CATALOGUE = [("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 2.55), ("71053", "WHITE METAL LANTERN", 3.39),
             ("22633", "HAND WARMER UNION JACK", 1.85), ("84879", "ASSORTED COLOUR BIRD ORNAMENT", 1.69),
             ("22752", "SET 7 BABUSHKA NESTING BOXES", 7.65), ("21730", "GLASS STAR FROSTED T-LIGHT HOLDER", 4.25)]
FEES = [("BANK CHARGES", "Bank Charges", "15.00"), ("M", "Manual", "-3.50"), ("AMAZONFEE", "AMAZON FEE", "-5.40")]


def invoice_log(n_customers: int = 150, start: str = "2023-12-01", days: int = 730, seed: int = 5,
                countries: tuple[str, ...] = ("United Kingdom", "Germany", "France", "EIRE", "Spain"),
                bad_debt: int = 2, fees: int = 3) -> pd.DataFrame:
    """A UK online retailer's invoice lines, as text (a CSV export read as strings; "" where a cell is empty).

    Customers join over the first 80% of the span and buy at their own rate until they leave (some never do);
    an invoice holds 1-4 stock lines (Quantity x UnitPrice, US dates like 12/1/2023 8:26). Like the real log:
    cancellations ("C" + invoice number, negative quantity, days later), postage lines (POST), guest lines
    without a customer, `bad_debt` "Adjust bad debt" lines (invoice A..., code B, a negative price, no customer),
    and `fees` fee lines cycling through FEES (BANK CHARGES; M and AMAZONFEE with a negative price) booked on a
    customer. Most customers are in the first country; map the others or not to test segments."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    first = rng.integers(0, int(days * 0.8), n_customers)
    rate = np.exp(rng.normal(np.log(1 / 30), 0.6, n_customers))          # invoices per day while a customer
    life = np.where(rng.random(n_customers) < 0.3, days, rng.exponential(250, n_customers)).astype(int)
    weights = np.array([0.8] + [0.2 / max(1, len(countries) - 1)] * (len(countries) - 1))[:len(countries)]
    country = rng.choice(len(countries), n_customers, p=weights / weights.sum())
    rows: list[tuple[int, list[str]]] = []          # (minute since start, row)
    number = 536365
    for c in range(n_customers):
        day = int(first[c])
        last = min(days - 1, int(first[c]) + int(life[c]))
        while day <= last:
            minute = day * 1440 + int(rng.integers(8 * 60, 18 * 60))
            guest = rng.random() < 0.02
            cust = "" if guest else str(12346 + c)
            lines = rng.choice(len(CATALOGUE), int(rng.integers(1, 5)), replace=False)
            for k in lines:
                code, desc, price = CATALOGUE[k]
                rows.append((minute, [str(number), code, desc, str(int(rng.integers(1, 25))), "", f"{price:.2f}",
                                      cust, countries[country[c]]]))
            if rng.random() < 0.05:
                rows.append((minute, [str(number), "POST", "POSTAGE", "1", "", "18.00", cust, countries[country[c]]]))
            back = minute + int(rng.integers(1, 21)) * 1440
            if rng.random() < 0.04 and back < days * 1440:
                code, desc, price = CATALOGUE[lines[0]]
                number += 1
                rows.append((back, [f"C{number}", code, desc, "-1", "", f"{price:.2f}", cust, countries[country[c]]]))
            number += 1
            day += max(1, int(rng.exponential(1 / rate[c])))
    for i in range(bad_debt):
        number += 1
        rows.append(((days // 2 + i) * 1440 + 14 * 60, [f"A{number}", "B", "Adjust bad debt", "1", "", "-11062.06", "",
                                                        countries[0]]))
    for i in range(fees):
        code, desc, price = FEES[i % len(FEES)]
        number += 1
        rows.append(((days // 3 + 7 * i) * 1440 + 10 * 60, [str(number), code, desc, "1", "", price, str(12346 + i),
                                                             countries[0]]))
    rows.sort(key=lambda r: (r[0], r[1][0]))
    for minute, row in rows:
        t = t0 + pd.Timedelta(minutes=minute)
        row[4] = f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}"
    return pd.DataFrame([r for _, r in rows], columns=INVOICE_COLUMNS, dtype=object)


INVOICE_RULES = {"date_format": "%m/%d/%Y %H:%M", "cancelled_prefix": "C", "segment_by": "country",
                 "non_product_codes": ["POST", "B", "M", "BANK CHARGES", "AMAZONFEE"],
                 "country_regions": {"United Kingdom": "UK", "Germany": "Europe", "France": "Europe"}}
PURCHASE_COLUMNS = ["customer_id", "date", "quantity", "amount"]
PURCHASE_MAPPING = {"order_id": "", "customer_id": "customer_id", "timestamp": "date", "amount": "amount",
                    "quantity": "quantity", "unit_price": "", "discount": "", "region": "", "country": "",
                    "product": "", "product_line": "", "customer_name": ""}
PURCHASE_RULES = {"date_format": "%Y%m%d", "segment_by": "none"}


def purchase_log(n_customers: int = 400, start: str = "1997-01-01", days: int = 545, seed: int = 11,
                 repeat_share: float = 0.35) -> pd.DataFrame:
    """A CD retailer's purchases, one row per purchase and no order id, as text: customer_id, date (YYYYMMDD),
    quantity, amount. Every customer's first purchase falls in the first quarter (one cohort); most buy only
    once, `repeat_share` of them come back at their own rate. A customer buying two titles on a day is two rows
    with the same date: one order."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    rows = []
    for c in range(n_customers):
        day = int(rng.integers(0, 90))
        repeat = rng.random() < repeat_share
        gap = rng.exponential(60) + 7
        while day < days:
            for _ in range(1 + int(rng.random() < 0.15)):          # sometimes two rows on one day
                qty = int(rng.integers(1, 4))
                rows.append((day, c, f"{c + 1:05d}", (t0 + pd.Timedelta(days=day)).strftime("%Y%m%d"), str(qty),
                             f"{qty * rng.uniform(9, 16):.2f}"))
            if not repeat:
                break
            day += max(1, int(rng.exponential(gap)))
    rows.sort()
    return pd.DataFrame([r[2:] for r in rows], columns=PURCHASE_COLUMNS, dtype=object)


def as_raw(log: pd.DataFrame, mapping: dict[str, str], name: str = "log.csv") -> Raw:
    """What the CSV reader gives for a text log: the mapped columns as Arrow text ("" -> missing), under their
    canonical names, rows numbered from 2 (the header is row 1)."""
    mapped = {k: v for k, v in mapping.items() if v}
    frame = pd.DataFrame({k: log[v] for k, v in mapped.items()}).astype("string[pyarrow]")
    return Raw(frame=frame.mask(frame == ""), name=name, first_row=2, source_columns=mapped)
