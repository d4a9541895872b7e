"""The report in a real browser: headless Chromium (Debian's ``chromium``) opens the file offline, with no
console error and no request other than the file itself; tables and figures are there and not empty;
clicking a column header sorts the rows; a screenshot is taken. Skipped when no Chromium is installed
(``.ci/run`` installs it)."""

from __future__ import annotations

import io

import pytest

from unlearnkit.recipes.report import report

from .browser import Browser, find_chromium
from .report_helpers import lm_run, vision_run

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(find_chromium() is None, reason="no chromium on PATH (apt-get install chromium)")]

PAGE_STATE = """(() => {
  const tables = [...document.querySelectorAll('table.sortable')];
  const imgs = [...document.querySelectorAll('figure img')];
  return {
    tables: tables.map(t => t.tBodies[0].rows.length),
    images: imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width]),
    captions: [...document.querySelectorAll('figcaption')].map(c => c.textContent.length),
    best: document.querySelectorAll('td.best').length,
  };
})()"""

HEADER_CENTRE = """((ti, text) => {
  const th = [...document.querySelectorAll('table.sortable')[ti].tHead.rows[0].cells]
    .find(c => c.textContent.trim().startsWith(text));
  th.scrollIntoView({block: 'center'});
  const r = th.getBoundingClientRect();
  return [r.x + r.width / 2, r.y + r.height / 2];
})"""

COLUMN = """((ti, col) => [...document.querySelectorAll('table.sortable')[ti].tBodies[0].rows]
  .map(r => [r.cells[0].textContent, r.cells[col].textContent]))"""


def _click_header(b: Browser, table: int, text: str) -> None:
    x, y = b.eval(f"{HEADER_CENTRE}({table}, {text!r})")
    b.click(x, y)


def test_the_report_opens_offline_and_sorts_in_chromium(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    lm_run()
    rep = report(["lm-synthetic"])
    url = rep.path.as_uri()
    with Browser(1400, 900) as b:
        b.open(url)
        assert b.eval("document.title") == "unlearnkit report: lm-synthetic"
        state = b.eval(PAGE_STATE)
        assert state["tables"] == [5, 4] and state["best"] == 8
        assert len(state["images"]) == 2 and len(state["captions"]) == 2 and min(state["captions"]) > 100
        for complete, w, h, shown in state["images"]:
            assert complete and w > 300 and h > 200 and shown > 300  # decoded and laid out
        mu = 5  # the MU ↑ column (cell 0 is the row label)
        _click_header(b, 0, "MU")
        assert b.eval(f"{COLUMN}(0, {mu})") == [["ga (mean of 2 seeds)", "0.1500"], ["gd", "0.7000"],
                                                ["Original", "0.9000"], ["Retrain", "0.9200"], ["kl", "-"]]
        assert b.eval("document.querySelectorAll('table.sortable')[0].tHead.rows[0].cells[5]"
                      ".getAttribute('aria-sort')") == "ascending"
        _click_header(b, 0, "MU")
        assert [r[0] for r in b.eval(f"{COLUMN}(0, {mu})")] == ["Retrain", "Original", "gd", "ga (mean of 2 seeds)",
                                                                 "kl"]  # reversed; the empty cell stays last
        _click_header(b, 0, "method")
        assert [r[0] for r in b.eval(f"{COLUMN}(0, {mu})")] == ["ga (mean of 2 seeds)", "gd", "kl", "Original",
                                                                 "Retrain"]
        png = b.screenshot()
        (tmp_path / "report.png").write_bytes(png)
        assert b.errors() == []
        assert {u for u in b.requests() if not u.startswith("data:")} == {url}  # the page itself, nothing fetched
    _assert_real_picture(png)


def test_a_vision_report_renders_its_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    vision_run()
    rep = report(["vision-synthetic"])
    with Browser(1200, 800) as b:
        b.open(rep.path.as_uri())
        state = b.eval(PAGE_STATE)
        assert state["tables"] == [4, 4, 2] and len(state["images"]) == 2
        assert all(c and w > 100 and h > 100 for c, w, h, _ in state["images"])
        _click_header(b, 0, "Gap")
        assert [r[1] for r in b.eval(f"{COLUMN}(0, 5)")] == ["2.00", "4.50 ± 0.71", "30.00", "-"]
        assert b.errors() == []


def _assert_real_picture(png: bytes) -> None:
    """A PNG of the whole page (taller than the window), with more than a background in it."""
    import matplotlib.image as mpimg
    import numpy as np

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(io.BytesIO(png), format="png")
    assert img.shape[1] == 1400 and img.shape[0] > 900
    colours = np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, tables, plots — not a blank page
