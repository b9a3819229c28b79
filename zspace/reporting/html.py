"""The building blocks of every page zspace writes: tables, sections, the page itself,
and the saved files a page shows when it can.

Images are embedded as base64 data URIs and the CSS is inline, so a page opens
offline, can be mailed as one file and loads nothing from the network.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from zspace.core.display import esc
from zspace.core.errors import ZspaceError
from zspace.core.fileio import read_json
from zspace.reporting.text import num, used_parameters


class Html(str):
    """Text that is already HTML (a swatch, a link): table() puts it in unescaped, in
    a cell of class ``css`` (a verdict's colour) when given."""

    css: str

    def __new__(cls, text: str, css: str = "") -> Html:
        self = super().__new__(cls, text)
        self.css = css
        return self


def optional_json(path: Path) -> Any:
    """A saved JSON file a page shows if it can: None when it is absent or unreadable
    (the page then says what is missing)."""
    try:
        return read_json(path) if path.is_file() else None
    except ZspaceError:
        return None


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;
color:#222;background:#fafafa;line-height:1.45}
main{max-width:1200px;margin:0 auto;padding:1em 2em 4em}
header{background:#23395d;color:#fff;padding:1em 2em}
header h1{margin:0 0 .2em;font-size:1.5em} header p{margin:0;opacity:.85}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:.4em 2em;
z-index:1} nav a{margin-right:1em;color:#23395d;text-decoration:none;font-size:.95em}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:1.2em 0;
padding:.4em 1.2em 1em} h2{color:#23395d;border-bottom:1px solid #eee;padding-bottom:.2em}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.2em .6em;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f0f3f8}
td.l,th.l{text-align:left} pre{background:#f5f5f5;padding:.6em;overflow:auto;font-size:.85em}
.key{background:#f0f6ff;border-left:4px solid #23395d;padding:.4em .8em}
.missing{color:#8a5a00;background:#fff7e6;padding:.4em .8em;border-left:4px solid #e0a000}
figure{margin:.8em 0} figcaption{font-size:.9em;color:#555;max-width:60em}
.row{display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start}
.row figure{flex:0 1 auto;max-width:calc(33% - 1em);min-width:220px;margin:.4em 0}
.row figure:only-child{max-width:100%}
.row .graded{display:flex;gap:.8em;align-items:flex-start;flex:0 1 auto}
.row .graded figure{max-width:26em;min-width:220px}
.row figure img{image-rendering:pixelated;border:1px solid #e3e3e3}
h3{color:#23395d;margin:1.2em 0 .2em;font-size:1.05em}
details{margin:.6em 0} summary{cursor:pointer;color:#23395d}
.swatch{display:inline-block;width:1.6em;height:.9em;border-radius:2px;vertical-align:middle}
.params{color:#555} ul.key{padding-left:2em} td small{color:#555} td{vertical-align:top}
td.ok{background:#e6f4ea;color:#17602a;font-weight:600} td.na{color:#777}
td.bad{background:#fdecea;color:#8a1c1c;font-weight:600}
.thumbs{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-start}
.thumbs figure{margin:0;flex:0 0 auto;width:200px} .thumbs img{width:200px;margin:0}
.thumbs figcaption{font-size:.8em}
ul.flag{color:#8b1a1a;background:#fdecea;border-left:4px solid #c5221f;list-style:none;
padding:.3em .8em;margin:.4em 0;max-width:46em}
"""


def table(head: list[str], rows: list[list[Any]], left: int = 1, css: str = "") -> str:
    """A table (of class ``css``) whose first ``left`` columns are text; a column of
    numbers shows them all with the same decimals (``column``)."""
    places = [column(r[i] for r in rows if i < len(r)) for i in range(len(head))]

    def cell(tag: str, i: int, v: Any) -> str:
        css = " ".join(c for c in ("l" if i < left else "", getattr(v, "css", "")) if c)
        cls = f' class="{css}"' if css else ""
        if isinstance(v, Html):
            text = str(v)
        elif v is None or (isinstance(v, int | float) and not isinstance(v, bool)):
            d = places[i] if i < len(places) and v is not None and math.isfinite(v) else None
            text = esc(num(v) if d is None else f"{v:,.{d}f}")
        else:
            text = esc(v)
        return f"<{tag}{cls}>{text}</{tag}>"

    h = "".join(cell("th", i, v) for i, v in enumerate(head))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows
    )
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><tr>{h}</tr>{body}</table>"


def column(values) -> int | None:
    """Decimals for a column of numbers: the most any of them needs at 4 significant
    digits, so the whole column lines up; None (``num`` per cell) when it holds no
    fractional number or a number that needs an exponent."""
    places = 0
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if isinstance(v, float) and math.isfinite(v) and not v.is_integer():
            text = f"{abs(v):.4g}"
            if "e" in text:
                return None
            places = max(places, len(text.partition(".")[2]))
    return places or None


def section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def missing(run_dir: Path, name: str) -> str:
    """The commands that fill a section, from where the run stands: encode first when
    the run has no latents yet."""
    from zspace.latents.store import latents_path

    steps = [] if latents_path(run_dir).is_file() else [f"zspace encode {run_dir}"]
    steps += [f"zspace analyze {run_dir} --only {name}", f"zspace report {run_dir}"]
    cmds = " then ".join(f"<code>{esc(c)}</code>" for c in steps)
    return f'<p class="missing">Not computed yet: run {cmds}.</p>'


def key(rec: dict) -> str:
    """The analysis's summary in words, then one line with its parameters as used."""
    name = str(rec.get("analysis", ""))
    params = used_parameters(name, rec.get("params", {}), rec.get("result", {}))
    return (
        f'<p class="key">{esc(rec["summary"].rstrip("."))}.</p><p class="params"><small>'
        f"{esc(rec.get('split'))} split; parameters {esc(', '.join(params))}; computed in "
        f"{rec.get('seconds', 0):.1f} s</small></p>"
    )


def page(title: str, subtitle: str, nav: list[tuple[str, str]], body: str) -> str:
    links = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<title>{esc(title)}</title><meta name="viewport" content="width=device-width">'
        f'<link rel="icon" href="data:,"><style>{CSS}</style></head><body>'
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><nav>{links}</nav>"
        f"<main>{body}</main></body></html>\n"
    )


# ---------------------------------------------------------------- sections
