"""Forecast any long-format file (unique_id, ds, y) with the pipeline's engine: `datastory forecast-file`.

The pure core (`parse_long`, `to_series_long`, `output_frame`) checks the user's table and maps it to
the engine's series frame and back; `forecast_file` is the thin I/O edge (read CSV, run, write CSV
atomically). Every problem in the file is a DataError naming the file and, where it applies, the row
(counted like a spreadsheet: the header is row 1, the first data row is row 2) and the column.

Frequencies take the pandas-style aliases users type: D; W or W-MON..W-SUN; MS, M or ME; QS, Q or QE.
The engine labels weeks by their Monday and months/quarters by their first day; the file keeps its own
convention: weekly dates may fall on any one weekday (W-XXX pins it), monthly and quarterly dates may be
all period starts or all period ends, and the output dates follow the input's convention.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pydantic

from .. import io
from ..config import ForecastParams
from ..errors import DataError, ParamsError
from . import engine
from .series import OFFSET, PERIOD

INPUT_COLUMNS = ("unique_id", "ds", "y")
OUTPUT_COLUMNS = ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model"]
SUMMARY_COLUMNS = ["unique_id", "status", "model", "history", "folds", "backtest_mase", "baseline",
                   "baseline_mase", "coverage", "note"]
# A period missing from a file is more often "not recorded" (a counter's outage, a page-view log's lost day)
# than "nothing happened", so it is interpolated, never scored; --fill zero says a missing row is a 0.
FILE_FILL = "interpolate"
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
# alias -> (engine freq, pinned weekday for W-XXX or None)
FREQ_ALIASES: dict[str, tuple[str, int | None]] = {
    "D": ("D", None), "W": ("W", None), "MS": ("M", None), "M": ("M", None), "ME": ("M", None),
    "QS": ("Q", None), "Q": ("Q", None), "QE": ("Q", None), "QS-JAN": ("Q", None), "Q-DEC": ("Q", None),
    "QE-DEC": ("Q", None),
    **{f"W-{day}": ("W", i) for i, day in enumerate(WEEKDAYS)},
}


@dataclass(frozen=True)
class Calendar:
    """How the file labels its periods: engine freq, weekday of weekly labels, start/end of month/quarter."""

    freq: str
    weekday: int = 0          # weekly labels' weekday (Monday = 0)
    at_end: bool = False      # monthly/quarterly labels are the period's last day

    def to_engine(self, ds: pd.Series | pd.DatetimeIndex) -> pd.DatetimeIndex:
        """The engine's label of each period (Monday of the week, first day of the month/quarter)."""
        idx = pd.DatetimeIndex(ds)
        if self.freq == "W":
            return idx - pd.Timedelta(days=self.weekday)
        if self.freq in ("M", "Q"):
            return idx.to_period(PERIOD[self.freq]).start_time.astype("datetime64[ns]")
        return idx

    def from_engine(self, ds: pd.Series | pd.DatetimeIndex) -> pd.DatetimeIndex:
        """The file's label of each engine period label (the inverse of to_engine)."""
        idx = pd.DatetimeIndex(ds)
        if self.freq == "W":
            return idx + pd.Timedelta(days=self.weekday)
        if self.freq in ("M", "Q") and self.at_end:
            return idx.to_period(PERIOD[self.freq]).end_time.normalize().astype("datetime64[ns]")
        return idx


def engine_freq(alias: str) -> tuple[str, int | None]:
    """(engine freq D/W/M/Q, pinned weekday or None) for a pandas-style alias; DataError if unknown."""
    key = str(alias).strip().upper()
    if key not in FREQ_ALIASES:
        raise DataError(f"unknown frequency {alias!r}; allowed: D, W (or W-MON..W-SUN), MS/M/ME, QS/Q/QE",
                        column="freq", fix="pass --freq with one of those")
    return FREQ_ALIASES[key]


def file_params(freq: str, horizon: int, folds: int | None = None, models: list[str] | None = None,
                engine_name: str | None = None, seed: int | None = None, fill: str | None = None,
                holidays: str | None = None) -> ForecastParams:
    """Validated forecast params for a file run; unset options keep the pipeline's defaults, except the fill
    policy: a period missing from a file is interpolated unless `fill` says otherwise (FILE_FILL).
    `holidays`: a country code whose public holidays Prophet learns (prophet.country_holidays)."""
    eng, _ = engine_freq(freq)
    given = {"freq": eng, "horizon": horizon, "folds": folds, "models": models, "engine": engine_name,
             "seed": seed, "fill": fill or FILE_FILL,
             "prophet": {"country_holidays": holidays} if holidays else None}
    try:
        return ForecastParams(**{k: v for k, v in given.items() if v is not None})
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        flag = str(err["loc"][0]) if err["loc"] else "params"
        flag = "holidays" if flag == "prophet" else flag
        raise ParamsError(f"--{flag}: {err['msg']} (got {err.get('input')!r})",
                          fix="see `datastory forecast-file --help`") from None


def _row(pos: int) -> int:
    """Spreadsheet row of data row `pos` (0-based): the header is row 1."""
    return int(pos) + 2


def calendar_of(first: pd.Timestamp, alias: str) -> Calendar:
    """The labelling convention the file's first date sets (the weekday of weekly labels, month or quarter
    starts or ends); --freq W-XXX pins the weekday."""
    freq, pinned = engine_freq(alias)
    first = pd.Timestamp(first)
    if freq == "D":
        return Calendar("D")
    if freq == "W":
        return Calendar("W", weekday=pinned if pinned is not None else int(first.dayofweek))
    per = first.to_period(PERIOD[freq])
    at_end = first == per.end_time.normalize() and first != per.start_time.normalize()
    return Calendar(freq, at_end=bool(at_end))


def off_calendar(ds: pd.DatetimeIndex, cal: Calendar) -> tuple[int, str, str] | None:
    """(position, problem, fix) of the first date that breaks the file's labelling convention, or None."""
    idx = pd.DatetimeIndex(ds)
    if cal.freq == "D" or not len(idx):
        return None
    if cal.freq == "W":
        bad = np.flatnonzero(idx.dayofweek != cal.weekday)
        if not len(bad):
            return None
        i = int(bad[0])
        return (i, f"weekly dates must all fall on the same weekday ({WEEKDAYS[cal.weekday]}); "
                   f"{idx[i]:%Y-%m-%d} is a {WEEKDAYS[idx[i].dayofweek]}",
                "label every week by the same weekday, or pass the matching --freq W-XXX")
    per = idx.to_period(PERIOD[cal.freq])
    edge = per.end_time.normalize() if cal.at_end else per.start_time.normalize()
    bad = np.flatnonzero(np.asarray(idx != edge))
    if not len(bad):
        return None
    i = int(bad[0])
    word = "month" if cal.freq == "M" else "quarter"
    side = "last" if cal.at_end else "first"
    return (i, f"{word}ly dates must all be the {side} day of their {word} (like the file's first row); "
               f"{idx[i]:%Y-%m-%d} is not", f"label every {word} by its first day (or every one by its last day)")


def parse_long(raw: pd.DataFrame, alias: str, file: str = "input") -> tuple[pd.DataFrame, Calendar, dict[str, str]]:
    """Check a long table read as text (unique_id, ds, y): (the usable series typed and sorted, the file's
    Calendar, series id -> why that series is left out).

    A DataError (naming file, spreadsheet row and column) stops the run only for what concerns the whole
    file: missing columns, no rows, a row without a unique_id. Everything else is one series' problem and
    leaves only that series out, with its own message: an unparseable date, a y that is not a number, a
    duplicate date, a date off the frequency's labels. An empty y is a missing period, filled by the run's
    fill policy.
    """
    missing = [c for c in INPUT_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}; the file needs unique_id, ds, y "
                        f"(found: {', '.join(map(str, raw.columns)) or 'none'})", file=file,
                        column=missing[0], fix="rename the columns or reshape the file to long format")
    if raw.empty:
        raise DataError("no data rows, nothing to forecast", file=file)
    uid = raw["unique_id"].astype("string").str.strip()
    bad = (uid.isna() | (uid == "")).to_numpy()
    if bad.any():
        raise DataError("unique_id is empty", file=file, row=_row(bad.argmax()), column="unique_id",
                        fix="give every row the id of its series")
    text = raw["ds"].astype("string").str.strip()
    ds = pd.to_datetime(text, format="ISO8601", errors="coerce")
    if getattr(ds.dt, "tz", None) is not None:
        ds = ds.dt.tz_localize(None)
    ytext = raw["y"].astype("string").str.strip().fillna("")
    y = pd.to_numeric(ytext.mask(ytext == ""), errors="coerce").astype("float64")
    problems: dict[str, str] = {}

    def flag(mask: np.ndarray, problem: str, column: str, fix: str) -> None:
        for i in np.flatnonzero(mask):
            sid = str(uid.iloc[i])
            if sid not in problems:
                problems[sid] = DataError(problem.format(value=raw[column].iloc[i]), file=file, row=_row(i),
                                          column=column, fix=fix).render()

    flag(ds.isna().to_numpy(), "cannot read date {value!r}", "ds", "write dates as YYYY-MM-DD")
    flag((ds.notna() & (ds != ds.dt.normalize())).to_numpy(), "date {value!r} has a time of day; periods are "
         "labelled by dates", "ds", "write dates as YYYY-MM-DD")
    flag(((ytext != "") & ~np.isfinite(y)).to_numpy(), "y must be a finite number, got {value!r}", "y",
         "remove text from the y column (an empty y is a missing period)")
    df = pd.DataFrame({"unique_id": uid.astype(str).to_numpy(), "ds": ds.astype("datetime64[ns]").to_numpy(),
                       "y": y.to_numpy(), "row": np.arange(len(raw))})
    df = df[~df["unique_id"].isin(problems)]
    df = df.sort_values(["unique_id", "ds", "row"], kind="stable").reset_index(drop=True)
    dup = df.duplicated(["unique_id", "ds"], keep="first").to_numpy()
    for i in np.flatnonzero(dup):
        sid = df["unique_id"].iloc[i]
        problems.setdefault(sid, DataError(
            f"duplicate date {df['ds'].iloc[i]:%Y-%m-%d} in series {sid!r}", file=file,
            row=_row(df["row"].iloc[i]), column="ds",
            fix="keep one row per series and period (sum or deduplicate first)").render())
    df = df[~df["unique_id"].isin(problems)]
    first = df.loc[df["row"].idxmin(), "ds"] if len(df) else pd.Timestamp("2000-01-03")
    cal = calendar_of(first, alias)
    for sid, grp in df.groupby("unique_id", sort=True):
        off = off_calendar(pd.DatetimeIndex(grp["ds"]), cal)
        if off is not None:
            i, problem, fix = off
            problems[str(sid)] = DataError(problem, file=file, row=_row(grp["row"].iloc[i]), column="ds",
                                           fix=fix).render()
    df = df[~df["unique_id"].isin(problems)].copy()
    df["ds"] = cal.to_engine(df["ds"])
    return df.drop(columns="row").reset_index(drop=True), cal, problems


def to_series_long(df: pd.DataFrame, freq: str) -> pd.DataFrame:
    """The engine's series frame (series_id, region, product_line, ds, y) of a parsed long table: each series
    on every period from its first to its last date, a period the file lacks as y NaN."""
    parts = []
    for sid, grp in df.groupby("unique_id", sort=True):
        idx = pd.date_range(grp["ds"].min(), grp["ds"].max(), freq=OFFSET[freq])
        y = pd.Series(grp["y"].to_numpy(float), index=pd.DatetimeIndex(grp["ds"])).reindex(idx)
        parts.append(pd.DataFrame({"series_id": sid, "region": sid, "product_line": "", "ds": idx,
                                   "y": y.to_numpy()}))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["series_id", "region", "product_line", "ds", "y"])
    return out.astype({"series_id": "string", "region": "string", "product_line": "string",
                       "ds": "datetime64[ns]", "y": "float64"})


def output_frame(result: engine.ForecastResult, cal: Calendar) -> pd.DataFrame:
    """The forecast rows of an engine result in the file's columns and date convention."""
    fut = result.frame[result.frame["is_forecast"]]
    out = pd.DataFrame({"unique_id": fut["series_id"].astype(str).to_numpy(),
                        "ds": cal.from_engine(fut["ds"]),
                        "yhat": fut["yhat"].to_numpy(), "yhat_lower": fut["yhat_lower"].to_numpy(),
                        "yhat_upper": fut["yhat_upper"].to_numpy(), "model": fut["model"].astype(str).to_numpy()})
    return out.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)


def series_summary(metrics: dict, problems: dict[str, str]) -> pd.DataFrame:
    """One row per series of the file: what the run did with it (forecast or skipped), and why."""
    rows = []
    for sid, s in metrics.get("series", {}).items():
        forecast = s["status"] != "no_forecast"
        note = "; ".join(x for x in (s.get("notes"), s.get("error")) if x) or ""
        rows.append({"unique_id": sid, "status": "forecast" if forecast else "skipped",
                     "model": s["model"] if forecast else "", "history": s["history"], "folds": s["folds"],
                     "backtest_mase": s["mase"], "baseline": s["baseline"] or "",
                     "baseline_mase": s["naive_mase"], "coverage": s["coverage"], "note": note})
    for sid, why in problems.items():
        rows.append({"unique_id": sid, "status": "skipped", "model": "", "history": 0, "folds": 0,
                     "backtest_mase": np.nan, "baseline": "", "baseline_mase": np.nan, "coverage": np.nan,
                     "note": why.replace("\n  fix: ", " (fix: ") + (")" if "\n  fix: " in why else "")})
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return out.sort_values("unique_id", kind="stable").reset_index(drop=True)


def summary_lines(summary: pd.DataFrame, limit: int = 5) -> list[str]:
    """A few lines for stderr: how many series were forecast, and the first skipped or limited ones."""
    done = summary[summary["status"] == "forecast"]
    skipped = summary[summary["status"] == "skipped"]
    lines = [f"forecast {len(done)} of {len(summary)} series"
             + (f"; skipped {len(skipped)}" if len(skipped) else "")]
    for _, r in skipped.head(limit).iterrows():
        lines.append(f"  skipped {r['unique_id']}: {r['note']}")
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more skipped (see the summary file)")
    limited = done[done["note"] != ""]
    if len(limited):
        lines.append(f"  {len(limited)} forecast series have a note (short or gappy history; see the summary file)")
    return lines


def to_csv(out: pd.DataFrame, columns: list[str] = OUTPUT_COLUMNS) -> str:
    """Deterministic CSV text: ISO dates, 6 decimals, LF line ends."""
    text = out.loc[:, columns].copy()
    if "ds" in text.columns:
        text["ds"] = pd.to_datetime(text["ds"]).dt.strftime("%Y-%m-%d")
    return text.to_csv(index=False, float_format=f"%.{engine.DECIMALS}f", lineterminator="\n")


def read_long(path: str | os.PathLike) -> pd.DataFrame:
    """The file's cells as text (nothing guessed), or a DataError if it cannot be read as CSV."""
    path = Path(path)
    if not path.is_file():
        raise DataError("input file not found", file=str(path), fix="check the path")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read as CSV: {engine._describe(exc)}", file=str(path),
                        fix="save the file as UTF-8 CSV with a header row unique_id,ds,y") from None


def summary_path(out_path: str | os.PathLike) -> Path:
    """Where the per-series summary goes: beside the output, `forecast.csv` -> `forecast.series.csv`."""
    out = Path(out_path)
    return out.with_name(f"{out.stem}.series.csv")


@dataclass(frozen=True)
class FileRun:
    out_path: Path
    summary_path: Path
    forecast: pd.DataFrame
    summary: pd.DataFrame
    problems: dict[str, str]  # series id -> the input problem that left it out


def forecast_file(input_path: str | os.PathLike, out_path: str | os.PathLike, cfg: ForecastParams,
                  alias: str, progress: bool = False, summary_to: str | os.PathLike | None = None) -> FileRun:
    """Read, check, forecast every usable series; write the forecast CSV and the per-series summary CSV
    (atomically). A series that cannot be used or forecast is skipped with its reason in the summary; the
    run stops (DataError, nothing written) only when no series at all can be forecast."""
    raw = read_long(input_path)
    df, cal, problems = parse_long(raw, alias, file=str(input_path))
    if df.empty:
        first = next(iter(sorted(problems)))
        raise DataError(f"no series can be forecast ({len(problems)} series, each with a problem); "
                        f"the first: {problems[first]}", file=str(input_path))
    try:
        result = engine.run(to_series_long(df, cal.freq), cfg, progress=progress)
    except DataError as exc:
        raise DataError(exc.problem, file=str(input_path), fix=exc.fix) from None
    summary = series_summary(result.metrics, problems)
    out = output_frame(result, cal)
    target = Path(summary_to) if summary_to else summary_path(out_path)
    path = io.write_text(to_csv(out), out_path)
    return FileRun(path, io.write_text(to_csv(summary, SUMMARY_COLUMNS), target), out, summary, problems)
