"""The delivery ledger: what became of each recipient of each content, and the locks around it.

Promise 4 of the design: nothing is emailed twice for the same content. The ledger key is the
sha256 of the attachments' bytes, the sorted envelope recipients and the data period, so the same
pack to the same people is sent once, and a changed attachment or recipient list is sent again.

Each recipient of a content is in one state:
- sent: the server accepted the message for them (it answered 250 to the message);
- in_flight: the message was handed over and no answer came (the connection dropped or timed out
  after the message was sent). It may have been delivered, so it is never sent again on its own:
  someone checks, then runs `datastory deliver --resend` (or `--mark-sent`);
- deferred: not delivered, and worth retrying: a 4xx answer (greylisting, a full mailbox, a busy
  server), or the connection failed before the message was handed over. The next run retries;
- refused: a 5xx answer: reported, and not retried for this content unless asked (`--resend`).
"in_flight" is written (and flushed to the disk) BEFORE the message is handed over, so a crash at
any point leaves either nothing sent or a recipient marked as possibly sent, never a silent resend.

The file, `<root>/.datastory/ledger.json`, lives OUTSIDE the DVC outputs (DVC deletes a stage's outputs
before re-running it), and its folder gets its own `.gitignore` ("*"). An entry is
{"audience", "message_id", "recipients": [every envelope recipient], "in_flight" / "deferred" /
"refused": {recipient: what happened}}: a recipient in none of the three mappings was sent. Entries
written before these states existed only had "refused"; a 4xx reply found there is read as deferred.
Writes are atomic (datastory.io) and serialised with an advisory file lock. `audience_lock` is a
second lock, one per audience, that a delivery holds across check, send and record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .. import io
from ..errors import DeliveryError

LEDGER_DIR = ".datastory"
LEDGER_FILE = "ledger.json"
_KEY_VERSION = b"datastory-deliver-v1"

SENT, IN_FLIGHT, DEFERRED, REFUSED = "sent", "in_flight", "deferred", "refused"
STATES = (SENT, IN_FLIGHT, DEFERRED, REFUSED)
_UNSENT = (IN_FLIGHT, DEFERRED, REFUSED)   # the ledger's mappings; "sent" is the rest of "recipients"
_AUDIENCE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")

log = logging.getLogger(__name__)


def content_key(attachments: Iterable[bytes], recipients: Iterable[str], period: tuple[str, str]) -> str:
    """sha256 hex of (each attachment's bytes, sorted lower-cased recipients, data period).

    Each attachment enters as its own sha256 so the boundaries between them are unambiguous.
    """
    h = hashlib.sha256(_KEY_VERSION + b"\0")
    for blob in attachments:
        h.update(b"A" + hashlib.sha256(blob).digest())
    for rcpt in sorted({r.strip().lower() for r in recipients}):
        h.update(b"R" + rcpt.encode("utf-8") + b"\0")
    h.update(b"P" + f"{period[0]}/{period[1]}".encode() + b"\0")
    return h.hexdigest()


def reply_code(detail: str) -> int | None:
    """The SMTP code a recorded reply starts with ("450 greylisted" -> 450), else None."""
    head = str(detail)[:3]
    return int(head) if len(head) == 3 and head.isdigit() else None


@contextlib.contextmanager
def _flock(path: Path, busy: Callable[[str], None] | None = None) -> Iterator[bool]:
    """Hold an exclusive advisory lock on `path`; yield whether a lock is really held.

    When another process (or thread) holds it, `busy(holder)` is called with the holder's pid as
    written in the file, and this one waits. The holder writes its pid just after taking the lock and clears
    it just before letting go, so an empty file means a holder that has not written yet: read again, for up to
    HOLDER_WAIT_S, before `busy` hears "" (its pid unknown). Where fcntl is unavailable (Windows), no lock is
    taken.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield False
        return
    with open(path, "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if busy is not None:
                busy(_holder(fh))
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.truncate(0)
            fh.write(f"{os.getpid()}\n".encode())
            fh.flush()
            yield True
        finally:
            fh.truncate(0)
            fh.flush()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


HOLDER_WAIT_S = 0.5   # how long a waiter reads a held lock file for its holder's pid


def _holder(fh: Any) -> str:
    """The pid a lock file's holder wrote, read again every 10 ms for up to HOLDER_WAIT_S while it is empty."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        fh.seek(0)
        holder = fh.read(32).decode("ascii", "replace").strip()
        if holder or time.monotonic() >= deadline:
            return holder
        time.sleep(0.01)


def _entry_states(entry: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """recipient -> (state, what happened) of one ledger entry."""
    out = {str(r): (SENT, "") for r in entry.get("recipients", [])}
    for state in _UNSENT:
        for rcpt, detail in (entry.get(state) or {}).items():
            code = reply_code(detail)
            out[str(rcpt)] = (DEFERRED if state == REFUSED and code is not None and 400 <= code < 500 else state,
                              str(detail))
    return dict(sorted(out.items()))


class Ledger:
    """A JSON file mapping content key -> what became of each of its recipients."""

    def __init__(self, root: str | os.PathLike, path: str | os.PathLike | None = None):
        self.root = Path(root)
        self.path = Path(path) if path is not None else self.root / LEDGER_DIR / LEDGER_FILE

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DeliveryError(f"delivery ledger is not valid JSON ({exc})", file=str(self.path),
                                fix="restore it from a backup; deleting it means packs already sent "
                                    "may be sent again") from None
        if not isinstance(data, dict) or not isinstance(data.get("sent", {}), dict):
            raise DeliveryError("delivery ledger must be a JSON object with a 'sent' mapping",
                                file=str(self.path), fix="restore it from a backup")
        for key, entry in data.get("sent", {}).items():
            ok = isinstance(entry, dict) and isinstance(entry.get("recipients", []), list) and all(
                isinstance(entry.get(s) or {}, dict) for s in _UNSENT)
            if not ok:
                raise DeliveryError(f"delivery ledger entry {key[:12]}... is not a mapping of recipients and states",
                                    file=str(self.path), fix="restore it from a backup")
        return data

    def _prepare(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ignore = self.path.parent / ".gitignore"
        if self.path.parent.name == LEDGER_DIR and not ignore.exists():
            io.write_text("*\n", ignore)

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every recorded content, by key, as stored."""
        return dict(self._read().get("sent", {}))

    def states(self, key: str) -> dict[str, tuple[str, str]]:
        """recipient -> (state, what happened) for content `key`; {} when nothing was handed over yet."""
        _check_key(key)
        entry = self._read().get("sent", {}).get(key)
        return _entry_states(entry) if entry else {}

    def already_sent(self, key: str) -> bool:
        """True when content `key` was delivered to every one of its recipients."""
        states = self.states(key)
        return bool(states) and all(state == SENT for state, _ in states.values())

    def update(self, key: str, audience: str, message_id: str,
               states: Mapping[str, tuple[str, str]]) -> None:
        """Set the state of some recipients of content `key` (the others keep theirs); flushed to the disk."""
        _check_key(key)
        bad = sorted({s for s, _ in states.values()} - set(STATES))
        if bad:
            raise DeliveryError(f"unknown delivery state(s) {', '.join(bad)}; allowed: {', '.join(STATES)}")
        if not states:
            raise DeliveryError(f"audience {audience!r}: cannot record a delivery with no recipients")
        self._prepare()
        with _flock(self.path.parent / f".{self.path.name}.lock"):
            data = self._read()
            sent = dict(data.get("sent", {}))
            current = _entry_states(sent.get(key, {}))
            current.update({r: (s, str(d)) for r, (s, d) in states.items()})
            entry: dict[str, Any] = {"audience": audience, "message_id": message_id, "recipients": sorted(current)}
            for state in _UNSENT:
                found = {r: d for r, (s, d) in sorted(current.items()) if s == state}
                if found:
                    entry[state] = found
            sent[key] = entry
            io.write_json({**data, "version": 2, "sent": sent}, self.path, durable=True)

    def record(self, key: str, audience: str, message_id: str, recipients: Iterable[str],
               refused: dict[str, str] | None = None) -> None:
        """Record a finished send: `recipients` got it, except those in `refused` ({recipient: reply};
        a 4xx reply is recorded as deferred, anything else as refused)."""
        refused = dict(refused or {})
        states = {r: (SENT, "") for r in recipients if r not in refused}
        for rcpt, reply in refused.items():
            code = reply_code(reply)
            states[rcpt] = (DEFERRED if code is not None and 400 <= code < 500 else REFUSED, reply)
        if not any(s == SENT for s, _ in states.values()):
            raise DeliveryError(f"audience {audience!r}: cannot record a delivery with no recipients")
        self.update(key, audience, message_id, states)

    @contextlib.contextmanager
    def audience_lock(self, audience: str) -> Iterator[None]:
        """Hold `.datastory/deliver-<audience>.lock` across one delivery's check, send and record.

        A second delivery of the same audience (another process or thread) waits for the first to finish,
        and says so in the log; it then finds the first one's outcome in the ledger. Without fcntl
        (Windows) no lock is taken: a warning says that two deliveries at once are not guarded.
        """
        if not isinstance(audience, str) or not _AUDIENCE.match(audience):
            raise DeliveryError(f"audience name {audience!r} must be ASCII letters, digits, '-' or '_'")
        self._prepare()

        def busy(holder: str) -> None:
            who = f"process {holder}" if holder.isdigit() else "another process"
            log.warning("audience %r is being delivered by %s; waiting for it to finish", audience, who)

        with _flock(self.path.parent / f"deliver-{audience}.lock", busy) as held:
            if not held:  # pragma: no cover - non-POSIX
                log.warning("no file locking on this platform: two deliveries of audience %r at the same time "
                            "are not prevented", audience)
            yield


def _check_key(key: str) -> None:
    if not (isinstance(key, str) and len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
        raise DeliveryError(f"ledger key must be a 64-character lower-case sha256 hex digest, got {key!r}")
