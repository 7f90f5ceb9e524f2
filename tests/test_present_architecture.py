"""The renderers (report, workbook, deliver, dashboard) share the presentation layer and never import each other.

Imports are read from the source with `ast` (relative imports resolved), so an import inside a function
counts too. A renderer that needs a word or a figure takes it from datastory.present.
"""

from __future__ import annotations

import ast
from pathlib import Path

import datastory

SRC = Path(datastory.__file__).parent
RENDERERS = ("report", "workbook", "deliver", "dashboard")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, here: str | None = None) -> set[str]:
    """Every module `path` imports, as absolute dotted names; `here` is its module name (default: from the path)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = here or module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            out.add(prefix)
            out.update(f"{prefix}.{alias.name}" for alias in node.names)
    return out


def renderer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "datastory" and parts[1] in RENDERERS else None


def renderer_files() -> list[Path]:
    return sorted(p for r in RENDERERS for p in (SRC / r).rglob("*.py")) if SRC.exists() else []


def crossings(files: list[Path]) -> list[str]:
    out = []
    for path in files:
        mine = renderer_of(module_name(path))
        for target in sorted(imported(path)):
            theirs = renderer_of(target)
            if mine and theirs and theirs != mine:
                out.append(f"{module_name(path)} imports {target}")
    return out


def test_renderers_never_import_each_other():
    files = renderer_files()
    assert {renderer_of(module_name(p)) for p in files} >= {"report", "workbook", "deliver", "dashboard"}
    assert crossings(files) == []


def test_renderers_take_words_and_figures_from_present():
    for r in ("report", "workbook", "dashboard"):
        found = set().union(*(imported(p) for p in (SRC / r).rglob("*.py")))
        assert any(m.startswith("datastory.present") for m in found), r
    # the email's words too: the report stage writes present.email's facts, which deliver composes from; deliver
    # itself loads no pack, so it imports nothing of the presentation layer
    assert "datastory.present.email" in imported(SRC / "stages.py")
    assert not any(m.startswith(("datastory.present", "datastory.pack")) for p in (SRC / "deliver").rglob("*.py")
                   for m in imported(p))
    assert not (SRC / "report" / "narrative.py").exists() and not (SRC / "report" / "figures.py").exists()


def test_the_check_catches_a_crossing(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from ..report.sections import cover\nfrom ..present import words\n"
                     "def late():\n    import datastory.deliver.compose\n", encoding="utf-8")
    found = imported(probe, "datastory.workbook._probe")
    assert {"datastory.report.sections", "datastory.deliver.compose", "datastory.present.words"} <= found
    assert [renderer_of(m) for m in sorted(found) if renderer_of(m) not in (None, "workbook")] == ["deliver", "report",
                                                                                                  "report"]
