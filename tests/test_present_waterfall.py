"""The waterfall: bars that chain from one period's revenue to the next, stable PNG bytes, no pyplot state."""

from __future__ import annotations

import dataclasses
import io
import sys

import pytest
from PIL import Image

from datastory.errors import DataError
from datastory.present import waterfall
from datastory.present.change import what_changed
from datastory.present.theme import DPI, WIDTH_IN


def test_bars_chain_from_the_previous_revenue_to_the_latest(tiny_pack, north_pack):
    for p in (tiny_pack, north_pack):
        ch = what_changed(p)
        bars = waterfall.bars(ch)
        assert len(bars) == len(ch.rows)
        first, *steps, last = bars
        assert first.bottom == 0 and last.bottom == 0
        assert first.height == ch.rows[0].amount and last.height == ch.rows[-1].amount
        level = first.top
        for bar, row in zip(steps, ch.rows[1:-1], strict=True):
            assert bar.bottom == pytest.approx(level) and bar.height == row.amount and bar.text == row.text
            assert bar.colour == (waterfall.UP if row.amount >= 0 else waterfall.DOWN)
            level = bar.top
        assert round(level * 100) == round(last.top * 100)  # the parts add up to the latest revenue


def test_renders_a_stable_png_at_print_width(tiny_pack):
    png = waterfall.waterfall(tiny_pack)
    assert png == waterfall.waterfall(tiny_pack)
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and "Software" not in im.info
        assert im.size[0] == int(WIDTH_IN * DPI)


def test_regional_and_unsplit_figures_differ(tiny_pack, north_pack):
    unsplit = dataclasses.replace(tiny_pack, bridge=tiny_pack.bridge[tiny_pack.bridge["kind"] != "pvm"])
    assert what_changed(unsplit).split == []
    figures = {waterfall.waterfall(tiny_pack), waterfall.waterfall(north_pack), waterfall.waterfall(unsplit)}
    assert len(figures) == 3


def test_does_not_touch_pyplot(tiny_pack):
    waterfall.waterfall(tiny_pack)
    plt = sys.modules.get("matplotlib.pyplot")
    assert plt is None or plt.get_fignums() == []


def test_no_previous_period_is_a_clear_error(tiny_pack):
    empty = dataclasses.replace(tiny_pack, bridge=tiny_pack.bridge.iloc[0:0])
    with pytest.raises(DataError, match="no previous period"):
        waterfall.waterfall(empty)
    with pytest.raises(DataError, match="expected a datastory Pack"):
        waterfall.waterfall({"bridge": None})


def shifted(ch, by: float):
    """The same parts on totals `by` higher."""
    return dataclasses.replace(ch, rows=[dataclasses.replace(r, amount=r.amount + (by if r.kind == "total" else 0))
                                         for r in ch.rows])


def test_axis_starts_at_zero_unless_the_parts_would_be_slivers(tiny_pack):
    ch = what_changed(tiny_pack)
    low = shifted(ch, 40 - ch.rows[0].amount)  # the parts reach down near zero: a full axis
    assert waterfall.axis_cut(low) is False and waterfall._axis_floor(waterfall.bars(low)) == 0
    big = shifted(ch, 1e6)  # parts of a few hundred on a million: the axis is cut below the lowest part
    assert waterfall.axis_cut(big) is True
    parts = waterfall.bars(big)[1:-1]
    assert 0 < waterfall._axis_floor(waterfall.bars(big)) < min(min(b.bottom, b.top) for b in parts)
