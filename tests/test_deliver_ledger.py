"""datastory.deliver.ledger: content keys and the sent-once record outside DVC outputs."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from datastory.deliver.ledger import DEFERRED, IN_FLIGHT, REFUSED, SENT, DeliveryError, Ledger, content_key

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


# ---------------------------------------------------------------- per-recipient states
def test_update_keeps_each_recipients_state_and_merges(tmp_path):
    led = Ledger(tmp_path)
    k = key()
    assert led.states(k) == {}
    led.update(k, "north", "<m@x>", {"a@example.com": (IN_FLIGHT, "handed over"), "b@example.com": (DEFERRED, "450 x")})
    led.update(k, "north", "<m@x>", {"a@example.com": (SENT, "250 ok")})
    assert led.states(k) == {"a@example.com": (SENT, ""), "b@example.com": (DEFERRED, "450 x")}
    assert not led.already_sent(k)
    entry = led.entries()[k]
    assert entry == {"audience": "north", "message_id": "<m@x>", "recipients": ["a@example.com", "b@example.com"],
                     "deferred": {"b@example.com": "450 x"}}
    led.update(k, "north", "<m@x>", {"b@example.com": (REFUSED, "550 gone")})
    assert led.states(k)["b@example.com"] == (REFUSED, "550 gone")
    assert json.loads(led.path.read_text())["version"] == 2


def test_an_older_ledgers_4xx_refusal_is_read_as_deferred(tmp_path):
    """Entries written before per-recipient states recorded a greylisting (450) as refused, for good."""
    led = Ledger(tmp_path)
    led.path.parent.mkdir()
    led.path.write_text(json.dumps({"version": 1, "sent": {key(): {
        "audience": "north", "message_id": "<m@x>", "recipients": ["a@example.com", "b@example.com", "c@example.com"],
        "refused": {"b@example.com": "450 greylisted", "c@example.com": "550 gone"}}}}))
    assert led.states(key()) == {"a@example.com": (SENT, ""), "b@example.com": (DEFERRED, "450 greylisted"),
                                 "c@example.com": (REFUSED, "550 gone")}


def test_update_refuses_an_unknown_state_and_an_empty_update(tmp_path):
    with pytest.raises(DeliveryError, match="unknown delivery state"):
        Ledger(tmp_path).update(key(), "north", "<m@x>", {"a@example.com": ("maybe", "")})
    with pytest.raises(DeliveryError, match="no recipients"):
        Ledger(tmp_path).update(key(), "north", "<m@x>", {})
    assert not (tmp_path / ".datastory" / "ledger.json").exists()


def test_a_malformed_entry_is_an_error(tmp_path):
    led = Ledger(tmp_path)
    led.path.parent.mkdir()
    led.path.write_text(json.dumps({"sent": {key(): {"recipients": "a@example.com"}}}))
    with pytest.raises(DeliveryError, match="not a mapping of recipients and states"):
        led.states(key())


# ---------------------------------------------------------------- one delivery of an audience at a time
def test_audience_lock_makes_a_second_delivery_wait_and_say_so(tmp_path, caplog):
    led = Ledger(tmp_path)
    order: list[str] = []
    inside = threading.Event()

    def first():
        with led.audience_lock("north"):
            order.append("first in")
            inside.set()
            time.sleep(0.3)
            order.append("first out")

    t = threading.Thread(target=first)
    t.start()
    assert inside.wait(10)
    with Ledger(tmp_path).audience_lock("north"):
        order.append("second in")
    t.join()
    assert order == ["first in", "first out", "second in"]
    assert f"audience 'north' is being delivered by process {os.getpid()}; waiting for it to finish" in caplog.text
    assert (tmp_path / ".datastory" / "deliver-north.lock").is_file()
    with led.audience_lock("south"), Ledger(tmp_path).audience_lock("north"):   # other audiences do not wait
        pass


def test_a_waiter_that_comes_before_the_holder_wrote_its_pid_still_names_it(tmp_path, caplog):
    """A lock taken but its file still empty (the holder between taking it and writing its pid): the waiter
    reads the file again rather than saying 'another process'; the file is empty again once let go."""
    fcntl = pytest.importorskip("fcntl")
    led = Ledger(tmp_path)
    with led.audience_lock("north"):   # makes the folder and the lock file
        pass
    lock = tmp_path / ".datastory" / "deliver-north.lock"
    assert lock.read_bytes() == b""
    with open(lock, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)

        def write_pid_then_let_go():
            time.sleep(0.15)
            fh.write(b"4242\n")
            fh.flush()
            time.sleep(0.15)
            fh.truncate(0)
            fh.flush()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

        t = threading.Thread(target=write_pid_then_let_go)
        t.start()
        with Ledger(tmp_path).audience_lock("north"):
            pass
        t.join()
    assert "audience 'north' is being delivered by process 4242; waiting for it to finish" in caplog.text
    assert lock.read_bytes() == b""


@pytest.mark.parametrize("bad", ["", "../north", "a b", "nörth", None])
def test_audience_lock_refuses_a_name_that_is_not_a_file_name(tmp_path, bad):
    with pytest.raises(DeliveryError, match="audience name"), Ledger(tmp_path).audience_lock(bad):
        pass
