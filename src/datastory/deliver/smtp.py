"""Send one composed message over SMTP (standard library smtplib): the network edge.

- security "starttls": plain connect, then STARTTLS with a verifying context
  (ssl.create_default_context(), or one passed in, e.g. trusting a test CA); "ssl": SMTP over TLS
  from the first byte (SMTP_SSL); "none": no encryption (then credentials are refused).
- Login only when both user and password are given. They come from the environment
  (DATASTORY_SMTP_USER / DATASTORY_SMTP_PASSWORD, read by the caller), never from params, and are
  never logged or put in an error message.
- `transmit` tells, per recipient, what happened (the ledger's states):
  sent (250 to the message), deferred (a 4xx answer, or the session failed BEFORE the message was
  handed over: nothing reached anyone), refused (a 5xx answer), in_flight (the whole message was
  handed over and no answer came: it may have been delivered).
- Within one call, deferred recipients are retried with bounded exponential backoff. An in_flight
  recipient is never retried: sending again could deliver a second copy. `on_data` is called with
  the accepted recipients just before the DATA command, so the caller can record them as in flight
  first; whatever it raises stops the send before anything is handed over.
- A failure of the session itself (cannot connect, a dropped connection, TLS, login, the sender or
  the greeting refused) is described by where it happened, e.g. "closed the connection at RCPT TO"
  is not "cannot reach".
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage

from .. import config
from ..errors import DeliveryError, ParamsError
from .compose import to_bytes
from .ledger import DEFERRED, IN_FLIGHT, REFUSED, SENT
from .status import NOT_SENT

log = logging.getLogger(__name__)

TRIES = 3          # attempts in all, first one included
BASE_DELAY_S = 2.0  # wait before the 2nd try; doubles for each further try

_TRANSIENT = (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError)
_PHASES = {   # where a session broke, in words
    "connect": "before its greeting", "ehlo": "at EHLO", "starttls": "during STARTTLS", "login": "during login",
    "mail": "at MAIL FROM", "rcpt": "at RCPT TO", "data": "at the DATA command, before the message was sent",
    "body": "while the message was being sent, before its end (so it cannot have been accepted)",
}


def _text(resp: bytes | str) -> str:
    """A server reply as one safe line (no CR/LF), for error messages."""
    s = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return " ".join(s.split())[:200]


def _reply(code: int, msg: bytes | str) -> str:
    return f"{code} {_text(msg)}"


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, _TRANSIENT)


@dataclass(frozen=True)
class Result:
    """What became of one recipient: a ledger state and the server's reply or what happened."""

    state: str
    detail: str


@dataclass
class Outcome:
    """What `transmit` did: a Result per recipient, and why the session failed if it did."""

    results: dict[str, Result]
    failure: DeliveryError | None = None   # the last session failure, when some recipient is left deferred
    tries: int = 0
    handed_over: list[str] = field(default_factory=list)   # recipients passed to on_data, over all tries

    def having(self, state: str) -> dict[str, str]:
        return {r: res.detail for r, res in self.results.items() if res.state == state}


class _SessionFailed(Exception):
    """The session broke before the message was handed over: no recipient can have received it."""

    def __init__(self, phase: str, exc: BaseException):
        super().__init__(phase)
        self.phase, self.exc = phase, exc
        self.transient = _is_transient(exc) and not isinstance(exc, ssl.SSLError)


class _CallerFailed(Exception):
    """on_data raised: stop at once, before DATA."""

    def __init__(self, exc: BaseException):
        super().__init__(str(exc))
        self.exc = exc


def _describe(failed: _SessionFailed, params: config.DeliverParams, envelope_from: str, tries: int) -> DeliveryError:
    """A clear, credential-free message for a session that failed `tries` times in a row."""
    exc, phase = failed.exc, failed.phase
    server = f"{params.smtp_host}:{params.smtp_port}"
    times = f" (on each of {tries} tries)" if tries > 1 else ""
    retry = "the next run retries" if failed.transient else "nothing was sent"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return DeliveryError(f"{server} refused the sender {envelope_from}: {_reply(exc.smtp_code, exc.smtp_error)}"
                             f"{times}", file="params/deliver.yaml", column="from_addr",
                             fix="use a sender address the server accepts" if not failed.transient else
                             f"the server is busy or limiting; nothing was sent and {retry}")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(f"{server} rejected the login: {_reply(exc.smtp_code, exc.smtp_error)}{times}",
                             fix="check DATASTORY_SMTP_USER / DATASTORY_SMTP_PASSWORD in the environment")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"{server} does not support what was asked ({_text(str(exc))})",
                             file="params/deliver.yaml", column="security",
                             fix="check 'security' (starttls, ssl or none) and 'smtp_port' for this server")
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(f"TLS with {server} failed: {_text(str(exc))}", file="params/deliver.yaml",
                             column="security", fix="check the server's certificate and 'security'/'smtp_port'")
    if isinstance(exc, smtplib.SMTPConnectError):
        what = "is not accepting mail now" if failed.transient else "refuses this client"
        return DeliveryError(f"{server} answered {_reply(exc.smtp_code, exc.smtp_error)} at the greeting{times}: "
                             f"it {what}; nothing was sent", file="params/deliver.yaml", column="smtp_host",
                             fix="if it lasts, ask the mail server's administrator why" if failed.transient else
                             "check smtp_host/smtp_port, or ask the mail server's administrator to accept this client")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        what = (f"did not answer within timeout_s ({params.timeout_s:g} s)" if "timed out" in str(exc)
                else "closed the connection")
        return DeliveryError(f"{server} was reached but {what} {_PHASES[phase]}{times}: "
                             f"{_text(str(exc))}; nothing was sent", file="params/deliver.yaml", column="smtp_host",
                             fix=f"check the mail server's log (or a firewall or proxy in between); {retry}")
    if isinstance(exc, smtplib.SMTPResponseException):
        return DeliveryError(f"{server} answered {_reply(exc.smtp_code, exc.smtp_error)} {_PHASES[phase]}{times}; "
                             "nothing was sent", fix=f"read the server's reason; {retry}")
    if isinstance(exc, OSError) and phase == "connect":
        return DeliveryError(f"cannot connect to {server}{times}: {type(exc).__name__}: {_text(str(exc))}",
                             file="params/deliver.yaml", column="smtp_host",
                             fix=f"check smtp_host/smtp_port and that the server is up; {retry}")
    return DeliveryError(f"sending via {server} failed {_PHASES.get(phase, '')}{times}: {type(exc).__name__}: "
                         f"{_text(str(exc))}; nothing was sent", fix=retry)


def _close(conn: smtplib.SMTP | None, polite: bool) -> None:
    """QUIT (when the session is still sound) and close, never raising: the outcome is already known."""
    if conn is None:
        return
    try:
        if polite:
            conn.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        conn.close()


def _hello(conn: smtplib.SMTP) -> None:
    code, msg = conn.ehlo("datastory")
    if not 200 <= code < 300:
        raise smtplib.SMTPHeloError(code, msg)


def _wire(data: bytes) -> bytes:
    """The message as sent after DATA: dot-stuffed, CRLF-terminated, then the end-of-data line."""
    body = re.sub(rb"(?m)^\.", b"..", data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _attempt(data: bytes, envelope_from: str, rcpts: list[str], params: config.DeliverParams,
             user: str | None, password: str | None, context: ssl.SSLContext,
             on_data: Callable[[list[str]], None] | None) -> dict[str, Result]:
    """One SMTP session for `rcpts`. Raises _SessionFailed when it breaks before the message is handed over."""
    host, port, timeout = params.smtp_host, params.smtp_port, params.timeout_s
    server = f"{host}:{port}"
    phase, conn, results = "connect", None, {}
    try:
        if params.security == "ssl":
            conn = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            conn = smtplib.SMTP(host, port, timeout=timeout)
        phase = "ehlo"
        _hello(conn)
        if params.security == "starttls":
            phase = "starttls"
            conn.starttls(context=context)
            phase = "ehlo"
            _hello(conn)
        if user is not None and password is not None:
            phase = "login"
            conn.login(user, password)
        phase = "mail"
        options = [f"SIZE={len(data)}"] if conn.has_extn("size") else []
        code, msg = conn.mail(envelope_from, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, msg, envelope_from)
        phase = "rcpt"
        accepted = []
        for rcpt in rcpts:
            code, msg = conn.rcpt(rcpt)
            if code in (250, 251):
                accepted.append(rcpt)
            else:
                results[rcpt] = Result(DEFERRED if 400 <= code < 500 else REFUSED, _reply(code, msg))
        if not accepted:
            _close(conn, polite=True)
            return results
        if on_data is not None:
            try:
                on_data(accepted)
            except BaseException as exc:
                raise _CallerFailed(exc) from exc
        phase = "data"
        code, msg = conn.docmd("DATA")
        if code != 354:
            results.update({r: Result(DEFERRED if 400 <= code < 500 else REFUSED, _reply(code, msg)) for r in accepted})
            _close(conn, polite=True)
            return results
        phase = "body"
        conn.send(_wire(data))   # raises SMTPServerDisconnected if the end-of-data line did not go out
        phase = "reply"
        try:
            code, msg = conn.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            what = ("no answer came in time" if "timed out" in str(exc) else "the connection dropped")
            unknown = (f"the whole message was sent to {server}, then {what} before the server confirmed it "
                       f"({type(exc).__name__}: {_text(str(exc))})")
            _close(conn, polite=False)
            return {**results, **{r: Result(IN_FLIGHT, unknown) for r in accepted}}
        if 200 <= code < 300:
            state = SENT
        elif 400 <= code < 500:
            state = DEFERRED
        elif 500 <= code < 600:
            state = REFUSED
        else:   # not an SMTP answer: nobody can say whether it was accepted
            state = IN_FLIGHT
        results.update({r: Result(state, _reply(code, msg)) for r in accepted})
        _close(conn, polite=True)
        return results
    except _CallerFailed:
        _close(conn, polite=True)
        raise
    except (smtplib.SMTPException, OSError) as exc:
        _close(conn, polite=False)
        raise _SessionFailed(phase, exc) from None


def transmit(data: bytes, envelope_from: str, recipients: Sequence[str], params: config.DeliverParams,
             user: str | None = None, password: str | None = None, *, context: ssl.SSLContext | None = None,
             tries: int = TRIES, base_delay: float = BASE_DELAY_S, sleep: Callable[[float], None] = time.sleep,
             on_data: Callable[[list[str]], None] | None = None) -> Outcome:
    """Send the wire bytes `data` to `recipients`; an Outcome with a Result for each of them.

    Deferred recipients (a 4xx, or a session that broke before the message was handed over) are tried
    again, up to `tries` sessions in all; a permanent session failure (TLS, login, a 5xx to the sender
    or at the greeting) stops at once. `context`, `tries`, `base_delay` and `sleep` are injectable for
    tests (a CA that trusts a test certificate, no real waiting).
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
    out = Outcome(results={})
    failed: _SessionFailed | None = None
    fails_in_a_row = 0

    def record_handover(accepted: list[str]) -> None:
        if on_data is not None:
            on_data(accepted)
        out.handed_over.extend(r for r in accepted if r not in out.handed_over)

    for attempt in range(1, tries + 1):
        todo = [r for r in rcpts if r not in out.results or out.results[r].state == DEFERRED]
        out.tries = attempt
        try:
            out.results.update(_attempt(data, envelope_from, todo, params, user, password, ctx, record_handover))
            failed, fails_in_a_row = None, 0
        except _SessionFailed as exc:
            failed, fails_in_a_row = exc, fails_in_a_row + 1
            for r in todo:   # a 4xx reply of an earlier try says more than "could not get that far"
                if r not in out.results or r in out.handed_over or out.results[r].detail.startswith(NOT_SENT):
                    out.results[r] = Result(DEFERRED, NOT_SENT)
            if not exc.transient:
                break
        except _CallerFailed as exc:
            raise exc.exc from None
        left = [r for r in rcpts if out.results[r].state == DEFERRED]
        if not left or attempt == tries:
            break
        delay = base_delay * 2 ** (attempt - 1)
        why = (_describe(failed, params, envelope_from, 1).problem if failed else
               "; ".join(f"{r}: {out.results[r].detail}" for r in left))
        log.warning("SMTP attempt %d/%d via %s:%s left %d recipient(s) not delivered (%s); retrying in %.1f s",
                    attempt, tries, params.smtp_host, params.smtp_port, len(left), why, delay)
        sleep(delay)
    if failed is not None:
        out.failure = _describe(failed, params, envelope_from, fails_in_a_row)
        for r, res in out.results.items():
            if res.detail == NOT_SENT:
                out.results[r] = Result(DEFERRED, f"{NOT_SENT} {out.failure.problem}")
    return out


def send(msg: EmailMessage, envelope_from: str, recipients: Sequence[str], params: config.DeliverParams,
         user: str | None = None, password: str | None = None, *, context: ssl.SSLContext | None = None,
         tries: int = TRIES, base_delay: float = BASE_DELAY_S,
         sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Send `msg` (its exact bytes) to the envelope `recipients`; return {not delivered recipient: reply}.

    Returns when the server accepted it for at least one recipient and no outcome is unknown; otherwise
    raises a DeliveryError that says what happened. Bcc recipients are passed here only, never as a header.
    """
    out = transmit(to_bytes(msg), envelope_from, recipients, params, user, password, context=context,
                   tries=tries, base_delay=base_delay, sleep=sleep)
    if out.having(SENT) and not out.having(IN_FLIGHT):
        return {r: res.detail for r, res in out.results.items() if res.state != SENT}
    raise explain(out, params)


def explain(out: Outcome, params: config.DeliverParams) -> DeliveryError:
    """One DeliveryError for an Outcome in which nobody surely got the message."""
    server = f"{params.smtp_host}:{params.smtp_port}"
    unknown, refused, deferred = out.having(IN_FLIGHT), out.having(REFUSED), out.having(DEFERRED)
    if unknown:
        return DeliveryError(f"may have been delivered to {', '.join(unknown)}: {next(iter(unknown.values()))}",
                             fix="check whether it arrived before sending it again")
    if out.failure is not None and not refused and all(d.startswith(NOT_SENT) for d in deferred.values()):
        return out.failure
    tries = f"{out.tries} tr{'ies' if out.tries > 1 else 'y'}"
    if refused and not deferred:
        head = f"{server} refused every recipient: {_listing(refused)}"
    elif deferred and not refused:
        head = f"{server} deferred every recipient (after {tries}): {_listing(deferred)}"
    else:
        head = f"{server} refused {_listing(refused)}, and deferred (after {tries}) {_listing(deferred)}"
    return DeliveryError(f"{head}; the message was not sent to anyone",
                         fix="correct the refused addresses in params/report.yaml (audiences: to/cc/bcc)"
                         if refused else "the next run retries the deferred recipients")


def _listing(found: dict[str, str]) -> str:
    return "; ".join(f"{r} ({d})" for r, d in found.items())
