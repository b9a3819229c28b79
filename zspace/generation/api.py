"""The Python face of generation: what ``zspace generate`` calls.

Every function takes a Run (or a run folder), writes PNGs under ``RUN/samples/``
and lists them in ``samples/index.json`` (entries for the same file are replaced),
so the HTML report shows them. Randomness comes from ``seed`` (default: the run's
config seed); each grid restarts its own generator, so a grid reproduces alone.
"""

from zspace.generation.common import as_run, decode_u8, train_latents
from zspace.generation.edits import attribute, interpolate, traverse
from zspace.generation.index import samples_dir, update_index
from zspace.generation.meaningful import meaningful_rates
from zspace.generation.reconstructions import reconstructions
from zspace.generation.sampling import generate, parse_samplers, sampler_draw

__all__ = [
    "as_run",
    "attribute",
    "decode_u8",
    "generate",
    "interpolate",
    "meaningful_rates",
    "parse_samplers",
    "reconstructions",
    "sampler_draw",
    "samples_dir",
    "train_latents",
    "traverse",
    "update_index",
]
