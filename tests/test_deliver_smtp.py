"""datastory.deliver.smtp against a REAL SMTP server (aiosmtpd) on 127.0.0.1 only.

The server helpers here (Inbox, `server`, `tls_files`) are imported by test_deliver_init.py too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import smtplib
import socket
import ssl
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import email_inputs

from datastory import config
from datastory.deliver import smtp
from datastory.deliver.compose import compose, to_bytes
from datastory.deliver.ledger import DeliveryError
from datastory.errors import ParamsError

HOST = "127.0.0.1"
PDF = b"%PDF-1.4\n% tiny test pdf\n" + bytes(range(256))
XLSX = b"PK\x03\x04 tiny test workbook " + bytes(range(255, -1, -1))
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR tiny test image"
USER, PASSWORD = "reporter", "s3cret-pa55"


class Inbox:
    """aiosmtpd handler that keeps what it accepts; optional scripted failures."""

    def __init__(self, data_replies: list[str] | None = None, reject: dict[str, str] | None = None):
        self.data_replies = list(data_replies or [])
        self.reject = dict(reject or {})
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.data_calls = 0
        self.logins: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_calls += 1
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted"

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
              and auth_data.password == PASSWORD.encode())
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: the server replies 535 itself


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(inbox: Inbox, **kwargs):
    """A running aiosmtpd Controller on 127.0.0.1; yields its port."""
    port = free_port()
    ctl = Controller(inbox, hostname=HOST, port=port, **kwargs)
    ctl.start()
    try:
        yield port
    finally:
        ctl.stop()


def params_for(port: int, **kw) -> config.DeliverParams:
    base = {"send": True, "smtp_host": HOST, "smtp_port": port, "security": "none", "timeout_s": 5}
    return config.DeliverParams(**{**base, **kw})


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (also its own CA) and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "datastory test CA")])
    now = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=365 * 30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address(HOST))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_context(tls_files) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*tls_files)
    return ctx


def client_context(tls_files) -> ssl.SSLContext:
    """Verifying client context that trusts only the test certificate."""
    return ssl.create_default_context(cafile=str(tls_files[0]))


def north_message(**aud):
    audience = config.Audience(label="North sales", regions=["North"],
                               **({"to": ["north@example.com"]} | aud))
    return compose(email_inputs()[0], PDF, XLSX, audience, config.DeliverParams(), {"revenue": PNG})


def mime_tree(part, depth: int = 0) -> list[str]:
    line = "  " * depth + part.get_content_type()
    extra = part.get_filename() or part.get("Content-ID")
    out = [line + (f"  [{extra}]" if extra else "")]
    for sub in (part.iter_parts() if part.is_multipart() else []):
        out += mime_tree(sub, depth + 1)
    return out


# ---------------------------------------------------------------- plain SMTP
def test_plain_send_is_received_byte_identical_and_parses_back():
    inbox = Inbox()
    msg = north_message()
    with server(inbox) as port:
        refused = smtp.send(msg, "reports@example.com", ["north@example.com"], params_for(port))
    assert refused == {}
    assert len(inbox.messages) == 1
    mail_from, rcpts, raw = inbox.messages[0]
    assert mail_from == "reports@example.com" and rcpts == ["north@example.com"]
    assert raw.rstrip(b"\r\n") == to_bytes(msg).rstrip(b"\r\n")
    got = email.message_from_bytes(raw, policy=email.policy.default)
    files = {p.get_filename(): p.get_content() for p in got.iter_attachments()}
    assert files["north_report_2025-05-31.pdf"] == PDF
    assert files["north_report_2025-05-31.xlsx"] == XLSX
    html = got.get_body(("html",)).get_content()
    related = next(p for p in got.walk() if p.get_content_type() == "multipart/related")
    images = {p["Content-ID"].strip("<>"): p.get_content() for p in related.iter_parts()
              if p.get_content_type() == "image/png"}
    assert images and all(f'src="cid:{cid}"' in html for cid in images)
    assert list(images.values()) == [PNG]
    print("\n".join(mime_tree(got)))


# ---------------------------------------------------------------- TLS and AUTH
def test_starttls_auth_with_verified_test_certificate(tls_files):
    inbox = Inbox()
    kw = dict(tls_context=server_context(tls_files), require_starttls=True, auth_required=True,
              auth_require_tls=True, authenticator=inbox.authenticator)
    with server(inbox, **kw) as port:
        smtp.send(north_message(), "reports@example.com", ["north@example.com"],
                  params_for(port, security="starttls"), USER, PASSWORD, context=client_context(tls_files))
    assert inbox.logins == [USER]
    assert len(inbox.messages) == 1


def test_starttls_refuses_an_untrusted_certificate_without_retry(tls_files):
    inbox = Inbox()
    sleeps: list[float] = []
    with server(inbox, tls_context=server_context(tls_files), require_starttls=True) as port, \
            pytest.raises(DeliveryError, match="TLS") as err:
        smtp.send(north_message(), "reports@example.com", ["north@example.com"],
                  params_for(port, security="starttls"), sleep=sleeps.append)  # default context: verifying
    assert err.value.column == "security"
    assert sleeps == [] and inbox.messages == []


def test_wrong_password_is_a_clear_error_that_never_shows_the_password(tls_files):
    inbox = Inbox()
    kw = dict(tls_context=server_context(tls_files), auth_required=True, authenticator=inbox.authenticator)
    sleeps: list[float] = []
    with server(inbox, **kw) as port, pytest.raises(DeliveryError, match="rejected the login") as err:
        smtp.send(north_message(), "reports@example.com", ["north@example.com"],
                  params_for(port, security="starttls"), USER, "wrong-horse", context=client_context(tls_files),
                  sleep=sleeps.append)
    assert "wrong-horse" not in str(err.value) and inbox.messages == [] and sleeps == []


def test_implicit_tls_security_ssl(tls_files):
    inbox = Inbox()
    with server(inbox, ssl_context=server_context(tls_files)) as port:
        smtp.send(north_message(), "reports@example.com", ["north@example.com"],
                  params_for(port, security="ssl"), context=client_context(tls_files))
    assert len(inbox.messages) == 1


# ---------------------------------------------------------------- retries and refusals
def test_transient_451_is_retried_and_sent_once():
    inbox = Inbox(data_replies=["451 try later"])
    sleeps: list[float] = []
    with server(inbox) as port:
        smtp.send(north_message(), "reports@example.com", ["north@example.com"], params_for(port),
                  base_delay=0.25, sleep=sleeps.append)
    assert inbox.data_calls == 2 and len(inbox.messages) == 1
    assert sleeps == [0.25]


def test_persistent_4xx_gives_up_after_bounded_exponential_backoff():
    inbox = Inbox(data_replies=["451 try later"] * 5)
    sleeps: list[float] = []
    with server(inbox) as port, pytest.raises(DeliveryError, match="451"):
        smtp.send(north_message(), "reports@example.com", ["north@example.com"], params_for(port),
                  base_delay=0.5, sleep=sleeps.append)
    assert sleeps == [0.5, 1.0] and inbox.data_calls == smtp.TRIES and inbox.messages == []


def test_permanent_550_names_the_refused_recipient_and_does_not_retry():
    inbox = Inbox(reject={"north@example.com": "550 5.1.1 no such user"})
    sleeps: list[float] = []
    with server(inbox) as port, pytest.raises(DeliveryError, match="north@example.com") as err:
        smtp.send(north_message(), "reports@example.com", ["north@example.com"], params_for(port),
                  sleep=sleeps.append)
    assert "550" in str(err.value) and sleeps == [] and inbox.messages == []


def test_permanent_550_at_data_names_the_recipients():
    inbox = Inbox(data_replies=["554 5.7.1 message rejected as spam"])
    with server(inbox) as port, pytest.raises(DeliveryError, match="554.*spam") as err:
        smtp.send(north_message(), "reports@example.com", ["north@example.com"], params_for(port), sleep=print)
    assert "north@example.com" in str(err.value) and inbox.data_calls == 1


def test_partial_refusal_is_returned_not_raised():
    inbox = Inbox(reject={"gone@example.com": "550 mailbox gone"})
    with server(inbox) as port:
        refused = smtp.send(north_message(), "reports@example.com", ["gone@example.com", "north@example.com"],
                            params_for(port))
    assert list(refused) == ["gone@example.com"] and "550" in refused["gone@example.com"]
    assert inbox.messages[0][1] == ["north@example.com"]


def test_unreachable_server_is_retried_then_named():
    port = free_port()  # nothing listens there
    sleeps: list[float] = []
    with pytest.raises(DeliveryError, match=f"{HOST}:{port}") as err:
        smtp.send(north_message(), "reports@example.com", ["north@example.com"], params_for(port),
                  base_delay=0.1, sleep=sleeps.append)
    assert sleeps == [0.1, 0.2] and err.value.column == "smtp_host"


# ---------------------------------------------------------------- refused before connecting
@pytest.mark.parametrize("kwargs, exc, match", [
    ({"recipients": []}, DeliveryError, "no recipients"),
    ({"user": USER}, ParamsError, "only one of"),
    ({"user": USER, "password": PASSWORD}, ParamsError, "without encryption"),
    ({"tries": 0}, ParamsError, "tries"),
])
def test_send_refuses_bad_arguments_before_connecting(kwargs, exc, match):
    args = {"recipients": ["north@example.com"], "user": None, "password": None} | kwargs
    tries = args.pop("tries", smtp.TRIES)
    with pytest.raises(exc, match=match):
        smtp.send(north_message(), "reports@example.com", args["recipients"], params_for(free_port()),
                  args["user"], args["password"], tries=tries)


def test_smtplib_exceptions_are_classified():
    assert smtp._is_transient(smtplib.SMTPDataError(451, b"later"))
    assert not smtp._is_transient(smtplib.SMTPDataError(550, b"no"))
    assert smtp._is_transient(smtplib.SMTPRecipientsRefused({"a@b.c": (450, b"busy")}))
    assert not smtp._is_transient(smtplib.SMTPRecipientsRefused({"a@b.c": (450, b"x"), "d@e.f": (550, b"y")}))
    assert smtp._is_transient(ConnectionRefusedError()) and not smtp._is_transient(ssl.SSLError())


# ---------------------------------------------------------------- transmit: per-recipient outcomes
def _transmit(port, recipients=("north@example.com",), **kw):
    return smtp.transmit(to_bytes(north_message()), "reports@example.com", list(recipients),
                         params_for(port, **kw.pop("params", {})), base_delay=0.0, sleep=lambda s: None, **kw)


def test_on_data_is_called_with_the_accepted_recipients_before_data():
    from smtp_faults import FaultyInbox, faulty_server

    inbox = FaultyInbox(greylist={"grey@example.com"})
    seen: list[tuple[list[str], int]] = []
    with faulty_server(inbox) as port:
        out = _transmit(port, ["north@example.com", "grey@example.com"], tries=1,
                        on_data=lambda accepted: seen.append((accepted, inbox.data_calls)))
    assert seen == [(["north@example.com"], 0)]
    assert out.having(smtp.SENT) == {"north@example.com": "250 Message accepted"}
    assert out.having(smtp.DEFERRED) == {"grey@example.com": "450 4.2.0 greylisted, try again later"}
    assert out.handed_over == ["north@example.com"]


def test_whatever_on_data_raises_stops_the_send_before_data():
    inbox = Inbox()

    def fail(accepted):
        raise DeliveryError("ledger is read-only")

    with server(inbox) as port, pytest.raises(DeliveryError, match="read-only"):
        _transmit(port, on_data=fail)
    assert inbox.data_calls == 0 and inbox.messages == []


def test_no_answer_after_the_message_is_in_flight_and_never_retried():
    """A timeout after the whole message went out: it may have been delivered, so it is not sent again."""
    import threading

    from smtp_faults import FaultyInbox, faulty_server

    hold = threading.Event()
    inbox = FaultyInbox(hold=hold)
    with faulty_server(inbox) as port:
        try:
            out = _transmit(port, params={"timeout_s": 0.5})
        finally:
            hold.set()
    assert inbox.connections == 1 and out.tries == 1
    (detail,) = out.having(smtp.IN_FLIGHT).values()
    assert detail.startswith(f"the whole message was sent to {HOST}:{port}, then no answer came in time")


def test_send_says_may_have_been_delivered_when_the_connection_drops_after_data():
    from smtp_faults import FaultyInbox, faulty_server

    inbox = FaultyInbox(drop={"after_data": 1})
    with faulty_server(inbox) as port, pytest.raises(DeliveryError, match="may have been delivered to north@"):
        smtp.send(north_message(), "reports@example.com", ["north@example.com"], params_for(port), sleep=print)
    assert inbox.connections == 1 and inbox.data_calls == 1


def test_5xx_at_the_greeting_is_permanent_and_named():
    from smtp_faults import FaultyInbox, faulty_server

    inbox = FaultyInbox(greeting=["554 5.7.1 no service for you"])
    with faulty_server(inbox) as port:
        out = _transmit(port)
    assert inbox.connections == 1 and out.failure is not None
    assert "answered 554 5.7.1 no service for you at the greeting: it refuses this client" in out.failure.problem
    assert out.results["north@example.com"].state == smtp.DEFERRED   # not the recipient's fault: retried next run


def test_a_refused_ehlo_is_named():
    class NoHello(Inbox):
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            return ["421 4.7.0 too busy for you"]

    with server(NoHello()) as port:
        out = _transmit(port, tries=1)
    assert "answered 421 4.7.0 too busy for you at EHLO" in out.failure.problem


def test_the_message_is_dot_stuffed_and_ends_with_the_end_of_data_line():
    assert smtp._wire(b"a\r\n.b\r\n..c\r\n") == b"a\r\n..b\r\n...c\r\n.\r\n"
    assert smtp._wire(b".\r\nlast") == b"..\r\nlast\r\n.\r\n"
