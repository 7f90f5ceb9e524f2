"""The house theme: seaborn's style and context copied verbatim, so the email's figure needs no seaborn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from datastory.present import theme

TESTS = Path(__file__).resolve().parent


def test_the_copies_are_what_the_installed_seaborn_says():
    import seaborn as sns

    style = dict(sns.axes_style("whitegrid"))
    assert style.pop("image.cmap") == "rocket"  # left out on purpose: a colormap only seaborn's import makes
    assert style == theme.SEABORN_STYLE
    assert dict(sns.plotting_context("paper")) == theme.SEABORN_CONTEXT


def test_rc_is_the_copies_then_ours_and_hands_out_fresh_lists():
    one, two = theme.rc(), theme.rc()
    assert one["grid.color"] == "#DDDDDD" and one["xtick.color"] == ".15" and one["font.size"] == 9
    one["font.sans-serif"].append("Comic Sans MS")
    assert "Comic Sans MS" not in two["font.sans-serif"] and "Comic Sans MS" not in theme.rc()["font.sans-serif"]


def test_the_emails_figure_is_drawn_without_importing_seaborn_or_scipy():
    """deliver draws the revenue bars in the theme; seaborn (with scipy.stats) loads only for the figures that
    call it, in the report's kernel."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from conftest import make_pack; "
            "from datastory import deliver; from datastory.present import figures; "
            "png = figures.revenue_by_period(make_pack('north')); "
            "print(png[:4] == b'\\x89PNG', 'seaborn' in sys.modules, 'scipy.stats' in sys.modules); "
            "figures.churn_risk(make_pack('north')); print('seaborn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(TESTS)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False", "True"], out.stderr
