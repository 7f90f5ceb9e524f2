"""What the benches measure of a process, and how they run their own timed children (not a bench itself:
`make bench` runs bench/*.py but the ones starting with an underscore).

- usage(): this process's CPU seconds (user + system, every thread) and its peak resident set size in MiB
  (VmHWM of /proc/self/status on Linux, else getrusage's ru_maxrss);
- run_child(script, *args, cap_mb=...): run `python script args...` in a fresh process and return the JSON of
  its last stdout line; with `cap_mb`, None when its RSS passed the cap (the child is then killed);
- tree_rss_mb(pid): the resident memory of a process and all its descendants now, MiB (Linux /proc; 0 elsewhere).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _status(pid: int | str, key: str) -> float | None:
    """A /proc/PID/status memory line in MiB (VmHWM, VmRSS); None where there is none."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) / 2**10 for line in status.splitlines() if line.startswith(key + ":")), None)


def peak_mb() -> float:
    """This process's peak RSS so far, MiB."""
    hwm = _status("self", "VmHWM")
    return hwm if hwm is not None else ru_maxrss_mb()


def ru_maxrss_mb() -> float:
    """getrusage's peak RSS of this process, MiB (KiB on Linux, bytes on macOS); on Linux a child's starts from
    the RSS of the process that forked it."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10


def memory() -> dict[str, float]:
    """This process's memory now: peak_mb (peak_mb()), VmRSS_mb (resident now; NaN off Linux), ru_maxrss_mb."""
    rss = _status("self", "VmRSS")
    return {"peak_mb": peak_mb(), "VmRSS_mb": float("nan") if rss is None else rss, "ru_maxrss_mb": ru_maxrss_mb()}


def usage() -> dict[str, float]:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": use.ru_utime + use.ru_stime, "peak_mb": peak_mb()}


def run_child(script: str | Path, *args: str, cap_mb: float = 0.0) -> Any:
    """The JSON answer (last stdout line) of `python script *args`; None when its RSS went over `cap_mb`."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, str(script), *args], stdout=out, stderr=err, text=True)
        while proc.poll() is None:
            if cap_mb and (_status(proc.pid, "VmRSS") or 0.0) > cap_mb:
                proc.kill()
                proc.wait()
                return None
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"child {' '.join(args[:3])} failed ({proc.returncode}):\n{err.read()[-3000:]}")
        return json.loads(out.read().strip().splitlines()[-1])


def _children() -> dict[int, list[int]]:
    """Parent pid -> its children's pids, from /proc/*/stat (Linux)."""
    out: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])    # the name may hold spaces and parentheses
        out.setdefault(ppid, []).append(int(stat.parent.name))
    return out


def tree_rss_mb(pid: int) -> float:
    """VmRSS of `pid` and every process under it, MiB: what a run holds at once across its processes."""
    children, todo, total = _children(), [pid], 0.0
    while todo:
        p = todo.pop()
        total += _status(p, "VmRSS") or 0.0
        todo.extend(children.get(p, []))
    return total
