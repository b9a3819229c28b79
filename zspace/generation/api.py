"""The Python face of generation: what ``zspace generate`` calls.

Every function takes a Run (or a run folder), writes PNGs under ``RUN/samples/``
and lists them in ``samples/index.json`` (entries for the same file are replaced),
so the HTML report shows them. Randomness comes from ``seed`` (default: the run's
config seed); each grid restarts its own generator, so a grid reproduces alone.
"""

from zspace.generation.images import load_image_file
from zspace.generation.path_grids import attribute, interpolate, traverse
from zspace.generation.rate import meaningful_rates
from zspace.generation.reconstructions import reconstructions
from zspace.generation.sample_grids import generate
from zspace.generation.samplers import parse_samplers
from zspace.runs.run import as_run

__all__ = [
    "as_run",
    "attribute",
    "generate",
    "interpolate",
    "load_image_file",
    "meaningful_rates",
    "parse_samplers",
    "reconstructions",
    "traverse",
]
