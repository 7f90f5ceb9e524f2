"""What changed in words: rows that add up, plain labels, sentences, the empty and unsplit cases, a region's
own bridge, and the same words in the PDF, the workbook and the email."""

from __future__ import annotations

import dataclasses
import email
import email.policy

import numpy as np
import pandas as pd
import pytest
from conftest import make_pack, tiny_transactions
from test_present_voice import Rendered, needs_poppler, squash

from datastory import bridge, config, schema, workbook
from datastory.deliver import compose
from datastory.present import change, words
from datastory.present.change import NO_PREVIOUS_PERIOD, signed_money, what_changed
from datastory.present.email import facts
from datastory.report import sections


def cents(x: float) -> int:
    return round(x * 100)


def generated(seed: int, n: int = 400) -> pd.DataFrame:
    """Random order lines of 40 customers in two regions over four months, returns included."""
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2025-02-01") + pd.to_timedelta(rng.integers(0, 120, n), unit="D")
    qty = rng.integers(1, 6, n)
    sign = np.where(rng.random(n) < 0.08, -1, 1)
    df = pd.DataFrame({
        "customer_id": [f"C{i:03d}" for i in rng.integers(0, 40, n)],
        "timestamp": days, "product_line": rng.choice(["Hardware", "Software", "Services"], n),
        "quantity": sign * qty, "amount": sign * np.round(qty * rng.uniform(5, 90, n), 2),
    })
    df["region"] = np.where(df["customer_id"] < "C020", "North", "South")
    df["customer_name"] = df["customer_id"] + " Ltd"
    df["order_id"] = [f"O{k}" for k in range(n)]
    df["discount"] = 0.0
    df["is_return"] = df["amount"] < 0
    return schema.conform(df, schema.TRANSACTIONS, "transactions")


def with_bridge(p, tx: pd.DataFrame, end: str, quantities: bool = True):
    keep = set(p.regions) | ({schema.ALL} if p.is_company else set())
    b = bridge.compute(tx, "M", end, quantities=quantities)
    m = bridge.movers(tx, "M", end)
    return dataclasses.replace(p, bridge=b[b["region"].isin(keep)].reset_index(drop=True),
                               movers=m[m["region"].isin(keep)].reset_index(drop=True))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("audience", ["executive", "north"])
def test_rows_add_up_to_the_change_on_generated_data(seed, audience):
    p = with_bridge(make_pack(audience), generated(seed), "2025-05-31")
    ch = what_changed(p)
    first, *steps, last = ch.rows
    assert (first.kind, last.kind) == ("total", "total") and all(r.kind == "step" for r in steps)
    assert sum(cents(r.amount) for r in steps) == cents(last.amount) - cents(first.amount)
    assert cents(ch.change) == cents(last.amount) - cents(first.amount)
    assert ch.split, "the generated lines all have quantities"
    assert sum(cents(r.amount) for r in ch.split) == cents(ch.rows[4].amount) + cents(ch.rows[5].amount)


def test_labels_are_plain_words(tiny_pack):
    ch = what_changed(tiny_pack)
    assert [r.label for r in ch.rows] == ["April 2025", "New customers", "Won back", "Lost customers",
                                         "Existing customers buying more", "Existing customers buying less",
                                         "Returns", "May 2025"]
    assert [r.label for r in ch.split] == ["Price", "Volume", "Mix"]
    assert ch.title == "What changed: May 2025 vs April 2025"
    assert all(r.explain for r in ch.steps + ch.split)


def test_amounts_are_worded_by_present_words(tiny_pack):
    ch = what_changed(tiny_pack)
    for r in ch.rows:
        assert r.text == (words.fmt_money(r.amount) if r.kind == "total" else signed_money(r.amount))
    assert signed_money(1234) == "+1.2 k" and signed_money(-950) == "\u2212950" and signed_money(0.2) == "0"
    for m in ch.movers:
        assert (m.previous_text, m.current_text, m.change_text) == (
            words.fmt_money(m.previous), words.fmt_money(m.current), signed_money(m.change))


def test_sentence_names_the_periods_the_totals_and_the_largest_driver(tiny_pack):
    ch = what_changed(tiny_pack)
    first, last = ch.rows[0], ch.rows[-1]
    how = "rose" if last.amount > first.amount else "fell"
    assert ch.sentence.startswith(f"Revenue {how} from {first.text} EUR in April 2025 to {last.text} EUR in "
                                  f"May 2025 ({ch.change_text}")
    top = max(ch.steps, key=lambda r: abs(r.amount))
    assert f"Largest driver: {top.label.lower()} ({top.text})" in ch.sentence
    assert ch.drivers()[0] == top
    assert [abs(r.amount) for r in ch.drivers()] == sorted((abs(r.amount) for r in ch.drivers()), reverse=True)


def test_sentence_of_an_unchanged_revenue():
    rows = [change._row("previous", "total", "April 2025", 500.0, 3), change._row("new", "step", "New customers", 0, 0),
            change._row("current", "total", "May 2025", 500.0, 3)]
    assert change.sentence(rows, "May 2025", "April 2025", "EUR") == (
        "Revenue was unchanged at 500 EUR from April 2025 to May 2025.")


def test_no_previous_period_is_a_sentence_in_every_format(tiny_pack):
    p = dataclasses.replace(tiny_pack, bridge=tiny_pack.bridge.iloc[0:0], movers=tiny_pack.movers.iloc[0:0])
    ch = what_changed(p)
    assert ch.message == NO_PREVIOUS_PERIOD and not ch.rows and not ch.movers and ch.drivers() == []
    assert NO_PREVIOUS_PERIOD in sections.what_changed(p) and "<img" not in sections.what_changed(p)
    import io

    import openpyxl
    ws = openpyxl.load_workbook(io.BytesIO(workbook.build(p)))["What changed"]
    assert NO_PREVIOUS_PERIOD in [c.value for row in ws.iter_rows() for c in row]
    text, html = _email(p)
    assert NO_PREVIOUS_PERIOD in text and NO_PREVIOUS_PERIOD in html


def test_unsplit_returning_customers_say_why(tiny_pack):
    tx = tiny_transactions(["Ada Ltd", "Bolt GmbH", "Cobalt SA", "Delta BV", "Echo AB", "Fjord AS"])
    p = with_bridge(tiny_pack, tx, "2025-05-31", quantities=False)
    ch = what_changed(p)
    assert ch.split == [] and "no quantities" in ch.split_note and ch.split_note.endswith(".")
    assert ch.split_note[0].isupper()
    html = sections.what_changed(p)
    assert sections.e(ch.split_note) in html and "bridge split" not in html


def test_a_regional_pack_uses_its_own_region(tiny_pack, north_pack):
    north = what_changed(north_pack)
    assert north.region == "North" and north.where == "North"
    seg = bridge.segment(tiny_pack.bridge, "North")
    assert [r.amount for r in north.rows] == [seg["previous"], *seg["steps"].values(), seg["current"]]
    company = what_changed(tiny_pack)
    assert company.region == schema.ALL and company.rows[-1].amount != north.rows[-1].amount
    names = set(north_pack.movers["name"])
    assert {m.name for m in north.movers} <= names
    south_only = set(tiny_pack.movers.loc[tiny_pack.movers["region"] == "South", "name"]) - names
    assert south_only and not south_only & {m.name for m in north.movers}


def _email(p) -> tuple[str, str]:
    aud = config.Audience(label=p.label, regions="all" if p.is_company else list(p.regions), to=["r@example.com"])
    msg = compose.compose(facts(p), b"%PDF-1.7 x", b"PK xlsx", aud, config.DeliverParams())
    parsed = email.message_from_bytes(compose.to_bytes(msg), policy=email.policy.default)
    return parsed.get_body(("plain",)).get_content(), parsed.get_body(("html",)).get_content()


def test_email_names_the_top_drivers_in_the_reports_words(north_pack):
    ch = what_changed(north_pack)
    text, html = _email(north_pack)
    assert ch.sentence in text and sections.e(ch.sentence) in html
    drivers = ch.drivers()
    assert 1 <= len(drivers) <= change.DRIVERS
    for r in drivers:
        assert r.label in text and r.text in text
        assert f"{sections.e(r.label)}</td>" in html and f">{r.text}</td>" in html


@needs_poppler
@pytest.mark.parametrize("audience", ["executive", "north"])
def test_the_same_value_reads_the_same_in_pdf_workbook_and_email(audience, tmp_path):
    r = Rendered(audience)
    ch = what_changed(r.pack)
    pdf, book = squash(r.pdf_text(tmp_path)), squash(r.workbook_text())
    text, html = r.email_text()
    assert squash(ch.title) in pdf and squash(ch.title) in book
    for row in ch.rows + ch.split:
        assert squash(f"{row.label}{row.text}") in pdf  # the table's label and amount side by side
        assert squash(row.text) in book
    for row in ch.drivers():
        assert row.text in text and row.text in html
    assert squash(ch.sentence) in pdf and squash(ch.sentence) in book and ch.sentence in text
    for m in ch.movers:
        assert squash(m.name) in pdf and squash(f"{m.previous_text}{m.current_text}{m.change_text}") in pdf
        assert squash(m.change_text) in book
