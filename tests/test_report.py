"""`unlearnkit report`: one self-contained HTML file per run and across runs — tables with the best cell
per column marked, figures with captions, relative links to the per-sample files, provenance; and
`run … report=true tracker=…` on real (tiny) runs."""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import pytest

from unlearnkit.cli import main
from unlearnkit.recipes.report import report
from unlearnkit.results.plots import pyplot
from unlearnkit.results.sections import SECTIONS, Section, register, registered, svg_figure
from unlearnkit.results.store import Run

from .report_helpers import analysis_run, lm_run, reliability_run, vision_run


class Page(HTMLParser):
    """What a test needs from a report: tables (rows of cells with their classes), figures, links, scripts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, str]]]] = []  # table → row → (text, class)
        self.figures: list[dict] = []
        self.links: list[str] = []
        self.scripts: list[dict] = []
        self._cell: list[str] | None = None
        self._cls = ""
        self._caption: list[str] | None = None
        self._in: list[bool] = []  # the tables we are inside: sortable or not
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._in.append("sortable" in (a.get("class") or ""))
            if self._in[-1]:
                self.tables.append([])
        elif tag == "tr" and self._in and self._in[-1]:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self._in and self._in[-1]:
            self._cell, self._cls = [], a.get("class") or ""
        elif tag == "img":
            self.figures.append({"src": a.get("src", ""), "caption": ""})
        elif tag == "figcaption":
            self._caption = []
        elif tag == "a":
            href = a.get("href", "")
            if not href.startswith("#"):  # in-page navigation aside: the files
                self.links.append(urllib.parse.unquote(href))
        elif tag == "script":
            self.scripts.append(a)

    def handle_endtag(self, tag):
        if tag == "table":
            self._in.pop()
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(("".join(self._cell).strip(), self._cls))
            self._cell = None
        elif tag == "figcaption" and self._caption is not None:
            self.figures[-1]["caption"] = "".join(self._caption)
            self._caption = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._caption is not None:
            self._caption.append(data)

    def figure(self, title: str) -> dict:
        hits = [f for f in self.figures if f["caption"].startswith(title)]
        assert len(hits) == 1, (title, [f["caption"][:40] for f in self.figures])
        return hits[0]

    def svg(self, title: str) -> str:
        src = self.figure(title)["src"]
        assert src.startswith("data:image/svg+xml;base64,")
        return base64.b64decode(src.split(",", 1)[1]).decode("utf-8")


def best_cells(table) -> dict[str, list[str]]:
    """column header → texts of the cells marked best."""
    header = [t for t, _ in table[0]]
    out: dict[str, list[str]] = {}
    for r in table[1:]:
        for j, (text, cls) in enumerate(r):
            if "best" in cls:
                out.setdefault(header[j], []).append(text)
    return out


def assert_self_contained(text: str, page: Page) -> None:
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert all(f["src"].startswith(("data:image/svg+xml;base64,", "data:image/png;base64,")) for f in page.figures)
    assert "default-src 'none'" in text  # the page itself forbids fetching anything


def test_language_model_run_report(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    run = lm_run()
    rep = report(["lm-synth"])  # a prefix (unique among top-level runs: the calibration child is skipped)
    assert rep.path == run.layout.root / "report.html" and rep.runs == ["lm-synthetic"]
    text = rep.path.read_text(encoding="utf-8")
    page = Page(text)
    assert_self_contained(text, page)
    raw, cal = page.tables[0], page.tables[1]
    assert [r[0][0] for r in raw[1:]] == ["Original", "Retrain", "ga (mean of 2 seeds)", "gd", "kl"]
    assert raw[0][5][0] == "MU ↑" and raw[3][5][0] == "0.1500" and raw[4][5][0] == "0.7000"
    # best among the methods (never Original/Retrain): MU ↑ → gd, forget ES ↓ → ga (mean of 0.02, 0.04)
    assert best_cells(raw) == {"ES-exact retain ↑": ["0.4500"], "ES-exact unlearn ↓": ["0.0300"], "MU ↑": ["0.7000"],
                               "unlearn s ↓": ["1.5", "1.5"]}
    assert best_cells(cal) == {"ES-exact retain ↑": ["0.9050"], "ES-exact unlearn ↓": ["0.3500"], "MU ↑": ["0.8450"]}
    assert [t for t, _ in cal[3]][-1] == "0.3100"  # ga's α, mean of its two seeds
    assert "kl failed: loss became nan at step 3" in text
    svg = page.svg("Trade-off: forgetting vs utility")
    assert "raw (as unlearned)" in svg and "calibrated (retain.es_exact ≥ 0.9 · θ_o)" in svg
    assert "ga (α=0.31)" in svg and "gd (α=0.75)" in svg and "Original" in svg and "Retrain" in svg
    assert "lower" in page.figure("Trade-off")["caption"] and "higher" in page.figure("Trade-off")["caption"]
    assert "retention along the mix" in page.svg("α-curves of the calibration")
    assert len(page.figures) == 2
    per_sample = [h for h in page.links if h.endswith("per_sample.jsonl")]
    assert "results/ga__s0/per_sample.jsonl" in per_sample and len(per_sample) == 10  # 5 entries + 5 calibrated
    assert all((rep.path.parent / h).exists() for h in page.links)  # every link is relative and resolves
    from unlearnkit import __version__

    assert f"<th>unlearnkit_version</th><td>{__version__}</td>" in text and "<th>git_revision</th>" in text
    assert "<summary>library versions</summary>" in text and "<th>torch</th>" in text and "<th>cpu_count</th>" in text


def test_judge_scores_get_their_columns_and_figure(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    lm_run(calibrated=False, judged=True)
    page = Page(report(["lm-synthetic"]).path.read_text(encoding="utf-8"))
    header = [t for t, _ in page.tables[0][0]]
    assert header[-2:] == ["Nat ↑", "Sim proxy ↑"]
    assert best_cells(page.tables[0])["Nat ↑"] == ["0.9850"]  # ga: 1 − mean(0.02, 0.04)/2
    svg = page.svg("Judge scores")
    assert "judge.naturalness" in svg and "proxy.similarity" in svg and "Original" in svg


def test_report_numbers_are_the_index_numbers(tmp_path, monkeypatch, capsys):
    """The page shows what `unlearnkit runs show --json` gives, digit for digit."""
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    lm_run(calibrated=False)
    assert main(["runs", "show", "lm-synthetic", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["tables"][0]
    page = Page(report(["lm-synthetic"]).path.read_text(encoding="utf-8"))
    for r, html_row in zip(shown["rows"], page.tables[0][1:]):
        for j, c in enumerate(shown["columns"]):
            v = r["values"][c["metric"]]
            cell = html_row[j + 1][0]
            assert cell == ("-" if v is None else f"{v:.{1 if c['metric'] == 'unlearn_seconds' else 4}f}")


def test_vision_run_report_has_gap_bars_and_tarf_identification(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    run = vision_run()
    page = Page(report([str(run.layout.root)]).path.read_text(encoding="utf-8"))  # a run directory works too
    assert [t[0][0][0] for t in page.tables[:2]] == ["Method", "Method"]
    assert best_cells(page.tables[0])["Gap ↓"] == ["2.00"] and page.tables[0][3][5][0] == "4.50 ± 0.71"
    svg = page.svg("Gap to Retrain per scenario")
    assert "All matched" in svg and "Data mismatch" in svg and "FT" in svg and "Retrain (ref.)" not in svg
    assert "precision" in page.svg("TARF: identification")
    tarf = page.tables[2]
    assert [t for t, _ in tarf[1]] == ["all_matched", "0", "beta", "beta, gamma", "100", "50"]


def test_reliability_run_report_has_pcc_table_and_bars(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    reliability_run()
    page = Page(report(["reliability-synthetic"]).path.read_text(encoding="utf-8"))
    forget = page.tables[0]
    assert [t for t, _ in forget[0]] == ["metric", "noise ↑", "relearn ↑"]
    assert [t for t, _ in forget[1]] == ["es_exact", "0.420", "0.910"]
    assert best_cells(forget) == {"noise ↑": ["0.700"], "relearn ↑": ["0.910"]}
    svg = page.svg("Metric reliability under red-team interventions")
    assert "forget data (3 models)" in svg and "retain data (3 models)" in svg


def test_analysis_files_each_get_their_figure(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    analysis_run()
    page = Page(report(["analyses-synthetic"]).path.read_text(encoding="utf-8"))
    titles = [f["caption"].split(".", 1)[0] for f in page.figures]
    assert titles == ["Hyperparameter sweep after calibration", "G-effect curves", "Layer-wise patching", "CRU",
                      "Squeezing effect", "Continual unlearning"]
    assert "α=0.40" in page.svg("Hyperparameter sweep") and "LR=0.0004" in page.svg("Hyperparameter sweep")
    assert "ga (forget term)" in page.svg("G-effect curves")
    assert all(f["caption"] for f in page.figures)
    assert page.tables[0][1][0][0] == "ga"  # the entries table of a run without a table spec


def test_several_runs_one_comparison_and_overlaid_tradeoffs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    lm_run()
    lm_run("lm-other", shift=0.05)
    out = tmp_path / "compare.html"
    assert main(["report", "lm-synthetic", "lm-other", "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.startswith("report of lm-synthetic, lm-other: " + str(out))
    page = Page(out.read_text(encoding="utf-8"))
    cmp = page.tables[0]
    labels = [r[0][0] for r in cmp[1:]]
    assert "lm-synthetic: gd" in labels and "lm-other: gd" in labels and len(labels) == 8
    mu = [t for t, _ in cmp[0]].index("MU ↑")
    assert best_cells(cmp)["MU ↑"] == ["0.7500"] and cmp[labels.index("lm-other: gd") + 1][mu][0] == "0.7500"
    svg = page.svg("Trade-off of every run, overlaid")
    assert "lm-synthetic" in svg and "lm-other" in svg and "calibrated" in svg
    assert all((out.parent / h).exists() for h in page.links)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # written atomically, nothing left over


def test_default_output_of_several_runs_is_in_the_home(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    lm_run(calibrated=False)
    reliability_run()
    rep = report(["lm-synthetic", "reliability-synthetic", "lm-synthetic"])
    assert rep.path.parent == tmp_path / "reports" and rep.runs == ["lm-synthetic", "reliability-synthetic"]
    assert "No comparison table: run(s) reliability-synthetic have no table yet" in rep.path.read_text(encoding="utf-8")


def test_a_run_without_results_still_gets_a_page(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    Run.open("lm", "empty", {"methods": ["ga"]})
    text = report(["empty"]).path.read_text(encoding="utf-8")
    assert "no table yet" in text and "0 done, 0 failed" in text


# ---------------------------------------------------------------------------------------------
# sections: registered by the modules that write their data


def test_the_report_recipe_registers_every_section_in_page_order():
    assert [s.name for s in registered()] == ["tradeoff", "alpha_curves", "judge", "reliability", "attacks", "sweep",
                                              "g_effect", "layers", "squeezing", "continual", "vision"]
    assert registered()[1].figures.__module__ == "unlearnkit.analysis.calibration"
    with pytest.raises(ValueError, match="'g_effect' is registered twice"):
        register(Section("g_effect", 1, lambda rd: []))


def _probe_figures(rd):
    values = rd.file("probe.json")["values"]
    fig, ax = pyplot().subplots()
    ax.plot(values)
    ax.set_title("probe values " + "/".join(f"{v:g}" for v in values))
    return [svg_figure(fig, "Probe values", f"The values of probe.json, {values}; higher is better ↑.")]


def _never(rd):
    raise AssertionError("a section whose files the run lacks is not asked")


def test_a_registered_section_shows_its_file_and_leaves_no_trace(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    run = lm_run(calibrated=False)
    run.write_json("probe.json", {"values": [3.0, 1.0, 2.0]})

    def text() -> str:  # the page, minus the minute it was generated
        return re.sub(r"generated \d{4}-\d\d-\d\d \d\d:\d\d", "", report(["lm-synthetic"]).path.read_text("utf-8"))

    before = text()
    probe = Section("probe", 150, _probe_figures, reads=("probe.json",), files=lambda rd: "<p>probe block</p>")
    with SECTIONS.added("probe", probe), SECTIONS.added("absent", Section("absent", 160, _never, reads=("no*.json",))):
        during = text()
    page = Page(during)
    assert [f["caption"].split(".", 1)[0] for f in page.figures] == ["Trade-off: forgetting vs utility",
                                                                     "Probe values"]  # order 150: after the trade-off
    assert page.figure("Probe values")["caption"].endswith("The values of probe.json, [3.0, 1.0, 2.0]; higher is better ↑.")
    assert "probe values 3/1/2" in page.svg("Probe values")
    assert during.index("<p>probe block</p>") < during.index("files and entries (relative links)")
    assert "<p>probe block</p>" not in before and len(Page(before).figures) == 1
    assert text() == before  # unregistered: the page is what it was


# ---------------------------------------------------------------------------------------------
# real runs: `run … report=true tracker=…`


def test_lm_run_with_report_and_tensorboard(tiny_models, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    import yaml

    from .test_run import tiny_run

    cfg = tiny_run(name="report-e2e", methods=["ga"], defaults={"lr": 1e-3, "epochs": 1, "batch_size": 4},
                   eval={"max_new_tokens": 8})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    assert main(["run", "--config", str(path), "report=true", "tracker=tensorboard"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("report: ") and "KB, built in" in last
    html_path = Path(last.removeprefix("report: ").split("  (")[0])
    run = Run.find("report-e2e")
    assert html_path == run.layout.report
    page = Page(html_path.read_text(encoding="utf-8"))
    assert [r[0][0] for r in page.tables[0][1:]] == ["Original", "Retrain", "ga"]
    assert "ga" in page.svg("Trade-off: forgetting vs utility")
    steps = json.loads(run.layout.log("ga__s0").read_text())["steps"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run.layout.trackers / "tensorboard" / "ga__s0"))
    acc.Reload()
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [s["step"] for s in steps]
    assert [e.value for e in loss] == pytest.approx([s["loss"] for s in steps], rel=1e-6)
    assert {"train/lr", "train/forget", "train/epoch"} <= set(acc.Tags()["scalars"])


def test_vision_run_with_report_and_tensorboard(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tensorboard")
    from .test_vision_run import TINY

    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    argv = ["run", "vision", *TINY, "--scenarios", "all_matched,data_mismatch", "--methods", "retrain,ft",
            "report=true", "tracker=tensorboard"]
    assert main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    html_path = Path(last.removeprefix("report: ").split("  (")[0])
    page = Page(html_path.read_text(encoding="utf-8"))
    assert [r[0][0] for r in page.tables[0][1:]] == ["Original θ_o", "Retrain (ref.)", "FT"]
    assert "FT" in page.svg("Gap to Retrain per scenario")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = html_path.parent / "trackers" / "tensorboard"
    assert sorted(os.listdir(logs)) == ["all_matched__ft__s0", "data_mismatch__ft__s0"]
    acc = EventAccumulator(str(logs / "all_matched__ft__s0"))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("train/loss")]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 2  # FT: 2 epochs, every optimiser step
