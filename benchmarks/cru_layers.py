"""Layer-wise patching curves from a run's CRU entry, without evaluating anything again.

A ``cru`` entry of ``unlearnkit run`` sweeps every parameter group on the validation half before it picks k; this
writes that sweep as ``unlearnkit layers`` writes its own (layers.json / layers.csv / layers.png).

    python benchmarks/cru_layers.py RUN ENTRY --out DIR     # e.g. lm-forget10-5202b2bba5c5 cru_at_ga__s0
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    from unlearnkit.analysis.layers import cru_sweep_doc, layers_table, write_layer_outputs
    from unlearnkit.results.store import Run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run name (or unique prefix) or directory name under $UNLEARNKIT_HOME/runs")
    ap.add_argument("entry", help="the CRU entry, e.g. cru__s0 or cru_at_ga__s0")
    ap.add_argument("--out", required=True, help="output directory (new or empty)")
    a = ap.parse_args(argv)
    record = Run.find(a.run).record(a.entry)
    doc = cru_sweep_doc(record.extra["post_hoc"])
    out = Run.open_at(a.out, "layers", {"from_run": a.run, "entry": a.entry})
    files = write_layer_outputs(doc, out)
    print(layers_table(doc))
    print("\n".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
