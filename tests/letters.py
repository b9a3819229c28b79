"""A letters set in MNIST format, made here (issue 23's failure case, reproduced).

Ten letters A-J drawn in Pillow's bundled font (``ImageFont.load_default(size=...)``,
Pillow >= 10.1, so every machine has it) at several sizes and stroke widths, with an
affine jitter (rotation, shear, scale, shift); a few percent are *odd* glyphs: the
letter filled with a texture (noise, stripes, checks) or drawn on a grey gradient.
The odd glyphs have no close neighbours in any feature space, so their k-NN balls
are wide: the outliers ball-union precision is fooled by.

``python tests/letters.py DIR [N]`` writes ``DIR/t10k-images-idx3-ubyte.gz`` and
its labels, readable as ``data.source=mnist:DIR``.
"""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LETTERS = "ABCDEFGHIJ"


def _glyph(letter: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One white-on-black letter, float in [0, 1], jittered by a random affine map."""
    big = 4 * size  # drawn large, then transformed and shrunk: smooth edges
    font = ImageFont.load_default(size=int(rng.integers(int(2.2 * size), int(3.3 * size))))
    im = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(im)
    stroke = int(rng.integers(0, 3)) * size // 14
    box = draw.textbbox((0, 0), letter, font=font, stroke_width=stroke)
    at = ((big - box[2] - box[0]) / 2, (big - box[3] - box[1]) / 2)
    draw.text(at, letter, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    a = np.deg2rad(rng.uniform(-12, 12))
    shear, scale = rng.uniform(-0.25, 0.25), rng.uniform(0.9, 1.1)
    m = np.array([[np.cos(a), -np.sin(a) + shear], [np.sin(a), np.cos(a)]]) / scale
    c = np.array([big / 2, big / 2])
    off = c - m @ (c + rng.uniform(-0.08, 0.08, 2) * big)
    im = im.transform((big, big), Image.Transform.AFFINE, (*m[0], off[0], *m[1], off[1]),
                      resample=Image.Resampling.BILINEAR)  # fmt: skip
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS), np.float64) / 255


def _odd(glyph: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The letter as a texture (noise, stripes, checks) or on a grey gradient."""
    size = len(glyph)
    y, x = np.mgrid[0:size, 0:size] / size
    kind = rng.integers(0, 4)
    if kind == 0:  # a grey gradient behind a mid-grey letter
        t = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(t) * x + np.sin(t) * y + 1) / 2
        return np.maximum(ramp * rng.uniform(0.4, 0.9), glyph * rng.uniform(0.5, 1.0))
    if kind == 1:  # noise inside the letter
        return glyph * rng.uniform(0.2, 1.0, glyph.shape)
    period = rng.uniform(2, 5)
    phase = rng.uniform(0, 2 * np.pi, 2)
    if kind == 2:  # stripes
        texture = 0.5 + 0.5 * np.sin(2 * np.pi * x * size / period + phase[0])
    else:  # checks
        texture = (np.sin(2 * np.pi * x * size / period + phase[0])
                   * np.sin(2 * np.pi * y * size / period + phase[1]) > 0)  # fmt: skip
    return np.clip(glyph * 1.5, 0, 1) * (0.25 + 0.75 * texture)


def letters(
    n: int, size: int = 28, odd: float = 0.03, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, size, size), labels int64 (n,)): letters A-J, ``odd`` of them
    textured or on a grey gradient."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(LETTERS), n)
    strange = rng.random(n) < odd
    out = np.empty((n, size, size), np.uint8)
    for i, lab in enumerate(labels):
        g = _glyph(LETTERS[lab], size, rng)
        if strange[i]:
            g = _odd(g, rng)
        out[i] = np.rint(np.clip(g, 0, 1) * 255)
    return out, labels.astype(np.int64)


def write_idx(folder: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """The MNIST test-set file pair (gzip IDX) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, h, w) + images.tobytes())
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())
    return folder


if __name__ == "__main__":
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    print(write_idx(Path(sys.argv[1]), *letters(count)))
