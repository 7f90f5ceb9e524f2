"""Promise 2 (no half-written output), statically: only datastory.io touches the file system to write.

Every artifact must go through io.write_* / io.atomic_path (temp file + os.replace). A grep over the
library finds direct writers; each remaining hit must be on the explicit allow-list below, with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "datastory"

# A direct write of a file: the pattern, and what it catches.
WRITERS = {
    r"\bopen\([^)]*,\s*(mode\s*=\s*)?['\"][^'\"]*[wax+]": "open(..., 'w'/'a'/'x'/'+')",
    r"\.to_(parquet|excel|csv|json|feather|pickle|html|stata|hdf|orc)\(\s*(?!index\s*=|\)|float_format|sep\s*=)":
        "DataFrame.to_* given a target path",
    r"(?<!\bio)\.write_(bytes|text)\(": "Path.write_bytes/write_text",
    r"\.savefig\(\s*(?!buf\b)": "savefig to a path",
    r"\bwrite_pdf\(\s*(?!stylesheets|\))[\w'\"]": "write_pdf to a path",
    r"\bjson\.dump\(": "json.dump to a file",
    r"\b(pickle|joblib|np|numpy)\.(dump|save)\(": "pickle/np.save to a file",
    r"\bshutil\.(copy\w*|move)\(|\bos\.(replace|rename)\(": "copy/move into place",
    r"\.save\(": "workbook/model .save()",
}

# (file relative to src/datastory, the pattern's description) -> why it is fine.
ALLOWED = {
    ("deliver/ledger.py", "open(..., 'w'/'a'/'x'/'+')"):
        "an advisory lock file (fcntl.flock), never read as an artifact and never a DVC output",
    ("progress.py", "open(..., 'w'/'a'/'x'/'+')"):
        "a text stream over the terminal's file descriptor (the kernel's saved stderr), never a file",
    ("runner.py", "open(..., 'w'/'a'/'x'/'+')"):
        "appends a line to the DATASTORY_TIMINGS side file (a bench's log outside the outputs), never an artifact",
    ("workbook/__init__.py", "workbook/model .save()"):
        "ExcelWriter(wb, archive).save() writes into an in-memory zipfile; io.write_bytes puts it in place",
}


def scan(text: str) -> list[tuple[int, str, str]]:
    """(line number, what, line) of every direct write in `text`; comments and docstring lines skipped."""
    hits = []
    for no, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        if not code.strip() or code.lstrip().startswith(('"', "'")):
            continue
        for pattern, what in WRITERS.items():
            if re.search(pattern, code):
                hits.append((no, what, line.strip()))
    return hits


def test_only_io_writes_files():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == "io.py":
            continue
        for no, what, line in scan(path.read_text(encoding="utf-8")):
            if (rel, what) not in ALLOWED:
                found.append(f"src/datastory/{rel}:{no}: {what}: {line}")
    assert not found, "write artifacts through datastory.io (atomic), not directly:\n" + "\n".join(found)


def test_allow_list_entries_are_still_needed():
    """A stale allow-list entry would hide a future direct write in that file."""
    for rel, what in ALLOWED:
        hits = [h for h in scan((SRC / rel).read_text(encoding="utf-8")) if h[1] == what]
        assert hits, f"{rel}: allow-list entry for {what!r} no longer matches; remove it"


def test_io_itself_writes_through_a_temp_file_and_os_replace():
    text = (SRC / "io.py").read_text(encoding="utf-8")
    assert "tempfile.mkstemp(" in text and "os.replace(" in text


@pytest.mark.parametrize("line", [
    'open(path, "w").write(text)',
    "with open(out, mode='wb') as fh:",
    "df.to_parquet(path, index=False)",
    "df.to_csv(path)",
    "Path(out).write_bytes(data)",
    "fig.savefig(out_png)",
    "doc.write_pdf(target)",
    "json.dump(obj, fh)",
    "shutil.copyfile(tmp, dst)",
    "wb.save(path)",
])
def test_scanner_catches_direct_writes(line):
    assert scan(line), line


@pytest.mark.parametrize("line", [
    'open(path, "rb")',
    "io.write_bytes(data, path)",
    "io.write_text(html, outs[0])",
    'df.to_csv(index=False, lineterminator="\\n")',
    'fig.savefig(buf, format="png")',
    "doc.write_pdf(stylesheets=[css])",
    "json.dumps(obj)",
    "tmp.read_bytes()",
])
def test_scanner_lets_reads_and_atomic_writes_pass(line):
    assert not scan(line), line


def test_every_stage_output_persists_so_a_failed_stage_keeps_the_last_good_build():
    """DVC deletes a stage's outputs before it runs unless `persist: true`; a stage that then fails on bad input
    would leave no outputs at all (tests/test_pipeline_e2e.py shows the whole behaviour)."""
    import yaml

    stages = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["stages"]
    missing = []
    for name, stage in stages.items():
        body = stage.get("do", stage)
        for kind in ("outs", "metrics", "plots"):
            for entry in body.get(kind, []):
                path, opts = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                if not (opts or {}).get("persist"):
                    missing.append(f"{name}: {path}")
    assert stages and not missing, missing
