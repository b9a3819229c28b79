"""Side study: a single sigmoid neuron on two features, and how input scaling shapes its
cost surface, its gradient descent and its decision geometry (SPEC section 7).

Pure computation lives in ``data``, ``scaling``, ``neuron``, ``surface`` and ``descent``; ``study``
ties them together; ``figures``/``page`` draw and write; ``cli`` is ``zspace perceptron``.
Names are exported lazily so that registering the CLI verb does not import
scikit-learn and SciPy for every other ``zspace`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_MODULES = {
    "scaling": ("SCALINGS", "FittedScaling", "fit_scaling"),
    "data": ("Samples", "reference_samples"),
    "surface": ("CostSurface", "MeshSpec", "cost_surface"),
    "neuron": ("cost", "output_grid", "outputs", "relative_errors"),
    "descent": ("DescentResult", "gradient_descent"),
    "study": ("PerceptronResult", "perceptron_study"),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from zspace.perceptron.data import Samples, reference_samples  # noqa: F401
    from zspace.perceptron.descent import DescentResult, gradient_descent  # noqa: F401
    from zspace.perceptron.neuron import cost, output_grid, outputs, relative_errors  # noqa: F401
    from zspace.perceptron.scaling import SCALINGS, FittedScaling, fit_scaling  # noqa: F401
    from zspace.perceptron.study import PerceptronResult, perceptron_study  # noqa: F401
    from zspace.perceptron.surface import CostSurface, MeshSpec, cost_surface  # noqa: F401


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zspace.perceptron' has no attribute {name!r}")
    from zspace.perceptron import data, descent, neuron, scaling, study, surface

    modules = {"data": data, "descent": descent, "neuron": neuron, "scaling": scaling,
               "study": study, "surface": surface}  # fmt: skip
    return getattr(modules[_EXPORTS[name]], name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
