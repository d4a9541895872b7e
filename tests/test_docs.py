"""The documentation holds together: the README links every page under docs/ (docs/measurements/ holds raw
measurement files, not pages), every relative link and every `docs/…` path named in the README or a page exists,
every results page names its machine-free reproduction command and that command parses with the real CLI, and no
page cites an outside document by section ("SPEC §", "DESIGN §")."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = DOCS / "results"
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)


def pages() -> list[Path]:
    """The documentation pages: docs/*.md and docs/results/*.md."""
    return sorted(DOCS.glob("*.md")) + sorted(RESULTS.glob("*.md"))


def texts() -> list[Path]:
    """Every Markdown file the checks read: the README and every .md under docs/ (raw measurement tables included)."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def link_targets(path: Path) -> set[Path]:
    """The files the relative links of `path` point at, resolved against its folder (anchors dropped)."""
    out = set()
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        out.add((path.parent / target.split("#")[0]).resolve())
    return out


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_docs_have_pages_and_results_pages():
    names = {rel(p) for p in pages()}
    assert {"docs/architecture.md", "docs/metrics.md", "docs/results/index.md"} <= names
    assert len(list(RESULTS.glob("*.md"))) >= 10


@pytest.mark.parametrize("page", pages(), ids=rel)
def test_the_readme_links_every_docs_page(page):
    assert page.resolve() in link_targets(README), f"README.md has no link to {rel(page)}: add it to '## Documentation'"


@pytest.mark.parametrize("page", sorted(RESULTS.glob("*.md")), ids=rel)
def test_the_results_index_links_every_results_page(page):
    if page.name == "index.md":
        return
    assert page.resolve() in link_targets(RESULTS / "index.md"), f"docs/results/index.md has no link to {page.name}"


@pytest.mark.parametrize("path", texts(), ids=rel)
def test_every_relative_link_resolves(path):
    missing = sorted(str(t) for t in link_targets(path) if not t.exists())
    assert not missing, f"{rel(path)} links to files that do not exist: {missing}"


@pytest.mark.parametrize("path", texts(), ids=rel)
def test_every_docs_path_named_in_prose_exists(path):
    """`docs/…` paths in backticks or prose (repository-relative); a path followed by `*` or `…` is a prefix."""
    text = path.read_text(encoding="utf-8")
    missing = []
    for m in re.finditer(r"docs/[\w./-]+", text):
        name = m.group().rstrip("./-")
        if text[m.end():m.end() + 1] in ("*", "…"):
            ok = any(ROOT.glob(name + "*"))
        else:
            ok = (ROOT / name).exists()
        if not ok:
            missing.append(name)
    assert not missing, f"{rel(path)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("path", texts(), ids=rel)
def test_no_page_cites_an_outside_document_by_section(path):
    text = path.read_text(encoding="utf-8")
    for pattern in (r"SPEC\s*§", r"DESIGN\s*§"):
        assert not re.search(pattern, text), f"{rel(path)} cites {pattern!r}: say what is, without the citation"


def reproduction_commands(page: Path) -> list[str]:
    """The commands in a results page's opening part (before its first `## `): indented lines and backtick spans
    that start with `unlearnkit ` or `python benchmarks/`, trailing `# comments` dropped."""
    head = page.read_text(encoding="utf-8").split("\n## ", 1)[0]
    found = [line.strip() for line in head.splitlines() if line.startswith("    ")]
    found += re.findall(r"`((?:unlearnkit|python benchmarks/)[^`]*)`", head)
    out = []
    for cmd in found:
        cmd = cmd.split("  #", 1)[0].strip()
        if cmd.startswith(("unlearnkit ", "python benchmarks/")):
            out.append(cmd)
    return out


RESULT_PAGES = [p for p in sorted(RESULTS.glob("*.md")) if p.name != "index.md"]


@pytest.mark.parametrize("page", RESULT_PAGES, ids=rel)
def test_every_results_page_opens_with_what_and_a_reproduction_command(page):
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Measured"), f"{rel(page)} should open with '# Measured: …'"
    head = text.split("\n## ", 1)[0]
    assert "What:" in head and "Reproduce" in head, f"{rel(page)}: say what was measured and how to reproduce it"
    assert reproduction_commands(page), f"{rel(page)} names no command that reproduces it"


@pytest.mark.parametrize("page", RESULT_PAGES, ids=rel)
def test_every_reproduction_command_exists(page):
    """`unlearnkit …` commands parse with the real CLI (subcommand, options, choices) and name config files that
    exist; `python benchmarks/X.py` scripts exist."""
    from unlearnkit.cli import parse

    for cmd in reproduction_commands(page):
        words = shlex.split(cmd)
        if words[0] == "python":
            assert (ROOT / words[1]).is_file(), f"{rel(page)}: {words[1]} does not exist"
            continue
        args = parse(words[1:])
        assert getattr(args, "func", None), f"{rel(page)}: `{cmd}` names no command"
        if "--config" in words:
            config = words[words.index("--config") + 1]
            assert (ROOT / config).is_file(), f"{rel(page)}: `{cmd}` names {config}, which does not exist"
