"""Send one composed message over SMTP (standard library smtplib): the network edge.

- security "starttls": plain connect, then STARTTLS with a verifying context
  (ssl.create_default_context(), or one passed in, e.g. trusting a test CA); "ssl": SMTP over TLS
  from the first byte (SMTP_SSL); "none": no encryption (then credentials are refused).
- Login only when both user and password are given. They come from the environment
  (DATASTORY_SMTP_USER / DATASTORY_SMTP_PASSWORD, read by the caller), never from params, and are
  never logged or put in an error message.
- Transient failures are retried with bounded exponential backoff: connection errors, timeouts, a
  dropped connection and any 4xx reply. A 5xx reply is permanent: a clear DeliveryError that names
  the refused recipient(s) or the refused sender, and no retry.
- Recipients refused individually while others were accepted are returned, not raised, because the
  message HAS gone out to the others (the caller records it, so nobody gets it twice).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage

from .. import config
from ..errors import DeliveryError, ParamsError
from .compose import to_bytes

log = logging.getLogger(__name__)

TRIES = 3          # attempts in all, first one included
BASE_DELAY_S = 2.0  # wait before the 2nd try; doubles for each further try

_TRANSIENT = (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError)


def _text(resp: bytes | str) -> str:
    """A server reply as one safe line (no CR/LF), for error messages."""
    s = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return " ".join(s.split())[:200]


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, _TRANSIENT)


def _permanent(exc: BaseException, params: config.DeliverParams, envelope_from: str,
               rcpts: list[str]) -> DeliveryError:
    """A clear, credential-free message for an error that retrying will not fix."""
    server = f"{params.smtp_host}:{params.smtp_port}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        who = "; ".join(f"{r} ({code} {_text(msg)})" for r, (code, msg) in sorted(exc.recipients.items()))
        return DeliveryError(f"{server} refused every recipient: {who}",
                             fix="correct the addresses in params/report.yaml (audiences: to/cc/bcc)")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return DeliveryError(f"{server} refused the sender {envelope_from}: {exc.smtp_code} {_text(exc.smtp_error)}",
                             file="params/deliver.yaml", column="from_addr",
                             fix="use a sender address the server accepts")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(f"{server} rejected the login: {exc.smtp_code} {_text(exc.smtp_error)}",
                             fix="check DATASTORY_SMTP_USER / DATASTORY_SMTP_PASSWORD in the environment")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"{server} does not support what was asked ({_text(str(exc))})",
                             file="params/deliver.yaml", column="security",
                             fix="check 'security' (starttls, ssl or none) and 'smtp_port' for this server")
    if isinstance(exc, smtplib.SMTPResponseException):
        return DeliveryError(f"{server} refused the message for {', '.join(rcpts)}: "
                             f"{exc.smtp_code} {_text(exc.smtp_error)}",
                             fix="read the server's reason; the message was not sent to anyone")
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(f"TLS with {server} failed: {_text(str(exc))}", file="params/deliver.yaml",
                             column="security", fix="check the server's certificate and 'security'/'smtp_port'")
    if isinstance(exc, _TRANSIENT):
        return DeliveryError(f"cannot reach {server} after {TRIES} tries: {type(exc).__name__}: {_text(str(exc))}",
                             file="params/deliver.yaml", column="smtp_host",
                             fix="check smtp_host/smtp_port and that the server is up; then re-run")
    if isinstance(exc, OSError):
        return DeliveryError(f"cannot connect to {server}: {_text(str(exc))}", file="params/deliver.yaml",
                             column="smtp_host", fix="check smtp_host and smtp_port")
    return DeliveryError(f"sending via {server} failed: {type(exc).__name__}: {_text(str(exc))}")


def _once(data: bytes, envelope_from: str, rcpts: list[str], params: config.DeliverParams,
          user: str | None, password: str | None, context: ssl.SSLContext) -> dict[str, str]:
    host, port, timeout = params.smtp_host, params.smtp_port, params.timeout_s
    if params.security == "ssl":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        conn = smtplib.SMTP(host, port, timeout=timeout)
    with conn:
        conn.ehlo("datastory")
        if params.security == "starttls":
            conn.starttls(context=context)
            conn.ehlo("datastory")
        if user is not None and password is not None:
            conn.login(user, password)
        refused = conn.sendmail(envelope_from, rcpts, data)
    return {r: f"{code} {_text(msg)}" for r, (code, msg) in sorted(refused.items())}


def send(msg: EmailMessage, envelope_from: str, recipients: Sequence[str], params: config.DeliverParams,
         user: str | None = None, password: str | None = None, *, context: ssl.SSLContext | None = None,
         tries: int = TRIES, base_delay: float = BASE_DELAY_S,
         sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Send `msg` (its exact bytes) to the envelope `recipients`; return {refused recipient: reply}.

    Bcc recipients are passed here only, never as a header. `context`, `tries`, `base_delay` and
    `sleep` are injectable for tests (a CA that trusts a test certificate, no real waiting).
    """
    rcpts = sorted(dict.fromkeys(recipients))
    if not rcpts:
        raise DeliveryError("no recipients to send to", file="params/report.yaml",
                            fix="add 'to:' addresses to the audience")
    if (user is None) != (password is None):
        raise ParamsError("only one of DATASTORY_SMTP_USER / DATASTORY_SMTP_PASSWORD is set",
                          fix="set both (to log in) or neither")
    if user is not None and params.security == "none":
        raise ParamsError("refusing to send the SMTP password without encryption (security: none)",
                          file="params/deliver.yaml", column="security", fix="use starttls or ssl")
    if tries < 1:
        raise ParamsError(f"tries must be at least 1, got {tries}")
    ctx = context or ssl.create_default_context()
    data = to_bytes(msg)
    for attempt in range(1, tries + 1):
        try:
            return _once(data, envelope_from, rcpts, params, user, password, ctx)
        except (smtplib.SMTPException, OSError) as exc:
            if not _is_transient(exc) or attempt == tries:
                raise _permanent(exc, params, envelope_from, rcpts) from None
            delay = base_delay * 2 ** (attempt - 1)
            log.warning("SMTP attempt %d/%d to %s:%s failed (%s); retrying in %.1f s", attempt, tries,
                        params.smtp_host, params.smtp_port, type(exc).__name__, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
