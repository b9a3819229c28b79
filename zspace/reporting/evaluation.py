"""samples/eval.json on the pages: the evaluation table of a run, a table of each
sampler's metrics beside its grid, and the runs side by side on the compare page; and
``samples_json``, the one reader of samples/eval.json, rates.json and index.json.

Only what eval.json holds is shown (nothing is recomputed), the latent
meaningful-point rate it took from rates.json included. The headline comes first,
is coloured and orders the rows (the floor first); a flagged row is marked ⚑ and
its flags are spelled out under its table. A metric has one number format on the
page (``text.pm``, ``decimals``), and the best value of a metric with a better side is bold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zspace.core.checks import misfit
from zspace.core.display import esc
from zspace.core.errors import ZspaceError
from zspace.core.fileio import read_json
from zspace.evaluation.reading import HIGHER_IS_BETTER, METRICS, arrow, ranked
from zspace.reporting.html import Html, table
from zspace.reporting.text import num, places, pm

FLAG = "⚑"
NUM, LIMIT = (int, float), {"?limit": (int, float)}
SHAPES = {  # what the pages read of samples/NAME.json ("?key": may be absent or null)
    "eval": {"n": NUM, "k": NUM, "evaluator": {"fingerprint": str, "kind": str,
             "reference_size": NUM}, "?headline": {"metric": str}, "?fidelity": {"metric": str},
             "results": [{"sampler": str, "?params": LIMIT, "metrics": {str: NUM}, "?flags": [str],
                          "?spread": {str: (*NUM, type(None))}, "?latent_rate": NUM}]},
    "rates": {"threshold": NUM, "quantile": NUM, "reference_size": NUM, "space": str,
              "?warning": str, "results": [{"sampler": str, "params": LIMIT, "rate": NUM,
                                            "n": NUM, "mean_radius": NUM, "median_distance": NUM}]},
    "index": [{"?kind": str, "?sampler": str, "?file": str, "?params": LIMIT}],
}  # fmt: skip
WRITER = {"eval": "zspace evaluate {}", "rates": "zspace generate {} --rate"}
WRITER |= {"index": "zspace generate {}"}


def row_key(sampler: str, params: dict[str, Any] | None) -> str:
    """``normal``, ``uniform limit=2``: one label per sampler (and uniform limit)."""
    limit = (params or {}).get("limit")
    return sampler + (f" limit={float(limit):g}" if limit is not None else "")


def samples_json(run_dir: Path, name: str) -> Any:
    """samples/NAME.json (eval, rates, index) as every page reads it, None when absent;
    truncated or foreign (a key missing, a list for a dict, text for a number) it is
    refused in one line naming the file, where, and the command that rewrites it."""
    path = Path(run_dir) / "samples" / f"{name}.json"
    if not path.is_file():
        return None
    redo = f"delete it and rerun `{WRITER[name].format(run_dir)}`"  # a rerun keeps old rows
    got = read_json(path, redo)
    if (at := misfit(got, SHAPES[name])) is not None:
        raise ZspaceError(f"{path} is foreign or damaged ({at}: missing or another type); {redo}")
    return got


def check_samples(run_dir: Path) -> None:
    """Read samples/eval.json, rates.json and index.json whole before a page draws anything."""
    for name in WRITER:
        samples_json(run_dir, name)


def labelled(run_dir: Path, name: str) -> list[tuple[str, dict[str, Any]]]:
    """The rows of samples/NAME.json (eval, rates), each with its label (``row_key``)."""
    rows = (samples_json(run_dir, name) or {"results": []})["results"]
    return [(row_key(x["sampler"], x.get("params")), x) for x in rows]


def decimals(rows: Sequence[dict[str, Any]]) -> dict[str, int | None]:
    """A metric's decimals where a spread is 0: those of its other spreads at 2
    significant digits (its values' at 4 when no spread is above 0)."""
    got = [(r.get("metrics") or {}, r.get("spread") or {}) for r in rows]
    return {k: places((s.get(k) for _, s in got), 2, zeros=True) or places(m.get(k) for m, _ in got)
            for k in METRICS}  # fmt: skip


def _cell(row: dict[str, Any], name: str, d: dict[str, int | None]) -> str:
    m, s = row.get("metrics", {}), row.get("spread", {})
    return pm(float(m[name]), s.get(name), d.get(name)) if name in m else "-"


def best(values: Sequence[float | None], metric: str) -> list[bool]:
    """Which of ``values`` are the best of ``metric`` (ties all); none when the metric
    has no better side (``HIGHER_IS_BETTER``) or the values do not differ."""
    higher, got = HIGHER_IS_BETTER.get(metric), [v for v in values if v is not None]
    if higher is None or len(set(got)) < 2:
        return [False] * len(values)
    top = max(got) if higher else min(got)
    return [v == top for v in values]


def _bold(cell: Any) -> Html:
    return Html(cell if isinstance(cell, Html) else esc(cell), "best")


def flag_list(flagged: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """Each (label, row)'s flags, one line each, or ""."""
    items = [f"<li>{FLAG} <b>{esc(label)}</b>: {esc(f)}</li>" for label, r in flagged
             for f in r.get("flags") or []]  # fmt: skip
    return f'<ul class="flag">{"".join(items)}</ul>' if items else ""


def _shown_metrics(ev: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, label) of the metrics the rows hold, the headline and the fidelity first
    and named so."""
    have = {k for r in ev["results"] for k in r.get("metrics", {})}
    roles = {(ev.get(role) or {}).get("metric"): role for role in ("headline", "fidelity")}
    return [(k, label + arrow(k) + (f" ({roles[k]})" if k in roles else ""))
            for k, label in METRICS.items() if k in have]  # fmt: skip


def describe_evaluator(ev: dict[str, Any]) -> str:
    e = ev["evaluator"]
    acc = e.get("accuracy")
    acc_txt = f", held-out accuracy {num(acc)}" if isinstance(acc, int | float) else ""
    return (
        f"evaluator {e['fingerprint']} ({e['kind']}{acc_txt}; {e['reference_size']} reference "
        f"images, {e.get('feature_dim', '?')}-d features)"
    )


def eval_table(run_dir: Path) -> str:
    """The run's whole evaluation: one row per sampler, the real-vs-real floor first,
    then by the headline."""
    if (ev := samples_json(run_dir, "eval")) is None:
        return ""
    metrics, d = _shown_metrics(ev), decimals(ev["results"])
    results = ranked(ev["results"], ev.get("headline") or {})
    samplers = [r for r in results if r["sampler"] != "real"]
    hued = len(samplers) > 1 and bool(metrics) and metrics[0][1].endswith("(headline)")
    rows, flagged = [], []
    for r in results:
        key, mark = row_key(r["sampler"], r.get("params")), f" {FLAG}" * bool(r.get("flags"))
        cells: list[str] = [_cell(r, k, d) for k, _ in metrics]
        if hued and r in samplers:
            hue = 120 * (1 - samplers.index(r) / (len(samplers) - 1))  # green best, red worst
            cells[0] = Html(f'<span style="background:hsl({hue:.0f},60%,85%)">{esc(cells[0])}'
                            "</span>")  # fmt: skip
        latent = r.get("latent_rate")
        label = Html(esc(key + mark), "nw")
        rows.append([label, *cells, "-" if latent is None else f"{num(latent)}{mark}"])
        flagged.append((key, r))
    at = [i for i, r in enumerate(results) if r in samplers]
    for j, (k, _) in enumerate(metrics, start=1):
        for i, top in zip(at, best([results[i]["metrics"].get(k) for i in at], k), strict=True):
            rows[i][j] = _bold(rows[i][j]) if top else rows[i][j]
    head = (
        f"<p>Judged in the feature space of an independent {describe_evaluator(ev)}: "
        f"{ev['n']} images per sampler against held-out real images, k = {ev['k']}, "
        f"± a bootstrap spread. Row <b>real</b> is the real-vs-real floor (held-out real "
        f"images scored the same way): finite samples reach no better. The samplers are "
        f"ordered by the headline, the first column; bold is the best sampler of a "
        f"column with a better side (↑ higher, ↓ lower is better; density and extent "
        f"have none: read them against the floor). "
        f"{esc(ev.get('fd_name', 'FD-zspace'))} is not comparable with Inception FID. "
        f"{FLAG} marks a row whose numbers are not to be read at face value (the reason "
        f"under the table). The last column is the latent meaningful-point rate of "
        f"rates.json when evaluate ran (one signal, with the limits of docs/generation.md; "
        f"its control row is the held-out data). See docs/evaluation.md.</p>"
    )
    names = ["sampler", *(label for _, label in metrics), "latent rate"]
    html = table(names, rows).replace("<table>", '<table id="eval-table">', 1)
    return head + html + flag_list(flagged)


def beside_grid(run_dir: Path, entry: dict[str, Any], ev: dict[str, Any] | None) -> str:
    """A small table of one grid's sampler (metric, this sampler, the real floor), or ""."""
    params = entry.get("params") or {}
    if ev is None or entry.get("kind") != "grid" or "sharpen" in params:
        return ""
    key = row_key(str(entry.get("sampler")), params)
    rows = {row_key(r["sampler"], r.get("params")): r for r in ev["results"]}
    if key not in rows or "real" not in rows:
        return ""
    mine, real, d = rows[key], rows["real"], decimals(ev["results"])
    body = [[label, _cell(mine, k, d), _cell(real, k, d)] for k, label in _shown_metrics(ev)]
    html = table(["metric", key + f" {FLAG}" * bool(mine.get("flags")), "real floor"], body)
    cls = f'<table class="eval-beside" data-sampler="{esc(key)}">'
    return f"<div>{html.replace('<table>', cls, 1)}{flag_list([(key, mine)])}</div>"


def compare_html(names: Sequence[str], dirs: Sequence[Path]) -> str:
    """Per sampler, the runs' metrics side by side; runs judged by another evaluator
    than the first run's are marked (their numbers do not compare)."""
    evs = [samples_json(d, "eval") for d in dirs]  # None: absent
    judged = [(n, ev) for n, ev in zip(names, evs, strict=True) if ev]
    if not judged:
        return ""
    first = judged[0][1]["evaluator"]["fingerprint"]
    marks = {n: "" if ev["evaluator"]["fingerprint"] == first else " †" for n, ev in judged}
    notes = [f"<li><b>{esc(n)}</b>: {esc(describe_evaluator(ev))}</li>" for n, ev in judged]
    parts = [
        f"<p>Evaluation in each run's evaluator feature space (samples/eval.json; "
        f"docs/evaluation.md):</p><ul>{''.join(notes)}</ul>"
    ]
    if any(marks.values()):
        parts.append(
            '<p class="missing">† judged by a different evaluator than the first run '
            "(other data, geometry, task or evaluator version): its numbers are not "
            "comparable with the others.</p>"
        )
    lacking = [n for n, ev in zip(names, evs, strict=True) if not ev]
    if lacking:
        parts.append(
            f'<p class="missing">No evaluation for {esc(", ".join(lacking))}: run '
            f"<code>zspace evaluate RUN</code>.</p>"
        )
    keys: list[str] = []
    by_run: dict[str, dict[str, dict]] = {}
    for n, ev in judged:
        by_run[n] = {row_key(r["sampler"], r.get("params")): r for r in ev["results"]}
        keys += [k for k in by_run[n] if k not in keys]
    rows = [r for ev in by_run.values() for r in ev.values()]
    metrics, dec = _shown_metrics({**judged[0][1], "results": rows}), decimals(rows)
    for key in keys:
        present = [n for n, _ in judged if key in by_run[n]]
        head = ["metric", *(f"{n}{marks[n]}" + f" {FLAG}" * bool(by_run[n][key].get("flags"))
                            if n in present else n for n, _ in judged)]  # fmt: skip
        body = []
        for k, label in metrics:  # the best of the comparable runs in bold (not the floors)
            ok = [n in present and not marks[n] and key != "real" for n, _ in judged]
            got = best([by_run[n][key]["metrics"].get(k) if c else None
                        for (n, _), c in zip(judged, ok, strict=True)], k)  # fmt: skip
            cells = [_cell(by_run[n][key], k, dec) if n in present else "-" for n, _ in judged]
            body.append([label, *(_bold(c) if t else c for c, t in zip(cells, got, strict=True))])
        title = f"{key} (real-vs-real floor)" if key == "real" else key
        flags = flag_list([(n, by_run[n][key]) for n in present])
        parts.append(f"<h4>{esc(title)}</h4>" + table(head, body) + flags)
    return "\n".join(parts)
