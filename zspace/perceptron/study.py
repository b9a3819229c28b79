"""The whole study in one call: scale, map the cost surface, descend both ways."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zspace.core.errors import ZspaceError
from zspace.core.results import Result
from zspace.perceptron.data import Samples, reference_samples
from zspace.perceptron.descent import DescentResult, gradient_descent
from zspace.perceptron.scaling import FittedScaling, fit_scaling
from zspace.perceptron.surface import CostSurface, MeshSpec, cost_surface


@dataclass(frozen=True)
class PerceptronResult(Result):
    """Everything the study computes; figures and the page are drawn from this alone."""

    samples: Samples
    scaling: FittedScaling
    k: np.ndarray  # scaled inputs (n, 2)
    mesh: MeshSpec | None
    surface: CostSurface | None
    stochastic: DescentResult
    batch: DescentResult
    out: Path | None = None  # folder with figures and index.html, when written

    def to_dict(self) -> dict[str, Any]:
        """The numbers of the study (``results.json``), for scripts."""
        s, sc = self.surface, self.scaling
        runs = {
            run.mode: {
                "start": list(run.start),
                "eta": run.eta,
                "decrease": run.decrease,
                "steps": run.steps,
                "final": list(run.final),
                "cost": float(run.costs[-1]),
                "outputs": run.outputs.tolist(),
                "errors": run.errors.tolist(),
                "total_error": run.total_error,
            }
            for run in (self.stochastic, self.batch)
        }
        return {
            "scaling": {
                "name": sc.name,
                "per_sample": sc.per_sample,
                "scale": sc.scale.tolist(),
                "shift": sc.shift.tolist(),
            },
            "K": self.samples.K.tolist(),
            "target": self.samples.target.tolist(),
            "k": self.k.tolist(),
            "surface": None
            if s is None
            else {
                "mesh": dataclasses.asdict(self.mesh) if self.mesh else None,
                "shape": [int(s.w2.size), int(s.w1.size)],
                "c_min": s.c_min,
                "w_min": list(s.w_min),
                "seconds": s.seconds,
                "threads": s.threads,
            },
            **runs,
        }

    def _repr_html_(self) -> str:
        from zspace.perceptron.page import body_html  # matplotlib only when shown

        return body_html(self)[1]


def as_mesh(mesh: MeshSpec | tuple[float, float, float] | None) -> MeshSpec | None:
    """Accept a MeshSpec, a (start, stop, step) triple or None (no surface)."""
    if mesh is None or isinstance(mesh, MeshSpec):
        return mesh.validate() if mesh is not None else None
    try:
        start, stop, step = (float(v) for v in mesh)
    except (TypeError, ValueError):
        raise ZspaceError(f"bad mesh {mesh!r}: give (start, stop, step)") from None
    return MeshSpec(start, stop, step).validate()


def perceptron_study(
    scaling: str,
    *,
    start: tuple[float, float] = (-0.2, 0.25),
    eta: float = 0.2,
    steps: int = 2500,
    decrease: float = 0.0,
    out: str | Path | None = None,
    mesh: MeshSpec | tuple[float, float, float] | None = (-5.5, 5.5, 0.002),
    samples: Samples | None = None,
    threads: int | None = None,
) -> PerceptronResult:
    """Run the single-neuron study for one scaling; with ``out``, also write figures + page.

    ``mesh`` is one (start, stop, step) axis used for both weights (the reference's
    5500 x 5500 by default; None skips the surface). ``samples`` defaults to the
    reference's 14 points. The descents (cheap, and checking their settings) run
    before the surface.
    """
    samples = reference_samples() if samples is None else samples
    fitted = fit_scaling(scaling, samples.K)  # validates the name first
    spec = as_mesh(mesh)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ZspaceError(f"threads must be an integer >= 1, got {threads}")
    k = fitted.transform(samples.K)
    runs = {
        mode: gradient_descent(
            k, samples.target, mode=mode, start=start, eta=eta, steps=steps, decrease=decrease
        )
        for mode in ("stochastic", "batch")
    }
    surface = None
    if spec is not None:
        axis = spec.axis()
        surface = cost_surface(k, samples.target, axis, axis, threads=threads)
    result = PerceptronResult(samples, fitted, k, spec, surface, runs["stochastic"], runs["batch"])
    if out is not None:
        from zspace.perceptron.page import write_study  # matplotlib only when asked

        result = write_study(result, Path(out))
    return result
