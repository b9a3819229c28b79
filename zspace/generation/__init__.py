"""Generation from the latent space: samplers, grids, reconstructions, paths, the
meaningful-point rate (``zspace generate``)."""

from zspace.generation.api import (
    attribute,
    generate,
    interpolate,
    meaningful_rates,
    reconstructions,
    traverse,
)

__all__ = [
    "attribute",
    "generate",
    "interpolate",
    "meaningful_rates",
    "reconstructions",
    "traverse",
]
