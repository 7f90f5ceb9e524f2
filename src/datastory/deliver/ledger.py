"""The delivery ledger: which content has already gone to which recipients.

Promise 4 of the design: nothing is emailed twice for the same content. The ledger key is the
sha256 of the attachments' bytes, the sorted envelope recipients and the data period, so the same
pack to the same people is sent once, and a changed attachment or recipient list is sent again.

The ledger lives OUTSIDE the DVC outputs (DVC deletes a stage's outputs before re-running it, which
would wipe a ledger kept in reports/outbox/): by default `<root>/.datastory/ledger.json`. That folder
gets its own `.gitignore` ("*") so it never reaches git. Writes are atomic (datastory.io) and
serialised with an advisory file lock, so two deliver stages running at once do not lose entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .. import io
from ..errors import DeliveryError

LEDGER_DIR = ".datastory"
LEDGER_FILE = "ledger.json"
_KEY_VERSION = b"datastory-deliver-v1"


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


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `lock_path` (no-op where fcntl is unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(lock_path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class Ledger:
    """A JSON file mapping content key -> {audience, message_id, recipients}."""

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
        return data

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every recorded delivery, by key."""
        return dict(self._read().get("sent", {}))

    def already_sent(self, key: str) -> bool:
        """True when content `key` has been delivered before."""
        _check_key(key)
        return key in self._read().get("sent", {})

    def record(self, key: str, audience: str, message_id: str, recipients: Iterable[str],
               refused: dict[str, str] | None = None) -> None:
        """Remember that content `key` went to `recipients` (call only after a successful send)."""
        _check_key(key)
        rcpts = sorted(set(recipients))
        if not rcpts:
            raise DeliveryError(f"audience {audience!r}: cannot record a delivery with no recipients")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ignore = self.path.parent / ".gitignore"
        if self.path.parent.name == LEDGER_DIR and not ignore.exists():
            io.write_text("*\n", ignore)
        with _locked(self.path.parent / f".{self.path.name}.lock"):
            data = self._read()
            sent = dict(data.get("sent", {}))
            entry: dict[str, Any] = {"audience": audience, "message_id": message_id, "recipients": rcpts}
            if refused:
                entry["refused"] = dict(sorted(refused.items()))
            sent[key] = entry
            io.write_json({**data, "version": 1, "sent": sent}, self.path)


def _check_key(key: str) -> None:
    if not (isinstance(key, str) and len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
        raise DeliveryError(f"ledger key must be a 64-character lower-case sha256 hex digest, got {key!r}")
