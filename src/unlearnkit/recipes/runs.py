"""``unlearnkit runs ls | show | compare | reindex``: the run index from the command line.

Each function returns (data for ``--json``, text for the terminal).
"""

from __future__ import annotations

from unlearnkit.errors import UnlearnkitError
from unlearnkit.results.index import RunIndex
from unlearnkit.results.noise import REPLICATES_FILE, Replicates
from unlearnkit.results.provenance import provenance_differences
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
    inputs, directions = [], {}
    for r in runs:
        metrics_ = r.metrics()
        values = {e: {k: m.value for k, m in ms.items()} for e, ms in metrics_.items()}
        inputs.append((r.name, r.summary(), values))
        for ms in metrics_.values():
            directions.update({k: m.higher_is_better for k, m in ms.items()
                               if m.higher_is_better is not None and directions.get(k) is None})
    replicates = {r.name: Replicates(r.layout.file(REPLICATES_FILE)) for r in runs}
    try:
        text, data = compare_table(inputs, metrics, directions, replicates)
    except ValueError as e:
        raise UnlearnkitError(str(e)) from None
    differences = provenance_differences({r.name: _provenance_of(r) for r in runs})
    if differences:
        text = "\n".join(["warning: these runs differ in what decides their digits (docs/benchmark.md, Determinism); a "
                          "difference between them may come from that rather than from the methods:",
                          *(f"  {line}" for line in differences), "", text])
    return {"runs": [r.name for r in runs], **data, "provenance_differences": differences}, text


def _provenance_of(run: Run) -> dict:
    """The provenance of the run's first finished entry (every entry of a run is made by one machine and setting)."""
    for entry in run.layout.entries():
        rec = run.record(entry)
        if rec is not None and rec.provenance:
            return rec.provenance
    return {}


def reindex_all() -> int:
    return reindex()
