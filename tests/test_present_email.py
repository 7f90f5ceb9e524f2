"""present.email: the email's words from a pack, as the report stage writes them for the deliver stage."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import HOSTILE, make_pack

from datastory import config, io
from datastory.deliver import compose as c
from datastory.errors import DataError
from datastory.present import story, words
from datastory.present.email import TOP_N_NAMES, facts, kpi_change


def test_facts_hold_every_key_compose_reads_in_the_reports_words():
    pk = make_pack("north")
    got = facts(pk)
    assert set(got) == set(c.FACTS) and c.check_facts(got) is got
    assert (got["audience"], got["label"], got["currency"]) == ("north", "North sales", pk.currency)
    assert got["footer"] == pk.provenance.footer() and got["period_end"] == "2025-05-31"
    assert got["when"] == "Latest complete period: May 2025 (compared with April 2025)."
    change, _ = kpi_change(pk)
    assert got["revenue"] == (f"revenue {words.fmt_money(1200.0)} {pk.currency} "
                              f"({words.kpi_delta('revenue', change['kpis']['revenue'])})")
    assert [r[0] for r in got["kpi_rows"]] == list(words.KPI_LABELS.values())
    assert got["headlines"] == list(story.executive_summary(pk))
    assert got["to_call"] == len(pk.red_list) == pk.call_counts["call"]


def test_top_names_are_the_red_lists_most_revenue_at_risk():
    pk = make_pack("executive")
    red = pk.red_list.sort_values("revenue_at_risk", ascending=False, kind="stable")
    got = facts(pk)["top_names"]
    assert len(got) == min(TOP_N_NAMES, len(red)) > 0
    assert got == [[str(n), words.fmt_money(float(r))] for n, r in
                   zip(red["customer_name"], red["revenue_at_risk"], strict=False)][:TOP_N_NAMES]


def test_without_two_complete_periods_the_facts_say_why():
    pk = make_pack("north")
    pk = dataclasses.replace(pk, kpis=pk.kpis[pk.kpis["period"] <= "2025-01-01"].reset_index(drop=True))
    got = facts(pk)
    assert got["revenue"] == "" and got["kpi_rows"] == []
    assert got["when"].startswith("KPI comparison not available: ") and "two complete periods" in got["when"]
    empty = dataclasses.replace(pk, kpis=pk.kpis.iloc[:0])
    assert kpi_change(empty) == (None, "no KPI data for this audience")


def test_facts_from_data_stay_as_they_are_and_compose_the_same_message_after_json(tmp_path):
    """Names from data are kept verbatim (compose escapes them); written and read back as the stages do, the facts
    give the same message bytes."""
    pk = make_pack("north", hostile=HOSTILE)
    got = facts(pk)
    path = io.write_json(got, tmp_path / "email.json")
    back = json.loads(path.read_text(encoding="utf-8"))
    assert back == got
    aud = config.Audience(label="North sales", regions=["North"], to=["north@example.com"])
    pdf, xlsx = b"%PDF-1.4 x", b"PK x"
    first = c.to_bytes(c.compose(got, pdf, xlsx, aud, config.DeliverParams()))
    assert c.to_bytes(c.compose(back, pdf, xlsx, aud, config.DeliverParams())) == first


def test_facts_need_a_pack():
    with pytest.raises(DataError, match="expected a datastory Pack"):
        facts({"kpis": None})
