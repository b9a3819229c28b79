"""Generation from the latent space: samplers, grids, reconstructions, paths, the
meaningful-point rate (``zspace generate``)."""

from zspace.generation.api import *  # noqa: F403 - the stage's face, named once in api.__all__
