"""How the pages write numbers and mark the best (issue 28): ``value ± spread`` rounded
where the spread's second digit is, one format per metric where a spread is 0, the
best sampler (or run) bold where a metric has a better side, names that do not wrap."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from zspace.reporting.evaluation import compare_html, eval_table
from zspace.reporting.references import words
from zspace.reporting.text import places, pm

PM = "\u00a0± "  # no line break before the ±


@pytest.mark.parametrize(
    "value, spread, decimals, shown",
    [
        (0.066667, 0.015, None, "0.067 ± 0.015"),  # was "0.0667 ± 0.015"
        (1.0, 0.0, 3, "1.000 ± 0.000"),  # was "1 ± 0": the metric's decimals
        (119.92301, 0.0064, None, "119.9230 ± 0.0064"),
        (0.7195, 0.3403, None, "0.72 ± 0.34"),
        (0.002236, 8.1e-5, None, "0.002236 ± 0.000081"),
        (1234.5, 12.0, None, "1,234 ± 12"),
        (3.0, None, 2, "3.00"),
        (0.5, 0.0, None, "0.5 ± 0"),  # nothing to line up with: num
    ],
)
def test_value_and_spread_in_one_format(value, spread, decimals, shown):
    assert pm(value, spread, decimals) == shown.replace(" ± ", PM)


def test_places_line_up_a_column():
    assert places([0.5, 0.25, 3]) == 2
    assert places([12.5, 0.001234]) == 6
    assert places([1, 2.0, None, "x"]) is None  # nothing fractional
    assert places([6.883e-5, 0.5]) is None  # 8 decimals: num per cell
    assert places([0.015, 0.0087], 2) == 4


def _eval(run: Path, rows: list[tuple[str, dict[str, float], dict[str, float]]]) -> Path:
    results = [{"sampler": s, "params": {"n": 100}, "metrics": m, "spread": sp, "flags": []}
               for s, m, sp in rows]  # fmt: skip
    ev = {
        "n": 100, "k": 5, "results": results,
        "headline": {"metric": "fd", "higher_is_better": False},
        "fidelity": {"metric": "vouched_precision", "higher_is_better": True},
        "evaluator": {"fingerprint": "f" * 16, "kind": "classes", "accuracy": 0.98123,
                      "reference_size": 300},
    }  # fmt: skip
    (run / "samples").mkdir(parents=True)
    (run / "samples" / "eval.json").write_text(json.dumps(ev))
    return run


def _cells(html: str) -> list[list[str]]:
    return [re.findall(r"<t[dh]([^>]*)>(.*?)</t[dh]>", tr) for tr in html.split("<tr>")[1:]]


def test_the_best_sampler_is_bold_where_a_metric_has_a_better_side(tmp_path):
    run = _eval(tmp_path / "r", [
        ("real", {"fd": 0.7, "precision": 0.97, "density": 1.1}, {"fd": 0.3, "precision": 0.01,
                                                                  "density": 0.03}),
        ("normal", {"fd": 40.0, "precision": 0.5, "density": 1.6}, {"fd": 1.2, "precision": 0.02,
                                                                    "density": 0.05}),
        ("gmm", {"fd": 12.0, "precision": 0.8, "density": 0.9}, {"fd": 0.8, "precision": 0.0,
                                                                 "density": 0.04}),
    ])  # fmt: skip
    html = eval_table(run)
    head, *rows = _cells(html)
    assert [t for _, t in head][:4] == ["sampler", "FD-zspace ↓ (headline)", "precision ↑",
                                        "density"]  # fmt: skip
    assert [t for _, t in (r[0] for r in rows)] == ["real", "gmm", "normal"]  # by the headline
    best = {(i, j) for i, r in enumerate(rows) for j, (attrs, _) in enumerate(r) if "best" in attrs}
    assert best == {(1, 1), (1, 2)}  # gmm: lowest FD, highest precision; density has no side
    assert rows[1][2][1] == f"0.800{PM}0.000"  # a zero spread: the decimals of 0.010, 0.020
    assert rows[2][1][1].endswith(f">40.0{PM}1.2</span>")  # the headline keeps its colour
    assert "held-out accuracy 0.9812" in html and "bold is the best sampler" in html
    assert 'class="l nw"' in html  # sampler labels do not wrap


def test_compare_marks_the_best_run_per_metric_but_not_among_floors(tmp_path):
    a = _eval(tmp_path / "a", [("real", {"recall": 0.9}, {"recall": 0.01}),
                               ("gmm", {"recall": 0.4}, {"recall": 0.02})])  # fmt: skip
    b = _eval(tmp_path / "b", [("real", {"recall": 0.95}, {"recall": 0.01}),
                               ("gmm", {"recall": 0.6}, {"recall": 0.02})])  # fmt: skip
    html = compare_html(["a", "b"], [a, b])
    floor, gmm = html.split("<h4>")[1:]
    assert 'class="best"' not in floor
    assert gmm.count('class="best"') == 1 and f'<td class="best">0.600{PM}0.020</td>' in gmm


def test_quantities_are_named_as_the_evaluation_tables_name_them():
    assert words("eval.normal.fd") == "FD-zspace of normal"
    assert words("eval.uniform:2.5.confident_share") == "confident share of uniform limit=2.5"
    assert words("radius.peak") == "radius peak" and words("eval.normal.nope") == ""


def _overlapping_tick_labels(fig) -> list[str]:
    """The x tick labels (inside the view) of ``fig``'s panels that touch a neighbour."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from zspace.reporting.style import RC

    with matplotlib.rc_context(RC):  # as png() draws it
        (canvas := FigureCanvasAgg(fig)).draw()
    renderer, out = canvas.get_renderer(), []
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        shown = [t for t, x in zip(ax.get_xticklabels(), ax.get_xticks(), strict=True)
                 if lo <= x <= hi and t.get_text()]  # fmt: skip
        boxes = [t.get_window_extent(renderer) for t in shown]
        out += [f"{a.get_text()}|{b.get_text()}" for (a, p), (b, q) in
                itertools.pairwise(zip(shown, boxes, strict=True)) if p.x1 + 2 > q.x0]  # fmt: skip
    return out


@pytest.mark.parametrize("spread, centre", [(1.0, 0.0), (0.02, -0.01), (3e-4, 1.4), (2.0, -1.1)])
def test_the_zoom_windows_tick_labels_never_overlap(spread, centre):
    """The PCA projection's zoom windows, on a cloud as spread as an MNIST VAE's and
    on tiny ones away from 0 (issue: "-0.020-0.015" ran together at the narrowest)."""
    import numpy as np

    from zspace.reporting.figures import projection_figure

    pts = np.random.default_rng(0).normal(centre, spread, (1, 2000, 2))
    half = [3 * spread * z for z in (1, 0.3, 0.1, 0.03)]
    r = {"pairs": [[1, 2]], "centre_pca": [[centre, centre]], "counts_pca": [[2000] * 4],
         "windows_pca": [half], "zooms": [1, 0.3, 0.1, 0.03], "zoom_mode": "relative",
         "n": 2000}  # fmt: skip
    assert _overlapping_tick_labels(projection_figure({"result": r}, {"proj_pca": pts})) == []
