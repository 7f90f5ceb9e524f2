"""Compose one audience's email: a deterministic RFC 5322 message (pure core, no I/O).

Layout: multipart/mixed[ multipart/related[ multipart/alternative[text/plain, text/html],
inline image/png (Content-ID) ], application/pdf, XLSX ]. Without images the related layer is left out.

The words from the data come from the report stage (present.email.facts, reports/<audience>/email.json:
`FACTS` lists them); this module adds the params' (sender, recipients, size limit) and the attachments.
Same facts + same bytes + same params => byte-identical message: the Date header is the data
period's end (not the clock), the Message-ID comes from the ledger's content key, and every MIME
boundary is derived from that key instead of the email package's random default.
Addresses are validated, and CR, LF or NUL in any header value is refused (promise 3).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from collections.abc import Mapping
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP
from email.policy import default as default_policy
from email.utils import format_datetime
from typing import Any

from .. import config
from ..errors import DataError, DeliveryError, ParamsError
from .ledger import content_key

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_FORBIDDEN = ("\r", "\n", "\0")
_IMAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$")


# ---------------------------------------------------------------- headers and addresses
def check_header(value: str, what: str, audience: str) -> str:
    """`value` unchanged, or DeliveryError if it holds CR, LF or NUL (header injection)."""
    bad = [repr(c) for c in _FORBIDDEN if c in value]
    if bad:
        raise DeliveryError(f"audience {audience!r}: {what} {value!r} contains {', '.join(bad)}; "
                            "line breaks and NUL are refused in email headers",
                            fix="remove the line break from the value (params or data)")
    return value


def parse_address(text: str, audience: str, field: str, file: str = "params/report.yaml") -> Address:
    """One mailbox ("a@b.c" or "Name <a@b.c>") as an Address; ParamsError naming the bad value."""
    where = f"audience {audience!r} {field}"
    if not isinstance(text, str):
        raise ParamsError(f"{where}: address {text!r} is not text", file=file)
    check_header(text, f"{field} address", audience)
    fix = "write one address per list item, like name@example.com or 'Name <name@example.com>'"
    try:
        header = default_policy.header_factory("To", text)
        groups, defects = header.groups, header.defects
    except (ValueError, TypeError, IndexError, HeaderParseError) as exc:
        raise ParamsError(f"{where}: {text!r} is not a valid email address ({exc})", file=file, fix=fix) from None
    if len(groups) != 1 or groups[0].display_name is not None or len(groups[0].addresses) != 1 or defects:
        raise ParamsError(f"{where}: {text!r} is not a single valid email address", file=file, fix=fix)
    try:  # re-validate strictly through the Address constructor (it parses addr_spec on its own)
        addr = Address(display_name=groups[0].addresses[0].display_name, addr_spec=groups[0].addresses[0].addr_spec)
    except (ValueError, TypeError, IndexError, HeaderParseError) as exc:
        raise ParamsError(f"{where}: {text!r} is not a valid email address ({exc})", file=file, fix=fix) from None
    if not addr.username or not addr.domain or ("." not in addr.domain.strip(".") and addr.domain != "localhost"):
        raise ParamsError(f"{where}: {text!r} needs a user and a domain (user@example.com)", file=file, fix=fix)
    if not addr.addr_spec.isascii():
        raise ParamsError(f"{where}: {text!r} has non-ASCII characters in the address itself", file=file,
                          fix="use the ASCII form of the address (the display name may be non-ASCII)")
    return addr


def recipients(audience: config.Audience, key: str) -> dict[str, list[Address]]:
    """Validated To / Cc / Bcc mailboxes of `audience` (named `key` in errors)."""
    return {field: [parse_address(a, key, field) for a in getattr(audience, field)]
            for field in ("to", "cc", "bcc")}


def envelope_recipients(audience: config.Audience, key: str) -> list[str]:
    """Every address the message goes to (To + Cc + Bcc), de-duplicated, sorted."""
    return sorted({a.addr_spec.lower() for group in recipients(audience, key).values() for a in group})


# ---------------------------------------------------------------- the facts
# The email's words from the data (present.email.facts), as the report stage writes them: key -> type.
FACTS: dict[str, type] = {
    "audience": str, "label": str, "title": str, "company": str, "currency": str, "period_start": str,
    "period_end": str, "footer": str, "when": str, "revenue": str, "kpi_rows": list, "headlines": list,
    "changed_where": str, "changed": str, "drivers": list, "to_call": int, "top_names": list}
_ROWS = {"kpi_rows": 4, "drivers": 2, "top_names": 2}   # list keys whose items are lists of this many texts


def check_facts(facts: Any, file: str | None = None) -> Mapping[str, Any]:
    """`facts` if it holds every FACTS key with its type (the texts of the lists too), else DeliveryError naming
    the first key that does not (`file`: where they were read)."""
    fix = "re-run the report stage, which writes them (dvc repro report@<audience>)"
    if not isinstance(facts, Mapping):
        raise DeliveryError("the email's facts are not a JSON object", file=file, fix=fix)
    for key, kind in FACTS.items():
        value = facts.get(key)
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if ok and key == "headlines":
            ok = all(isinstance(v, str) for v in value)
        elif ok and key in _ROWS:
            ok = all(isinstance(r, list) and len(r) == _ROWS[key] and all(isinstance(v, str) for v in r)
                     for r in value)
        if not ok:
            shape = {"headlines": " of texts"}.get(key, f" of rows of {_ROWS[key]} texts" if key in _ROWS else "")
            raise DeliveryError(f"the email's facts: {key!r} is missing or not {kind.__name__}{shape}",
                                file=file, column=key, fix=fix)
    return facts


def period_end(facts: Mapping[str, Any]) -> dt.date:
    """The data period's last day, from the facts' provenance."""
    try:
        return dt.date.fromisoformat(str(facts["period_end"])[:10])
    except ValueError:
        raise DataError(f"data period end {facts['period_end']!r} is not a date (YYYY-MM-DD)",
                        file=config.where("data_quality"), column="period_end",
                        fix="re-run the ingest stage") from None


# ---------------------------------------------------------------- text parts
def _subject(facts: Mapping[str, Any]) -> str:
    """'North sales: review to 2025-05-31 — revenue 2.4 k EUR (+4%), 2 customers to call'."""
    head = f"{facts['label']}: review to {period_end(facts).isoformat()}"
    n = facts["to_call"]
    parts = [p for p in (facts["revenue"], f"{n} customer{'s' if n != 1 else ''} to call") if p]
    return f"{head} \u2014 {', '.join(parts)}"


# Light inline styles only: mail clients drop <style> blocks and most layout CSS, but keep these.
_FONT = "font-family:Arial,Helvetica,sans-serif;color:#222222"
_CELL = "padding:4px 8px;border-bottom:1px solid #DDDDDD"
_NUM = _CELL + ";text-align:right;white-space:nowrap"
IMAGE_WIDTH = 600  # px: the inline chart's width on a wide screen; it shrinks with the window below that


def _bodies(facts: Mapping[str, Any], attached: list[str], note: str,
           cids: list[tuple[str, str]]) -> tuple[str, str]:
    """(plain text, HTML) bodies. Every value from data or params is HTML-escaped."""
    e = html.escape
    when, headlines, rows, names = facts["when"], facts["headlines"], facts["kpi_rows"], facts["top_names"]
    n_red, footer, currency = facts["to_call"], facts["footer"], facts["currency"]
    amounts = f"Amounts in {currency}."
    where, changed, drivers = facts["changed_where"], facts["changed"], facts["drivers"]
    title, label, company = facts["title"], facts["label"], facts["company"]
    text = [f"{title} \u2014 {label}", f"{company}", "", when, amounts, ""]
    text += [f"* {s}" for s in headlines] + [""]
    if rows:
        text += [f"{'KPI':<22}{'Latest':>12}{'Previous':>12}{'Change':>10}"]
        text += [f"{a:<22}{b:>12}{c:>12}{d:>10}" for a, b, c, d in rows] + [""]
    text += [f"What changed ({where}): {changed}"]
    text += [f"  {a:<34}{b:>10}" for a, b in drivers] + [""]
    if names:
        text.append(f"Most revenue at risk among the {n_red} to call:")
        text += [f"  - {nm}: {risk} {currency} revenue at risk" for nm, risk in names]
    text += ["", "Attached: " + ", ".join(attached) + "."]
    if note:
        text += [note]
    text += ["", footer, ""]

    h = [f'<div style="{_FONT};font-size:14px;line-height:1.45;max-width:640px">',
         f'<h2 style="font-size:20px;margin:0 0 4px 0">{e(title)} \u2014 {e(label)}</h2>',
         f'<p style="margin:0 0 12px 0;color:#555555">{e(company)}. {e(when)} {e(amounts)}</p>',
         '<ul style="padding-left:20px;margin:0 0 12px 0">'
         + "".join(f'<li style="margin-bottom:4px">{e(s)}</li>' for s in headlines) + "</ul>"]
    if rows:
        h.append('<table role="presentation" cellpadding="0" cellspacing="0" '
                 'style="border-collapse:collapse;font-size:13px;margin:0 0 12px 0">'
                 f'<thead><tr><th style="{_CELL};text-align:left">KPI</th><th style="{_NUM}">Latest</th>'
                 f'<th style="{_NUM}">Previous</th><th style="{_NUM}">Change</th></tr></thead><tbody>')
        h += [f'<tr><td style="{_CELL}">{e(a)}</td><td style="{_NUM}">{e(b)}</td><td style="{_NUM}">{e(c)}</td>'
              f'<td style="{_NUM}">{e(d)}</td></tr>' for a, b, c, d in rows]
        h.append("</tbody></table>")
    h.append(f'<p style="margin:0 0 4px 0"><strong>What changed ({e(where)}):</strong> '
             f"{e(changed)}</p>")
    if drivers:
        h.append('<table role="presentation" cellpadding="0" cellspacing="0" style="border-collapse:collapse;'
                 'font-size:13px;margin:0 0 12px 0"><tbody>' + "".join(
                     f'<tr><td style="{_CELL}">{e(a)}</td><td style="{_NUM}">{e(b)}</td></tr>' for a, b in drivers)
                 + "</tbody></table>")
    if names:
        h.append(f'<p style="margin:0 0 4px 0"><strong>Most revenue at risk among the {n_red} to call:</strong></p>')
        h.append('<ul style="padding-left:20px;margin:0 0 12px 0">'
                 + "".join(f"<li>{e(nm)}: {e(risk)} {e(currency)} revenue at risk</li>" for nm, risk in names)
                 + "</ul>")
    h += [f'<p style="margin:0 0 12px 0"><img src="cid:{cid}" alt="{e(name)}" width="{IMAGE_WIDTH}" '
          f'style="display:block;width:100%;max-width:{IMAGE_WIDTH}px;height:auto;border:0"></p>'
          for name, cid in cids]
    h.append(f'<p style="margin:0 0 12px 0">Attached: {e(", ".join(attached))}.</p>')
    if note:
        h.append(f"<p><em>{e(note)}</em></p>")
    h.append(f'<p style="color:#666666;font-size:12px">{e(footer)}</p></div>')
    page = "<!DOCTYPE html>\n<html><body>\n" + "\n".join(h) + "\n</body></html>\n"
    return "\n".join(text), page


# ---------------------------------------------------------------- the message
def _cid(name: str, data: bytes, key: str) -> str:
    return f"{name}.{hashlib.sha256(data).hexdigest()[:16]}.{key[:8]}@datastory"


def delivery_key(facts: Mapping[str, Any], pdf: bytes, xlsx: bytes, audience: config.Audience) -> str:
    """The ledger key of this email: attachments, sorted envelope recipients, data period."""
    period = (facts["period_start"], facts["period_end"])
    return content_key([pdf, xlsx], envelope_recipients(audience, facts["audience"]), period)


def compose(facts: Mapping[str, Any], pdf: bytes, xlsx: bytes, audience: config.Audience,
            params: config.DeliverParams, images: dict[str, bytes] | None = None) -> EmailMessage:
    """One audience's email from its facts (`FACTS`, checked here); byte-identical for identical inputs (see
    module docstring)."""
    check_facts(facts)
    key_name = facts["audience"]
    if not isinstance(pdf, bytes) or not pdf.startswith(b"%PDF"):
        raise DeliveryError(f"audience {key_name!r}: the PDF report is not a PDF (no %PDF header)",
                            fix="re-run the report stage")
    if not isinstance(xlsx, bytes) or not xlsx:
        raise DeliveryError(f"audience {key_name!r}: the Excel workbook is empty", fix="re-run the report stage")
    images = dict(sorted((images or {}).items()))
    for name, data in images.items():
        if not _IMAGE_NAME.match(name) or not isinstance(data, bytes) or not data.startswith(PNG_MAGIC):
            raise DeliveryError(f"audience {key_name!r}: inline image {name!r} must be PNG bytes with a "
                                "name of letters, digits, '-' or '_'")
    sender = parse_address(params.from_addr, key_name, "from_addr", file="params/deliver.yaml")
    groups = recipients(audience, key_name)
    for what in ("label", "title", "company"):
        check_header(facts[what], what, key_name)
    end = period_end(facts)
    key = delivery_key(facts, pdf, xlsx, audience)
    stem = f"{key_name}_report_{end.isoformat()}"
    limit = params.max_size_mb * 1024 * 1024
    with_xlsx = len(pdf) + len(xlsx) <= limit
    attached = [f"{stem}.pdf"] + ([f"{stem}.xlsx"] if with_xlsx else [])
    note = "" if with_xlsx else (
        f"The Excel workbook ({len(xlsx) / 1048576:.1f} MB) is not attached: PDF and workbook together exceed "
        f"the {params.max_size_mb:g} MB email limit. Ask the analytics team for the workbook.")
    cids = [(name, _cid(name, data, key)) for name, data in images.items()]
    text, page = _bodies(facts, attached, note, cids)

    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = check_header(_subject(facts), "subject", key_name)
    msg["From"] = sender
    if groups["to"]:
        msg["To"] = groups["to"]
    if groups["cc"]:
        msg["Cc"] = groups["cc"]
    msg["Date"] = format_datetime(dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC), usegmt=True)
    msg["Message-ID"] = f"<{key[:32]}@datastory>"
    msg["X-Datastory-Audience"] = check_header(key_name, "audience key", key_name)
    # The email package will not wrap multipart/alternative in multipart/related, so build the tree by hand.
    body = MIMEPart(policy=SMTP)
    body.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    body.add_alternative(page, subtype="html", charset="utf-8", cte="quoted-printable")
    if images:
        related = MIMEPart(policy=SMTP)
        related["Content-Type"] = 'multipart/related; type="multipart/alternative"'
        related.attach(body)
        for (name, data), (_, cid) in zip(images.items(), cids, strict=True):
            related.add_related(data, "image", "png", cid=f"<{cid}>", disposition="inline",
                                filename=f"{name}.png")
        body = related
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = "multipart/mixed"
    msg.attach(body)
    files = [(pdf, ("application", "pdf"))] + ([(xlsx, XLSX_TYPE)] if with_xlsx else [])
    for (data, (maintype, subtype)), filename in zip(files, attached, strict=True):
        part = MIMEPart(policy=SMTP)
        part.set_content(data, maintype, subtype, disposition="attachment", filename=filename)
        msg.attach(part)
    for i, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        # "=_" cannot occur in base64 or quoted-printable bodies, so the boundary never collides.
        part.set_boundary(f"=_ds_{hashlib.sha256(f'{key}:{i}'.encode()).hexdigest()[:32]}")
    return msg


def to_bytes(msg: EmailMessage) -> bytes:
    """The wire form: CRLF line ends (email.policy.SMTP). Refuses a multipart part without a set
    boundary, because the email package would invent a random one and the bytes would differ per run."""
    unset = [p.get_content_type() for p in msg.walk() if p.is_multipart() and p.get_boundary() is None]
    if unset:
        raise DeliveryError(f"message part(s) {', '.join(unset)} have no fixed MIME boundary",
                            fix="build the message with datastory.deliver.compose")
    return msg.as_bytes(policy=SMTP)
