"""The package's shape, enforced: no import cycles, no upward imports between the layers declared in
docs/architecture.md (function-level imports count too), no function longer than the limit."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "unlearnkit"

# Lowest first. A module may import modules of its own layer or of lower layers only.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("unlearnkit", "unlearnkit.errors", "unlearnkit.io", "unlearnkit.config", "unlearnkit.registry")),
    ("data, metrics", ("unlearnkit.data", "unlearnkit.metrics")),
    ("engine", ("unlearnkit.engine",)),
    ("models", ("unlearnkit.models",)),
    ("methods, tasks, attacks", ("unlearnkit.methods", "unlearnkit.tasks", "unlearnkit.attacks")),
    ("results", ("unlearnkit.results",)),
    ("analysis, judge", ("unlearnkit.analysis", "unlearnkit.judge")),
    ("recipes", ("unlearnkit.recipes",)),
    ("cli", ("unlearnkit.cli", "unlearnkit.__main__")),
]
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """unlearnkit modules imported anywhere in the file (top level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        out |= {t for t in targets if t in known and t != name}
    return out


def layer_of(name: str) -> int:
    best, depth = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > depth and (p != "unlearnkit" or name == p):
                best, depth = i, len(p)
    assert best is not None, f"module {name} is in no declared layer: add it to LAYERS and docs/architecture.md"
    return best


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {n: imports_of(n, p, known) for n, p in mods.items()}


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_no_upward_imports():
    bad = []
    for importer, targets in graph().items():
        for t in targets:
            if layer_of(t) > layer_of(importer):
                bad.append(f"{importer} ({LAYERS[layer_of(importer)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    """A checker that cannot fail is no check: feed it a file with a lazy upward import."""
    p = tmp_path / "x.py"
    p.write_text("def f():\n    from unlearnkit.recipes.lm import run_benchmark\n    from . import io\n")
    found = imports_of("unlearnkit.engine.x", p, {"unlearnkit.recipes.lm", "unlearnkit.engine.io"})
    assert found == {"unlearnkit.recipes.lm", "unlearnkit.engine.io"}
    assert layer_of("unlearnkit.recipes.lm") > layer_of("unlearnkit.engine.passes")


def long_functions() -> list[str]:
    out = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append(f"{name}.{node.name}: {n} lines")
    return out


def test_no_function_is_longer_than_the_limit():
    assert not long_functions(), "functions over the limit:\n" + "\n".join(long_functions())


@pytest.mark.parametrize("doc", ["architecture.md"])
def test_the_layers_are_documented(doc):
    text = (SRC.parents[1] / "docs" / doc).read_text(encoding="utf-8")
    for title, _ in LAYERS:
        assert title in text, f"layer {title!r} is not described in docs/{doc}"


MAX_POSITIONAL = 5


def test_no_recipe_helper_takes_more_than_five_positional_parameters():
    """A workflow's shared state travels as one object (a run context); a helper with more positional parameters
    takes the rest keyword-only."""
    bad = []
    for path in sorted((SRC / "recipes").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                pos = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                if len(pos) > MAX_POSITIONAL:
                    bad.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}({', '.join(pos)})")
    assert not bad, "more than 5 positional parameters:\n" + "\n".join(bad)


def test_no_module_is_longer_than_400_lines_without_a_stated_reason():
    """A module over 400 lines says why in its docstring (a line containing "Longer than 400 lines")."""
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > 400 and "Longer than 400 lines" not in (ast.get_docstring(ast.parse(text)) or ""):
            bad.append(f"{path.relative_to(SRC)} ({text.count(chr(10))} lines)")
    assert not bad, "modules over 400 lines without a reason in their docstring:\n" + "\n".join(bad)


def test_every_to_add_recipe_names_a_test_that_exists():
    """Each row of docs/architecture.md's "to add X" table names the test that proves its plug-in path; every test
    file and test function it names exists."""
    doc = (SRC.parents[1] / "docs" / "architecture.md").read_text()
    table = doc.split("## Registries: to add X", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in table.splitlines() if r.startswith("| a")]
    assert len(rows) >= 7, rows
    tests_dir = SRC.parents[1] / "tests"
    for row in rows:
        refs = re.findall(r"`(tests/test_\w+\.py)(?:::(\w+))?", row)
        assert refs, f"no test named in: {row[:60]}"
        last_file = None
        for file, fn in refs:
            assert (SRC.parents[1] / file).is_file(), file
            last_file = file
            if fn:
                assert f"def {fn}(" in (SRC.parents[1] / file).read_text(), f"{file}::{fn}"
        for fn in re.findall(r"`…::(\w+)`", row):
            assert f"def {fn}(" in (tests_dir.parent / last_file).read_text(), fn


def test_no_source_file_cites_a_document_outside_the_repository():
    """Definitions the code cites live in the repository's docs: no "SPEC §…" / "DESIGN §…" references."""
    root = SRC.parents[1]
    paths = [*SRC.rglob("*.py"), *(root / "tests").rglob("*.py"), *(root / "configs").rglob("*.yaml"),
             *(root / "benchmarks").rglob("*.py")]
    checkers = {"tests/test_architecture.py", "tests/test_docs.py"}  # they name the pattern they look for
    bad = [str(p.relative_to(root)) for p in paths
           if str(p.relative_to(root)) not in checkers and re.search(r"\b(SPEC|DESIGN) §", p.read_text())]
    assert not bad, bad
