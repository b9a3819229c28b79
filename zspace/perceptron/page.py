"""The study's output folder: PNG figures, results.json and one self-contained HTML page."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from zspace.core.display import esc, img
from zspace.core.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text, make_dirs
from zspace.perceptron import figures
from zspace.perceptron.tables import COLUMNS, descent_line, scaling_line, surface_line, table_rows
from zspace.reporting.figures import png
from zspace.reporting.html import page, section, table

if TYPE_CHECKING:
    from zspace.perceptron.study import PerceptronResult

#: file name -> (figure function, section title, caption)
FIGURES = {
    "samples.png": (figures.fig_samples, "Samples", "The samples before and after scaling."),
    "cost_surface.png": (
        figures.fig_surface,
        "Cost surface",
        "The cost over the weight mesh; the descent paths end in its minimum.",
    ),
    "evolution.png": (figures.fig_evolution, "Descent", "Cost and weights during both descents."),
    "output.png": (
        figures.fig_output,
        "Output",
        "The trained neuron's output over the original (K1, K2) plane, samples on top.",
    ),
}

_GEOMETRY = {
    True: (
        "The per-sample Normalizer divides every point by its own length, so all points "
        "on a ray from the origin map to the same scaled point: the output is constant "
        "along rays and its contour lines in the original plane are rays through the "
        "origin. Only the angle of a sample matters, which separates these two clusters "
        "well, but would fail for clusters that differ only in their distance from the origin."
    ),
    False: (
        "This scaling is affine per feature, so w1*k1 + w2*k2 is an affine function of "
        "(K1, K2): the output is constant along parallel straight lines of the original "
        "plane, and the separation line between the classes is one of them."
    ),
}


def pngs(result: PerceptronResult) -> dict[str, bytes]:
    """file name -> PNG bytes of every figure the result has (no surface, no surface figure)."""
    made = {name: make(result) for name, (make, *_) in FIGURES.items()}
    return {name: png(fig) for name, fig in made.items() if fig is not None}


def body_html(
    result: PerceptronResult, images: dict[str, bytes] | None = None
) -> tuple[list[tuple[str, str]], str]:
    """(nav, sections) of the page; ``images`` (file name -> PNG bytes, drawn when not
    given) are embedded as data URIs."""
    images = pngs(result) if images is None else images
    intro = [
        "<p>One neuron with a sigmoid, A = sigmoid(w1*k1 + w2*k2), learns targets 0.3 and "
        "0.7 for 14 samples (K1, K2) after the inputs are scaled to (k1, k2). The cost is "
        "C = 0.5 * mean((A - target)^2); Err = |A - target| / target, and the total error is "
        "its mean. Raw values of up to a few hundred drive the sigmoid into saturation, "
        "where gradients vanish; scaled to order one, the cost surface has a clear minimum "
        "that gradient descent can reach.</p>",
        f"<p>{esc(_GEOMETRY[result.scaling.per_sample])}</p>",
        '<ul class="key">',
        f"<li>{esc(scaling_line(result))}</li>",
        f"<li>{esc(surface_line(result))}</li>",
        f"<li>{esc(descent_line(result.stochastic))}</li>",
        f"<li>{esc(descent_line(result.batch))}</li>",
        "</ul>",
    ]
    body = [section("study", "The study", "\n".join(intro))]
    nav = [("study", "Study")]
    for name, (_, title, caption) in FIGURES.items():
        if name in images:
            sid = name.removesuffix(".png").replace("_", "-")
            body.append(section(sid, title, img(images[name], name, caption)))
            nav.append((sid, title))
    for run in (result.stochastic, result.batch):
        sid, title = f"{run.mode}-table", run.mode.capitalize()
        rows = table(list(COLUMNS), table_rows(result, run), left=0)
        body.append(section(sid, f"{title} descent", rows))
        nav.append((sid, f"{title} table"))
    return nav, "\n".join(body)


def build_html(result: PerceptronResult, images: dict[str, bytes]) -> str:
    """The page as a string, with the look of the run reports: header, sections."""
    title = f"Single-neuron perceptron, scaling {result.scaling.name}"
    sub = "A side study of zspace: why inputs are scaled before a sigmoid neuron learns"
    return page(title, sub, *body_html(result, images))


def write_study(result: PerceptronResult, out: Path) -> PerceptronResult:
    """Write the figures, results.json and index.html into ``out``; return the result
    with ``out`` set."""
    out = make_dirs(out)
    images = pngs(result)
    for name, data in images.items():
        atomic_write_bytes(out / name, data)
    atomic_write_json(out / "results.json", result.to_dict())
    atomic_write_text(out / "index.html", build_html(result, images))
    return dataclasses.replace(result, out=out)
