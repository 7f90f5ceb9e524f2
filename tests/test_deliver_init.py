"""datastory.deliver (the edge): dry-run .eml, quality gate, ledger idempotence, real SMTP on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import email
import email.policy

import pytest
import yaml
from conftest import email_inputs, make_pack, tiny_frames, write_artifacts, write_report_files
from test_deliver_smtp import (  # noqa: F401  (tls_files is a fixture)
    PASSWORD,
    PDF,
    PNG,
    USER,
    XLSX,
    Inbox,
    client_context,
    params_for,
    server,
    server_context,
    tls_files,
)

from datastory import config, io
from datastory import pack as pack_mod
from datastory.deliver import DeliveryError, Ledger, deliver, gate_ok, run
from datastory.deliver.compose import compose, to_bytes
from datastory.errors import ParamsError
from datastory.present import figures

NORTH = config.Audience(label="North sales", regions=["North"], to=["north@example.com"],
                        cc=["Deputy <deputy@example.com>"], bcc=["audit@example.com"])
NO_SLEEP = 0.0


def go(project, params, pdf=PDF, xlsx=XLSX, pack=None, **kw):
    facts, metrics = email_inputs(pack)
    return deliver(facts, pdf, xlsx, NORTH, params, config.paths(project), project, env={}, metrics=metrics,
                   base_delay=NO_SLEEP, **kw)


def ledger_file(project):
    return project / ".datastory" / "ledger.json"


# ---------------------------------------------------------------- dry run
def test_dry_run_writes_the_eml_and_sends_nothing(project):
    inbox = Inbox()
    with server(inbox) as port:
        receipt = go(project, params_for(port, send=False), images={"revenue": PNG})
    eml = project / "reports" / "outbox" / "north.eml"
    assert receipt.eml == "reports/outbox/north.eml" and eml.is_file()
    assert eml.read_bytes() == to_bytes(compose(email_inputs()[0], PDF, XLSX, NORTH, params_for(port, send=False),
                                                {"revenue": PNG}))
    assert not receipt.sent and "dry run" in receipt.skipped and receipt.recipients == 3
    assert inbox.messages == [] and not ledger_file(project).exists()
    parsed = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert {p.get_filename(): p.get_content() for p in parsed.iter_attachments()}[
        "north_report_2025-05-31.pdf"] == PDF


# ---------------------------------------------------------------- idempotence
def test_deliver_twice_sends_once_then_changed_content_and_force_resend(project):
    inbox = Inbox()
    with server(inbox) as port:
        params = params_for(port)
        first = go(project, params)
        second = go(project, params)
        changed = go(project, params, xlsx=XLSX + b"new row")
        forced = go(project, params, force=True)
    assert first.sent and not second.sent and "already sent" in second.skipped
    assert changed.sent and changed.key != first.key
    assert forced.sent and forced.key == first.key
    assert len(inbox.messages) == 3
    assert set(Ledger(project).entries()) == {first.key, changed.key}


def test_bcc_receives_but_is_not_a_header(project):
    inbox = Inbox()
    with server(inbox) as port:
        go(project, params_for(port))
    _, rcpts, raw = inbox.messages[0]
    assert sorted(rcpts) == ["audit@example.com", "deputy@example.com", "north@example.com"]
    got = email.message_from_bytes(raw, policy=email.policy.default)
    assert got["Bcc"] is None and b"audit@example.com" not in raw
    assert got["To"] == "north@example.com" and got["Cc"] == "Deputy <deputy@example.com>"


def test_eml_is_the_same_bytes_whether_sent_or_not(project):
    with server(Inbox()) as port:
        go(project, params_for(port, send=False))
        dry = (project / "reports/outbox/north.eml").read_bytes()
        go(project, params_for(port))
    assert (project / "reports/outbox/north.eml").read_bytes() == dry


# ---------------------------------------------------------------- failures
def test_permanent_failure_names_recipient_and_leaves_ledger_untouched(project):
    inbox = Inbox(reject={"north@example.com": "550 no such user", "deputy@example.com": "550 no such user",
                          "audit@example.com": "550 no such user"})
    with server(inbox) as port, pytest.raises(DeliveryError, match="north@example.com"):
        go(project, params_for(port))
    assert not ledger_file(project).exists()
    assert (project / "reports/outbox/north.eml").is_file()


def test_transient_failure_then_success_is_recorded_once(project):
    inbox = Inbox(data_replies=["451 try later"])
    with server(inbox) as port:
        receipt = go(project, params_for(port))
    assert receipt.sent and inbox.data_calls == 2 and len(inbox.messages) == 1
    assert list(Ledger(project).entries()) == [receipt.key]


def test_partial_refusal_is_recorded_then_reported(project):
    inbox = Inbox(reject={"audit@example.com": "550 mailbox gone"})
    with server(inbox) as port:
        with pytest.raises(DeliveryError, match="audit@example.com"):
            go(project, params_for(port))
        again = go(project, params_for(port))
    assert len(inbox.messages) == 1 and not again.sent
    (entry,) = Ledger(project).entries().values()
    assert entry["refused"] == {"audit@example.com": "550 mailbox gone"}


def test_credentials_come_from_env_over_verified_starttls(project, tls_files):  # noqa: F811
    inbox = Inbox()
    kw = dict(tls_context=server_context(tls_files), require_starttls=True, auth_required=True,
              authenticator=inbox.authenticator)
    env = {"DATASTORY_SMTP_USER": USER, "DATASTORY_SMTP_PASSWORD": PASSWORD}
    facts, metrics = email_inputs()
    with server(inbox, **kw) as port:
        receipt = deliver(facts, PDF, XLSX, NORTH, params_for(port, security="starttls"), config.paths(project),
                          project, env=env, metrics=metrics, context=client_context(tls_files))
    assert receipt.sent and inbox.logins == [USER]
    assert PASSWORD not in ledger_file(project).read_text()
    assert PASSWORD.encode() not in (project / "reports/outbox/north.eml").read_bytes()


def test_no_recipients_is_an_error_when_sending(project):
    with server(Inbox()) as port, pytest.raises(DeliveryError, match="no recipients"):
        facts, metrics = email_inputs()
        deliver(facts, PDF, XLSX, config.Audience(label="North sales", regions=["North"]), params_for(port),
                config.paths(project), project, env={}, metrics=metrics)


# ---------------------------------------------------------------- quality gate
def test_gate_blocks_sending_but_not_the_dry_run_file(project):
    pk = make_pack("north")
    pk = dataclasses.replace(pk, data_quality={**pk.data_quality, "rejected": {"bad_amount": 300}})
    inbox = Inbox()
    with server(inbox) as port:
        receipt = go(project, params_for(port), pack=pk)
    assert not receipt.sent and receipt.skipped.startswith("quality gate") and "30.0%" in receipt.skipped
    assert inbox.messages == [] and (project / "reports/outbox/north.eml").is_file()


def test_gate_ok_passes_the_fixture_and_explains_each_failure():
    f = tiny_frames()
    dq, churn, fc = f["data_quality"], f["churn_metrics"], f["forecast_metrics"]
    assert gate_ok(dq, churn, fc) == (True, "all checks passed")
    assert gate_ok({**dq, "rejected": {"x": 50}}, churn, fc)[0]          # 5.0%: at the bound
    cases = [
        ({**dq, "rows_read": 0}, churn, fc, "rows_read"),
        ({**dq, "rows_kept": 0}, churn, fc, "rows_kept"),
        ({**dq, "rejected": {"x": 51}}, churn, fc, "5.1%"),
        ({**dq, "rejected": ["x"]}, churn, fc, "mapping"),
        ({**dq, "rejected": {"x": "many"}}, churn, fc, "not a row count"),
        (dq, {**churn, "model": {}}, fc, "roc_auc"),
        (dq, {**churn, "model": {"roc_auc": float("nan")}}, fc, "roc_auc"),
        (dq, churn, {"overall": {}}, "mase"),
    ]
    for d, c, m, reason in cases:
        ok, why = gate_ok(d, c, m)
        assert not ok and reason in why, (reason, why)


# ---------------------------------------------------------------- run(): the stage entry point
def _write_project(project, send: bool = False, port: int = 25):
    write_artifacts(project, tiny_frames())
    write_report_files(project, PDF, XLSX)
    params = yaml.safe_load((project / "params/deliver.yaml").read_text())
    params.update(send=send, smtp_host="127.0.0.1", smtp_port=port, security="none", timeout_s=5)
    (project / "params/deliver.yaml").write_text(yaml.safe_dump(params))


def test_run_dry_run_is_reproducible(project):
    _write_project(project)
    first = run("north", project, env={}, images={})
    eml = project / "reports/outbox/north.eml"
    data = eml.read_bytes()
    eml.unlink()
    assert run("north", project, env={}, images={}) == first and eml.read_bytes() == data
    assert not first.sent and first.recipients == 1


def test_run_sends_when_enabled(project):
    inbox = Inbox()
    with server(inbox) as port:
        _write_project(project, send=True, port=port)
        assert run("north", project, env={}, images={}).sent
        assert not run("north", project, env={}, images={}).sent
    assert [m[1] for m in inbox.messages] == [["north.manager@example.com"]]


def test_run_names_a_missing_report_file(project):
    _write_project(project)
    config.paths(project).report("north", "xlsx").unlink()
    with pytest.raises(DeliveryError, match="report file is missing") as err:
        run("north", project, env={}, images={})
    assert err.value.file == "reports/north/report.xlsx" and "report@north" in err.value.fix


def test_run_unknown_audience_is_a_params_error(project):
    _write_project(project)
    with pytest.raises(ParamsError, match="unknown audience"):
        run("nowhere", project, env={}, images={})


@pytest.mark.slow
def test_run_inlines_the_report_stages_revenue_chart_by_default(project):
    _write_project(project)
    chart = figures.revenue_by_period(pack_mod.load("north", project))   # what the report stage writes
    io.write_bytes(chart, config.paths(project).email_chart("north"))
    run("north", project, env={})
    got = email.message_from_bytes((project / "reports/outbox/north.eml").read_bytes(), policy=email.policy.default)
    (png,) = [p for p in got.walk() if p.get_content_type() == "image/png"]
    assert chart.startswith(b"\x89PNG") and png.get_content() == chart
    assert png["Content-ID"].strip("<>") in got.get_body(("html",)).get_content()
    first = (project / "reports/outbox/north.eml").read_bytes()
    run("north", project, env={})
    assert (project / "reports/outbox/north.eml").read_bytes() == first


def test_run_without_a_chart_sends_the_email_without_one(project):
    _write_project(project)
    io.write_bytes(b"", config.paths(project).email_chart("north"))   # the audience had no KPI rows to draw
    run("north", project, env={})
    got = email.message_from_bytes((project / "reports/outbox/north.eml").read_bytes(), policy=email.policy.default)
    assert not [p for p in got.walk() if p.get_content_type() == "image/png"]


def test_run_names_a_missing_chart(project):
    _write_project(project)
    with pytest.raises(DeliveryError, match="report file is missing") as err:
        run("north", project, env={})
    assert err.value.file == "reports/north/revenue.png" and "report@north" in err.value.fix


def test_run_reads_the_emails_words_from_the_report_stage(project):
    """A missing, unreadable or other audience's email.json stops the stage with the file and the fix."""
    _write_project(project)
    where = config.paths(project).email_facts("north")
    good = where.read_bytes()
    where.unlink()
    with pytest.raises(DeliveryError, match="report file is missing") as err:
        run("north", project, env={}, images={})
    assert err.value.file == "reports/north/email.json" and "dvc repro report@north" in err.value.fix
    where.write_text("{not json", encoding="utf-8")
    with pytest.raises(DeliveryError, match="not valid JSON") as err:
        run("north", project, env={}, images={})
    assert err.value.file == "reports/north/email.json"
    other = yaml.safe_load(good) | {"audience": "south"}   # JSON is YAML
    io.write_json(other, where)
    with pytest.raises(DeliveryError, match="audience 'south'"):
        run("north", project, env={}, images={})
    assert not (project / "reports/outbox/north.eml").exists()


def test_run_names_a_missing_metrics_file_the_gate_reads(project):
    _write_project(project)
    config.paths(project).churn_metrics.unlink()
    with pytest.raises(DeliveryError, match="metrics file is missing") as err:
        run("north", project, env={}, images={})
    assert err.value.file == config.where("churn_metrics") and "dvc repro churn" in err.value.fix
