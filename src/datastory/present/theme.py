"""One look for every figure: the seaborn theme, the colour-blind-safe palette and the print size.

The theme is a dict of matplotlib rc settings built from seaborn's own style and context
(`seaborn.axes_style("whitegrid")`, `seaborn.plotting_context("paper")`), applied only inside `theme()`
through `matplotlib.rc_context`. Nothing global is set at import or left behind, so the PDF's figures, the
email's inline image and any notebook cell draw with the same fonts, greys and colours.

Those two dicts are copied here (SEABORN_STYLE, SEABORN_CONTEXT) rather than asked of seaborn, whose import
(with scipy.stats) takes seconds: a figure drawn with matplotlib alone, like the email's, then needs no
seaborn. A test compares the copies with what the installed seaborn returns. The style's `image.cmap`
('rocket', a colormap that exists only once seaborn is imported) is left out: no figure here draws an image.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cycler import cycler
from matplotlib import rc_context

from .palette import ACTUAL, BAND, CALM, FORECAST, NEUTRAL, OKABE_ITO, PALETTE, RISK

__all__ = ["ACTUAL", "BAND", "CALM", "DPI", "FORECAST", "NEUTRAL", "OKABE_ITO", "PALETTE", "RISK", "WIDTH_IN", "rc",
           "theme"]

DPI = 150
WIDTH_IN = 7.0  # the printable width of an A4/Letter page with 2 cm margins, at 1:1

# seaborn 0.13's axes_style("whitegrid") (but image.cmap) and plotting_context("paper"), verbatim; the test in
# tests/test_present_theme.py compares them with the installed seaborn's
SEABORN_STYLE: dict[str, Any] = {
    "figure.facecolor": "white", "axes.labelcolor": ".15", "xtick.direction": "out", "ytick.direction": "out",
    "xtick.color": ".15", "ytick.color": ".15", "axes.axisbelow": True, "grid.linestyle": "-", "text.color": ".15",
    "font.family": ["sans-serif"],
    "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans", "sans-serif"],
    "lines.solid_capstyle": "round", "patch.edgecolor": "w", "patch.force_edgecolor": True,
    "xtick.top": False, "ytick.right": False, "axes.grid": True, "axes.facecolor": "white", "axes.edgecolor": ".8",
    "grid.color": ".8", "axes.spines.left": True, "axes.spines.bottom": True, "axes.spines.right": True,
    "axes.spines.top": True, "xtick.bottom": False, "ytick.left": False,
}
SEABORN_CONTEXT: dict[str, Any] = {
    "axes.linewidth": 1.0, "grid.linewidth": 0.8, "lines.linewidth": 1.2000000000000002,
    "lines.markersize": 4.800000000000001, "patch.linewidth": 0.8, "xtick.major.width": 1.0,
    "ytick.major.width": 1.0, "xtick.minor.width": 0.8, "ytick.minor.width": 0.8,
    "xtick.major.size": 4.800000000000001, "ytick.major.size": 4.800000000000001, "xtick.minor.size": 3.2,
    "ytick.minor.size": 3.2, "font.size": 9.600000000000001, "axes.labelsize": 9.600000000000001,
    "axes.titlesize": 9.600000000000001, "xtick.labelsize": 8.8, "ytick.labelsize": 8.8, "legend.fontsize": 8.8,
    "legend.title_fontsize": 9.600000000000001,
}

_OVERRIDES: dict[str, Any] = {
    "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.color": "#DDDDDD", "grid.linewidth": 0.6,
    "axes.axisbelow": True, "svg.hashsalt": "datastory", "path.simplify": True,
    "axes.titlelocation": "left",
}


def rc(**extra: Any) -> dict[str, Any]:
    """The rc settings of the theme: seaborn's 'whitegrid' style in its 'paper' context, then ours."""
    out: dict[str, Any] = {k: list(v) if isinstance(v, list) else v
                           for k, v in {**SEABORN_STYLE, **SEABORN_CONTEXT}.items()}
    out.update(_OVERRIDES)
    out["axes.prop_cycle"] = cycler(color=PALETTE)
    out.update(extra)
    return out


@contextmanager
def theme(**extra: Any) -> Iterator[None]:
    """Draw inside `with theme():` to get the house style; the previous settings come back afterwards."""
    with rc_context(rc(**extra)):
        yield
