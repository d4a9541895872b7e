"""HTML building blocks of the report: sortable tables with the best cell per column marked, figures
with captions, the page around them (inline CSS and JavaScript; nothing is fetched from a network).

A table is data — :class:`Column` (header, higher-is-better) and :class:`TableRow` (label, cells of
(display text, number)) — so tables from run specs, from comparisons and from analysis files are
rendered and sorted the same way. Clicking a header sorts the rows by that column (numbers
numerically, empty cells last); clicking again reverses the order.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from unlearnkit.results.noise import TIE, best_of
from unlearnkit.results.tables import fmt


def esc(s: object) -> str:
    return html.escape(str(s), quote=True)


@dataclass
class Column:
    header: str
    higher_is_better: bool | None = None

    @property
    def arrow(self) -> str:
        return {True: "↑", False: "↓"}.get(self.higher_is_better, "")


@dataclass
class TableRow:
    label: str
    cells: list[tuple[str, float | None]]  # (what is shown, the number it sorts and compares by)
    reference: bool = False  # Original / Retrain: shown, never "best"
    failed: str | None = None


@dataclass
class Table:
    columns: list[Column]
    rows: list[TableRow]
    title: str | None = None
    corner: str = "method"
    notes: list[str] = field(default_factory=list)
    ties: set[tuple[int, int]] = field(default_factory=set)  # (row, column) inside the noise of the column's best


def cells_of(values: list[float | None], digits: int = 4) -> list[tuple[str, float | None]]:
    return [(fmt(v, digits), v) for v in values]


def best_rows(table: Table) -> dict[int, set[int]]:
    """column index → indices of the rows holding its best value (ties all marked); only columns with a
    direction, only method rows (not references or failures), only when at least two rows compete."""
    out: dict[int, set[int]] = {}
    for j, col in enumerate(table.columns):
        if col.higher_is_better is None:
            continue
        vals = {i: r.cells[j][1] for i, r in enumerate(table.rows)
                if not r.reference and not r.failed and j < len(r.cells) and r.cells[j][1] is not None}
        if best := best_of(vals, col.higher_is_better):
            out[j] = best
    return out


def table_html(table: Table) -> str:
    best = best_rows(table)
    head = [f'<th scope="col" data-col="0">{esc(table.corner)}</th>']
    for j, c in enumerate(table.columns):
        arrow = c.arrow if c.arrow and c.arrow not in c.header else ""
        title = {True: "higher is better", False: "lower is better"}.get(c.higher_is_better, "no better direction")
        head.append(f'<th scope="col" data-col="{j + 1}" title="{title}; click to sort">{esc(c.header)}'
                    f'{" " + arrow if arrow else ""}</th>')
    body = []
    for i, r in enumerate(table.rows):
        cls = ' class="ref"' if r.reference else (' class="failed"' if r.failed else "")
        tds = [f'<th scope="row" data-v="{esc(r.label)}">{esc(r.label)}</th>']
        for j, (shown, v) in enumerate(r.cells):
            mark = ' class="best" title="best in this column"' if i in best.get(j, ()) else ""
            if (i, j) in table.ties:
                mark, shown = ' class="tie" title="its difference to the best lies inside the noise"', f"{shown} {TIE}"
            dv = "" if v is None else repr(float(v))
            tds.append(f'<td data-v="{dv}"{mark}>{esc(shown)}</td>')
        body.append(f"<tr{cls}>{''.join(tds)}</tr>")
    caption = f"<caption>{esc(table.title)}</caption>" if table.title else ""
    failed = [f"{r.label} failed: {r.failed}" for r in table.rows if r.failed]
    notes = "".join(f'<p class="note">{esc(n.strip())}</p>' for n in [*table.notes, *failed] if n.strip())
    return (f'<div class="tablewrap"><table class="sortable">{caption}<thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>{notes}')


@dataclass
class Figure:
    title: str
    caption: str  # what it shows and which way is better
    uri: str  # data: URI (SVG or PNG)
    alt: str = ""


def figure_html(fig: Figure) -> str:
    return (f'<figure><img src="{fig.uri}" alt="{esc(fig.alt or fig.title)}">'
            f'<figcaption><b>{esc(fig.title)}.</b> {esc(fig.caption)}</figcaption></figure>')


def details(summary: str, inner: str, open_: bool = False) -> str:
    return f'<details{" open" if open_ else ""}><summary>{esc(summary)}</summary>{inner}</details>'


def kv_table(pairs: list[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv">{rows}</table>'


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d2328;
background:#fafafa}
header{background:#23374d;color:#fff;padding:14px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}main{padding:8px 28px 40px;max-width:1500px}
nav a{color:#cfe3ff;margin-right:14px}h2{border-bottom:2px solid #23374d;padding-bottom:3px;margin-top:30px}
h3{margin:22px 0 8px}.tablewrap{overflow-x:auto}
table.sortable{border-collapse:collapse;background:#fff;margin:6px 0;font-variant-numeric:tabular-nums}
table.sortable caption{text-align:left;font-weight:600;padding:4px 0}
table.sortable th,table.sortable td{border:1px solid #d5dbe1;padding:3px 8px;text-align:right;white-space:nowrap}
table.sortable thead th{background:#e9eef3;cursor:pointer;user-select:none}
table.sortable thead th:hover{background:#d6e2ee}
table.sortable thead th[aria-sort=ascending]::after{content:" ▲";font-size:10px}
table.sortable thead th[aria-sort=descending]::after{content:" ▼";font-size:10px}
table.sortable tbody th,table.sortable thead th:first-child{text-align:left;font-weight:500}
tr.ref{background:#f3f3f3;font-style:italic}tr.failed{color:#a33}
td.best{background:#d9f2dc;font-weight:700}td.tie{background:#f1f8f2}
table.kv{border-collapse:collapse}table.kv th{text-align:left;padding:1px 12px 1px 0;font-weight:500;color:#456}
table.kv td{padding:1px 0}
figure{margin:14px 0 22px;background:#fff;border:1px solid #dde3e8;padding:8px;display:inline-block;max-width:100%}
figure img{max-width:100%;height:auto;display:block}figcaption{max-width:1100px;color:#333;margin-top:6px}
.note{color:#555;margin:2px 0;font-size:13px}pre{background:#f1f3f5;padding:8px;overflow-x:auto;font-size:12px}
details{margin:6px 0}summary{cursor:pointer;font-weight:500}ul.files{columns:2;font-size:13px}
.legend{font-size:13px;color:#444}
"""

JS = """
(function(){
  function key(cell){
    var v = cell.getAttribute('data-v');
    if (v === null || v === '') return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortBy(table, col, th){
    var body = table.tBodies[0];
    var dir = th.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function(a, b){
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      if (x < y) return dir === 'ascending' ? -1 : 1;
      if (x > y) return dir === 'ascending' ? 1 : -1;
      return 0;
    });
    rows.forEach(function(r){ body.appendChild(r); });
    table.querySelectorAll('thead th').forEach(function(h){ h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir);
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('thead th').forEach(function(th, i){
      th.addEventListener('click', function(){ sortBy(table, i, th); });
    });
  });
})();
"""

# No network: images only from data: URIs, styles and the one script inline.
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "base-uri 'none'; form-action 'none'")


def page(title: str, subtitle: str, nav: list[tuple[str, str]], body: str) -> str:
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{esc(title)}</title><style>{CSS}</style></head><body>'
            f'<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p><nav>{links}</nav></header>'
            f'<main>{body}</main><script>{JS}</script></body></html>\n')
