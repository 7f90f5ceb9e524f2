"""Per-recipient delivery: who to send to now, and words for what happened (pure).

States are the ledger's (sent, in_flight, deferred, refused); a recipient missing from the states was
never handed over. Modes: "send" (the default: recipients never handed over, or deferred), "resend" (every
recipient who is not surely sent: also in flight and refused ones) and "force" (every recipient).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .ledger import DEFERRED, IN_FLIGHT, REFUSED, SENT

NOT_SENT = "not sent:"   # starts the detail of a recipient deferred because the session itself failed

MODES = ("send", "resend", "force")
States = Mapping[str, tuple[str, str]]


def to_send(states: States, recipients: Sequence[str], mode: str = "send") -> list[str]:
    """The recipients to send to now, in `recipients` order."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "force":
        return list(recipients)
    if mode == "resend":
        return [r for r in recipients if states.get(r, ("", ""))[0] != SENT]
    return [r for r in recipients if r not in states or states[r][0] == DEFERRED]


def complete(states: States, recipients: Sequence[str]) -> bool:
    """True when every recipient surely has it."""
    return bool(recipients) and all(states.get(r, ("", ""))[0] == SENT for r in recipients)


def _group(states: States, state: str) -> list[tuple[str, list[str]]]:
    """[(what happened, [recipients])] of one state, grouped by what happened."""
    found: dict[str, list[str]] = {}
    for rcpt, (s, detail) in sorted(states.items()):
        if s == state:
            found.setdefault(detail, []).append(rcpt)
    return list(found.items())


def _with_replies(states: States, state: str) -> str:
    return "; ".join(f"{r} ({d})" if d else r for r, (s, d) in sorted(states.items()) if s == state)


def describe(audience: str, message_id: str, states: States, now: States) -> tuple[list[str], list[str]]:
    """(lines, fixes) for every recipient that does not surely have it, and for those sent now.

    `states`: every recipient after this run; `now`: the ones this run changed.
    """
    earlier = {r: v for r, v in states.items() if r not in now}
    lines, fixes = [], []
    sent_now = [r for r, (s, _) in sorted(now.items()) if s == SENT]
    sent_before = [r for r, (s, _) in sorted(earlier.items()) if s == SENT]
    if sent_now:
        lines.append(f"delivered to {', '.join(sent_now)}")
    if sent_before and len(sent_before) < len(states):
        lines.append(f"delivered earlier to {', '.join(sent_before)} (not sent again)")
    unknown = False
    for group, when in ((now, ""), (earlier, " by an earlier run")):
        for detail, rcpts in _group(group, IN_FLIGHT):
            unknown = True
            lines.append(f"may have been delivered{when} to {', '.join(rcpts)}: {detail}")
    if unknown:
        fixes.append(f"check whether it arrived (ask the recipient, or look for Message-ID {message_id} in the "
                     f"mail server's log); then run `datastory deliver --audience {audience} --resend` if it did "
                     f"not, or `datastory deliver --audience {audience} --mark-sent` if it did. Until then it is "
                     "not sent again")
    for detail, rcpts in _group(states, DEFERRED):
        why = (detail.removeprefix(NOT_SENT).strip() if detail.startswith(NOT_SENT) else
               f"the server deferred it ({detail})" if detail else "deferred")
        lines.append(f"not delivered yet to {', '.join(rcpts)}: {why}; the next run tries again")
    refused_now, refused_before = _with_replies(now, REFUSED), _with_replies(earlier, REFUSED)
    if refused_now:
        lines.append(f"refused by the server: {refused_now}")
    if refused_before:
        lines.append(f"refused by the server in an earlier run: {refused_before}")
    if refused_now or refused_before:
        fixes.append("correct or remove the refused addresses in params/report.yaml (audiences: to/cc/bcc); "
                     f"for this content they are tried again only with `datastory deliver --audience {audience} "
                     "--resend`")
    return lines, fixes
