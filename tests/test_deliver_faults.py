"""Delivery exactly once per recipient, against a fault-injecting SMTP server on 127.0.0.1 with STARTTLS.

Each fault is followed by a re-run. What is counted is what the server received per recipient: exactly 1,
or 0 together with a message that says the email may have been delivered (or was not sent, and why).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import email_inputs, tiny_frames, write_artifacts, write_report_files
from smtp_faults import EVERY, GREYLISTED, FaultyInbox, faulty_server
from test_deliver_smtp import (  # noqa: F401  (tls_files is a fixture)
    PDF,
    XLSX,
    client_context,
    params_for,
    server_context,
    tls_files,
)

from datastory import config
from datastory.deliver import DeliveryError, Ledger, deliver
from datastory.deliver.ledger import DEFERRED, IN_FLIGHT, REFUSED, SENT

NORTH, DEPUTY = "north@example.com", "deputy@example.com"
AUDIENCE = config.Audience(label="North sales", regions=["North"], to=[NORTH], cc=[DEPUTY])


def tls(tls_files) -> dict:  # noqa: F811
    return dict(tls_context=server_context(tls_files), require_starttls=True)


def go(project, port, tls_files, timeout_s=5, **kw):  # noqa: F811
    facts, metrics = email_inputs()
    return deliver(facts, PDF, XLSX, AUDIENCE, params_for(port, security="starttls", timeout_s=timeout_s),
                   config.paths(project), project, env={}, metrics=metrics, base_delay=0.0,
                   context=client_context(tls_files), **kw)


def states(project, key) -> dict[str, str]:
    return {r: s for r, (s, _) in Ledger(project).states(key).items()}


def only_key(project) -> str:
    (key,) = Ledger(project).entries()
    return key


# ---------------------------------------------------------------- dropped after DATA: outcome unknown
def test_drop_after_data_is_never_resent_and_says_it_may_have_been_delivered(project, tls_files):  # noqa: F811
    inbox = FaultyInbox(drop={"after_data": 1})
    with faulty_server(inbox, **tls(tls_files)) as port:
        with pytest.raises(DeliveryError) as err:
            go(project, port, tls_files)
        assert inbox.received() == {NORTH: 1, DEPUTY: 1} and inbox.connections == 1   # no second try
        msg = str(err.value)
        assert f"may have been delivered to {DEPUTY}, {NORTH}" in msg and "connection dropped" in msg
        assert "datastory deliver --audience north --resend" in msg and "--mark-sent" in msg
        assert "cannot reach" not in msg and "nothing was sent" not in msg
        key = only_key(project)
        assert states(project, key) == {NORTH: IN_FLIGHT, DEPUTY: IN_FLIGHT}

        again = go(project, port, tls_files)                      # the re-run: still no second copy
        assert not again.sent and not again.complete and inbox.connections == 1
        assert "may have been delivered by an earlier run" in again.skipped and "--resend" in again.skipped

        marked = go(project, port, tls_files, mark_sent=True)      # someone checked: it arrived
        assert marked.complete and "marked as delivered" in marked.skipped
        last = go(project, port, tls_files)
    assert not last.sent and "already sent" in last.skipped and last.complete
    assert inbox.received() == {NORTH: 1, DEPUTY: 1} and states(project, key) == {NORTH: SENT, DEPUTY: SENT}


def test_drop_after_data_with_the_message_lost_then_resend_delivers_once(project, tls_files):  # noqa: F811
    inbox = FaultyInbox(drop={"after_data_lost": 1})
    with faulty_server(inbox, **tls(tls_files)) as port:
        with pytest.raises(DeliveryError, match="may have been delivered"):
            go(project, port, tls_files)
        assert inbox.received() == {} and inbox.data_calls == 1
        assert "may have been delivered" in go(project, port, tls_files).skipped   # re-run: not on its own
        assert inbox.received() == {}
        resent = go(project, port, tls_files, resend=True)          # checked: it did not arrive
        assert resent.sent and resent.complete and sorted(resent.sent_to) == [DEPUTY, NORTH]
        assert not go(project, port, tls_files, resend=True).sent   # nothing left to resend
    assert inbox.received() == {NORTH: 1, DEPUTY: 1}


def test_a_drop_on_every_connection_after_data_sends_one_copy_and_says_so(project, tls_files):  # noqa: F811
    inbox = FaultyInbox(drop={"after_data": EVERY})
    with faulty_server(inbox, **tls(tls_files)) as port:
        with pytest.raises(DeliveryError) as err:
            go(project, port, tls_files)
        again = go(project, port, tls_files)             # the re-run sends nothing, and says why
    assert inbox.received() == {NORTH: 1, DEPUTY: 1} and inbox.connections == 1
    assert "may have been delivered" in str(err.value) and "cannot reach" not in str(err.value)
    assert not again.sent and "may have been delivered by an earlier run" in again.skipped


def test_a_drop_at_quit_after_the_server_accepted_the_message_is_a_success(project, tls_files):  # noqa: F811
    inbox = FaultyInbox(drop={"quit": EVERY})
    with faulty_server(inbox, **tls(tls_files)) as port:
        first = go(project, port, tls_files)
        again = go(project, port, tls_files)
    assert first.sent and first.complete and not again.sent and "already sent" in again.skipped
    assert inbox.received() == {NORTH: 1, DEPUTY: 1} and inbox.connections == 1


@pytest.mark.parametrize("fault, where", [
    ({"greeting": ["drop"] * 3}, "before its greeting"),
    ({"drop": {"rcpt": EVERY}}, "at RCPT TO"),
    ({"drop": {"data": EVERY}}, "at the DATA command, before the message was sent"),
])
def test_a_drop_before_the_message_is_retried_and_named_where_it_happened(project, tls_files, fault, where):  # noqa: F811
    inbox = FaultyInbox(**fault)
    with faulty_server(inbox, **tls(tls_files)) as port:
        with pytest.raises(DeliveryError) as err:
            go(project, port, tls_files)
        assert inbox.received() == {} and inbox.connections == 3     # three tries: it was safe to retry
        msg = str(err.value)
        assert f"was reached but closed the connection {where} (on each of 3 tries)" in msg, msg
        assert "nothing was sent" in msg and "cannot reach" not in msg and "may have been" not in msg
        if "data" in fault.get("drop", {}):   # handed over up to DATA: recorded, and back to deferred
            assert states(project, only_key(project)) == {NORTH: DEFERRED, DEPUTY: DEFERRED}
        else:
            assert Ledger(project).entries() == {}
        inbox.drop.clear()
        again = go(project, port, tls_files)
    assert again.sent and again.complete and inbox.received() == {NORTH: 1, DEPUTY: 1}


# ---------------------------------------------------------------- 4xx / 5xx for one recipient
def test_a_greylisted_recipient_is_retried_on_the_next_run_and_gets_one_copy(project, tls_files):  # noqa: F811
    inbox = FaultyInbox(greylist={DEPUTY})
    with faulty_server(inbox, **tls(tls_files)) as port:
        with pytest.raises(DeliveryError) as err:
            go(project, port, tls_files)
        msg = str(err.value)
        assert f"delivered to {NORTH}" in msg
        assert f"not delivered yet to {DEPUTY}: the server deferred it ({GREYLISTED}); the next run tries again" in msg
        assert "correct" not in msg and "refused" not in msg
        key = only_key(project)
        assert states(project, key) == {NORTH: SENT, DEPUTY: DEFERRED}
        with pytest.raises(DeliveryError, match="not delivered yet"):   # still greylisted: north not resent
            go(project, port, tls_files)
        inbox.greylist.clear()
        third = go(project, port, tls_files)
        assert third.sent and third.sent_to == (DEPUTY,) and third.complete
        fourth = go(project, port, tls_files)
    assert not fourth.sent and "already sent" in fourth.skipped
    assert inbox.received() == {NORTH: 1, DEPUTY: 1} and states(project, key) == {NORTH: SENT, DEPUTY: SENT}


def test_greylisting_that_ends_within_the_run_is_retried_in_the_run(project, tls_files):  # noqa: F811
    inbox = FaultyInbox(reject={DEPUTY: GREYLISTED})

    async def once(server, session, envelope, address, rcpt_options):   # greylisted on the first try only
        if address == DEPUTY and inbox.reject.pop(DEPUTY, None):
            return GREYLISTED
        envelope.rcpt_tos.append(address)
        return "250 OK"

    inbox.handle_RCPT = once
    with faulty_server(inbox, **tls(tls_files)) as port:
        receipt = go(project, port, tls_files)
    assert receipt.sent and receipt.complete and inbox.received() == {NORTH: 1, DEPUTY: 1}


def test_a_5xx_for_one_recipient_is_reported_and_not_retried_until_resend(project, tls_files):  # noqa: F811
    inbox = FaultyInbox(reject={DEPUTY: "550 5.1.1 no such user"})
    with faulty_server(inbox, **tls(tls_files)) as port:
        with pytest.raises(DeliveryError, match=f"refused by the server: {DEPUTY} \\(550 5.1.1 no such user\\)"):
            go(project, port, tls_files)
        again = go(project, port, tls_files)
        assert not again.sent and not again.complete and "refused by the server in an earlier run" in again.skipped
        assert inbox.connections == 1
        inbox.reject.clear()                               # the mailbox was created
        resent = go(project, port, tls_files, resend=True)
    assert resent.sent_to == (DEPUTY,) and resent.complete
    assert inbox.received() == {NORTH: 1, DEPUTY: 1}


# ---------------------------------------------------------------- 421 at the greeting
def test_421_at_every_greeting_sends_nothing_says_so_and_the_next_run_delivers(project, tls_files):  # noqa: F811
    inbox = FaultyInbox(greeting=["421 4.3.2 Service not available, try later"] * 3)
    with faulty_server(inbox, **tls(tls_files)) as port:
        with pytest.raises(DeliveryError) as err:
            go(project, port, tls_files)
        msg = str(err.value)
        assert "answered 421 4.3.2 Service not available, try later at the greeting (on each of 3 tries)" in msg
        assert "nothing was sent" in msg and "cannot reach" not in msg and "the next run tries again" in msg
        assert inbox.received() == {} and Ledger(project).entries() == {}
        again = go(project, port, tls_files)
    assert again.sent and again.complete and inbox.received() == {NORTH: 1, DEPUTY: 1}


def test_421_once_at_the_greeting_is_retried_in_the_run(project, tls_files):  # noqa: F811
    inbox = FaultyInbox(greeting=["421 4.3.2 busy"])
    with faulty_server(inbox, **tls(tls_files)) as port:
        receipt = go(project, port, tls_files)
    assert receipt.sent and inbox.connections == 2 and inbox.received() == {NORTH: 1, DEPUTY: 1}


# ---------------------------------------------------------------- two deliveries of one audience at once
def test_two_threads_delivering_one_audience_send_once(project, tls_files, caplog):  # noqa: F811
    hold = threading.Event()
    inbox = FaultyInbox(hold=hold)
    out: list = []
    with faulty_server(inbox, **tls(tls_files)) as port:
        threads = [threading.Thread(target=lambda: out.append(go(project, port, tls_files, timeout_s=60))) for _ in range(2)]
        for t in threads:
            t.start()
        assert inbox.arrived.wait(30)          # one of them is inside its send, holding the lock
        deadline = time.monotonic() + 30
        while "waiting for it to finish" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        hold.set()
        for t in threads:
            t.join(60)
    assert "is being delivered by process" in caplog.text
    assert sorted(r.sent for r in out) == [False, True]
    assert "already sent" in next(r for r in out if not r.sent).skipped
    assert inbox.received() == {NORTH: 1, DEPUTY: 1} and inbox.connections == 1


def _cli_project(project: Path, port: int) -> None:
    write_artifacts(project, tiny_frames())
    write_report_files(project, PDF, XLSX, b"")   # b"": the report had no chart, the email goes without one
    params = yaml.safe_load((project / "params/deliver.yaml").read_text())
    params.update(send=True, smtp_host="127.0.0.1", smtp_port=port, security="starttls", timeout_s=60)
    (project / "params/deliver.yaml").write_text(yaml.safe_dump(params))
    report = yaml.safe_load((project / "params/report.yaml").read_text())
    report["audiences"]["north"]["cc"] = [DEPUTY]
    (project / "params/report.yaml").write_text(yaml.safe_dump(report))


def test_two_processes_delivering_one_audience_send_once(project, tls_files):  # noqa: F811
    """Two real `datastory deliver` processes race; the second waits for the first, then finds it sent."""
    hold = threading.Event()
    inbox = FaultyInbox(hold=hold)
    exe = Path(sys.executable).parent / "datastory"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASTORY_")}
    env["SSL_CERT_FILE"] = str(tls_files[0])    # the processes' default context trusts the test certificate
    with faulty_server(inbox, **tls(tls_files)) as port:
        _cli_project(project, port)
        procs = [subprocess.Popen([str(exe), "deliver", "--audience", "north"], cwd=project, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        errs: list[list[str]] = [[], []]
        outs: list[list[str]] = [[], []]
        readers = [threading.Thread(target=lambda f=f, into=into: into.extend(f), daemon=True)
                   for p, e, o in zip(procs, errs, outs, strict=True) for f, into in ((p.stderr, e), (p.stdout, o))]
        for r in readers:
            r.start()
        try:
            assert inbox.arrived.wait(120), errs
            deadline = time.monotonic() + 60
            while not any("waiting for it to finish" in line for e in errs for line in e):
                assert time.monotonic() < deadline, f"the second delivery did not wait: {errs}"
                time.sleep(0.05)
        finally:
            hold.set()
            for p in procs:
                p.wait(120)
            for r in readers:
                r.join(10)
    outs = ["".join(o) for o in outs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert sorted("sent to 2 recipient(s)" in o for o in outs) == [False, True], outs
    assert sum("not sent: already sent" in o for o in outs) == 1, outs
    assert inbox.received() == {"north.manager@example.com": 1, DEPUTY: 1} and inbox.connections == 1


# ---------------------------------------------------------------- the state survives in the ledger
def test_states_are_kept_per_recipient_in_the_ledger(project, tls_files):  # noqa: F811
    inbox = FaultyInbox(reject={DEPUTY: "550 5.1.1 no such user"}, greylist={"audit@example.com"})
    audience = AUDIENCE.model_copy(update={"bcc": ["audit@example.com"]})
    facts, metrics = email_inputs()
    with faulty_server(inbox, **tls(tls_files)) as port, pytest.raises(DeliveryError):
        deliver(facts, PDF, XLSX, audience, params_for(port, security="starttls"), config.paths(project), project,
                env={}, metrics=metrics, base_delay=0.0, context=client_context(tls_files))
    (entry,) = Ledger(project).entries().values()
    assert entry["recipients"] == ["audit@example.com", DEPUTY, NORTH]
    assert entry["refused"] == {DEPUTY: "550 5.1.1 no such user"}
    assert entry["deferred"] == {"audit@example.com": GREYLISTED}
    assert "in_flight" not in entry
    assert {r: s for r, (s, _) in Ledger(project).states(only_key(project)).items()} == {
        "audit@example.com": DEFERRED, DEPUTY: REFUSED, NORTH: SENT}
