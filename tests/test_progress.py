"""Progress on the console: one updating line on a terminal, a few plain lines otherwise."""

from __future__ import annotations

import io
import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datastory import progress

REPO = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_elapsed_and_line():
    assert progress.elapsed(7.4) == "7s" and progress.elapsed(182) == "3m02s" and progress.elapsed(3840) == "1h04m"
    assert progress.line("forecast", 150, 300, 92) == "forecast: 150/300 series, 1m32s"


def test_milestones_are_the_quarters_and_the_end():
    crossed = [n for n in range(1, 101) if progress.milestones(n - 1, n, 100)]
    assert crossed == [25, 50, 75, 100]
    assert not progress.milestones(0, 0, 0)


def test_plain_stream_gets_a_few_lines_with_counts_and_time():
    out, clock = io.StringIO(), Clock()
    with progress.Progress(300, "forecast", stream=out, clock=clock, notebook_bar=False) as p:
        for _ in range(300):
            clock.t += 0.6
            p.update()
    lines = out.getvalue().splitlines()
    assert lines[0] == "forecast: 0/300 series, 0s"
    assert lines[-1] == "forecast: 300/300 series, 3m00s"
    assert len(lines) == 5 and "\r" not in out.getvalue()


def test_terminal_gets_one_line_updated_in_place():
    out, clock = Tty(), Clock()
    with progress.Progress(4, "forecast", stream=out, clock=clock, notebook_bar=False) as p:
        for _ in range(4):
            clock.t += 1
            p.update()
        p.note("forecast: series 'North': prophet failed (boom)")
    text = out.getvalue()
    assert text.count("\n") == 2   # the note, and the end of the line
    assert "\rforecast: 4/4 series, 4s" in text
    assert "forecast: series 'North': prophet failed (boom)\n" in text


def test_disabled_writes_nothing_but_notes():
    out = io.StringIO()
    with progress.Progress(3, "x", stream=out, enabled=False, notebook_bar=False) as p:
        p.update(3)
        p.note("one line")
    assert out.getvalue() == "one line\n"


def _run_on_a_tty(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> tuple[int, str]:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower,
                            close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            proc.kill()
            raise AssertionError("no output for too long:\n" + b"".join(chunks).decode(errors="replace"))
        try:
            data = os.read(leader, 65536)
        except OSError:   # the terminal closed: the process ended
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_forecast_stage_on_a_terminal_shows_progress_and_no_noise(project):
    """`datastory forecast` runs the notebook under papermill; its progress still reaches the terminal."""
    from test_forecast_engine import make_tx

    from datastory import config
    from datastory import io as dio

    shutil.copytree(REPO / "notebooks", project / "notebooks")
    (project / "params" / "forecast.yaml").write_text("freq: M\nhorizon: 3\nfolds: 2\nengine: local\n")
    dio.write_parquet(make_tx(), config.paths(project).transactions)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TERM": "xterm"}
    env.pop("DATASTORY_ROOT", None)
    rc, out = _run_on_a_tty([sys.executable, "-m", "datastory", "--root", str(project), "forecast"], project, env)
    assert rc == 0, out
    assert "\rforecast (local): 0/" in out and "forecast (local): 7/7 series" in out, out
    for noise in ("ERROR", "WARNING", "Traceback", "KeyboardInterrupt"):
        assert noise not in out, out
