"""What the generation functions check and share: seeds, counts, memory, a split's rows.

Every generation function takes a Run (or a run folder); images come from the run's
data (``Run.data``) and are encoded after the run's task (``images.code``), as
training saw them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zspace.analysis.common import subsample
from zspace.core.checks import check_type, finite_float32, positive
from zspace.core.errors import ZspaceError
from zspace.core.resources import check_memory
from zspace.generation.samplers import check_limit, parse_samplers
from zspace.runs.run import Run, RunLike, as_run

Log = Callable[[str], None] | None


def seed_of(run: Any, seed: int | None) -> int:
    """The given seed, else the run's config seed; NumPy wants it >= 0."""
    seed = run.config.seed if seed is None else int(seed)
    if seed < 0:
        raise ZspaceError(f"seed {seed}: must be >= 0")
    return seed


COUNTS = {"n", "cols", "k", "count", "reference_size", "subsample", "strengths"}
INT = (int, np.integer)


def check_args(**given: Any) -> None:
    """Types and ranges of the settings generation and evaluation share, checked before
    any work and without a run: each function calls it first, and a pipeline, recipe or
    sweep before its first run trains (``flow.stages.Plan``). Counts must be >= 1
    (``subsample = 0`` too: a fit on no point is no fit; all points: a large count)."""
    for name, v in given.items():
        if name in COUNTS or name == "rounds":
            check_type(name, v, INT, "an integer")
            positive(name, v)
            if name == "rounds" and v < 2:
                raise ZspaceError(f"rounds = {v}: a spread needs at least 2")
        elif v is None:
            continue
        elif name == "seed":
            check_type(name, v, INT, "an integer or None")
            positive(name, v, allow_zero=True)
        elif name == "sampler":
            check_type(name, v, (str, list, tuple), "a sampler name or a list of them")
            parse_samplers(v)
        elif name in ("limits", "components", "sharpen"):
            items = v if isinstance(v, list | tuple) else [v]
            number = INT if name == "components" else (*INT, float)
            check_type(name, items, (list, tuple), "a number or a list of numbers", each=number)
            for x in items:
                if name == "limits":
                    check_limit(x)
                else:
                    positive(name, x, allow_zero=name == "sharpen")
        elif name == "quantile":
            check_type(name, v, (*INT, float), "a number in (0, 1)")
            if not 0 < v < 1:
                raise ZspaceError(f"quantile = {v}: must lie in (0, 1)")
        elif name in ("split", "oracle", "task"):
            check_type(name, v, str, "a name")
        elif name in ("refit", "metrics"):
            check_type(name, v, bool, "True or False")


def fmt(x: float) -> str:
    return f"{x:g}"


def sharpen_list(sharpen: float | Sequence[float] | None) -> list[float | None]:
    if sharpen is None:
        return [None]
    items = [sharpen] if isinstance(sharpen, int | float) else list(sharpen)
    if not items:
        raise ZspaceError("no sharpening factors given (e.g. 0,3,6,7)")
    for f in items:
        finite_float32("sharpening factor", f)  # check_args refused negative ones
    return [float(f) for f in items]


def fits(run: Any, n: int, what: str) -> None:
    """Refuse decoding ``n`` images that cannot fit in memory, before drawing a point
    (``what`` names the count, e.g. ``n = 64``)."""
    c, h, w = run.input_shape
    per_image = 4 * (run.z_dim + 2 * c * h * w)  # z, the float image, its copy
    what = f"{what}: decoding {n:,} images of {h}x{w}x{c}"
    check_memory(what, n * per_image, "use a smaller count")


def start_drawing(
    run: RunLike, sampler: str | Sequence[str], n: int, seed: int | None
) -> tuple[Run, list[str], int]:
    """The start every function that draws ``n`` images per sampler shares: the loaded
    run, the sampler names, the memory for ``n`` decoded images checked, the seed."""
    run = as_run(run)
    names = parse_samplers(sampler)
    fits(run, n, f"n = {n:,}")
    return run, names, seed_of(run, seed)


def split_index(run: Any, split: str | None) -> tuple[str, Any, np.ndarray]:
    """(split name, the run's data, the split's row indices); default: the held-out
    split (test, else valid)."""
    from zspace.data import held_out_split

    data, splits = run.data()
    if split is None:
        split = held_out_split(splits) or "valid"
    if split not in splits:
        raise ZspaceError(f"split {split!r} does not exist here (have: {', '.join(splits)})")
    return split, data, np.asarray(splits[split])


def pick(index: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to n seeded rows of a split's (sorted) index, sorted."""
    return np.asarray(index)[subsample(len(index), n, seed)]


def split_images(run: Any, split: str | None, n: int, seed: int) -> tuple[str, np.ndarray]:
    """Up to n seeded images of a split, in index order."""
    split, data, index = split_index(run, split)
    return split, np.ascontiguousarray(data.images[pick(index, n, seed)])
