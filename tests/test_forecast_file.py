"""forecast.file: long CSV in, forecast and per-series summary CSV out; frequency aliases, date conventions,\ngaps, short series, and bad input that skips one series or refuses the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datastory.errors import DataError, ModelError, ParamsError
from datastory.forecast import file as ff

FAST = ["seasonal_naive", "ets"]


def long_frame(freq: str = "ME", n: int = 36, ids: tuple[str, ...] = ("a", "b"), start: str = "2019-01-31",
               seed: int = 1) -> pd.DataFrame:
    """Seasonal series with noise, dates as text exactly as a user's CSV holds them."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(start, periods=n, freq=freq).strftime("%Y-%m-%d")
    parts = []
    for i, sid in enumerate(ids):
        y = 100 + 10 * i + 20 * np.sin(2 * np.pi * np.arange(n) / 12) + rng.normal(0, 2, n)
        parts.append(pd.DataFrame({"unique_id": sid, "ds": ds, "y": y.round(3)}))
    return pd.concat(parts, ignore_index=True)


def write(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def params(freq: str = "M", horizon: int = 4, folds: int = 2, models=None):
    return ff.file_params(freq, horizon, folds, models or FAST, "local", 0)


# ------------------------------------------------------------------ round trips
def test_round_trip_monthly_month_end(tmp_path):
    src = write(long_frame(), tmp_path / "in.csv")
    run = ff.forecast_file(src, tmp_path / "out.csv", params("M"), "M")
    back = pd.read_csv(run.out_path)
    assert list(back.columns) == ff.OUTPUT_COLUMNS
    assert len(back) == 2 * 4 and sorted(back["unique_id"].unique()) == ["a", "b"]
    # month-end input gives month-end output, continuing right after the last input date
    assert list(back.loc[back["unique_id"] == "a", "ds"]) == ["2022-01-31", "2022-02-28", "2022-03-31",
                                                              "2022-04-30"]
    assert (back["yhat_lower"] <= back["yhat"]).all() and (back["yhat"] <= back["yhat_upper"]).all()
    assert set(back["model"]) <= set(FAST)
    assert back["yhat"].between(40, 180).all()  # the series live around 100 +- 30
    pd.testing.assert_frame_equal(back, run.forecast.assign(ds=run.forecast["ds"].dt.strftime("%Y-%m-%d")),
                                  check_dtype=False)
    summary = pd.read_csv(run.summary_path, keep_default_na=False)
    assert run.summary_path == tmp_path / "out.series.csv"
    assert list(summary.columns) == ff.SUMMARY_COLUMNS
    assert list(summary["status"]) == ["forecast", "forecast"] and (summary["folds"] == 2).all()


def test_output_bytes_are_reproducible(tmp_path):
    src = write(long_frame(), tmp_path / "in.csv")
    a = ff.forecast_file(src, tmp_path / "a.csv", params("MS"), "MS")
    b = ff.forecast_file(src, tmp_path / "b.csv", params("MS"), "MS")
    assert a.out_path.read_bytes() == b.out_path.read_bytes() and a.out_path.read_bytes().endswith(b"\n")
    assert a.summary_path.read_bytes() == b.summary_path.read_bytes() and b"\r" not in a.out_path.read_bytes()


def test_weekly_sunday_labels_stay_sundays(tmp_path):
    src = write(long_frame("W-SUN", n=30, start="2023-01-01"), tmp_path / "in.csv")
    cfg = params("W-SUN", horizon=3, folds=2, models=["seasonal_naive"])
    out = ff.forecast_file(src, tmp_path / "out.csv", cfg, "W-SUN").forecast
    assert (out["ds"].dt.dayofweek == 6).all()
    last = pd.Timestamp("2023-01-01") + pd.Timedelta(weeks=29)
    assert out["ds"].min() == last + pd.Timedelta(weeks=1)


def test_quarterly_q_alias_runs_on_the_q_engine(tmp_path):
    src = write(long_frame("QS", n=24, start="2015-01-01"), tmp_path / "in.csv")
    cfg = params("Q", horizon=4)
    assert cfg.freq == "Q"
    out = ff.forecast_file(src, tmp_path / "out.csv", cfg, "Q").forecast
    assert list(out.loc[out["unique_id"] == "a", "ds"].dt.strftime("%Y-%m-%d")) == [
        "2021-01-01", "2021-04-01", "2021-07-01", "2021-10-01"]


def test_rows_in_any_order_give_the_same_forecast(tmp_path):
    df = long_frame()
    a = ff.forecast_file(write(df, tmp_path / "a_in.csv"), tmp_path / "a.csv", params(), "M").out_path
    b = ff.forecast_file(write(df.sample(frac=1, random_state=3), tmp_path / "b_in.csv"), tmp_path / "b.csv",
                         params(), "M").out_path
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(("alias", "freq", "day"), [("D", "D", None), ("w", "W", None), ("W-TUE", "W", 1),
                                                    ("MS", "M", None), ("ME", "M", None), ("QE", "Q", None)])
def test_engine_freq_aliases(alias, freq, day):
    assert ff.engine_freq(alias) == (freq, day)


# ------------------------------------------------------------------ gaps and short series
def test_a_missing_period_is_interpolated_by_default_and_never_scored(tmp_path):
    df = long_frame().drop(index=[6, 20])  # a loses 2019-07-31, and 2020-09-30
    run = ff.forecast_file(write(df, tmp_path / "in.csv"), tmp_path / "out.csv", params(), "M")
    assert len(run.forecast) == 8 and np.isfinite(run.forecast["yhat"]).all()
    assert params().fill == "interpolate"


def test_an_empty_y_is_a_missing_period_and_zero_fill_is_a_choice(tmp_path):
    df = long_frame().astype({"y": object})
    df.loc[33, "y"] = ""  # a's third-last month
    src = write(df, tmp_path / "in.csv")
    interp = ff.forecast_file(src, tmp_path / "i.csv", params(), "M")
    zero = ff.forecast_file(src, tmp_path / "z.csv", ff.file_params("M", 4, 2, FAST, "local", 0, "zero"), "M")
    a_i = interp.forecast[interp.forecast["unique_id"] == "a"]["yhat"].to_numpy()
    a_z = zero.forecast[zero.forecast["unique_id"] == "a"]["yhat"].to_numpy()
    assert not np.allclose(a_i, a_z)  # a 0 in the history pulls the forecast; an interpolated gap does not
    with pytest.raises(ParamsError, match="--fill"):
        ff.file_params("M", 4, fill="mean")


def test_short_series_get_fewer_folds_or_the_recent_level_and_say_so(tmp_path):
    df = long_frame()
    df = df[(df["unique_id"] == "a") | (df.index >= len(df) - 9)]  # b keeps 9 months
    run = ff.forecast_file(write(df, tmp_path / "in.csv"), tmp_path / "out.csv", params(horizon=6), "M")
    s = run.summary.set_index("unique_id")
    assert s.loc["a", "folds"] == 2 and s.loc["a", "note"] == ""
    assert s.loc["b", "status"] == "forecast" and s.loc["b", "model"] == "recent_level"
    assert s.loc["b", "note"].startswith("9 months of history: forecast from the recent level")
    assert len(run.forecast[run.forecast["unique_id"] == "b"]) == 6
    lines = ff.summary_lines(run.summary)
    assert lines[0] == "forecast 2 of 2 series" and "1 forecast series have a note" in lines[-1]


def test_real_weekly_co2_with_missing_weeks_runs_through(tmp_path):
    """statsmodels' Mauna Loa CO2 record: weekly, with missing weeks (real data that ships with a dependency).
    From 1975: 6 missing weeks, one as an empty y, the others as absent rows."""
    from statsmodels.datasets import co2

    data = co2.load_pandas().data["co2"].loc["1975":]  # weeks labelled by Saturday
    missing = data.index[data.isna()]
    assert len(missing) == 6
    df = pd.DataFrame({"unique_id": "mauna_loa", "ds": data.index.strftime("%Y-%m-%d"),
                       "y": data.map(lambda v: "" if pd.isna(v) else f"{v:.1f}").to_numpy()})
    df = df[~df["ds"].isin(missing[1:].strftime("%Y-%m-%d"))]
    run = ff.forecast_file(write(df, tmp_path / "co2.csv"), tmp_path / "out.csv",
                           ff.file_params("W-SAT", 26, 3, ["seasonal_naive", "theta", "ets", "combination"],
                                          "local", 0), "W-SAT")
    out = run.forecast
    assert len(out) == 26 and (out["ds"].dt.dayofweek == 5).all()
    assert out["ds"].min() == data.index[-1] + pd.Timedelta(weeks=1)
    assert out["yhat"].between(360, 380).all()  # the record ends around 370 ppm, late 2001
    s = run.summary.iloc[0]
    assert s["status"] == "forecast" and s["folds"] == 3 and s["backtest_mase"] < 1.0


# ------------------------------------------------------------------ negative
def check_error(exc: pytest.ExceptionInfo, path: Path, row: int | None, column: str | None) -> None:
    assert exc.value.file == str(path)
    assert exc.value.row == row and exc.value.column == column
    assert str(path) in str(exc.value)


def run_bad(tmp_path: Path, df: pd.DataFrame, alias: str = "M", cfg=None) -> tuple[pytest.ExceptionInfo, Path]:
    """A file the run must refuse as a whole: DataError, and nothing written."""
    src = write(df, tmp_path / "bad.csv")
    out = tmp_path / "out.csv"
    with pytest.raises(DataError) as exc:
        ff.forecast_file(src, out, cfg or params(alias), alias)
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]  # no output, no summary, no temp file
    return exc, src


def run_skipping(tmp_path: Path, df: pd.DataFrame, skipped: str, alias: str = "M", cfg=None,
                 input_problem: bool = True) -> str:
    """A file where one series has a problem: the others are forecast; that one is skipped with its reason."""
    src = write(df, tmp_path / "in.csv")
    run = ff.forecast_file(src, tmp_path / "out.csv", cfg or params(alias), alias)
    s = run.summary.set_index("unique_id")
    assert s.loc[skipped, "status"] == "skipped"
    assert set(run.forecast["unique_id"]) == set(s.index[s["status"] == "forecast"]) and len(run.forecast)
    assert skipped not in set(run.forecast["unique_id"])
    assert f"skipped {skipped}: " in "\n".join(ff.summary_lines(run.summary))
    assert (str(src) in s.loc[skipped, "note"]) == input_problem  # a bad cell is named by file, row and column
    return s.loc[skipped, "note"]


def test_missing_column(tmp_path):
    exc, src = run_bad(tmp_path, long_frame().rename(columns={"y": "value"}))
    check_error(exc, src, None, "y")
    assert "missing column(s) y" in str(exc.value) and "value" in str(exc.value)


def test_unknown_frequency():
    with pytest.raises(DataError, match="unknown frequency 'H'"):
        ff.file_params("H", 4)


def test_duplicate_date_within_a_series_skips_that_series(tmp_path):
    df = long_frame()
    df = pd.concat([df.iloc[:5], df.iloc[[3]], df.iloc[5:]], ignore_index=True)  # data row 5 repeats row 3
    note = run_skipping(tmp_path, df, "a")
    assert "row 7, column 'ds': duplicate date 2019-04-30 in series 'a'" in note and "(fix: " in note


def test_same_date_in_two_series_is_fine(tmp_path):
    src = write(long_frame(), tmp_path / "in.csv")
    df, _, problems = ff.parse_long(ff.read_long(src), "M")
    assert df["ds"].duplicated().any() and problems == {}


def test_a_series_of_two_periods_is_skipped_with_its_reason(tmp_path):
    df = long_frame()
    df = df[(df["unique_id"] == "a") | (df.index >= len(df) - 2)]
    note = run_skipping(tmp_path, df, "b", input_problem=False)
    assert note.startswith("only 2 months of history: too little to forecast")


def test_non_numeric_y_skips_that_series(tmp_path):
    df = long_frame().astype({"y": object})
    df.loc[10, "y"] = "12,5 EUR"
    note = run_skipping(tmp_path, df, "a")
    assert "row 12, column 'y'" in note and "'12,5 EUR'" in note


def test_unparseable_ds_skips_that_series(tmp_path):
    df = long_frame()
    df.loc[40, "ds"] = "31/05/2019"
    note = run_skipping(tmp_path, df, "b")
    assert "row 42, column 'ds': cannot read date '31/05/2019'" in note


def test_date_off_the_frequency_skips_that_series(tmp_path):
    df = long_frame()
    df.loc[2, "ds"] = "2019-03-15"
    assert "row 4, column 'ds'" in run_skipping(tmp_path, df, "a")


def test_every_series_off_the_pinned_weekday_refuses_the_file(tmp_path):
    exc, src = run_bad(tmp_path, long_frame("W-SUN", n=30, start="2023-01-01"), "W-MON",
                       params("W-MON", horizon=3))
    assert "no series can be forecast (2 series, each with a problem)" in str(exc.value)
    assert "row 2, column 'ds'" in str(exc.value) and "(MON)" in str(exc.value)


def test_empty_unique_id(tmp_path):
    df = long_frame()
    df.loc[3, "unique_id"] = " "
    exc, src = run_bad(tmp_path, df)
    check_error(exc, src, 5, "unique_id")


def test_no_rows_and_not_csv(tmp_path):
    exc, _ = run_bad(tmp_path, long_frame().iloc[:0])
    assert "no data rows" in str(exc.value)
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="cannot read as CSV"):
        ff.read_long(tmp_path / "bad.csv")


def test_missing_input_file(tmp_path):
    with pytest.raises(DataError, match="input file not found"):
        ff.forecast_file(tmp_path / "nope.csv", tmp_path / "out.csv", params(), "M")
    assert not (tmp_path / "out.csv").exists()


def test_nothing_forecastable_refuses_the_file_and_says_why(tmp_path):
    df = long_frame(n=2)
    exc, src = run_bad(tmp_path, df)
    assert "no series could be forecast (2 series)" in str(exc.value) and "too little to forecast" in str(exc.value)
    check_error(exc, src, None, None)


@pytest.mark.parametrize(("kw", "flag"), [({"horizon": 0}, "--horizon"), ({"folds": 0}, "--folds"),
                                          ({"models": ["ets"]}, "--models"),
                                          ({"models": ["seasonal_naive", "arima"]}, "--models"),
                                          ({"engine_name": "spark"}, "--engine"),
                                          ({"holidays": "Narnia"}, "--holidays")])
def test_bad_params(kw, flag):
    with pytest.raises(ParamsError, match=flag):
        ff.file_params("M", **{"horizon": 4, **kw})


def test_every_model_failing_still_forecasts_from_the_recent_level(tmp_path, monkeypatch):
    def broken(*_args, **_kw):
        raise ModelError("boom")

    monkeypatch.setitem(ff.engine.m.MODELS, "seasonal_naive", broken)
    monkeypatch.setitem(ff.engine.m.MODELS, "ets", broken)
    run = ff.forecast_file(write(long_frame(), tmp_path / "in.csv"), tmp_path / "out.csv", params(), "M")
    assert set(run.forecast["model"]) == {"recent_level"}
    assert run.summary["note"].str.contains("every model failed on this series").all()
    assert run.summary["note"].str.contains("ets: ModelError: boom").all()


def test_holidays_reach_prophet():
    assert ff.file_params("D", 14, holidays="NZ").prophet.country_holidays == "NZ"
    assert ff.file_params("D", 14).prophet.country_holidays == ""


def test_combination_is_accepted_next_to_base_models():
    cfg = ff.file_params("QS", 8, 2, ["seasonal_naive", "ets", "combination"], "local", 0)
    assert cfg.models == ["seasonal_naive", "ets", "combination"] and cfg.freq == "Q"
    with pytest.raises(ParamsError, match="--models"):
        ff.file_params("M", 4, models=["combination"])
