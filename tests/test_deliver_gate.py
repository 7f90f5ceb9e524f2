"""datastory.deliver.gate: rows excluded by the rules hold the send too, with the reasons."""

from __future__ import annotations

import dataclasses

from conftest import email_inputs, make_pack, tiny_frames
from test_deliver_smtp import PDF, XLSX, Inbox, params_for, server

from datastory import config
from datastory.deliver import deliver
from datastory.deliver.gate import DEFAULT_MAX_EXCLUDED_SHARE, gate_ok


def _frames():
    f = tiny_frames()
    return f["data_quality"], f["churn_metrics"], f["forecast_metrics"]


def test_more_than_the_limit_excluded_holds_and_names_the_reasons():
    dq, churn, fc = _frames()
    dq = {**dq, "excluded": {"no customer id": 800, "cancelled order": 90, "non-product line": 0}}
    ok, why = gate_ok(dq, churn, fc)
    assert not ok
    assert why.startswith("89.0% of the rows read were excluded by the rules (more than max_excluded_share 50%): "
                          "no customer id: 800 rows (80.0%), cancelled order: 90 rows (9.0%);")
    assert "non-product line" not in why and "params/data.yaml" in why and "params/deliver.yaml" in why


def test_the_limit_is_inclusive_and_configurable():
    dq, churn, fc = _frames()
    half = {**dq, "excluded": {"no customer id": 500}}
    assert DEFAULT_MAX_EXCLUDED_SHARE == config.DeliverParams().max_excluded_share == 0.5
    assert gate_ok(half, churn, fc) == (True, "all checks passed")
    assert not gate_ok(half, churn, fc, max_excluded_share=0.25)[0]
    assert gate_ok({**dq, "excluded": {"no customer id": 990}}, churn, fc, max_excluded_share=1.0)[0]
    assert "more than max_excluded_share 0%" in gate_ok({**dq, "excluded": {"x": 1}}, churn, fc, 0.0)[1]


def test_a_bad_excluded_mapping_is_a_reason_and_a_missing_one_is_none():
    dq, churn, fc = _frames()
    assert "excluded must be a mapping" in gate_ok({**dq, "excluded": [1]}, churn, fc)[1]
    assert "excluded holds a value" in gate_ok({**dq, "excluded": {"x": -1}}, churn, fc)[1]
    assert gate_ok({k: v for k, v in dq.items() if k != "excluded"}, churn, fc)[0]


def test_rejections_name_their_reasons_too():
    dq, churn, fc = _frames()
    why = gate_ok({**dq, "rejected": {"bad amount": 60}}, churn, fc)[1]
    assert "6.0% of the rows read were rejected by ingest (more than 5%): bad amount: 60 rows (6.0%)" in why


def test_deliver_holds_on_exclusions_and_says_which(project):
    pk = make_pack("north")
    pk = dataclasses.replace(pk, data_quality={**pk.data_quality, "excluded": {"no customer id": 890}})
    audience = config.Audience(label="North sales", regions=["North"], to=["north@example.com"])
    inbox = Inbox()
    with server(inbox) as port:
        facts, metrics = email_inputs(pk)
        receipt = deliver(facts, PDF, XLSX, audience, params_for(port), config.paths(project), project, env={},
                          metrics=metrics)
        lenient = deliver(facts, PDF, XLSX, audience, params_for(port, max_excluded_share=0.9),
                          config.paths(project), project, env={}, metrics=metrics)
    assert not receipt.sent and not receipt.complete and "no customer id: 890 rows (89.0%)" in receipt.skipped
    assert lenient.sent and len(inbox.messages) == 1
