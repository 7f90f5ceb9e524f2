"""datastory.deliver.compose: a deterministic, safe RFC 5322 message per audience."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import email.utils

import pytest
from conftest import HOSTILE, make_pack

from datastory import config, schema
from datastory.deliver import compose as c
from datastory.deliver.ledger import DeliveryError, content_key
from datastory.errors import DataError, ParamsError
from datastory.present import words
from datastory.present.email import facts, kpi_change

PDF = b"%PDF-1.4\n% tiny\n" + bytes(range(256)) * 4
XLSX = b"PK\x03\x04 workbook " + bytes(range(255, -1, -1)) * 4
PNG = b"\x89PNG\r\n\x1a\n tiny image"
PARAMS = config.DeliverParams()


def audience(**kw) -> config.Audience:
    return config.Audience(**({"label": "North sales", "regions": ["North"], "to": ["north@example.com"]} | kw))


def build(pack=None, aud=None, params=PARAMS, images=None, pdf=PDF, xlsx=XLSX):
    return c.compose(facts(pack or make_pack("north")), pdf, xlsx, aud or audience(), params, images)


def parse(msg) -> email.message.EmailMessage:
    return email.message_from_bytes(c.to_bytes(msg), policy=email.policy.default)


def tree(part) -> list:
    return [part.get_content_type(), *([tree(p) for p in part.iter_parts()] if part.is_multipart() else [])]


# ---------------------------------------------------------------- structure and determinism
def test_mime_tree_with_inline_images():
    got = parse(build(images={"revenue": PNG, "risk": PNG + b"2"}))
    assert tree(got) == ["multipart/mixed",
                         ["multipart/related", ["multipart/alternative", ["text/plain"], ["text/html"]],
                          ["image/png"], ["image/png"]],
                         ["application/pdf"], ["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]]
    html = got.get_body(("html",)).get_content()
    cids = [p["Content-ID"].strip("<>") for p in got.walk() if p.get_content_type() == "image/png"]
    assert len(cids) == 2 and all(f'src="cid:{cid}"' in html for cid in cids)
    assert "data:" not in html


def test_without_images_there_is_no_related_layer():
    got = parse(build())
    assert tree(got)[1] == ["multipart/alternative", ["text/plain"], ["text/html"]]


def test_two_composes_are_byte_identical_and_attachments_round_trip():
    a, b = c.to_bytes(build(images={"revenue": PNG})), c.to_bytes(build(images={"revenue": PNG}))
    assert a == b
    assert b"\r\n" in a and b"\n" not in a.replace(b"\r\n", b"")
    got = email.message_from_bytes(a, policy=email.policy.default)
    files = {p.get_filename(): p.get_content() for p in got.iter_attachments()}
    assert files == {"north_report_2025-05-31.pdf": PDF, "north_report_2025-05-31.xlsx": XLSX}
    boundaries = [p.get_boundary() for p in got.walk() if p.is_multipart()]
    assert len(boundaries) == 3 and all(bd.startswith("=_ds_") for bd in boundaries)
    assert len(set(boundaries)) == 3


def test_changed_attachment_changes_message_id_and_boundaries():
    a, b = build(), build(pdf=PDF + b"x")
    assert a["Message-ID"] != b["Message-ID"] and a.get_boundary() != b.get_boundary()


def test_headers_date_is_period_end_and_message_id_is_the_content_key():
    aud = audience(to=["Nörth Boss <north@example.com>"], cc=["cc@example.com"], bcc=["secret@example.com"])
    got = parse(build(aud=aud))
    assert email.utils.parsedate_to_datetime(got["Date"]) == dt.datetime(2025, 5, 31, tzinfo=dt.UTC)
    key = content_key([PDF, XLSX], ["cc@example.com", "north@example.com", "secret@example.com"],
                      ("2025-01-01", "2025-05-31"))
    assert got["Message-ID"] == f"<{key[:32]}@datastory>"
    assert got["From"] == "reports@example.com"
    assert got["To"].addresses[0].display_name == "Nörth Boss" and got["Cc"] == "cc@example.com"
    assert got["Bcc"] is None and b"secret@example.com" not in c.to_bytes(build(aud=aud))
    assert c.envelope_recipients(aud, "north") == ["cc@example.com", "north@example.com", "secret@example.com"]


def test_subject_uses_last_complete_period_and_red_list():
    # tiny_frames: North revenue = 1000 + 50 * i per month from Jan 2025; data end 2025-05-31, so June
    # is incomplete and May (i=4: 1200) is compared with April (i=3: 1150): +4.3%.
    got = parse(build())
    n_red = int(make_pack("north").red_list.shape[0])
    assert got["Subject"] == f"North sales: review to 2025-05-31 \u2014 revenue 1.2 k EUR (+4.3%), {n_red} customers to call"
    text = got.get_body(("plain",)).get_content()
    assert "Latest complete period: May 2025 (compared with April 2025)." in text
    assert "Amounts in EUR." in text
    revenue = next(line for line in text.splitlines() if line.startswith("Revenue "))
    assert revenue.split() == ["Revenue", *words.fmt_money(1200.0).split(), *words.fmt_money(1150.0).split(), "+4.3%"]
    rate = next(line for line in text.splitlines() if line.startswith("Return rate "))
    assert rate.split()[-1] == "pt"  # a rate's change in percentage points, never a relative %


def test_html_escapes_values_from_data_and_params():
    pk = make_pack("north")
    hostile_scores = pk.churn_scores.copy()
    hostile_scores["customer_name"] = hostile_scores["customer_name"].astype("object")
    hostile_scores.loc[hostile_scores["red"].to_numpy().nonzero()[0][0], "customer_name"] = HOSTILE
    pk = dataclasses.replace(pk, churn_scores=schema.conform(hostile_scores, schema.CHURN_SCORES, "x"),
                             company="A & <b>B</b>")
    got = parse(build(pack=pk))
    html = got.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "A &amp; &lt;b&gt;B&lt;/b&gt;" in html
    assert HOSTILE in got.get_body(("plain",)).get_content()


def test_oversize_attaches_pdf_only_and_says_so():
    small = config.DeliverParams(max_size_mb=(len(PDF) + len(XLSX) - 1) / 1048576)
    got = parse(build(params=small))
    assert [p.get_filename() for p in got.iter_attachments()] == ["north_report_2025-05-31.pdf"]
    for kind in ("plain", "html"):
        assert "Excel workbook" in got.get_body((kind,)).get_content()
        assert "not attached" in got.get_body((kind,)).get_content()
    assert "not attached" not in parse(build()).get_body(("plain",)).get_content()


# ---------------------------------------------------------------- refusals
@pytest.mark.parametrize("field, value", [("label", "North\r\nBcc: victim@evil.example"),
                                          ("label", "North\nsales"), ("label", "North\0")])
def test_header_injection_in_subject_is_refused(field, value):
    pk = dataclasses.replace(make_pack("north"), **{field: value})
    with pytest.raises(DeliveryError, match="line breaks and NUL are refused"):
        build(pack=pk)


@pytest.mark.parametrize("addr", ["north@example.com\r\nBcc: victim@evil.example",
                                  "Evil\nName <north@example.com>", "north@exam\0ple.com"])
def test_header_injection_in_addresses_is_refused(addr):
    with pytest.raises(DeliveryError, match="refused in email headers"):
        build(aud=audience(cc=[addr]))


@pytest.mark.parametrize("addr", ["not-an-address", "a@b.c, d@e.f", "@example.com", "north@", "nörth@example.com"])
def test_bad_address_names_audience_and_address(addr):
    with pytest.raises(ParamsError) as err:
        build(aud=audience(to=[addr]))
    assert "'north'" in str(err.value) and repr(addr) in str(err.value)
    assert err.value.file == "params/report.yaml"


def test_bad_from_address_points_at_deliver_params():
    with pytest.raises(ParamsError, match="from_addr") as err:
        build(params=config.DeliverParams(from_addr="reports at example"))
    assert err.value.file == "params/deliver.yaml"


@pytest.mark.parametrize("kw, match", [({"pdf": b"not a pdf"}, "not a PDF"), ({"xlsx": b""}, "empty"),
                                       ({"images": {"x": b"GIF89a"}}, "PNG"),
                                       ({"images": {"../x": PNG}}, "PNG bytes with a name")])
def test_bad_attachments_are_refused(kw, match):
    with pytest.raises(DeliveryError, match=match):
        build(**kw)


def test_unparsable_period_end_is_a_data_error():
    pk = make_pack("north")
    pk = dataclasses.replace(pk, provenance=dataclasses.replace(pk.provenance, period_end="?"))
    with pytest.raises(DataError, match="period end"):
        c.period_end(facts(pk))


def test_to_bytes_refuses_a_random_boundary():
    msg = email.message.EmailMessage()
    msg.set_content("hi")
    msg.add_attachment(b"x", "application", "octet-stream")
    with pytest.raises(DeliveryError, match="no fixed MIME boundary"):
        c.to_bytes(msg)


# ---------------------------------------------------------------- pieces
def test_kpi_change_compares_the_last_complete_period():
    change, why = kpi_change(make_pack("north"))
    assert why == "" and change["label"] == "2025-05" and change["previous_label"] == "2025-04"
    assert change["kpis"]["revenue"]["value"] == 1200.0


def test_too_little_history_is_explained_in_the_body_not_fatal():
    pk = make_pack("north")
    pk = dataclasses.replace(pk, kpis=pk.kpis[pk.kpis["period"] <= "2025-01-01"].reset_index(drop=True))
    change, why = kpi_change(pk)
    assert change is None and "two complete periods" in why
    got = parse(build(pack=pk))
    assert "revenue" not in got["Subject"] and "customers to call" in got["Subject"]
    assert f"KPI comparison not available: {why}" in got.get_body(("plain",)).get_content()


def test_check_header_and_parse_address():
    assert c.check_header("fine: value", "subject", "north") == "fine: value"
    with pytest.raises(DeliveryError, match="'\\\\r'"):
        c.check_header("a\rb", "subject", "north")
    assert c.parse_address("Ann <ann@example.com>", "north", "to").addr_spec == "ann@example.com"
    with pytest.raises(ParamsError):
        c.parse_address(42, "north", "to")  # type: ignore[arg-type]


def test_recipients_and_delivery_key_validate():
    assert [a.addr_spec for a in c.recipients(audience(bcc=["b@example.com"]), "north")["bcc"]] == ["b@example.com"]
    with pytest.raises(ParamsError):
        c.recipients(audience(bcc=["bad"]), "north")
    with pytest.raises(ParamsError):
        c.delivery_key(facts(make_pack("north")), PDF, XLSX, audience(cc=["bad"]))


@pytest.mark.parametrize("change, match", [
    ({"to_call": True}, "'to_call' is missing or not int"),
    ({"label": None}, "'label' is missing or not str"),
    ({"headlines": ["fine", 3]}, "'headlines' is missing or not list of texts"),
    ({"kpi_rows": [["Revenue", "1", "2"]]}, "'kpi_rows' is missing or not list of rows of 4 texts"),
    ({"top_names": [["Ann", 12.5]]}, "'top_names' is missing or not list of rows of 2 texts"),
])
def test_facts_that_do_not_hold_what_compose_reads_are_refused(change, match):
    good = facts(make_pack("north"))
    with pytest.raises(DeliveryError, match=match) as err:
        c.check_facts({**good, **change}, file="reports/north/email.json")
    assert err.value.file == "reports/north/email.json" and "report stage" in err.value.fix
    missing = {k: v for k, v in good.items() if k != "footer"}
    with pytest.raises(DeliveryError, match="'footer' is missing"):
        c.compose(missing, PDF, XLSX, audience(), PARAMS)
    with pytest.raises(DeliveryError, match="not a JSON object"):
        c.check_facts(["a", "list"])
