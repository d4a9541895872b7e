"""``unlearnkit runs ls | show | compare | reindex``: the run index from the command line.

Each function returns (data for ``--json``, text for the terminal).
"""

from __future__ import annotations

from unlearnkit.errors import UnlearnkitError
from unlearnkit.results.index import RunIndex
from unlearnkit.results.store import Run, reindex
from unlearnkit.results.tables import compare_table, render_tables, runs_table, tables_as_data


def ls() -> tuple[list[dict], str]:
    with RunIndex() as ix:
        runs = ix.runs()
    data = [{"name": r.name, "kind": r.kind, "path": str(r.directory), "created": r.created, "updated": r.updated,
             "done": r.done, "failed": r.failed, "parent": r.parent} for r in runs]
    return data, runs_table(runs) if runs else "no runs yet (`unlearnkit run` makes one)"


def show(ref: str) -> tuple[dict, str]:
    run = Run.find(ref)
    blocks, data = [], {"name": run.name, "kind": run.kind, "path": str(run.layout.root), "tables": []}
    for r in [run, *run.children()]:
        specs = r.summary().get("tables")
        if specs:
            values = {e: {k: m.value for k, m in ms.items()} for e, ms in r.metrics().items()}
            text = render_tables(specs, values)
            data["tables"] += [{"run": r.name, **t} for t in tables_as_data(specs, values)]
        elif r.layout.table.is_file():
            text = r.layout.table.read_text().rstrip()
        else:
            text = "(no table yet: the run has not finished)"
        blocks.append(f"{r.name} ({r.kind}, {r.layout.root})\n{text}")
    return data, "\n\n".join(blocks)


def compare(refs: list[str], metrics: list[str] | None = None) -> tuple[dict, str]:
    if len(refs) < 2:
        raise UnlearnkitError("runs compare needs at least two runs (names or unique prefixes)")
    runs = [Run.find(r) for r in refs]
    inputs = []
    for r in runs:
        values = {e: {k: m.value for k, m in ms.items()} for e, ms in r.metrics().items()}
        inputs.append((r.name, r.summary(), values))
    try:
        text, data = compare_table(inputs, metrics)
    except ValueError as e:
        raise UnlearnkitError(str(e)) from None
    return {"runs": [r.name for r in runs], **data}, text


def reindex_all() -> int:
    return reindex()
