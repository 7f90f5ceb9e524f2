"""forecast.file: long CSV in, forecast CSV out; frequency aliases, date conventions, bad input."""

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
    out_path, out = ff.forecast_file(src, tmp_path / "out.csv", params("M"), "M")
    back = pd.read_csv(out_path)
    assert list(back.columns) == ff.OUTPUT_COLUMNS
    assert len(back) == 2 * 4 and sorted(back["unique_id"].unique()) == ["a", "b"]
    # month-end input gives month-end output, continuing right after the last input date
    assert list(back.loc[back["unique_id"] == "a", "ds"]) == ["2022-01-31", "2022-02-28", "2022-03-31",
                                                              "2022-04-30"]
    assert (back["yhat_lower"] <= back["yhat"]).all() and (back["yhat"] <= back["yhat_upper"]).all()
    assert set(back["model"]) <= set(FAST)
    assert back["yhat"].between(40, 180).all()  # the series live around 100 +- 30
    pd.testing.assert_frame_equal(back, out.assign(ds=out["ds"].dt.strftime("%Y-%m-%d")), check_dtype=False)


def test_output_bytes_are_reproducible(tmp_path):
    src = write(long_frame(), tmp_path / "in.csv")
    a = ff.forecast_file(src, tmp_path / "a.csv", params("MS"), "MS")[0].read_bytes()
    b = ff.forecast_file(src, tmp_path / "b.csv", params("MS"), "MS")[0].read_bytes()
    assert a == b and a.endswith(b"\n") and b"\r" not in a


def test_weekly_sunday_labels_stay_sundays(tmp_path):
    src = write(long_frame("W-SUN", n=30, start="2023-01-01"), tmp_path / "in.csv")
    cfg = params("W-SUN", horizon=3, folds=2, models=["seasonal_naive"])
    _, out = ff.forecast_file(src, tmp_path / "out.csv", cfg, "W-SUN")
    assert (out["ds"].dt.dayofweek == 6).all()
    last = pd.Timestamp("2023-01-01") + pd.Timedelta(weeks=29)
    assert out["ds"].min() == last + pd.Timedelta(weeks=1)


def test_quarterly_q_alias_runs_on_the_q_engine(tmp_path):
    src = write(long_frame("QS", n=24, start="2015-01-01"), tmp_path / "in.csv")
    cfg = params("Q", horizon=4)
    assert cfg.freq == "Q"
    _, out = ff.forecast_file(src, tmp_path / "out.csv", cfg, "Q")
    assert list(out.loc[out["unique_id"] == "a", "ds"].dt.strftime("%Y-%m-%d")) == [
        "2021-01-01", "2021-04-01", "2021-07-01", "2021-10-01"]


def test_rows_in_any_order_give_the_same_forecast(tmp_path):
    df = long_frame()
    a = ff.forecast_file(write(df, tmp_path / "a_in.csv"), tmp_path / "a.csv", params(), "M")[0]
    b = ff.forecast_file(write(df.sample(frac=1, random_state=3), tmp_path / "b_in.csv"), tmp_path / "b.csv",
                         params(), "M")[0]
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(("alias", "freq", "day"), [("D", "D", None), ("w", "W", None), ("W-TUE", "W", 1),
                                                    ("MS", "M", None), ("ME", "M", None), ("QE", "Q", None)])
def test_engine_freq_aliases(alias, freq, day):
    assert ff.engine_freq(alias) == (freq, day)


# ------------------------------------------------------------------ negative
def check_error(exc: pytest.ExceptionInfo, path: Path, row: int | None, column: str | None) -> None:
    assert exc.value.file == str(path)
    assert exc.value.row == row and exc.value.column == column
    assert str(path) in str(exc.value)


def run_bad(tmp_path: Path, df: pd.DataFrame, alias: str = "M", cfg=None) -> tuple[pytest.ExceptionInfo, Path]:
    src = write(df, tmp_path / "bad.csv")
    out = tmp_path / "out.csv"
    with pytest.raises(DataError) as exc:
        ff.forecast_file(src, out, cfg or params(alias), alias)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]  # no temp file left either
    return exc, src


def test_missing_column(tmp_path):
    exc, src = run_bad(tmp_path, long_frame().rename(columns={"y": "value"}))
    check_error(exc, src, None, "y")
    assert "missing column(s) y" in str(exc.value) and "value" in str(exc.value)


def test_unknown_frequency():
    with pytest.raises(DataError, match="unknown frequency 'H'"):
        ff.file_params("H", 4)


def test_duplicate_date_within_a_series(tmp_path):
    df = long_frame()
    df = pd.concat([df.iloc[:5], df.iloc[[3]], df.iloc[5:]], ignore_index=True)  # data row 5 repeats row 3
    exc, src = run_bad(tmp_path, df)
    check_error(exc, src, 7, "ds")
    assert "duplicate date 2019-04-30 in series 'a'" in str(exc.value)


def test_same_date_in_two_series_is_fine(tmp_path):
    src = write(long_frame(), tmp_path / "in.csv")
    assert ff.parse_long(ff.read_long(src), "M", params())[0]["ds"].duplicated().any()


def test_too_short_series(tmp_path):
    df = long_frame()
    df = df[(df["unique_id"] == "a") | (df.index >= len(df) - 9)]  # b keeps 9 months; 2 x 4 + 3 = 11 needed
    exc, src = run_bad(tmp_path, df)
    check_error(exc, src, 38, "y")
    assert "series 'b' has 9 periods" in str(exc.value) and "needs at least 11" in str(exc.value)


def test_non_numeric_y(tmp_path):
    df = long_frame().astype({"y": object})
    df.loc[10, "y"] = "12,5 EUR"
    exc, src = run_bad(tmp_path, df)
    check_error(exc, src, 12, "y")
    assert "'12,5 EUR'" in str(exc.value)


def test_empty_y(tmp_path):
    df = long_frame().astype({"y": object})
    df.loc[0, "y"] = ""
    exc, src = run_bad(tmp_path, df)
    check_error(exc, src, 2, "y")
    assert "empty value" in str(exc.value)


def test_unparseable_ds(tmp_path):
    df = long_frame()
    df.loc[4, "ds"] = "31/05/2019"
    exc, src = run_bad(tmp_path, df)
    check_error(exc, src, 6, "ds")
    assert "cannot read date '31/05/2019'" in str(exc.value)


def test_date_off_the_frequency(tmp_path):
    df = long_frame()
    df.loc[2, "ds"] = "2019-03-15"
    exc, src = run_bad(tmp_path, df)
    check_error(exc, src, 4, "ds")


def test_gap_in_a_series(tmp_path):
    df = long_frame().drop(index=6)  # a loses 2019-07-31
    exc, src = run_bad(tmp_path, df)
    check_error(exc, src, 8, "ds")
    assert "skips a period before '2019-08-31'" in str(exc.value)


def test_weekday_pinned_by_alias(tmp_path):
    exc, src = run_bad(tmp_path, long_frame("W-SUN", n=30, start="2023-01-01"), "W-MON",
                       params("W-MON", horizon=3))
    check_error(exc, src, 2, "ds")


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


@pytest.mark.parametrize(("kw", "flag"), [({"horizon": 0}, "--horizon"), ({"folds": 0}, "--folds"),
                                          ({"models": ["ets"]}, "--models"),
                                          ({"models": ["seasonal_naive", "arima"]}, "--models"),
                                          ({"engine_name": "spark"}, "--engine")])
def test_bad_params(kw, flag):
    with pytest.raises(ParamsError, match=flag):
        ff.file_params("M", **{"horizon": 4, **kw})


def test_a_series_no_model_can_fit_fails_cleanly(tmp_path, monkeypatch):
    def broken(*_args, **_kw):
        raise ModelError("boom")

    monkeypatch.setitem(ff.engine.m.MODELS, "seasonal_naive", broken)
    monkeypatch.setitem(ff.engine.m.MODELS, "ets", broken)
    src = write(long_frame(), tmp_path / "in.csv")
    with pytest.raises(ModelError, match="no model could forecast series 'a'"):
        ff.forecast_file(src, tmp_path / "out.csv", params(), "M")
    assert not (tmp_path / "out.csv").exists()


def test_combination_is_accepted_next_to_base_models():
    cfg = ff.file_params("QS", 8, 2, ["seasonal_naive", "ets", "combination"], "local", 0)
    assert cfg.models == ["seasonal_naive", "ets", "combination"] and cfg.freq == "Q"
    with pytest.raises(ParamsError, match="--models"):
        ff.file_params("M", 4, models=["combination"])
