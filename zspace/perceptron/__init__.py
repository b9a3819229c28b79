"""Side study: a single sigmoid neuron on two features, and how input scaling shapes its
cost surface, its gradient descent and its decision geometry (SPEC section 7).

Pure computation lives in ``data``, ``scaling``, ``neuron``, ``surface`` and ``descent``; ``study``
ties them together; ``figures``/``page`` draw and write; ``cli`` is ``zspace perceptron``.
Names are exported lazily so that registering the CLI verb does not import
scikit-learn and SciPy for every other ``zspace`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "SCALINGS": "scaling",
    "FittedScaling": "scaling",
    "fit_scaling": "scaling",
    "Samples": "data",
    "reference_samples": "data",
    "CostSurface": "surface",
    "MeshSpec": "surface",
    "cost_surface": "surface",
    "cost": "neuron",
    "output_grid": "neuron",
    "outputs": "neuron",
    "relative_errors": "neuron",
    "DescentResult": "descent",
    "gradient_descent": "descent",
    "PerceptronResult": "study",
    "perceptron_study": "study",
}

__all__ = [
    "CostSurface",
    "DescentResult",
    "FittedScaling",
    "MeshSpec",
    "PerceptronResult",
    "SCALINGS",
    "Samples",
    "cost",
    "cost_surface",
    "fit_scaling",
    "gradient_descent",
    "output_grid",
    "outputs",
    "perceptron_study",
    "reference_samples",
    "relative_errors",
]

if TYPE_CHECKING:
    from zspace.perceptron.data import Samples, reference_samples
    from zspace.perceptron.descent import DescentResult, gradient_descent
    from zspace.perceptron.neuron import cost, output_grid, outputs, relative_errors
    from zspace.perceptron.scaling import SCALINGS, FittedScaling, fit_scaling
    from zspace.perceptron.study import PerceptronResult, perceptron_study
    from zspace.perceptron.surface import CostSurface, MeshSpec, cost_surface


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zspace.perceptron' has no attribute {name!r}")
    from zspace.perceptron import data, descent, neuron, scaling, study, surface

    modules = {"data": data, "descent": descent, "neuron": neuron, "scaling": scaling,
               "study": study, "surface": surface}  # fmt: skip
    return getattr(modules[module], name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
