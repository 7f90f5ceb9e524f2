"""One look for every figure: the seaborn theme, the colour-blind-safe palette and the print size.

The theme is a dict of matplotlib rc settings built from seaborn's own style and context
(`seaborn.axes_style`, `seaborn.plotting_context`), applied only inside `theme()` through
`matplotlib.rc_context`. Nothing global is set at import or left behind, so the PDF's figures, the
email's inline image and any notebook cell draw with the same fonts, greys and colours.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import seaborn as sns
from cycler import cycler
from matplotlib import rc_context

from .palette import ACTUAL, BAND, CALM, FORECAST, NEUTRAL, OKABE_ITO, PALETTE, RISK

__all__ = ["ACTUAL", "BAND", "CALM", "DPI", "FORECAST", "NEUTRAL", "OKABE_ITO", "PALETTE", "RISK", "WIDTH_IN", "rc",
           "theme"]

DPI = 150
WIDTH_IN = 7.0  # the printable width of an A4/Letter page with 2 cm margins, at 1:1

_OVERRIDES: dict[str, Any] = {
    "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.color": "#DDDDDD", "grid.linewidth": 0.6,
    "axes.axisbelow": True, "svg.hashsalt": "datastory", "path.simplify": True,
    "axes.titlelocation": "left",
}


def rc(**extra: Any) -> dict[str, Any]:
    """The rc settings of the theme: seaborn's 'whitegrid' style in its 'paper' context, then ours."""
    out: dict[str, Any] = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper")}
    out.update(_OVERRIDES)
    out["axes.prop_cycle"] = cycler(color=PALETTE)
    out.update(extra)
    return out


@contextmanager
def theme(**extra: Any) -> Iterator[None]:
    """Draw inside `with theme():` to get the house style; the previous settings come back afterwards."""
    with rc_context(rc(**extra)):
        yield
