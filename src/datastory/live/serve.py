"""`datastory serve`: the reports folder over HTTP, read-only, on localhost unless asked otherwise.

What an open dashboard needs to notice a newer build (see `dashboard.app.LIVE_JS`): every answer carries an
`ETag` (a hash of the file's bytes, so a byte-identical rebuild is not "newer"), a `Last-Modified` (the file's
mtime, which the dashboard shows as its build time) and `Cache-Control: no-cache`.

Only files inside the reports folder are served: no `..`, no symlink leading out, no hidden files (the temp
files of an atomic write), no directory listings but the index page at `/`, which links each audience's files.
On a loopback address a request must also name a loopback host (`Host:`), so a web page cannot reach the
server through a DNS name rebound to 127.0.0.1.

`urls`, `resolve`, `etag` and `index` are pure (or read only the file they are given); `bind` and `run` are
the I/O edge.
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import ipaddress
import mimetypes
import os
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from ..errors import DatastoryError

HOST = "127.0.0.1"
PORT = 8000
LOOPBACK_NAMES = {"localhost", "localhost.", "127.0.0.1", "[::1]", "::1"}
TYPES = {".html": "text/html; charset=utf-8", ".pdf": "application/pdf",
         ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         ".eml": "message/rfc822", ".ipynb": "application/json", ".md": "text/plain; charset=utf-8"}


class ServeError(DatastoryError):
    """The server cannot start as asked."""


# ---------------------------------------------------------------- pure core
def is_loopback(host: str) -> bool:
    """True for a name or address that only this machine can reach."""
    name = host.strip("[]").lower()
    if name in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def base_url(host: str, port: int) -> str:
    shown = "localhost" if host in ("0.0.0.0", "::") else host   # an all-interfaces bind is reachable here too
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def urls(host: str, port: int, dashboards: Iterable[str], poll: float | None = None) -> list[str]:
    """The URL of each dashboard (paths relative to the reports folder), with `?poll=S` when a poll is given
    (None: the dashboard's own default, `dashboard.page.POLL`)."""
    query = "" if poll is None else f"?poll={poll:g}"
    return [base_url(host, port) + quote(rel) + query for rel in dashboards]


def resolve(root: Path, url_path: str) -> Path | None:
    """The file under `root` that `url_path` names, or None when it names nothing we serve.

    `root` must be absolute and resolved. Refused: `..` and hidden parts, NUL, backslashes, directories and
    anything whose real path (symlinks followed) is not inside `root`.
    """
    path = unquote(urlsplit(url_path).path)
    if "\x00" in path or "\\" in path:
        return None
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") or p.startswith(".") for p in parts):
        return None
    target = Path(os.path.realpath(root.joinpath(*parts)))
    if target != root and root not in target.parents:
        return None
    return target if target.is_file() else None


def _digest(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return f'"{h.hexdigest()[:32]}"'


@dataclass(frozen=True)
class Snapshot:
    etag: str
    mtime: float
    size: int
    data: bytes | None   # the bytes, when asked for


def snapshot(path: Path, cache: dict[tuple[str, int, int], str] | None = None, body: bool = True) -> Snapshot:
    """One consistent view of the file: its ETag (a hash of its bytes), mtime, size and (with `body`) bytes.

    Read through one open file, so a rebuild moving a new file into place meanwhile cannot pair one build's
    bytes with another's ETag. Without `body` the hash is memoised on (path, size, mtime) in `cache`."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        key = (str(path), st.st_size, st.st_mtime_ns)
        data = fh.read() if body else None
        if data is not None:
            tag = _digest([data])
        elif cache is not None and key in cache:
            tag = cache[key]
        else:
            tag = _digest(iter(lambda: fh.read(1 << 20), b""))
        if cache is not None:
            cache[key] = tag
    return Snapshot(tag, st.st_mtime, st.st_size, data)


def etag(path: Path, cache: dict[tuple[str, int, int], str] | None = None) -> str:
    """A strong ETag from the file's bytes (memoised on path, size and mtime when `cache` is given)."""
    return snapshot(path, cache, body=False).etag


def content_type(path: Path) -> str:
    return TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def index(files: Iterable[str], poll: float | None = None) -> str:
    """The page at `/`: a link to each served file (paths relative to the reports folder), grouped by folder."""
    query = "" if poll is None else f"?poll={poll:g}"
    items = []
    for rel in files:
        href = quote(rel) + (query if rel.endswith("dashboard.html") else "")
        items.append(f'<li><a href="{escape(href)}">{escape(rel)}</a></li>')
    body = "\n".join(items) or "<li>nothing built yet: run <code>dvc repro</code></li>"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>reports</title></head>\n"
            f"<body>\n<h1>reports</h1>\n<ul>\n{body}\n</ul>\n</body>\n</html>\n")


def listing(root: Path) -> list[str]:
    """Every servable file under `root` (relative, sorted): dashboards and reports first, then the rest."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith("."):
                out.append(Path(dirpath, name).relative_to(root).as_posix())
    return sorted(out, key=lambda rel: (rel.count("/") != 1, rel))


# ---------------------------------------------------------------- I/O edge
class Handler(BaseHTTPRequestHandler):
    """GET and HEAD of the files under `server.root`; any other method gets 501 from the base class."""

    server: ReportsServer
    def version_string(self) -> str:
        return "datastory"

    def log_message(self, format: str, *args) -> None:   # noqa: A002 - the base class's name
        pass   # every open dashboard asks every few seconds: no line per request

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        srv = self.server
        if srv.loopback_only and not is_loopback(_host_name(self.headers.get("Host", ""))):
            return self._plain(HTTPStatus.MISDIRECTED_REQUEST, "this server answers only to localhost\n", body)
        if urlsplit(self.path).path == "/":
            page = index(listing(srv.root), srv.poll).encode("utf-8")
            return self._send(HTTPStatus.OK, "text/html; charset=utf-8", page, body, etag=None, mtime=None)
        path = resolve(srv.root, self.path)
        if path is None:
            return self._plain(HTTPStatus.NOT_FOUND, "not found\n", body)
        try:
            snap = snapshot(path, srv.etags, body)
        except OSError:   # removed between the checks
            return self._plain(HTTPStatus.NOT_FOUND, "not found\n", body)
        if snap.etag in [t.strip() for t in self.headers.get("If-None-Match", "").split(",")]:
            return self._send(HTTPStatus.NOT_MODIFIED, None, None, False, etag=snap.etag, mtime=snap.mtime)
        self._send(HTTPStatus.OK, content_type(path), snap.data, body, etag=snap.etag, mtime=snap.mtime,
                   size=snap.size)

    def _plain(self, status: HTTPStatus, text: str, body: bool) -> None:
        self._send(status, "text/plain; charset=utf-8", text.encode("utf-8"), body, etag=None, mtime=None)

    def _send(self, status: HTTPStatus, ctype: str | None, data: bytes | None, body: bool, *, etag: str | None,
              mtime: float | None, size: int | None = None) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        if status != HTTPStatus.NOT_MODIFIED:
            self.send_header("Content-Length", str(size if size is not None else len(data or b"")))
        if etag:
            self.send_header("ETag", etag)
        if mtime is not None:
            self.send_header("Last-Modified", email.utils.formatdate(mtime, usegmt=True))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if body and data:
            self.wfile.write(data)


def _host_name(header: str) -> str:
    """The name part of a Host header: `localhost:8000` -> localhost, `[::1]:8000` -> [::1]."""
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class ReportsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], root: Path, poll: float | None):
        self.root = Path(os.path.realpath(root))
        self.poll = poll
        self.loopback_only = is_loopback(address[0])
        self.etags: dict[tuple[str, int, int], str] = {}
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)


def bind(root: Path, host: str = HOST, port: int = PORT, poll: float | None = None) -> ReportsServer:
    """A server for `root` bound to host:port (port 0: any free one); a ServeError when the port is taken."""
    if not 0 <= port <= 65535:
        raise ServeError(f"port {port} is not a port number", fix="choose one from 1024 to 65535 with --port N")
    try:
        return ReportsServer((host, port), root, poll)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(f"port {port} on {host} is in use (by another program or another `datastory serve`); "
                             "choose another with --port N") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ServeError(f"port {port} on {host} needs privileges this user does not have",
                             fix="choose one from 1024 up with --port N") from None
        if exc.errno in (errno.EADDRNOTAVAIL, -2, -3, -5, -9):   # not this machine's address; a name not found
            raise ServeError(f"cannot listen on {host}: {exc.strerror or exc}",
                             fix="use 127.0.0.1 (the default), or an address of this machine with --host") from None
        raise


def start(server: ReportsServer) -> threading.Thread:
    """Serve in a background thread (tests); stop with `server.shutdown(); server.server_close()`."""
    t = threading.Thread(target=server.serve_forever, name="datastory-serve", daemon=True)
    t.start()
    return t


def serve(root: Path, dashboards: list[str], missing: list[str], host: str = HOST, port: int = PORT,
          poll: float | None = None, echo=print) -> None:
    """`datastory serve`: bind, print where each dashboard is, serve until Ctrl-C (which propagates)."""
    if poll is not None and not poll > 0:
        raise ServeError(f"--interval {poll:g} must be more than 0 seconds", fix="for example --interval 10")
    server = bind(root, host, port, poll)
    try:
        if not is_loopback(host):
            echo(f"warning: serving on {host}, not localhost: anyone who can reach this machine on port "
                 f"{server.server_address[1]} can read every report, customers' names included")
        echo(f"serving {root} read-only at {base_url(host, server.server_address[1])} (Ctrl-C stops)")
        for rel, url in zip(dashboards, urls(host, server.server_address[1], dashboards, poll), strict=True):
            echo(f"  {rel.split('/')[0]}: {url}")
        for audience in missing:
            echo(f"  {audience}: no dashboard yet (run `dvc repro`)")
        server.serve_forever()
    finally:
        server.server_close()
