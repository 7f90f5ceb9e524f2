"""deploy/: the monthly run's recipes (cron, systemd timer, CI workflow) and the script they all call.

The schedule is checked three ways (a small cron-field validator, `systemd-analyze` when the machine has it, the
workflow's own cron), every command a recipe runs must exist, and the recipe's command itself runs once for
real on a built project copy with SMTP pointed at a loopback aiosmtpd server: one email per recipient, then
a rerun that sends nothing twice.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from e2e import REPO, sh
from test_deliver_smtp import Inbox, server

from datastory import cli

DEPLOY = REPO / "deploy"
SCRIPT = DEPLOY / "monthly.sh"
UNITS = (DEPLOY / "systemd/datastory.service", DEPLOY / "systemd/datastory.timer")
PLACE = "/srv/datastory"   # the project folder the examples name
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


# ---------------------------------------------------------------- a tiny cron validator
def cron_field(text: str, name: str, lo: int, hi: int) -> set[int]:
    """The values one cron field allows (lists, ranges, steps, *); ValueError naming the field otherwise."""
    out: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", part)
        if not m:
            raise ValueError(f"{name}: {part!r} is not a cron field")
        a, b = (lo, hi) if m.group(1) == "*" else (int(m.group(2)), int(m.group(3) or m.group(2)))
        step = int(m.group(4) or 1)
        if not (lo <= a <= b <= hi) or step < 1:
            raise ValueError(f"{name}: {part!r} is outside {lo}-{hi}")
        out |= set(range(a, b + 1, step))
    return out


def cron_schedule(expr: str) -> list[set[int]]:
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"{expr!r}: a cron schedule has 5 fields, not {len(fields)}")
    return [cron_field(f, *spec) for f, spec in zip(fields, FIELDS, strict=True)]


def cron_next(expr: str, after: datetime, n: int) -> list[datetime]:
    """The next `n` minutes `expr` fires at after `after` (day of month AND day of week when both are set, as
    here; the recipes use day of month only)."""
    minute, hour, dom, month, dow = cron_schedule(expr)
    out, t = [], after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while len(out) < n:
        if (t.month in month and t.day in dom and t.hour in hour and t.minute in minute
                and (t.isoweekday() % 7 in dow or 7 in dow and t.isoweekday() == 7)):
            out.append(t)
        t += timedelta(minutes=1)
    return out


def cron_lines(path: Path) -> list[tuple[str, str]]:
    """(schedule, command) of each job line of a crontab file (comments and VAR=value lines skipped)."""
    jobs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        parts = line.split(None, 5)
        jobs.append((" ".join(parts[:5]), parts[5]))
    return jobs


def test_the_cron_validator_refuses_what_cron_would():
    assert cron_schedule("0 6 1 * *")[2] == {1}
    assert cron_field("1-10/3,20", "minute", 0, 59) == {1, 4, 7, 10, 20}
    for bad in ("0 6 1 *", "0 24 1 * *", "60 6 1 * *", "0 6 0 * *", "0 6 1 13 *", "0 6 x * *", "0 6 5-1 * *"):
        with pytest.raises(ValueError):
            cron_schedule(bad)


# ---------------------------------------------------------------- the recipes
def workflow() -> dict:
    doc = yaml.safe_load((DEPLOY / "ci/monthly.yml").read_text(encoding="utf-8"))
    doc["on"] = doc.pop(True, doc.get("on"))   # YAML 1.1 reads the key `on` as true
    return doc


def the_cron_job() -> tuple[str, str]:
    jobs = cron_lines(DEPLOY / "cron/datastory.cron")
    assert len(jobs) == 1, jobs
    return jobs[0]


def test_the_cron_line_is_valid_and_runs_the_script():
    schedule, command = the_cron_job()
    assert cron_next(schedule, datetime(2025, 1, 15), 3) == [datetime(2025, m, 1, 6, 0) for m in (2, 3, 4)]
    assert shlex.split(command) == [f"{PLACE}/deploy/monthly.sh"]
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK)


def test_every_recipe_has_the_same_monthly_schedule():
    schedule, _ = the_cron_job()
    crons = [s["cron"] for s in workflow()["on"]["schedule"]]
    assert crons == [schedule]
    timer = (DEPLOY / "systemd/datastory.timer").read_text(encoding="utf-8")
    calendar = re.search(r"^OnCalendar=(.+)$", timer, re.MULTILINE).group(1)
    assert calendar == "*-*-01 06:00:00" and cron_next(schedule, datetime(2025, 12, 31), 1) == [
        datetime(2026, 1, 1, 6, 0)]
    # the README says it in words, and shows the same three files
    readme = (REPO / "README.md").read_text(encoding="utf-8").split("## Scheduling", 1)[1].split("\n## ", 1)[0]
    assert "06:00 on the 1st of every month" in readme
    for f in ("deploy/cron/datastory.cron", "deploy/systemd/datastory.timer", "deploy/ci/monthly.yml",
              "deploy/monthly.sh"):
        assert f in readme, f


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_verify_and_the_calendar_fires_monthly(tmp_path):
    for unit in UNITS:   # the example's project folder replaced by this one, so ExecStart exists
        (tmp_path / unit.name).write_text(unit.read_text(encoding="utf-8").replace(PLACE, str(REPO)))
    ok = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / u.name) for u in UNITS)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    for unit in UNITS:   # the check can fail: a calendar systemd cannot read is refused
        text = (tmp_path / unit.name).read_text().replace("OnCalendar=*-*-01 06:00:00", "OnCalendar=*-*-42 06:00")
        (broken / unit.name).write_text(text)
    bad = subprocess.run(["systemd-analyze", "verify", *(str(broken / u.name) for u in UNITS)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "calendar" in bad.stderr.lower()
    cal = subprocess.run(["systemd-analyze", "calendar", "--iterations=3", "--base-time=2025-01-15 00:00:00 UTC",
                          "*-*-01 06:00:00"], capture_output=True, text=True, env={**os.environ, "TZ": "UTC"})
    assert cal.returncode == 0, cal.stderr
    fires = re.findall(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})", cal.stdout)
    schedule, _ = the_cron_job()
    assert fires == [t.strftime("%Y-%m-%d %H:%M:%S") for t in cron_next(schedule, datetime(2025, 1, 15), 3)]


def test_the_workflow_is_an_example_that_runs_the_script_with_secrets_from_the_store():
    doc = workflow()
    assert not (REPO / ".github/workflows/monthly.yml").exists()   # not active in this repository
    assert "workflow_dispatch" in doc["on"]
    steps = doc["jobs"]["monthly"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert "deploy/monthly.sh" in runs
    build = next(s for s in steps if s.get("run") == "deploy/monthly.sh")
    assert all(v.startswith("${{ secrets.") for v in build["env"].values())
    assert set(build["env"]) == {"DATASTORY_SMTP_USER", "DATASTORY_SMTP_PASSWORD", "DATASTORY_DB_PASSWORD"}
    ledger = [s for s in steps if "actions/cache" in s.get("uses", "")]
    assert {s["with"]["path"] for s in ledger} == {".datastory/ledger.json"} and len(ledger) == 2


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-zA-Z_-]*):", text, re.MULTILINE))


def datastory_commands() -> set[str]:
    sub = next(a for a in cli._parser()._actions if a.dest == "command")
    return set(sub.choices)


def test_every_command_the_recipes_and_the_section_name_exists():
    runs = [s["run"] for s in workflow()["jobs"]["monthly"]["steps"] if "run" in s]
    script = SCRIPT.read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8").split("## Scheduling", 1)[1].split("\n## ", 1)[0]
    commands = [*runs, *re.findall(r"^\s*((?:dvc|datastory|make) [^|;&\n]*)", script, re.MULTILINE),
                *re.findall(r"^((?:dvc|datastory|make|systemctl|journalctl|tail) [^\n#]*|deploy/\S+[^\n#]*)", readme,
                            re.MULTILINE)]
    assert len(commands) >= 6, commands
    targets, subs = make_targets(), datastory_commands()
    seen = set()
    for line in commands:
        words = shlex.split(line)
        if words[0] == "make":
            assert words[1] in targets, line
        elif words[0] == "datastory":
            assert words[1] in subs, line
        elif words[0].startswith("deploy/"):
            assert os.access(REPO / words[0], os.X_OK), line
        elif words[0] == "dvc":
            assert words[1] in ("repro", "status", "metrics", "exp"), line
        seen.add(words[0])
    assert {"make", "dvc", "deploy/monthly.sh"} <= seen


# ---------------------------------------------------------------- the recipe's command, for real
def deliver_params(root: Path, **kw) -> None:
    path = root / "params/deliver.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc.update(kw)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def audiences(root: Path) -> dict:
    return yaml.safe_load((root / "params/report.yaml").read_text(encoding="utf-8"))["audiences"]


def recipients(root: Path) -> list[str]:
    return sorted(a for aud in audiences(root).values() for a in aud["to"])


@pytest.mark.slow
@pytest.mark.e2e
def test_the_monthly_script_delivers_once_and_a_rerun_sends_nothing_twice(built, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(built, root, symlinks=True)          # the built project; `built` itself stays read-only
    inbox = Inbox()
    with server(inbox) as port:
        deliver_params(root, send=True, smtp_host="127.0.0.1", smtp_port=port, security="none", timeout_s=10)
        first = sh(root, "deploy/monthly.sh", timeout=1800)
        got = sorted(r for _, rcpts, _ in inbox.messages for r in rcpts)
        assert got == recipients(root), first.stdout[-3000:]
        assert "Running stage 'deliver@" in first.stdout and "Running stage 'report@" not in first.stdout
        # a rerun after a change that re-runs every deliver stage: the ledger says they have it, nothing is sent
        deliver_params(root, timeout_s=11)
        second = sh(root, "deploy/monthly.sh", timeout=1800)
        assert second.stdout.count("Running stage 'deliver@") == len(audiences(root))
        assert len(inbox.messages) == len(got)
        assert sh(root, "dvc", "status").stdout.strip() in ("Data and pipelines are up to date.", "")
    log = (root / ".datastory/monthly.log").read_text(encoding="utf-8")
    assert log.count("== datastory monthly run finished") == 2 and "with exit status 0" in log
    # a failing run says so in its exit status: an SMTP server that is not there leaves the recipients without it
    deliver_params(root, smtp_port=port, timeout_s=12)
    (root / ".datastory/ledger.json").unlink()
    failed = sh(root, "deploy/monthly.sh", check=False, timeout=1800)
    assert failed.returncode != 0 and "exited with 2" in failed.stdout + failed.stderr
