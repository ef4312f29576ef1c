"""The page's own style and script for ``streamtape report``, and the Content-Security-Policy that admits them.

Kept apart from the markup so the page's code stays small and in one place. The script only reads
attributes and element positions the page itself wrote (never text from the tape), and the policy admits
exactly this style and this script by their hashes and nothing else: no network, no inline handlers.
"""

from __future__ import annotations

import base64
import hashlib

CSS = """\
:root{--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--mute:#656d76;--line:#d0d7de;--bg2:#f6f8fa;--hot:#fb8500}
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em 1.5em;color:#1f2328}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.15em;margin:0 0 .5em;word-break:break-all}
h3{font-size:1em;margin:1.2em 0 .4em}
code,pre,.wire,.text,.tool-args{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
pre{white-space:pre-wrap;word-break:break-all;margin:0}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;margin:.4em 0}
dl.kv dt{color:var(--mute)}dl.kv dd{margin:0;word-break:break-all}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid var(--line);padding:.2em .5em;text-align:left;vertical-align:top}
th{font-weight:600;color:var(--mute)}td.u{word-break:break-all}
section.exchange{border:1px solid var(--line);border-radius:6px;padding:1em 1.2em;margin:1.5em 0}
.verdict,.vb{display:inline-block;padding:0 .6em;border-radius:1em;color:#fff;font-weight:700;
text-transform:uppercase;font-size:.8em;vertical-align:middle;word-break:normal}
.v-complete{background:var(--ok)}.v-truncated{background:var(--warn)}.v-error{background:var(--bad)}
ul.alerts{list-style:none;padding:0;margin:.4em 0}
.alerts li{padding:.2em .6em;margin:.2em 0;border-left:4px solid var(--mute);background:var(--bg2)}
li.hazard{border-color:var(--warn)}li.error{border-color:var(--bad)}
.note{color:var(--mute)}.warn{color:var(--bad);font-weight:600}
svg.timeline{width:100%;height:auto;display:block;background:var(--bg2);border-radius:4px}
.timeline text{font-size:10px;fill:#1f2328}
.chunk-mark{stroke:#0969da;stroke-width:2}.chunk-mark.hi{stroke:var(--bad)}
.chunk-mark.on{stroke:var(--hot);stroke-width:5}
.ax,.tick{stroke:#8c959f}.brk{fill:#afb8c1;opacity:.5}.lg{fill:var(--bad);opacity:.13}
.ttfb{stroke:#8250df;stroke-dasharray:3 2}.ft{stroke:var(--ok);stroke-dasharray:3 2}
.head{stroke:#8c959f;stroke-dasharray:1 2}.end{stroke-width:2}
.o-complete,.o-client_closed{stroke:var(--ok)}.o-error{stroke:var(--bad)}.o-incomplete{stroke:var(--warn)}
.gap-record{stroke:var(--bad);stroke-width:2;stroke-dasharray:4 2}
.tl-info{color:var(--mute);min-height:1.4em;font-size:.9em}
.text:empty{display:none}.text,.refusal{white-space:pre-wrap;word-break:break-word;background:var(--bg2);padding:.6em;border-radius:4px}
.text span:nth-child(even){background:#ddf4ff}.text span.on,.wire>.on{outline:2px solid var(--hot)}
.wire{max-height:40em;overflow:auto;border:1px solid var(--line);border-radius:4px}
.wire>div{white-space:pre-wrap;word-break:break-all;padding:.15em .5em;border-bottom:1px solid #eaeef2}
.wire>div.hi{border-left:4px solid var(--bad)}.wire>div.mid{border-left:4px dotted var(--warn)}.wire>div.mid{border-left:4px dotted var(--warn)}
.ch{color:var(--mute);user-select:none}.wire i{font-style:normal;color:#afb8c1}
.wire i::before{content:"\\21b5"}.wire i.r::before{content:"\\240d"}
b.u8,b.bad,b.sp,b.cut,b.eb{font-weight:400;font-size:.85em;border-radius:3px;padding:0 .3em}
b.u8{background:#fbefff;border:1px solid #8250df;color:#8250df}
b.bad{background:#ffebe9;border:1px solid var(--bad);color:var(--bad)}
b.sp,b.cut{color:var(--warn);background:#fff8c5}
b.eb{display:block;border-top:1px dashed var(--warn);color:var(--warn);border-radius:0}
.ok{color:var(--ok)}.no{color:var(--bad);font-weight:600}
div.heads{display:grid;grid-template-columns:repeat(auto-fit,minmax(28em,1fr));gap:0 2em}
details>summary{cursor:pointer;color:var(--mute);margin:.6em 0 .3em}
"""

#: Hovering the timeline picks the nearest chunk: its mark, its row under "chunks as they arrived" and a line
#: of facts light up; clicking scrolls to the row. Hovering a row or a piece of text picks its chunk.
JS = """\
"use strict";
for (const sec of document.querySelectorAll("section.exchange")) {
  const svg = sec.querySelector("svg.timeline"), wire = sec.querySelector(".wire");
  const info = sec.querySelector(".tl-info"), marks = svg.querySelectorAll(".chunk-mark");
  if (!marks.length) continue;
  const t = svg.dataset.t.split(" ").map(Number), b = svg.dataset.b.split(" ");
  const row = i => { const r = wire && wire.children[i]; return r && r.classList.contains("chunk") ? r : null; };
  const pieces = i => sec.querySelectorAll('.text span[data-c="' + i + '"]');
  let xs = null, on = -1;
  const light = (i, yes) => {
    marks[i].classList.toggle("on", yes);
    const r = row(i); if (r) r.classList.toggle("on", yes);
    for (const p of pieces(i)) p.classList.toggle("on", yes);
  };
  const pick = i => {
    if (i === on || i < 0 || i >= marks.length) return;
    if (on >= 0) light(on, false);
    on = i; light(i, true);
    const wait = (t[i] - (i ? t[i - 1] : 0)).toFixed(2);
    info.textContent = "chunk #" + i + ": at " + t[i] + " ms, " + b[i] + " B, " + wait + " ms after the " +
      (i ? "previous chunk" : "request") + (row(i) ? " (click: show its bytes)" : "");
  };
  svg.addEventListener("mousemove", e => {
    xs = xs || Array.from(marks, m => m.getBBox().x);
    const x = new DOMPoint(e.clientX, e.clientY).matrixTransform(svg.getScreenCTM().inverse()).x;
    let lo = 0, hi = xs.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (xs[mid] < x) lo = mid + 1; else hi = mid; }
    if (lo > 0 && x - xs[lo - 1] < xs[lo] - x) lo--;
    pick(lo);
  });
  svg.addEventListener("click", () => {
    const r = row(on); if (!r) return;
    r.closest("details").open = true; r.scrollIntoView({block: "center"});
  });
  if (wire) wire.addEventListener("mouseover", e => {
    const r = e.target.closest(".chunk"); if (r) pick(Array.prototype.indexOf.call(wire.children, r));
  });
  sec.querySelector(".text").addEventListener("mouseover", e => {
    const c = e.target.dataset && e.target.dataset.c; if (c) pick(Number(c));
  });
}
"""


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


#: Nothing but this page's own style and script: no fetch of any kind, no inline handler, no other script.
CSP = (
    f"default-src 'none'; style-src '{_sha256(CSS)}'; script-src '{_sha256(JS)}'; "
    "img-src 'none'; base-uri 'none'; form-action 'none'"
)
