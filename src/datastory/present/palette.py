"""The house colours as hex strings, with no imports: the figures (present.theme) and the workbook's native
charts both take them from here, so an actual is the same blue in the PDF, the email and Excel."""

from __future__ import annotations

# Okabe & Ito (2008), safe for the common colour-vision deficiencies.
OKABE_ITO = {
    "blue": "#0072B2", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000",
    "grey": "#999999",
}
# What each colour means, the same in every figure and format.
ACTUAL, FORECAST, BAND, RISK = OKABE_ITO["blue"], OKABE_ITO["orange"], "#F5D9A6", OKABE_ITO["vermillion"]
CALM, NEUTRAL = OKABE_ITO["sky"], OKABE_ITO["grey"]
PALETTE = [OKABE_ITO[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky", "yellow", "black")]
