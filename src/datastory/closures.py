"""The closures of params/forecast.yaml: days the business is shut, every year (MM-DD), once (YYYY-MM-DD) or a
range (YYYY-MM-DD..YYYY-MM-DD). Parsed while the params are validated (`config`), and used by
`forecast.calendar` to scale forecasts by each period's open days.

It stays outside the forecast package so that validating params does not import the forecasting engine.
"""

from __future__ import annotations

import datetime as dt
import re

from .errors import ParamsError

_YEARLY = re.compile(r"^(\d{2})-(\d{2})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FIX = "write closures as MM-DD (every year), YYYY-MM-DD, or YYYY-MM-DD..YYYY-MM-DD"


def check(closures: list[str]) -> list[str]:
    """`closures` unchanged when every entry parses; a ParamsError naming the first one that does not."""
    for item in closures:
        parse(item)
    return list(closures)


def _date(text: str, item: str) -> dt.date:
    if not _DAY.match(text):
        raise ParamsError(f"closure {item!r} is not a date", file="params/forecast.yaml", column="closures",
                          fix=FIX)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ParamsError(f"closure {item!r} is not a calendar date", file="params/forecast.yaml",
                          column="closures", fix=FIX) from None


def parse(item: str) -> tuple[str, object]:
    text = str(item).strip()
    m = _YEARLY.match(text)
    if m:
        month, day = int(m.group(1)), int(m.group(2))
        try:
            dt.date(2000, month, day)  # a leap year, so 02-29 is allowed
        except ValueError:
            raise ParamsError(f"closure {item!r} is not a day of the year", file="params/forecast.yaml",
                              column="closures", fix=FIX) from None
        return "yearly", (month, day)
    if ".." in text:
        a, b = (part.strip() for part in text.split("..", 1))
        start, end = _date(a, item), _date(b, item)
        if end < start:
            raise ParamsError(f"closure range {item!r} ends before it starts", file="params/forecast.yaml",
                              column="closures", fix="write the earlier date first")
        return "range", (start, end)
    day = _date(text, item)
    return "range", (day, day)
