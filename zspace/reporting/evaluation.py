"""samples/eval.json on the pages: the evaluation table of a run, a table of each
sampler's metrics beside its grid, and the runs side by side on the compare page.

Only what eval.json holds is shown (nothing is recomputed); the latent
meaningful-point rate from rates.json joins as one more column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zspace.core.display import esc
from zspace.reporting.html import table

METRICS = (
    ("precision", "precision"),
    ("recall", "recall"),
    ("density", "density"),
    ("coverage", "coverage"),
    ("fd", "FD-zspace"),
    ("kid", "KID"),
    ("confident_share", "confident share"),
    ("face_rate", "face rate"),
)
BAD = (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError)


def read_eval(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / "samples" / "eval.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def row_key(sampler: str, params: dict[str, Any] | None) -> str:
    """``normal``, ``uniform limit=2``: one label per sampler (and uniform limit)."""
    limit = (params or {}).get("limit")
    return sampler + (f" limit={float(limit):g}" if limit is not None else "")


def _cell(row: dict[str, Any], name: str) -> str:
    m, s = row.get("metrics", {}), row.get("spread", {})
    if name not in m:
        return "-"
    spread = s.get(name)
    shown = f"{m[name]:.3g}" if abs(m[name]) >= 1e-3 or m[name] == 0 else f"{m[name]:.2e}"
    return shown + (f" ± {spread:.2g}" if spread is not None else "")


def _rates(run_dir: Path) -> dict[str, float]:
    try:
        rates = json.loads((Path(run_dir) / "samples" / "rates.json").read_text())
        return {row_key(r["sampler"], r["params"]): float(r["rate"]) for r in rates["results"]}
    except (OSError, *BAD):
        return {}


def _shown_metrics(ev: dict[str, Any]) -> list[tuple[str, str]]:
    have = {k for r in ev["results"] for k in r.get("metrics", {})}
    return [(k, label) for k, label in METRICS if k in have]


def describe_evaluator(ev: dict[str, Any]) -> str:
    e = ev["evaluator"]
    acc = e.get("accuracy")
    acc_txt = f", held-out accuracy {acc:.3f}" if isinstance(acc, int | float) else ""
    return (
        f"evaluator {e['fingerprint']} ({e['kind']}{acc_txt}; {e['reference_size']} reference "
        f"images, {e.get('feature_dim', '?')}-d features)"
    )


def eval_table(run_dir: Path) -> str:
    """The run's whole evaluation: one row per sampler, the real-vs-real floor first."""
    try:
        ev = read_eval(run_dir)
        if ev is None:
            return ""
        metrics = _shown_metrics(ev)
        rates = _rates(run_dir)
        rows = []
        for r in ev["results"]:
            key = row_key(r["sampler"], r.get("params"))
            latent = rates.get("data" if r["sampler"] == "real" else key, "-")
            rows.append([key, *(_cell(r, k) for k, _ in metrics), latent])
        head = (
            f"<p>Judged in the feature space of an independent {describe_evaluator(ev)}: "
            f"{ev['n']} images per sampler against held-out real images, k = {ev['k']}, "
            f"± a bootstrap spread. Row <b>real</b> is the real-vs-real floor (held-out real "
            f"images scored the same way): finite samples reach no better. "
            f"{esc(ev.get('fd_name', 'FD-zspace'))} is not comparable with Inception FID. "
            f"The last column is the latent meaningful-point rate (one signal, with the "
            f"limits of docs/generation.md; its control row is the held-out data). "
            f"See docs/evaluation.md.</p>"
        )
    except BAD as exc:
        return f'<p class="missing">eval.json is unreadable: {esc(exc)}</p>'
    names = ["sampler", *(label for _, label in metrics), "latent rate"]
    return head + table(names, rows).replace("<table>", '<table id="eval-table">', 1)


def beside_grid(run_dir: Path, entry: dict[str, Any], ev: dict[str, Any] | None) -> str:
    """A small table of one grid's sampler (metric, this sampler, the real floor), or ""."""
    params = entry.get("params") or {}
    if ev is None or entry.get("kind") != "grid" or "sharpen" in params:
        return ""
    try:
        key = row_key(str(entry.get("sampler")), params)
        rows = {row_key(r["sampler"], r.get("params")): r for r in ev["results"]}
        if key not in rows or "real" not in rows:
            return ""
        mine, real = rows[key], rows["real"]
        body = [[label, _cell(mine, k), _cell(real, k)] for k, label in _shown_metrics(ev)]
        html = table(["metric", key, "real floor"], body)
    except BAD:
        return ""
    cls = f'<table class="eval-beside" data-sampler="{esc(key)}">'
    return html.replace("<table>", cls, 1)


def compare_html(names: Sequence[str], dirs: Sequence[Path]) -> str:
    """Per sampler, the runs' metrics side by side; runs judged by another evaluator
    than the first run's are marked (their numbers do not compare)."""
    evs = []
    for d in dirs:
        try:
            evs.append(read_eval(d))
        except BAD:
            evs.append(None)
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
    metrics = [m for m in METRICS if any(m[0] in r.get("metrics", {}) for ev in by_run.values()
                                         for r in ev.values())]  # fmt: skip
    head = ["metric", *(f"{n}{marks[n]}" for n, _ in judged)]
    for key in keys:
        body = [
            [label, *(_cell(by_run[n][key], k) if key in by_run[n] else "-" for n, _ in judged)]
            for k, label in metrics
        ]
        title = f"{key} (real-vs-real floor)" if key == "real" else key
        parts.append(f"<h4>{esc(title)}</h4>" + table(head, body))
    return "\n".join(parts)
