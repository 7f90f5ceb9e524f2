"""Deliver each audience's pack by email: compose, always write the dry-run .eml, send when enabled.

- `compose.compose` (pure) builds a deterministic message; `deliver` is the I/O edge: it writes
  `reports/outbox/<audience>.eml` every time, and only when `params.send` is true, the quality gate
  (`gate`) passes and the ledger has not seen this content, it sends over SMTP and then records the send.
- Promise 4: nothing is emailed unless delivery is switched on, and nothing is emailed twice for
  the same content (see `ledger`). A failed send leaves the ledger untouched, so a re-run retries.
- `run(audience_key)` is the stage entry point: it loads the pack, the report files and the params.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import config, io
from .. import pack as pack_mod
from ..errors import DeliveryError
from ..pack import Pack
from . import compose as composer  # keeps `datastory.deliver.compose` the module, not the function
from . import smtp
from .compose import delivery_key, envelope_recipients, to_bytes
from .gate import MAX_REJECTED_SHARE, gate_ok
from .ledger import Ledger, content_key

__all__ = ["DeliveryError", "Ledger", "Receipt", "content_key", "default_images", "deliver", "gate_ok", "run",
           "MAX_REJECTED_SHARE"]

log = logging.getLogger(__name__)

ENV_USER = "DATASTORY_SMTP_USER"
ENV_PASSWORD = "DATASTORY_SMTP_PASSWORD"


@dataclass(frozen=True)
class Receipt:
    """What happened to one audience's email. `skipped` says why it was not sent ("" when sent)."""

    audience: str
    message_id: str
    key: str
    recipients: int
    eml: str           # path of the dry-run file, relative to the project root
    sent: bool
    skipped: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_images(pack: Pack) -> dict[str, bytes]:
    """The inline chart of the email: revenue per period of the headline region (report.figures).

    Imported lazily: datastory.report pulls in nbconvert, seconds of import time that the pure core
    and its tests do not need. No chart (empty dict) when there are no KPI rows to draw.
    """
    from ..errors import DataError
    from ..report import figures

    try:
        return {"revenue": figures.revenue_by_period(pack)}
    except DataError as exc:
        log.warning("no revenue chart in the %s email: %s", pack.audience, exc.problem)
        return {}


def _credentials(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    return env.get(ENV_USER) or None, env.get(ENV_PASSWORD) or None


def deliver(pack: Pack, pdf: bytes, xlsx: bytes, audience: config.Audience, params: config.DeliverParams,
            paths: config.Paths, root: str | os.PathLike, force: bool = False,
            env: Mapping[str, str] = os.environ, *, images: dict[str, bytes] | None = None,
            context: ssl.SSLContext | None = None, base_delay: float = smtp.BASE_DELAY_S,
            ledger: Ledger | None = None) -> Receipt:
    """Compose, write the dry-run .eml, and (if enabled, gated and new) send and record it.

    `force=True` sends even when the ledger has this content. Credentials come only from `env`.
    Raises DeliveryError when a send fails (ledger untouched) or when some recipients were refused
    after others accepted it (ledger recorded: the others must not get it twice).
    """
    root = Path(root)
    msg = composer.compose(pack, pdf, xlsx, audience, params, images)
    eml = paths.eml(pack.audience)
    io.write_bytes(to_bytes(msg), eml)
    key = delivery_key(pack, pdf, xlsx, audience)
    rcpts = envelope_recipients(audience, pack.audience)
    try:
        eml_rel = eml.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        eml_rel = eml.name
    base = dict(audience=pack.audience, message_id=str(msg["Message-ID"]), key=key, recipients=len(rcpts),
                eml=eml_rel)
    if not params.send:
        return Receipt(**base, sent=False, skipped="dry run: send is false in params/deliver.yaml")
    ok, reason = gate_ok(pack.data_quality, pack.churn_metrics, pack.forecast_metrics, params.max_excluded_share)
    if not ok:
        log.warning("not sending %s: quality gate failed: %s", pack.audience, reason)
        return Receipt(**base, sent=False, skipped=f"quality gate: {reason}")
    led = ledger or Ledger(root)
    if not force and led.already_sent(key):
        return Receipt(**base, sent=False,
                       skipped="already sent: same attachments, recipients and period (use force to resend)")
    if not rcpts:
        raise DeliveryError(f"audience {pack.audience!r} has no recipients", file="params/report.yaml",
                            fix="add 'to:' addresses under the audience, or set send: false")
    user, password = _credentials(env)
    envelope_from = str(msg["From"].addresses[0].addr_spec)
    refused = smtp.send(msg, envelope_from, rcpts, params, user, password, context=context,
                        base_delay=base_delay)
    led.record(key, pack.audience, str(msg["Message-ID"]), rcpts, refused)
    if refused:
        who = "; ".join(f"{r} ({why})" for r, why in refused.items())
        raise DeliveryError(f"audience {pack.audience!r}: sent, but the server refused {who}",
                            file="params/report.yaml",
                            fix="correct those addresses; the others received it and will not get it again")
    return Receipt(**base, sent=True)


def run(key: str, root: str | os.PathLike | None = None, force: bool = False,
        env: Mapping[str, str] = os.environ, images: dict[str, bytes] | None = None) -> Receipt:
    """Stage entry point: deliver audience `key` of params/report.yaml with params/deliver.yaml,
    reading reports/<key>/report.pdf and .xlsx and inlining `images` (default: default_images(pack))."""
    base = config.project_root(root)
    params = config.load("deliver", base)
    report = config.load("report", base)
    paths = config.paths(base)
    pk = pack_mod.load(key, base, report)
    blobs = []
    for ext in ("pdf", "xlsx"):
        path = paths.report(key, ext)
        try:
            blobs.append(path.read_bytes())
        except FileNotFoundError:
            raise DeliveryError("report file is missing", file=str(path.relative_to(base)),
                                fix=f"run the report stage first: dvc repro report@{key}") from None
    return deliver(pk, blobs[0], blobs[1], report.audiences[key], params, paths, base, force, env,
                   images=default_images(pk) if images is None else images)
