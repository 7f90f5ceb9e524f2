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
from ..errors import DataError, ModelError, ParamsError
from . import engine
from .scoring import min_length
from .series import OFFSET, PERIOD

INPUT_COLUMNS = ("unique_id", "ds", "y")
OUTPUT_COLUMNS = ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model"]
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
                engine_name: str | None = None, seed: int | None = None) -> ForecastParams:
    """Validated forecast params for a file run; unset options keep the pipeline's defaults."""
    eng, _ = engine_freq(freq)
    given = {"freq": eng, "horizon": horizon, "folds": folds, "models": models, "engine": engine_name,
             "seed": seed}
    try:
        return ForecastParams(**{k: v for k, v in given.items() if v is not None})
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        flag = str(err["loc"][0]) if err["loc"] else "params"
        raise ParamsError(f"--{flag}: {err['msg']} (got {err.get('input')!r})",
                          fix="see `datastory forecast-file --help`") from None


def _row(pos: int) -> int:
    """Spreadsheet row of data row `pos` (0-based): the header is row 1."""
    return int(pos) + 2


def _calendar(ds: pd.Series, rows: np.ndarray, alias: str, file: str) -> Calendar:
    """Which labelling convention the dates follow; DataError at the first date that breaks it."""
    freq, pinned = engine_freq(alias)
    idx = pd.DatetimeIndex(ds)
    if freq == "D":
        return Calendar("D")
    if freq == "W":
        day = pinned if pinned is not None else int(idx[0].dayofweek)
        bad = np.flatnonzero(idx.dayofweek != day)
        if len(bad):
            i = int(bad[0])
            raise DataError(f"weekly dates must all fall on the same weekday ({WEEKDAYS[day]}); "
                            f"{idx[i]:%Y-%m-%d} is a {WEEKDAYS[idx[i].dayofweek]}",
                            file=file, row=_row(rows[i]), column="ds",
                            fix="label every week by the same weekday, or pass the matching --freq W-XXX")
        return Calendar("W", weekday=day)
    per = idx.to_period(PERIOD[freq])
    is_start = np.asarray(idx == per.start_time.normalize())
    is_end = np.asarray(idx == per.end_time.normalize())
    at_end = bool(is_end[0] and not is_start[0])
    ok = is_end if at_end else is_start
    bad = np.flatnonzero(~ok)
    if len(bad):
        i = int(bad[0])
        word = "month" if freq == "M" else "quarter"
        side = "last" if at_end else "first"
        raise DataError(f"{word}ly dates must all be the {side} day of their {word} (like the first row); "
                        f"{idx[i]:%Y-%m-%d} is not", file=file, row=_row(rows[i]), column="ds",
                        fix=f"label every {word} by its first day (or every one by its last day)")
    return Calendar(freq, at_end=at_end)


def parse_long(raw: pd.DataFrame, alias: str, cfg: ForecastParams, file: str = "input") -> tuple[
        pd.DataFrame, Calendar]:
    """Check a long table read as text (unique_id, ds, y) and return it typed and sorted, with its Calendar.

    Raises a DataError naming file, spreadsheet row and column for: missing columns, no rows, an empty
    unique_id, an unparseable ds, a non-numeric or missing y, dates off the frequency's labels, a
    duplicate date within a series, a gap in a series, and a series too short to backtest with cfg.
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
    bad = ds.isna().to_numpy()
    if bad.any():
        i = int(bad.argmax())
        raise DataError(f"cannot read date {raw['ds'].iloc[i]!r}", file=file, row=_row(i), column="ds",
                        fix="write dates as YYYY-MM-DD")
    if getattr(ds.dt, "tz", None) is not None:
        ds = ds.dt.tz_localize(None)
    if (ds != ds.dt.normalize()).any():
        i = int((ds != ds.dt.normalize()).to_numpy().argmax())
        raise DataError(f"date {raw['ds'].iloc[i]!r} has a time of day; periods are labelled by dates",
                        file=file, row=_row(i), column="ds", fix="write dates as YYYY-MM-DD")
    ytext = raw["y"].astype("string").str.strip()
    y = pd.to_numeric(ytext, errors="coerce").astype("float64")
    bad = ~np.isfinite(y.to_numpy())
    if bad.any():
        i = int(bad.argmax())
        shown = "an empty value" if pd.isna(ytext.iloc[i]) or ytext.iloc[i] == "" else repr(raw["y"].iloc[i])
        raise DataError(f"y must be a finite number, got {shown}", file=file, row=_row(i), column="y",
                        fix="fill gaps (e.g. with 0) and remove text from the y column")
    df = pd.DataFrame({"unique_id": uid.astype(str).to_numpy(), "ds": ds.astype("datetime64[ns]").to_numpy(),
                       "y": y.to_numpy(), "row": np.arange(len(raw))})
    df = df.sort_values(["unique_id", "ds", "row"], kind="stable").reset_index(drop=True)
    dup = df.duplicated(["unique_id", "ds"], keep="first").to_numpy()
    if dup.any():
        i = int(dup.argmax())
        raise DataError(f"duplicate date {df['ds'].iloc[i]:%Y-%m-%d} in series {df['unique_id'].iloc[i]!r}",
                        file=file, row=_row(df["row"].iloc[i]), column="ds",
                        fix="keep one row per series and period (sum or deduplicate first)")
    cal = _calendar(df["ds"], df["row"].to_numpy(), alias, file)
    df["ds"] = cal.to_engine(df["ds"])
    need = min_length(cfg)
    for sid, grp in df.groupby("unique_id", sort=True):
        expected = pd.date_range(grp["ds"].iloc[0], periods=len(grp), freq=OFFSET[cal.freq])
        gaps = np.flatnonzero(expected != pd.DatetimeIndex(grp["ds"]))
        if len(gaps):
            i = int(gaps[0])
            row = int(grp["row"].iloc[i])
            raise DataError(f"series {sid!r} skips a period before {str(raw['ds'].iloc[row]).strip()!r} "
                            f"(freq {alias})", file=file, row=_row(row), column="ds",
                            fix="add the missing periods (with y = 0 if nothing happened) or check --freq")
        if len(grp) < need:
            raise DataError(f"series {sid!r} has {len(grp)} periods; a backtest of {cfg.folds} fold(s) x "
                            f"horizon {cfg.horizon} needs at least {need}", file=file,
                            row=_row(grp["row"].iloc[0]), column="y",
                            fix="lower --folds or --horizon, or drop that series")
    return df.drop(columns="row"), cal


def to_series_long(df: pd.DataFrame) -> pd.DataFrame:
    """The engine's series frame (series_id, region, product_line, ds, y) of a parsed long table."""
    out = pd.DataFrame({"series_id": df["unique_id"], "region": df["unique_id"], "product_line": "",
                        "ds": df["ds"], "y": df["y"]})
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


def to_csv(out: pd.DataFrame) -> str:
    """Deterministic CSV text: ISO dates, 6 decimals, LF line ends."""
    text = out.loc[:, OUTPUT_COLUMNS].copy()
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


def forecast_file(input_path: str | os.PathLike, out_path: str | os.PathLike, cfg: ForecastParams,
                  alias: str, progress: bool = False) -> tuple[Path, pd.DataFrame]:
    """Read, check, forecast every series, write the output CSV atomically; return its path and frame.

    Nothing is written unless every check passes and every series was forecast.
    """
    raw = read_long(input_path)
    df, cal = parse_long(raw, alias, cfg, file=str(input_path))
    result = engine.run(to_series_long(df), cfg, progress=progress)
    out = output_frame(result, cal)
    failed = sorted(set(df["unique_id"]) - set(out["unique_id"]))
    if failed:
        why = result.metrics["series"][failed[0]].get("error")
        raise ModelError(f"no model could forecast series {failed[0]!r} ({len(failed)} series failed): {why}",
                         file=str(input_path), fix="check that series' values")
    return io.write_text(to_csv(out), out_path), out
