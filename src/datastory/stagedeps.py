"""The code each DVC stage runs: its import closure over `src/datastory`, compared with dvc.yaml's deps.

A stage's command is `datastory <stage>`: `cli._dispatch` (and `main`), the stage's function in `stages.py`
and, for the analysis stages, what its notebook imports. From those roots every `datastory` module they import
is followed, at module level or inside a function (a lazy import runs too), and importing `a.b.c` runs
`a/__init__.py` and `a/b/__init__.py` as well. Only `cli` and `stages`, the dispatchers, are read function by
function: each stage follows its own branch of them, not the others'.

`closure` and `diff` are pure (source texts in, module files out); `compute`, `check` and `write` read the
project and rewrite dvc.yaml's `src/` lines (`datastory stage-deps --write`).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import io

PACKAGE = "datastory"
SRC = "src"
# stage -> (function of stages.py its command runs, notebook it executes or None)
STAGES: dict[str, tuple[str, str | None]] = {
    "sample": ("sample", None),
    "ingest": ("notebook", "01_ingest"),
    "kpis": ("notebook", "02_kpis"),
    "forecast": ("notebook", "03_forecast"),
    "churn": ("notebook", "04_churn"),
    "report": ("report", "05_report"),
    "deliver": ("deliver", None),
}
# Files a stage reads that are not imported: the report's nbconvert template.
DATA: dict[str, tuple[str, ...]] = {"report": ("src/datastory/templates",)}
# The dispatchers: only these functions' imports (plus module-level ones) belong to every stage.
DISPATCH = {"datastory.cli": ("_dispatch", "main")}


@dataclass(frozen=True)
class Change:
    stage: str
    add: tuple[str, ...]
    remove: tuple[str, ...]

    def lines(self) -> list[str]:
        return ([f"dvc.yaml stage '{self.stage}' deps: add      - {p}" for p in self.add]
                + [f"dvc.yaml stage '{self.stage}' deps: remove   - {p}" for p in self.remove])


# ---------------------------------------------------------------- pure core
def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports(tree: ast.AST, module: str, is_package: bool, exists: Callable[[str], bool],
            only: Iterable[str] | None = None) -> set[str]:
    """The `datastory` modules `tree` (of `module`) imports. With `only`, module-level imports plus those inside
    the named top-level functions; else every import in the file."""
    nodes: list[ast.AST]
    if only is None:
        nodes = list(ast.walk(tree))
    else:
        wanted = set(only)
        body = getattr(tree, "body", [])
        nodes = [n for n in body if isinstance(n, ast.Import | ast.ImportFrom)]
        for fn in body:
            if isinstance(fn, ast.FunctionDef) and fn.name in wanted:
                nodes.extend(ast.walk(fn))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names if exists(f"{target}.{a.name}"))
    out = set()
    for name in found:
        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            continue
        while name and not exists(name):   # `from .config import Paths`: the module is datastory.config
            name = name.rpartition(".")[0]
        parts = name.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))   # parents' __init__ run first
    return out


def notebook_imports(nb_json: str, exists: Callable[[str], bool]) -> set[str]:
    """The `datastory` modules a notebook's code cells import (IPython magics and shell lines skipped)."""
    cells = json.loads(nb_json).get("cells", [])
    found: set[str] = set()
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        src = "".join(cell.get("source", []))
        src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
        found |= imports(ast.parse(src), "__notebook__", False, exists)
    return found


# ---------------------------------------------------------------- the project edge
class Source:
    """The modules under src/datastory of a project folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.pkg = self.root / SRC / PACKAGE

    def file(self, module: str) -> Path | None:
        rel = Path(*module.split("."))
        base = self.root / SRC / rel
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        return None

    def exists(self, module: str) -> bool:
        return self.file(module) is not None

    def imports(self, module: str, only: Iterable[str] | None = None) -> set[str]:
        path = self.file(module)
        if path is None:
            return set()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        return imports(tree, module, path.name == "__init__.py", self.exists, only)

    def rel(self, module: str) -> str:
        path = self.file(module)
        assert path is not None
        return path.relative_to(self.root).as_posix()


def closure(src: Source, roots: Iterable[str], only: dict[str, tuple[str, ...]]) -> set[str]:
    """Every module reached from `roots`; a module of `only` is followed through the named functions only."""
    seen: set[str] = set()
    todo = [r for r in roots if src.exists(r)]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo.extend(m for m in src.imports(mod, only.get(mod)) if m not in seen)
    return seen


def stage_modules(root: Path, stage: str) -> list[str]:
    """The files (repo-relative, sorted) stage `stage`'s command runs, plus the data files it reads."""
    src = Source(root)
    function, notebook = STAGES[stage]
    roots = {f"{PACKAGE}.cli"}
    if notebook:
        roots |= notebook_imports((Path(root) / "notebooks" / f"{notebook}.ipynb").read_text(encoding="utf-8"),
                                  src.exists)
    mods = closure(src, roots, {**DISPATCH, f"{PACKAGE}.stages": (function,)})
    files = {src.rel(m) for m in mods} | set(DATA.get(stage, ()))
    return collapse(files, _package_files(Path(root)))


def collapse(files: set[str], tree: dict[str, set[str]]) -> list[str]:
    """`files` (sorted) with each subpackage folder all of whose files are in `files` named as that folder.

    `tree` maps each folder under src/datastory (not the package's own) to the files it holds, its subfolders'
    included. One folder is one entry in dvc.lock instead of one per file: the lock DVC reads and rewrites after
    every stage is shorter, and the stage re-runs on exactly the same edits. A folder with a file the stage does
    not run (forecast/backtest_plot.json for a stage that does not plot it) stays listed file by file.
    """
    out = set(files)
    for folder in sorted(tree, key=lambda f: f.count("/")):  # outermost first: a covered parent takes its children
        inside = tree[folder]
        if inside and inside <= out:
            out -= inside
            out = {f for f in out if not f.startswith(folder + "/")}
            out.add(folder)
    return sorted(out)


# What DVC does not hash in a folder dep (.dvcignore says the same): Python's byte-code caches.
IGNORED = ("__pycache__",)


def _package_files(root: Path) -> dict[str, set[str]]:
    """Each folder under src/datastory -> the files it holds (repo-relative, recursively; byte-code left out)."""
    pkg = root / SRC / PACKAGE
    tree: dict[str, set[str]] = {}
    for folder in sorted(p for p in pkg.rglob("*") if p.is_dir() and not set(p.relative_to(pkg).parts) & set(IGNORED)):
        tree[folder.relative_to(root).as_posix()] = {
            f.relative_to(root).as_posix() for f in folder.rglob("*")
            if f.is_file() and not set(f.relative_to(pkg).parts) & set(IGNORED)}
    return tree


def compute(root: Path) -> dict[str, list[str]]:
    return {stage: stage_modules(root, stage) for stage in STAGES}


_STAGE = re.compile(r"^  ([A-Za-z0-9_-]+):\s*(#.*)?$")
_DEPS = re.compile(r"^(\s+)deps:\s*$")
_ITEM = re.compile(r"^(\s+)- (\S+)")


def declared(dvc_yaml: str) -> dict[str, list[str]]:
    """Each stage's `src/` deps as dvc.yaml lists them (in order)."""
    return {stage: [m.group(2) for i in idx if (m := _ITEM.match(dvc_yaml.splitlines()[i]))]
            for stage, idx in _src_lines(dvc_yaml).items()}


def _src_lines(dvc_yaml: str) -> dict[str, list[int]]:
    """stage -> indices of its deps lines that name a file under src/ (plus, when none, -(index after deps:))."""
    lines = dvc_yaml.splitlines()
    out: dict[str, list[int]] = {}
    stage, in_deps, indent = None, False, ""
    for i, line in enumerate(lines):
        m = _STAGE.match(line)
        if m:
            stage, in_deps = m.group(1), False
            out.setdefault(stage, [])
            continue
        d = _DEPS.match(line)
        if d and stage:
            in_deps, indent = True, d.group(1)
            continue
        if in_deps:
            item = _ITEM.match(line)
            if item and len(item.group(1)) > len(indent):
                if item.group(2).startswith(f"{SRC}/"):
                    out[stage].append(i)
                continue
            in_deps = False
    return out


def diff(wanted: dict[str, list[str]], have: dict[str, list[str]]) -> list[Change]:
    changes = []
    for stage in wanted:
        w, h = set(wanted[stage]), set(have.get(stage, []))
        if w != h:
            changes.append(Change(stage, tuple(sorted(w - h)), tuple(sorted(h - w))))
    return changes


def check(root: Path) -> list[Change]:
    return diff(compute(root), declared((Path(root) / "dvc.yaml").read_text(encoding="utf-8")))


def rewrite(dvc_yaml: str, wanted: dict[str, list[str]]) -> str:
    """dvc.yaml with each stage's `src/` deps replaced by `wanted[stage]`, where the old ones stood."""
    lines = dvc_yaml.splitlines()
    where = _src_lines(dvc_yaml)
    drop, insert = set(), {}
    for stage, idx in where.items():
        if stage not in wanted or not idx:
            continue
        indent = _ITEM.match(lines[idx[0]]).group(1)
        drop.update(idx)
        insert[idx[0]] = [f"{indent}- {p}" for p in wanted[stage]]
    out = []
    for i, line in enumerate(lines):
        out.extend(insert.get(i, []))
        if i not in drop:
            out.append(line)
    return "\n".join(out) + ("\n" if dvc_yaml.endswith("\n") else "")


def write(root: Path) -> list[Change]:
    path = Path(root) / "dvc.yaml"
    changes = check(root)
    if changes:
        io.write_text(rewrite(path.read_text(encoding="utf-8"), compute(root)), path)
    return changes
