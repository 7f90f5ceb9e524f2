"""datastory.deliver.status: who to send to now, and the words for what happened (pure)."""

from __future__ import annotations

import pytest

from datastory.deliver.ledger import DEFERRED, IN_FLIGHT, REFUSED, SENT
from datastory.deliver.status import NOT_SENT, complete, describe, to_send

RCPTS = ["a@x.org", "b@x.org", "c@x.org", "d@x.org", "e@x.org"]
STATES = {"a@x.org": (SENT, ""), "b@x.org": (IN_FLIGHT, "dropped after the message"),
          "c@x.org": (DEFERRED, "450 greylisted"), "d@x.org": (REFUSED, "550 gone")}   # e: never handed over


@pytest.mark.parametrize("mode, expected", [
    ("send", ["c@x.org", "e@x.org"]),
    ("resend", ["b@x.org", "c@x.org", "d@x.org", "e@x.org"]),
    ("force", RCPTS),
])
def test_to_send_by_mode(mode, expected):
    assert to_send(STATES, RCPTS, mode) == expected


def test_to_send_refuses_an_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        to_send(STATES, RCPTS, "again")


def test_complete_only_when_everyone_surely_has_it():
    assert complete({"a@x.org": (SENT, "")}, ["a@x.org"])
    assert not complete(STATES, RCPTS) and not complete({}, ["a@x.org"]) and not complete({}, [])


def test_describe_says_what_happened_to_each_recipient_and_what_to_do():
    now = {"c@x.org": (DEFERRED, "450 greylisted"), "e@x.org": (DEFERRED, f"{NOT_SENT} cannot connect")}
    lines, fixes = describe("north", "<m@x>", {**STATES, **now}, now)
    assert lines == [
        "delivered earlier to a@x.org (not sent again)",
        "may have been delivered by an earlier run to b@x.org: dropped after the message",
        "not delivered yet to c@x.org: the server deferred it (450 greylisted); the next run tries again",
        "not delivered yet to e@x.org: cannot connect; the next run tries again",
        "refused by the server in an earlier run: d@x.org (550 gone)",
    ]
    assert "`datastory deliver --audience north --resend`" in fixes[0] and "--mark-sent" in fixes[0]
    assert "<m@x>" in fixes[0] and "params/report.yaml" in fixes[1]


def test_describe_names_who_got_it_now_and_earlier():
    states = {"a@x.org": (SENT, ""), "b@x.org": (SENT, "250 ok"), "c@x.org": (REFUSED, "550 gone")}
    lines, _ = describe("north", "<m@x>", states, {"b@x.org": states["b@x.org"], "c@x.org": states["c@x.org"]})
    assert lines == ["delivered to b@x.org", "delivered earlier to a@x.org (not sent again)",
                     "refused by the server: c@x.org (550 gone)"]
