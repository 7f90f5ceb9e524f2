"""`datastory serve`: the pure parts (URLs, path resolution, ETag, index) and a real server on loopback.

The server tests bind a real ThreadingHTTPServer on a free port and talk to it with http.client, sending raw
request paths (`/../x`, `%2e%2e`) that a URL library would normalise away.
"""

from __future__ import annotations

import email.utils
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from datastory.errors import DatastoryError
from datastory.live import serve


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """A reports folder with two dashboards, a hidden temp file and a secret beside (outside) it."""
    root = tmp_path / "reports"
    for audience in ("executive", "north"):
        (root / audience).mkdir(parents=True)
        (root / audience / "dashboard.html").write_text(f"<p>{audience}</p>", encoding="utf-8")
    (root / "executive" / ".dashboard.abc.tmp.html").write_text("half written", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("password", encoding="utf-8")
    return Path(os.path.realpath(root))


@pytest.fixture
def server(reports):
    srv = serve.bind(reports, "127.0.0.1", 0)
    serve.start(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


def ask(srv, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    try:
        conn.putrequest(method, path, skip_host=headers is not None and "Host" in headers)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        res = conn.getresponse()
        return res.status, dict(res.getheaders()), res.read()
    finally:
        conn.close()


# ---------------------------------------------------------------- pure parts
@pytest.mark.parametrize(("host", "loop"), [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True),
                                            ("::1", True), ("[::1]", True), ("0.0.0.0", False),
                                            ("192.168.1.5", False), ("example.com", False), ("", False)])
def test_is_loopback(host, loop):
    assert serve.is_loopback(host) is loop


def test_urls_name_each_dashboard_and_the_poll_when_asked():
    rel = ["executive/dashboard.html", "north west/dashboard.html"]
    assert serve.urls("127.0.0.1", 8000, rel) == ["http://127.0.0.1:8000/executive/dashboard.html",
                                                  "http://127.0.0.1:8000/north%20west/dashboard.html"]
    assert serve.urls("127.0.0.1", 8001, rel[:1], poll=2.5) == ["http://127.0.0.1:8001/executive/dashboard.html?poll=2.5"]
    assert serve.urls("::1", 80, rel[:1]) == ["http://[::1]:80/executive/dashboard.html"]
    assert serve.urls("0.0.0.0", 80, rel[:1]) == ["http://localhost:80/executive/dashboard.html"]


def test_resolve_finds_files_inside_only(reports, tmp_path):
    assert serve.resolve(reports, "/executive/dashboard.html") == reports / "executive" / "dashboard.html"
    assert serve.resolve(reports, "/executive/dashboard.html?poll=1#x") == reports / "executive" / "dashboard.html"
    assert serve.resolve(reports, "/north%2Fdashboard.html") == reports / "north" / "dashboard.html"


@pytest.mark.parametrize("path", ["/", "/executive", "/executive/", "/../secret.txt", "/executive/../../secret.txt",
                                  "/%2e%2e/secret.txt", "/executive/%2E%2E/%2E%2E/secret.txt", "/..%2fsecret.txt",
                                  "/executive/.dashboard.abc.tmp.html", "/executive/dashboard.html%00.txt",
                                  "/..\\secret.txt", "/executive/missing.html", "//etc/passwd", "/./executive"])
def test_resolve_refuses_what_is_not_a_file_inside(reports, path):
    assert serve.resolve(reports, path) is None


def test_resolve_refuses_a_symlink_leading_out(reports, tmp_path):
    (reports / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (reports / "inside.html").symlink_to(reports / "north" / "dashboard.html")
    assert serve.resolve(reports, "/leak.txt") is None
    assert serve.resolve(reports, "/inside.html") == reports / "north" / "dashboard.html"


def test_etag_follows_the_bytes_not_the_time(reports):
    f = reports / "north" / "dashboard.html"
    cache: dict = {}
    one = serve.etag(f, cache)
    os.utime(f, (1_700_000_000, 1_700_000_000))
    assert serve.etag(f, cache) == one          # same bytes, new mtime: same build
    f.write_text("<p>north, rebuilt</p>", encoding="utf-8")
    assert serve.etag(f, cache) != one
    assert re.fullmatch(r'"[0-9a-f]{32}"', one)
    snap = serve.snapshot(f)
    assert snap.data == f.read_bytes() and snap.etag == serve.etag(f) and snap.size == len(snap.data)
    assert serve.snapshot(f, body=False).data is None
    with pytest.raises(FileNotFoundError):
        serve.etag(reports / "nothing.html")


def test_index_escapes_names_and_links_dashboards_with_the_poll():
    page = serve.index(["a/dashboard.html", "<b>/report.pdf"], poll=3)
    assert '<a href="a/dashboard.html?poll=3">' in page
    assert "&lt;b&gt;/report.pdf" in page and "<b>" not in page
    assert "nothing built yet" in serve.index([])


def test_listing_skips_hidden_files_and_puts_audience_files_first(reports):
    (reports / "README.md").write_text("x", encoding="utf-8")
    (reports / "runs").mkdir()
    (reports / "runs" / "deep").mkdir()
    (reports / "runs" / "deep" / "n.ipynb").write_text("{}", encoding="utf-8")
    assert serve.listing(reports) == ["executive/dashboard.html", "north/dashboard.html", "README.md",
                                      "runs/deep/n.ipynb"]


# ---------------------------------------------------------------- a real server
def test_serves_a_file_with_validators_and_no_cache(server, reports):
    f = reports / "north" / "dashboard.html"
    os.utime(f, (1_767_225_600, 1_767_225_600))   # 2026-01-01 00:00:00 UTC
    status, headers, body = ask(server, "GET", "/north/dashboard.html?poll=1")
    assert status == 200 and body == f.read_bytes()
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Last-Modified"] == "Thu, 01 Jan 2026 00:00:00 GMT"
    assert headers["ETag"] == serve.etag(f)
    assert int(headers["Content-Length"]) == len(body)

    status, head_headers, body = ask(server, "HEAD", "/north/dashboard.html")
    assert status == 200 and body == b"" and head_headers["ETag"] == headers["ETag"]
    assert head_headers["Content-Length"] == headers["Content-Length"]

    status, _, body = ask(server, "GET", "/north/dashboard.html", {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""

    f.write_text("<p>north, rebuilt</p>", encoding="utf-8")
    status, new, body = ask(server, "HEAD", "/north/dashboard.html")
    assert new["ETag"] != headers["ETag"]
    assert email.utils.parsedate_to_datetime(new["Last-Modified"]).timestamp() > 1_767_225_600


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/executive/..%2f..%2fsecret.txt",
                                  "/executive/.dashboard.abc.tmp.html", "/executive/", "/nothing"])
def test_no_path_leaves_the_reports_folder(server, path):
    status, _, body = ask(server, "GET", path)
    assert status == 404 and b"password" not in body and b"half written" not in body


def test_index_lists_the_reports(server):
    status, headers, body = ask(server, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'href="executive/dashboard.html"' in body and b".tmp" not in body


def test_only_reads(server, reports):
    before = sorted(p.name for p in reports.rglob("*"))
    for method in ("POST", "PUT", "DELETE"):
        status, _, _ = ask(server, method, "/north/dashboard.html")
        assert status == 501
    assert sorted(p.name for p in reports.rglob("*")) == before
    assert (reports / "north" / "dashboard.html").read_text(encoding="utf-8") == "<p>north</p>"


def test_on_loopback_it_answers_only_to_a_loopback_host_name(server):
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert ask(server, "GET", "/north/dashboard.html", {"Host": host})[0] == 200
    status, _, body = ask(server, "GET", "/north/dashboard.html", {"Host": "attacker.example:8000"})
    assert status == 421 and b"north" not in body


def test_a_port_in_use_is_refused_clearly(server, reports):
    port = server.server_address[1]
    with pytest.raises(DatastoryError) as exc:
        serve.bind(reports, "127.0.0.1", port)
    assert str(exc.value) == (f"port {port} on 127.0.0.1 is in use (by another program or another `datastory "
                              "serve`); choose another with --port N")


def test_bad_interval_and_port_are_refused(reports):
    with pytest.raises(DatastoryError, match="must be more than 0"):
        serve.serve(reports, [], [], "127.0.0.1", 0, poll=0)
    with pytest.raises(DatastoryError, match="not a port number"):
        serve.bind(reports, "127.0.0.1", 70000)


# ---------------------------------------------------------------- the command
def _cli(project: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "datastory", "--root", str(project), *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "PYTHONUNBUFFERED": "1"}


def test_cli_prints_the_urls_serves_and_stops_on_ctrl_c(project):
    dash = project / "reports" / "executive" / "dashboard.html"
    dash.parent.mkdir(parents=True)
    dash.write_text("<p>exec</p>", encoding="utf-8")
    proc = subprocess.Popen(_cli(project, "serve", "--port", "0", "--interval", "2"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        first = proc.stdout.readline()
        assert first.startswith(f"serving {project / 'reports'} read-only at http://127.0.0.1:"), first
        port = int(re.search(r":(\d+)/", first).group(1))
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(2)]
        assert f"  executive: http://127.0.0.1:{port}/executive/dashboard.html?poll=2" in lines
        assert any(re.fullmatch(r"  \w+: no dashboard yet \(run `dvc repro`\)", ln) for ln in lines)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/executive/dashboard.html")
        assert conn.getresponse().read() == b"<p>exec</p>"
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "datastory: interrupted" in err and "Traceback" not in err


def test_cli_refuses_a_port_in_use_with_exit_2(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = subprocess.run(_cli(project, "serve", "--port", str(port)), capture_output=True, text=True,
                             env=_env(), timeout=60)
    assert res.returncode == 2
    assert res.stderr.strip() == (f"datastory: error: port {port} on 127.0.0.1 is in use (by another program or "
                                  "another `datastory serve`); choose another with --port N")
    assert "serving" not in res.stdout


def test_cli_warns_when_listening_beyond_localhost(project):
    proc = subprocess.Popen(_cli(project, "serve", "--port", "0", "--host", "0.0.0.0"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        first = proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert first.startswith("warning: serving on 0.0.0.0, not localhost: anyone who can reach this machine")
