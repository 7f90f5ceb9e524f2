"""Compose one audience's email: a deterministic RFC 5322 message (pure core, no I/O).

Layout: multipart/mixed[ multipart/related[ multipart/alternative[text/plain, text/html],
inline image/png (Content-ID) ], application/pdf, XLSX ]. Without images the related layer is left out.

Same pack + same bytes + same params => byte-identical message: the Date header is the data
period's end (not the clock), the Message-ID comes from the ledger's content key, and every MIME
boundary is derived from that key instead of the email package's random default.
Addresses are validated, and CR, LF or NUL in any header value is refused (promise 3).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP
from email.policy import default as default_policy
from email.utils import format_datetime

from .. import config
from ..errors import DataError, DeliveryError, ParamsError
from ..present import Pack, story, words
from ..present.change import what_changed
from .ledger import content_key

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TOP_N_NAMES = 5  # red-list customers named in the body
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


# ---------------------------------------------------------------- numbers
def period_end(pack: Pack) -> dt.date:
    """The data period's last day, from the pack's provenance."""
    try:
        return dt.date.fromisoformat(pack.provenance.period_end[:10])
    except ValueError:
        raise DataError(f"data period end {pack.provenance.period_end!r} is not a date (YYYY-MM-DD)",
                        file=config.where("data_quality"), column="period_end",
                        fix="re-run the ingest stage") from None


def kpi_change(pack: Pack) -> tuple[dict | None, str]:
    """(the KPI change the report shows, "") or (None, why it is unavailable).

    present.story.headline_change: the last COMPLETE period against the one before. Too little history is
    not fatal for the email: the body then says why the comparison is missing instead of failing the delivery.
    """
    if pack.kpis.empty:
        return None, "no KPI data for this audience"
    try:
        change = story.headline_change(pack)
    except DataError as exc:
        return None, exc.problem
    return (change, "") if change is not None else (None, words.NO_EARLIER_PERIOD)


# ---------------------------------------------------------------- text parts
def _subject(pack: Pack, change: dict | None) -> str:
    """'North sales: review to 2025-05-31 — revenue 2.4 k EUR (+4%), 2 customers to call'."""
    head = f"{pack.label}: review to {period_end(pack).isoformat()}"
    parts = []
    if change:
        rev = change["kpis"]["revenue"]
        parts.append(f"revenue {words.fmt_money(rev['value'])} {pack.currency} "
                     f"({words.kpi_delta('revenue', rev)})")
    n = len(pack.red_list)
    parts.append(f"{n} customer{'s' if n != 1 else ''} to call")
    return f"{head} \u2014 {', '.join(parts)}"


def _kpi_rows(pack: Pack, change: dict | None) -> list[tuple[str, str, str, str]]:
    """(label, latest, previous, change) strings for the body's KPI table, in the report's words."""
    if not change:
        return []
    out = []
    for key, label in words.KPI_LABELS.items():
        out.append((label, *words.kpi_figures(key, change["kpis"][key])))
    return out


def _top_names(pack: Pack) -> list[tuple[str, str]]:
    red = pack.red_list.sort_values("revenue_at_risk", ascending=False, kind="stable").head(TOP_N_NAMES)
    return [(str(r.customer_name), words.fmt_money(float(r.revenue_at_risk))) for r in red.itertuples()]


# Light inline styles only: mail clients drop <style> blocks and most layout CSS, but keep these.
_FONT = "font-family:Arial,Helvetica,sans-serif;color:#222222"
_CELL = "padding:4px 8px;border-bottom:1px solid #DDDDDD"
_NUM = _CELL + ";text-align:right;white-space:nowrap"
IMAGE_WIDTH = 600  # px: the inline chart's width on a wide screen; it shrinks with the window below that


def _bodies(pack: Pack, change: dict | None, why: str, attached: list[str], note: str,
           cids: list[tuple[str, str]]) -> tuple[str, str]:
    """(plain text, HTML) bodies. Every value from data or params is HTML-escaped."""
    e = html.escape
    if change:
        when = (f"Latest complete period: {words.period_label(change['period'], change['freq'])} (compared with "
                f"{words.period_label(change['previous_period'], change['freq'])}).")
    else:
        when = f"KPI comparison not available: {why}"
    headlines = story.executive_summary(pack)
    rows = _kpi_rows(pack, change)
    names = _top_names(pack)
    counts = pack.call_counts
    n_red = counts["call"]
    footer = pack.provenance.footer()
    amounts = f"Amounts in {pack.currency}."
    moved = what_changed(pack)
    drivers = [(r.label, r.text) for r in moved.drivers()]
    text = [f"{pack.title} \u2014 {pack.label}", f"{pack.company}", "", when, amounts, ""]
    text += [f"* {s}" for s in headlines] + [""]
    if rows:
        text += [f"{'KPI':<22}{'Latest':>12}{'Previous':>12}{'Change':>10}"]
        text += [f"{a:<22}{b:>12}{c:>12}{d:>10}" for a, b, c, d in rows] + [""]
    text += [f"What changed ({moved.where}): {moved.message or moved.sentence}"]
    text += [f"  {a:<34}{b:>10}" for a, b in drivers] + [""]
    if names:
        text.append(f"Most revenue at risk among the {n_red} to call:")
        text += [f"  - {nm}: {risk} {pack.currency} revenue at risk" for nm, risk in names]
    text += ["", "Attached: " + ", ".join(attached) + "."]
    if note:
        text += [note]
    text += ["", footer, ""]

    h = [f'<div style="{_FONT};font-size:14px;line-height:1.45;max-width:640px">',
         f'<h2 style="font-size:20px;margin:0 0 4px 0">{e(pack.title)} \u2014 {e(pack.label)}</h2>',
         f'<p style="margin:0 0 12px 0;color:#555555">{e(pack.company)}. {e(when)} {e(amounts)}</p>',
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
    h.append(f'<p style="margin:0 0 4px 0"><strong>What changed ({e(moved.where)}):</strong> '
             f"{e(moved.message or moved.sentence)}</p>")
    if drivers:
        h.append('<table role="presentation" cellpadding="0" cellspacing="0" style="border-collapse:collapse;'
                 'font-size:13px;margin:0 0 12px 0"><tbody>' + "".join(
                     f'<tr><td style="{_CELL}">{e(a)}</td><td style="{_NUM}">{e(b)}</td></tr>' for a, b in drivers)
                 + "</tbody></table>")
    if names:
        h.append(f'<p style="margin:0 0 4px 0"><strong>Most revenue at risk among the {n_red} to call:</strong></p>')
        h.append('<ul style="padding-left:20px;margin:0 0 12px 0">'
                 + "".join(f"<li>{e(nm)}: {e(risk)} {e(pack.currency)} revenue at risk</li>" for nm, risk in names)
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


def delivery_key(pack: Pack, pdf: bytes, xlsx: bytes, audience: config.Audience) -> str:
    """The ledger key of this pack's email: attachments, sorted envelope recipients, data period."""
    period = (pack.provenance.period_start, pack.provenance.period_end)
    return content_key([pdf, xlsx], envelope_recipients(audience, pack.audience), period)


def compose(pack: Pack, pdf: bytes, xlsx: bytes, audience: config.Audience, params: config.DeliverParams,
            images: dict[str, bytes] | None = None) -> EmailMessage:
    """One audience's email; byte-identical for identical inputs (see module docstring)."""
    key_name = pack.audience
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
    for what, value in (("label", pack.label), ("title", pack.title), ("company", pack.company)):
        check_header(value, what, key_name)
    end = period_end(pack)
    key = delivery_key(pack, pdf, xlsx, audience)

    change, why = kpi_change(pack)
    stem = f"{key_name}_report_{end.isoformat()}"
    limit = params.max_size_mb * 1024 * 1024
    with_xlsx = len(pdf) + len(xlsx) <= limit
    attached = [f"{stem}.pdf"] + ([f"{stem}.xlsx"] if with_xlsx else [])
    note = "" if with_xlsx else (
        f"The Excel workbook ({len(xlsx) / 1048576:.1f} MB) is not attached: PDF and workbook together exceed "
        f"the {params.max_size_mb:g} MB email limit. Ask the analytics team for the workbook.")
    cids = [(name, _cid(name, data, key)) for name, data in images.items()]
    text, page = _bodies(pack, change, why, attached, note, cids)

    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = check_header(_subject(pack, change), "subject", key_name)
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
