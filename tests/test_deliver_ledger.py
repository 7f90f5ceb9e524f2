"""datastory.deliver.ledger: content keys and the sent-once record outside DVC outputs."""

from __future__ import annotations

import json
import threading

import pytest

from datastory.deliver.ledger import DeliveryError, Ledger, content_key

PERIOD = ("2025-01-01", "2025-05-31")


def key(*blobs: bytes, rcpts=("a@example.com", "b@example.com"), period=PERIOD) -> str:
    return content_key(blobs or (b"%PDF", b"PK"), rcpts, period)


def test_content_key_depends_on_every_input_but_not_recipient_order_or_case():
    base = key()
    assert len(base) == 64
    assert key(rcpts=("B@example.com", "a@example.com")) == base
    assert key(b"%PDF!", b"PK") != base
    assert key(b"PK", b"%PDF") != base
    assert key(b"%PDFPK", b"") != base           # attachment boundaries are unambiguous
    assert key(rcpts=("a@example.com",)) != base
    assert key(period=("2025-01-01", "2025-06-30")) != base


def test_record_then_already_sent_in_a_real_file(tmp_path):
    led = Ledger(tmp_path)
    k = key()
    assert not led.already_sent(k)
    led.record(k, "north", "<abc@datastory>", ["b@example.com", "a@example.com"])
    assert led.path == tmp_path / ".datastory" / "ledger.json"
    assert Ledger(tmp_path).already_sent(k) and not Ledger(tmp_path).already_sent(key(b"other"))
    data = json.loads(led.path.read_text())
    assert data["sent"][k] == {"audience": "north", "message_id": "<abc@datastory>",
                               "recipients": ["a@example.com", "b@example.com"]}
    assert (tmp_path / ".datastory" / ".gitignore").read_text() == "*\n"
    assert not list((tmp_path / ".datastory").glob("*.tmp"))


def test_refused_recipients_are_kept(tmp_path):
    led = Ledger(tmp_path)
    led.record(key(), "north", "<m@datastory>", ["a@example.com"], {"b@example.com": "550 gone"})
    assert led.entries()[key()]["refused"] == {"b@example.com": "550 gone"}


def test_parallel_records_are_not_lost(tmp_path):
    keys = [key(bytes([i])) for i in range(12)]
    threads = [threading.Thread(target=Ledger(tmp_path).record, args=(k, f"a{i}", "<m@x>", ["a@example.com"]))
               for i, k in enumerate(keys)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(Ledger(tmp_path).entries()) == set(keys)


def test_corrupt_ledger_is_an_error_not_a_silent_reset(tmp_path):
    led = Ledger(tmp_path)
    led.path.parent.mkdir()
    led.path.write_text("{not json")
    with pytest.raises(DeliveryError, match="not valid JSON") as err:
        led.already_sent(key())
    assert err.value.file == str(led.path) and "sent again" in err.value.fix
    led.path.write_text('{"sent": []}')
    with pytest.raises(DeliveryError, match="'sent' mapping"):
        led.record(key(), "north", "<m@x>", ["a@example.com"])


@pytest.mark.parametrize("bad", ["", "abc", "G" * 64, key().upper(), None])
def test_bad_keys_are_refused(tmp_path, bad):
    with pytest.raises(DeliveryError, match="sha256"):
        Ledger(tmp_path).already_sent(bad)


def test_record_needs_recipients(tmp_path):
    with pytest.raises(DeliveryError, match="no recipients"):
        Ledger(tmp_path).record(key(), "north", "<m@x>", [])
    assert not (tmp_path / ".datastory" / "ledger.json").exists()
