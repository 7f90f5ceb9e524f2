"""Deliver each audience's pack by email: compose, always write the dry-run .eml, send when enabled.

- `compose.compose` (pure) builds a deterministic message; `deliver` is the I/O edge: it writes
  `reports/outbox/<audience>.eml` every time, and only when `params.send` is true and the quality gate
  (`gate`) passes, it sends over SMTP to the recipients who do not have this content yet.
- Promise 4: nothing is emailed unless delivery is switched on, and nothing is emailed twice for
  the same content. The ledger (`ledger`) keeps each recipient's state (sent, in flight, deferred,
  refused); "in flight" is recorded before the message is handed over, and a recipient whose outcome
  is unknown is never sent it again on its own. One lock per audience is held across the ledger check,
  the send and the record, so two deliveries of one audience at once send once.
- `run(audience_key)` is the stage entry point: it reads the report stage's files (the email's facts, the PDF, the
  workbook, the chart), the metrics the gate checks and the params. It loads no pack: the report stage wrote
  what the email says from it (present.email).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import config, io
from ..errors import DeliveryError
from . import compose as composer  # keeps `datastory.deliver.compose` the module, not the function
from . import smtp, status
from .compose import check_facts, delivery_key, envelope_recipients, to_bytes
from .gate import MAX_REJECTED_SHARE, gate_ok
from .ledger import IN_FLIGHT, REFUSED, SENT, Ledger, content_key

__all__ = ["DeliveryError", "GATE_METRICS", "Ledger", "Receipt", "content_key", "chart_images", "deliver", "gate_ok",
           "run", "MAX_REJECTED_SHARE"]

log = logging.getLogger(__name__)

ENV_USER = "DATASTORY_SMTP_USER"
ENV_PASSWORD = "DATASTORY_SMTP_PASSWORD"
# what the quality gate reads, in gate_ok's order: metrics files (their name in config.Paths) -> the stage writing it
GATE_METRICS = {"data_quality": "ingest", "churn_metrics": "churn", "forecast_metrics": "forecast"}


@dataclass(frozen=True)
class Receipt:
    """What happened to one audience's email.

    `sent`: this run delivered it to someone (`sent_to`). `skipped`: why it was not sent, or what is still
    open ("" when nothing is). `complete`: False when sending is on and some recipient does not surely have
    it (held by the gate, refused, or in flight from an earlier run); the command then exits 3.
    """

    audience: str
    message_id: str
    key: str
    recipients: int
    eml: str           # path of the dry-run file, relative to the project root
    sent: bool
    skipped: str = ""
    sent_to: tuple[str, ...] = ()
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def chart_images(png: bytes) -> dict[str, bytes]:
    """The email's inline images from the report stage's revenue chart (Paths.email_chart): none when it is
    empty (the audience's report showed no key figures)."""
    return {"revenue": png} if png else {}


def _credentials(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    return env.get(ENV_USER) or None, env.get(ENV_PASSWORD) or None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _open_items(lines: list[str], fixes: list[str]) -> str:
    """What is still open for a content, as one line for a receipt."""
    text = "; ".join(line for line in lines if not line.startswith("delivered"))
    return text + (f". To do: {' '.join(fixes)}" if fixes else "")


def _mark_sent(led: Ledger, base: dict[str, Any], rcpts: list[str]) -> Receipt:
    """Record the recipients in flight as delivered (someone checked that it arrived); send nothing."""
    aud, key = base["audience"], base["key"]
    with led.audience_lock(aud):
        before = led.states(key)
        unknown = [r for r, (state, _) in before.items() if state == IN_FLIGHT]
        if unknown:
            led.update(key, aud, base["message_id"], {r: (SENT, "") for r in unknown})
    after = {**before, **{r: (SENT, "") for r in unknown}}
    done = (f"marked as delivered, without sending: {', '.join(unknown)}" if unknown else
            "nothing to mark: no recipient of this content is in flight")
    lines, fixes = status.describe(aud, base["message_id"], after, {})
    still = _open_items(lines, fixes) if not status.complete(after, rcpts) else ""
    return Receipt(**base, sent=False, skipped=done + (f"; still open: {still}" if still else ""),
                   complete=status.complete(after, rcpts))


def _undelivered(audience: str, states: dict[str, tuple[str, str]], now: dict[str, tuple[str, str]],
                 message_id: str, failure: DeliveryError | None) -> DeliveryError:
    """The error of a run that left some recipient without the email (or not knowing whether they have it)."""
    lines, fixes = status.describe(audience, message_id, states, now)
    missing = sum(1 for s, _ in states.values() if s != SENT)
    head = (f"audience {audience!r}: {missing} of {len(states)} recipient(s) do not surely have the email:\n    - "
            + "\n    - ".join(lines))
    if failure is not None and failure.fix:
        fixes.insert(0, failure.fix)
    refused = any(s == REFUSED for s, _ in now.values())
    return DeliveryError(head, file=failure.file if failure else "params/report.yaml" if refused else None,
                         column=failure.column if failure else None, fix="\n  fix: ".join(fixes) or None)


def deliver(facts: Mapping[str, Any], pdf: bytes, xlsx: bytes, audience: config.Audience,
            params: config.DeliverParams, paths: config.Paths, root: str | os.PathLike, force: bool = False,
            env: Mapping[str, str] = os.environ, *, metrics: Mapping[str, Mapping[str, Any]],
            images: dict[str, bytes] | None = None,
            context: ssl.SSLContext | None = None, base_delay: float = smtp.BASE_DELAY_S,
            ledger: Ledger | None = None, resend: bool = False, mark_sent: bool = False) -> Receipt:
    """Compose, write the dry-run .eml, and (if enabled and gated) send to whoever does not have it yet.

    `facts`: the email's words (present.email.facts); `metrics`: the gate's inputs, each of GATE_METRICS -> that
    metrics file's content.

    Who gets it (see `status.to_send`): by default the recipients never handed this content, or deferred
    (4xx) before; `resend=True` also those in flight (outcome unknown) or refused; `force=True` everyone,
    even those who have it. `mark_sent=True` sends nothing: it records the recipients in flight as
    delivered, once someone checked that it arrived. Credentials come only from `env`.
    Raises DeliveryError when this run left a recipient without the email, or not knowing whether they
    have it; the message says, per recipient, what happened and what to do.
    """
    if sum(map(bool, (force, resend, mark_sent))) > 1:
        raise DeliveryError("choose one of --force, --resend and --mark-sent")
    root = Path(root)
    msg = composer.compose(facts, pdf, xlsx, audience, params, images)
    eml = paths.eml(facts["audience"])
    io.write_bytes(to_bytes(msg), eml)
    key = delivery_key(facts, pdf, xlsx, audience)
    rcpts = envelope_recipients(audience, facts["audience"])
    try:
        eml_rel = eml.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        eml_rel = eml.name
    aud, mid = facts["audience"], str(msg["Message-ID"])
    base = dict(audience=aud, message_id=mid, key=key, recipients=len(rcpts), eml=eml_rel)
    led = ledger or Ledger(root)
    if mark_sent:
        return _mark_sent(led, base, rcpts)
    if not params.send:
        return Receipt(**base, sent=False, skipped="dry run: send is false in params/deliver.yaml")
    ok, reason = gate_ok(*(metrics[name] for name in GATE_METRICS), params.max_excluded_share)
    if not ok:
        log.warning("not sending %s: quality gate failed: %s", aud, reason)
        return Receipt(**base, sent=False, skipped=f"quality gate: {reason}", complete=False)
    if not rcpts:
        raise DeliveryError(f"audience {aud!r} has no recipients", file="params/report.yaml",
                            fix="add 'to:' addresses under the audience, or set send: false")
    user, password = _credentials(env)
    envelope_from = str(msg["From"].addresses[0].addr_spec)
    server = f"{params.smtp_host}:{params.smtp_port}"
    mode = "force" if force else "resend" if resend else "send"

    def in_flight(accepted: list[str]) -> None:   # before DATA: from here on, a copy may reach them
        note = (f"handed over to {server} ({_now()}) and no answer was recorded: the delivery stopped before "
                "the server answered")
        try:
            led.update(key, aud, mid, {r: (IN_FLIGHT, note) for r in accepted})
        except OSError as exc:
            raise DeliveryError(f"cannot record the send in the delivery ledger ({exc}); nothing was sent",
                                file=str(led.path), fix="make the folder writable (and the disk not full), "
                                "then re-run") from None

    with led.audience_lock(aud):   # one delivery of this audience at a time: check, send, record
        before = led.states(key)
        todo = status.to_send(before, rcpts, mode)
        if not todo:
            if status.complete(before, rcpts):
                again = "" if mode == "send" else "nothing to resend: "
                return Receipt(**base, sent=False, skipped=f"{again}already sent: same attachments, recipients "
                               "and period (--force sends it to everyone again)")
            lines, fixes = status.describe(aud, mid, before, {})
            return Receipt(**base, sent=False, complete=False,
                           skipped=f"nothing new to send: {_open_items(lines, fixes)}")
        outcome = smtp.transmit(to_bytes(msg), envelope_from, todo, params, user, password, context=context,
                                base_delay=base_delay, on_data=in_flight)
        now = {r: (res.state, f"{res.detail}; at {_now()}" if res.state == IN_FLIGHT else res.detail)
               for r, res in outcome.results.items()}
        if outcome.handed_over or before:   # nothing is recorded for content never handed to the server
            try:
                led.update(key, aud, mid, now)
            except OSError as exc:   # those handed over stay "in flight": never sent twice
                sent = ", ".join(r for r, (state, _) in now.items() if state == SENT) or "nobody"
                raise DeliveryError(f"audience {aud!r}: sent to {sent}, but the outcome could not be recorded in "
                                    f"the delivery ledger ({exc}); those recipients stay 'in flight' there",
                                    file=str(led.path), fix="make the folder writable (and the disk not full), "
                                    "then run the delivery again: it lists who is in flight, for --mark-sent "
                                    "or --resend") from None
    after = {**before, **now}
    if any(state != SENT for state, _ in now.values()):
        raise _undelivered(aud, after, now, mid, outcome.failure)
    sent_to = tuple(r for r, (state, _) in now.items() if state == SENT)
    lines, fixes = status.describe(aud, mid, after, now)
    complete = status.complete(after, rcpts)
    return Receipt(**base, sent=True, sent_to=sent_to, complete=complete,
                   skipped="" if complete else _open_items(lines, fixes))


def run(key: str, root: str | os.PathLike | None = None, force: bool = False,
        env: Mapping[str, str] = os.environ, images: dict[str, bytes] | None = None, *,
        resend: bool = False, mark_sent: bool = False) -> Receipt:
    """Stage entry point: deliver audience `key` of params/report.yaml with params/deliver.yaml, reading the report
    stage's reports/<key>/email.json (the email's words), report.pdf and .xlsx, and inlining `images` (default: the
    report stage's revenue chart, reports/<key>/revenue.png, see chart_images); the gate reads GATE_METRICS."""
    base = config.project_root(root)
    params = config.load("deliver", base)
    report = config.load("report", base)
    audience = report.audience(key)
    paths = config.paths(base)

    def made(path: Path, stage: str = f"report@{key}", what: str = "report file") -> bytes:
        """A file an earlier stage (`stage`) writes."""
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise DeliveryError(f"{what} is missing", file=str(path.relative_to(base)),
                                fix=f"run the {stage.split('@')[0]} stage first: dvc repro {stage}") from None

    def parsed(path: Path, stage: str, what: str) -> Any:
        try:
            return json.loads(made(path, stage, what))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DeliveryError(f"not valid JSON ({exc})", file=str(path.relative_to(base)),
                                fix=f"re-run the stage that writes it: dvc repro {stage}") from None

    where = paths.email_facts(key)
    facts = check_facts(parsed(where, f"report@{key}", "report file"), file=str(where.relative_to(base)))
    if facts["audience"] != key:
        raise DeliveryError(f"the email's facts are audience {facts['audience']!r}'s, not {key!r}'s",
                            file=str(where.relative_to(base)), column="audience",
                            fix=f"re-run the report stage: dvc repro report@{key}")
    metrics = {name: parsed(getattr(paths, name), stage, "metrics file") for name, stage in GATE_METRICS.items()}
    pdf, xlsx = made(paths.report(key, "pdf")), made(paths.report(key, "xlsx"))
    if images is None:
        images = chart_images(made(paths.email_chart(key)))
    return deliver(facts, pdf, xlsx, audience, params, paths, base, force, env, metrics=metrics, images=images,
                   resend=resend, mark_sent=mark_sent)
