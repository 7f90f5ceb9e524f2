"""present.words: money, percentages, percentage points, dates and names, locale-independent."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from datastory.errors import DataError
from datastory.present import words as n


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (950, "950"), (9_540, "9.5 k"), (210_400, "210 k"), (999_999, "1.0 M"), (1_234_567, "1.2 M"),
    (-45_000, "-45 k"), (3.4e9, "3.4 bn"),
])
def test_fmt_money(value, text):
    assert n.fmt_money(value) == text


def test_fmt_pct_and_count():
    assert n.fmt_pct(0.08) == "8%"
    assert n.fmt_pct(0.043) == "4.3%"
    assert n.fmt_pct(0.25) == "25%"
    assert n.fmt_pct(0.08, signed=True) == "+8%"
    assert n.fmt_pct(-0.08, signed=True) == "\u22128%"
    assert n.fmt_pct(-0.0001) == "0%"
    assert n.fmt_count(1234567) == "1,234,567"
    assert n.fmt_money(math.nan) == "n/a"


def test_formatting_ignores_locale(monkeypatch):
    import locale
    try:
        locale.setlocale(locale.LC_ALL, "de_DE.UTF-8")
    except locale.Error:
        pytest.skip("de_DE locale not installed")
    try:
        assert n.fmt_money(1_234_567) == "1.2 M"
        assert n.fmt_count(1234) == "1,234"
    finally:
        locale.setlocale(locale.LC_ALL, "C")


@pytest.mark.parametrize("bad", ["12", None, True])
def test_formatters_reject_non_numbers(bad):
    with pytest.raises(DataError, match="expected a number"):
        n.fmt_money(bad)
    with pytest.raises(DataError, match="expected a number"):
        n.fmt_pct(bad)


def test_fmt_kpi_units_and_unknown():
    assert n.fmt_kpi("revenue", 2400.0) == "2.4 k"
    assert n.fmt_kpi("return_rate", 0.02) == "2.0%"  # rates keep a decimal, so their points can be read off
    assert n.fmt_kpi("orders", 88) == "88"
    with pytest.raises(DataError, match="unknown KPI 'margin'"):
        n.fmt_kpi("margin", 1)


def test_period_label():
    assert n.period_label(pd.Timestamp("2025-05-01"), "M") == "May 2025"
    assert n.period_label(pd.Timestamp("2025-04-01"), "Q") == "Q2 2025"
    with pytest.raises(DataError, match="unknown period 'W'"):
        n.period_label(pd.Timestamp("2025-04-01"), "W")


def test_trend_follows_the_shown_percentage():
    assert [n.trend(c) for c in (0.08, -0.08, 0.0004, -0.0004, 0.0, None, math.nan)] == \
        ["up", "down", "flat", "flat", "flat", "flat", "flat"]
    assert n.trend(0.0006) == "up" and n.fmt_pct(0.0006) == "0.1%"  # shown as non-zero, so not flat


def test_rates_change_in_percentage_points_never_relative():
    assert n.fmt_pt(-0.002) == "\u22120.2 pt"
    assert n.fmt_pt(0.013) == "+1.3 pt"
    assert n.fmt_pt(0.00001) == "0.0 pt"
    item = {"value": 0.012, "previous": 0.014, "change": 0.012 / 0.014 - 1}
    assert n.kpi_move("return_rate", item) == "Return rate 1.4% \u2192 1.2%, \u22120.2 pt"
    assert "%" not in n.kpi_delta("return_rate", item)  # never the relative -14%
    assert n.kpi_trend("return_rate", item) == "down"
    # the figures shown add up: a move that one decimal would hide gets two, on all three figures
    assert n.rate_pair(0.0116, 0.0124) == ("1.24%", "1.16%", "\u22120.08 pt")
    assert n.rate_pair(0.0121, 0.01209) == ("1.2%", "1.2%", "0.0 pt")  # no visible move: flat
    assert n.kpi_trend("return_rate", {"value": 0.0121, "previous": 0.01209, "change": 0.001}) == "flat"
    assert n.rate_pair(0.0149, 0.0152) == ("1.52%", "1.49%", "\u22120.03 pt")
    assert n.kpi_delta("revenue", {"value": 108.0, "previous": 100.0, "change": 0.08}) == "+8%"
    assert n.kpi_delta("revenue", {"value": 5.0, "previous": 0.0, "change": None}) == "n/a"
    with pytest.raises(DataError, match="fmt_pt: expected a number"):
        n.fmt_pt("0.1")




def test_accuracy_cells_better_worse_and_not_backtested():
    m = {"smape": 0.12, "naive_smape": 0.16, "folds": 3, "baseline": "seasonal naive"}
    assert n.accuracy_cells(m) == ("12%", "25% better")
    assert n.accuracy_cells({**m, "smape": 0.20}) == ("20%", "25% worse")
    assert n.accuracy_cells({**m, "smape": 0.16}) == ("16%", "no better")
    assert n.accuracy_cells({**m, "naive_smape": None}) == ("12%", "n/a")
    assert n.accuracy_cells({**m, "folds": 0}) == ("not backtested", "")
    assert n.accuracy_cells({**m, "smape": float("nan")}) == ("not backtested", "")
    assert n.accuracy_cells(None) == ("not backtested", "")


def test_baseline_words_name_the_baseline_that_was_used():
    assert n.baseline_words("seasonal naive", "M") == "repeating last year's figures"
    assert n.baseline_words("seasonal naive", "D") == "repeating the same weekday of the week before"
    assert n.baseline_words("naive", "W") == "repeating the latest week's figure"
    assert n.baseline_words(None, "?") == "repeating the latest period's figure"


def test_model_names_as_a_reader_says_them():
    assert n.model_name("ets") == "exponential smoothing"
    assert n.model_name("combination") == "weighted average of the best models"
    assert n.model_name("something_new") == "something_new" and n.model_name(None) == ""
