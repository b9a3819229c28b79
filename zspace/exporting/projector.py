"""``--format projector``: the files TensorBoard's Embedding Projector reads.

- ``tensors.tsv``: one encoded image per line, z_dim tab-separated floats: ``mu``
  for a VAE (the deterministic code; z adds noise), ``z`` for an AE.
- ``metadata.tsv``: a header line, then one line per point: the label (class
  name), CelebA's attributes (-1 / 1), the image's row in the data set and the
  radius |v| of the exported vector. ``colour_by`` moves a column to the front.
- ``sprite.png``: the images as thumbnails, row-major in a grid of ceil(sqrt(N))
  columns, no padding, within the Projector's 8192 x 8192 px limit (tiles shrink
  below the image size only when N needs it).
- ``projector_config.pbtxt``: ties the three together; ``tensorboard --logdir OUT``
  finds it in the root of the log folder.

The points come from ``RUN/latents/<split>.npz`` (encoded first when missing, as
``zspace encode`` would), a seeded subsample of ``n``; the thumbnails from the
run's data, read as training read it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zspace.analysis.common import subsample
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_bytes, atomic_write_text
from zspace.data.dataset import class_names
from zspace.data.preview import png_bytes
from zspace.data.tasks import make_input
from zspace.latents.encode import encode
from zspace.latents.store import Latents, latents_path, load_latents
from zspace.runs.run import Run

SPRITE_LIMIT = 8192  # the Projector refuses larger sprite images (WebGL texture size)
DEFAULT_N = 10_000
FILES = ("tensors.tsv", "metadata.tsv", "sprite.png", "projector_config.pbtxt")  # write order


# ---------------------------------------------------------------- pure parts


@dataclass(frozen=True)
class SpriteLayout:
    columns: int
    rows: int
    tile: int  # square tile side in pixels

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the sprite image."""
        return self.columns * self.tile, self.rows * self.tile


def sprite_layout(n: int, image_size: int, limit: int = SPRITE_LIMIT) -> SpriteLayout:
    """ceil(sqrt(n)) columns of the largest tile <= image_size that fits ``limit``."""
    if n < 1:
        raise ZspaceError("projector: no points to export")
    columns = math.ceil(math.sqrt(n))
    tile = min(image_size, limit // columns)
    if tile < 1:
        raise ZspaceError(
            f"projector: {n:,} thumbnails do not fit a {limit} px sprite; lower --count"
        )
    return SpriteLayout(columns, math.ceil(n / columns), tile)


def sprite_image(images: np.ndarray, layout: SpriteLayout) -> np.ndarray:
    """NHWC uint8 images to one (H, W, C) uint8 sprite; empty tiles stay black."""
    n, h, w, c = images.shape
    t = layout.tile
    if (h, w) != (t, t):
        images = np.stack([_resize(img, t) for img in images])
    full = np.zeros((layout.rows * layout.columns, t, t, c), np.uint8)
    full[:n] = images
    grid = full.reshape(layout.rows, layout.columns, t, t, c).transpose(0, 2, 1, 3, 4)
    return grid.reshape(layout.rows * t, layout.columns * t, c)


def _resize(img: np.ndarray, tile: int) -> np.ndarray:
    pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
    out = np.asarray(pil.resize((tile, tile), Image.Resampling.BOX))
    return out.reshape(tile, tile, img.shape[-1])


def _cell(value: Any) -> str:
    # the Projector splits on tabs and lines; nothing in a cell may contain them
    return " ".join(str(value).split()) or "-"


def metadata_columns(lat: Latents, rows: np.ndarray, vectors: np.ndarray) -> dict[str, list[str]]:
    """Column name -> cell strings for the chosen latents rows."""
    cols: dict[str, list[str]] = {}
    if lat.label is not None:
        names = class_names(lat.label, lat.label_names)
        cols["label"] = [names[k] for k in lat.label[rows]]
    if lat.attr is not None and lat.attr_names:
        for j, name in enumerate(lat.attr_names):
            cols[_cell(name)] = [str(int(v)) for v in lat.attr[rows, j]]
    cols["index"] = [str(int(i)) for i in lat.index[rows]]
    radius = np.linalg.norm(vectors.astype(np.float64), axis=1)
    cols["radius"] = [f"{r:.4g}" for r in radius]
    return cols


def metadata_text(columns: dict[str, list[str]], colour_by: str | None) -> tuple[str, list[str]]:
    """The header line and one line per point, ``colour_by`` first; and the column order.
    (A header needs >= 2 columns: always true here, as index and radius are always there.)"""
    if colour_by is not None and colour_by not in columns:
        raise ZspaceError(
            f"--colour-by {colour_by!r}: no such column; choose from {', '.join(columns)}"
        )
    order = sorted(columns, key=lambda n: n != colour_by)  # colour_by first, then as they are
    lines = ["\t".join(_cell(n) for n in order)]
    lines += ["\t".join(_cell(columns[n][i]) for n in order) for i in range(len(columns[order[0]]))]
    return "\n".join(lines) + "\n", order


def tensors_text(vectors: np.ndarray) -> str:
    return "\n".join("\t".join(f"{v:.7g}" for v in row) for row in vectors.tolist()) + "\n"


def config_text(name: str, layout: SpriteLayout) -> str:
    """projector_config.pbtxt (protobuf text format) with paths relative to itself."""
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return (
        "embeddings {\n"
        f'  tensor_name: "{quoted}"\n'
        '  tensor_path: "tensors.tsv"\n'
        '  metadata_path: "metadata.tsv"\n'
        "  sprite {\n"
        '    image_path: "sprite.png"\n'
        f"    single_image_dim: {layout.tile}\n"
        f"    single_image_dim: {layout.tile}\n"
        "  }\n"
        "}\n"
    )


# ---------------------------------------------------------------- I/O


def latents_for(run: Run, split: str, log: Callable[[str], None] | None) -> Latents:
    """The split's latents file, encoded first when it does not exist yet."""
    if not latents_path(run.path, split).is_file():
        if log:
            log(f"no latents for split {split!r} yet: encoding it first")
        encode(run, split, log=log)
    lat = load_latents(run, split)
    if lat.z_dim != run.z_dim:
        raise ZspaceError(
            f"latents of split {split!r} have d = {lat.z_dim} but the model has z_dim "
            f"{run.z_dim}; run `zspace encode {run.path} --split {split}` again"
        )
    return lat


def check_fresh(run: Run, lat: Latents, rows: np.ndarray, images: np.ndarray) -> None:
    """Re-encode a few of the chosen images and refuse latents that another checkpoint
    wrote (the Projector would show old points under this epoch's name). Skipped for
    denoise, whose inputs carry seeded noise the check cannot redraw."""
    if run.config.data.task == "denoise" or not len(rows):
        return
    few = rows[:16]
    x = make_input(
        run.as_batch(np.ascontiguousarray(images[lat.index[few]])), run.config.data, None
    )
    z, mu, _ = run.encode(x)
    now = (mu if mu is not None else z).numpy()
    saved = (lat.mu if lat.mu is not None else lat.z)[few]
    if not np.allclose(now, saved, rtol=1e-3, atol=1e-3):
        raise ZspaceError(
            f"latents of split {lat.split!r} do not match the model of epoch {run.epoch} "
            f"(encoded with another checkpoint?): run `zspace encode {run.path} --split "
            f"{lat.split}` again"
        )


def write_projector(
    run: Run,
    out: Path,
    *,
    split: str = "train",
    n: int = DEFAULT_N,
    colour_by: str | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """Write the four Projector files into ``out``; returns their names and a summary.
    The points are a seeded subsample of ``n`` (all when 0) of ``split``."""
    if n < 0:
        raise ZspaceError(f"--count {n}: must be >= 0 (0 = all points)")
    lat = latents_for(run, split, log)
    rows = subsample(len(lat), n, run.config.seed)
    vectors = (lat.mu if lat.mu is not None else lat.z)[rows].astype(np.float32)
    metadata, order = metadata_text(metadata_columns(lat, rows, vectors), colour_by)
    images = run.data()[0].images  # as training read them
    index = lat.index[rows]
    if len(index) and int(index.max()) >= len(images):
        raise ZspaceError(
            f"latents of split {split!r} point past the {len(images):,} images of the data; "
            f"run `zspace encode {run.path} --split {split}` again"
        )
    check_fresh(run, lat, rows, images)
    _, h, w = run.input_shape
    layout = sprite_layout(len(rows), max(h, w))
    sprite = sprite_image(np.ascontiguousarray(images[index]), layout)
    kind = "vae" if lat.variational else "ae"
    name = f"{kind} {'mu' if lat.variational else 'z'} ({split}, epoch {run.epoch})"
    atomic_write_text(out / "tensors.tsv", tensors_text(vectors))
    atomic_write_text(out / "metadata.tsv", metadata)
    atomic_write_bytes(out / "sprite.png", png_bytes(sprite))
    atomic_write_text(out / "projector_config.pbtxt", config_text(name, layout))
    summary = {
        "points": int(len(rows)),
        "of": int(len(lat)),
        "vector": "mu" if lat.variational else "z",
        "z_dim": int(vectors.shape[1]),
        "columns": order,
        "tile": layout.tile,
        "sprite": list(layout.size),
    }
    return list(FILES), summary  # the config last: the Projector looks for it
