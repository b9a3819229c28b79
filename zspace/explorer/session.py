"""What the explorer serves, loaded once when it starts: the run, its encoded points and
their images, the PCA of the points, the 2-D maps, the samplers and an exact
nearest-neighbour search over the training points.

Nothing here knows about HTTP: methods take checked values and return arrays, PNG
bytes or JSON-ready dicts, so the request handlers stay thin and tests can call them
directly. The run folder is only read, never written: a Gaussian fitted on request
stays in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zspace.analysis.common import subsample
from zspace.analysis.neighbours import NeighbourIndex
from zspace.analysis.pca import principal_axes
from zspace.analysis.runner import load_result
from zspace.core.errors import ZspaceError
from zspace.data.preview import png_bytes
from zspace.generation import paths, samplers
from zspace.generation.images import decode_u8
from zspace.latents.store import Latents, latents_path, load_latents
from zspace.runs.run import RunLike, as_run

MAX_POINTS = 30_000  # points drawn on the map (a seeded subsample beyond that)
N_DIRECTIONS = 8  # leading PCA directions offered as sliders
UNIFORM_LIMIT = 1.0  # the uniform sampler's default half-width (as `zspace generate`)
PNG_LEVEL = 1  # zlib level of live images: 4.5x faster than Pillow's default 6 on 96x96x3
# (0.7 against 3.1 ms) for 18 % more bytes, which a local connection does not notice


@dataclass(frozen=True)
class MapSpec:
    """One 2-D map the page can show: a PCA pair (computed here) or the saved t-SNE."""

    name: str
    title: str
    pair: tuple[int, int] | None = None  # 1-based PCA components


def _round(values: np.ndarray, digits: int = 5) -> list[float]:
    """Plain floats with ``digits`` significant digits of the largest magnitude (small JSON)."""
    v = np.asarray(values, np.float64)
    top = float(np.abs(v).max()) if v.size else 0.0
    decimals = max(0, digits - int(np.ceil(np.log10(top)))) if top > 0 else 0
    return np.round(v, decimals).tolist()


class Session:
    """The explorer's state for one run and split (see the module docstring)."""

    def __init__(
        self,
        run: RunLike,
        *,
        split: str = "train",
        max_points: int = MAX_POINTS,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if max_points < 2:
            raise ZspaceError(f"max_points = {max_points}: must be >= 2")
        self.log = log or (lambda s: None)
        self.run = as_run(run)
        self.path = Path(self.run.path)
        self.split = split
        self.lat: Latents = load_latents(self.run, split)
        d = self.run.z_dim
        if self.lat.z_dim != d or len(self.lat) < 2:
            raise ZspaceError(
                f"latents/{split}.npz has {len(self.lat)} points of d = {self.lat.z_dim} but "
                f"the model has z_dim {d}; run `zspace encode {self.path} --split {split}` again"
            )
        self.z = np.ascontiguousarray(self.lat.z, np.float32)
        self.reference = self._reference()
        self.neighbours = NeighbourIndex(self.reference)
        self.images_note: str | None = "the data have fewer images than the latents"
        self.images = None
        try:  # the run's images as training read them
            images = self.run.data()[0].images
            if int(self.lat.index.max()) < len(images):
                self.images, self.images_note = images, None
        except ZspaceError as exc:
            self.images_note = f"the run's images cannot be read ({exc})"
        self._pca()
        self.map_rows = subsample(len(self.z), max_points, self.run.config.seed)
        self.maps = self._maps()
        self._lock = threading.Lock()  # lazy fits and cached maps
        # fits saved by `zspace generate` for exactly these training latents
        fp = samplers.fingerprint(self.reference)
        saved = (samplers.Fitted(n).load(self.path / "samplers") for n in ("gauss", "gmm"))
        self._gauss, self._gmm = (f if f and f.info.get("latents") == fp else None for f in saved)
        self._gauss_saved = self._gauss is not None

    # ------------------------------------------------------------ loading

    def _reference(self) -> np.ndarray:
        """The encoded training points: for the nearest-neighbour distance and the fits."""
        if self.split == "train" or not latents_path(self.path, "train").is_file():
            return self.z
        train = load_latents(self.run, "train").z
        return np.ascontiguousarray(train, np.float32) if train.shape[1] == self.z_dim else self.z

    def _pca(self) -> None:
        # the package's one PCA (rows = directions, largest variance first, fixed signs),
        # so the sliders move along the directions the analysis and traversals use
        self.mean, vals, self.components = principal_axes(self.z)
        self.sigma = np.sqrt(vals)
        total = vals.sum()
        self.explained = vals / total if total > 0 else np.zeros_like(vals)
        # each axis's std from the covariance's diagonal, without a float64 copy of z
        self.axis_std = np.sqrt(np.clip((self.components**2 * vals[:, None]).sum(0), 0, None))

    def _maps(self) -> dict[str, MapSpec]:
        d = self.z_dim
        maps = {"pca": MapSpec("pca", "PCA 1-2", (1, 2) if d > 1 else (1, 1))}
        saved = load_result(self.path, "pca")
        if saved is not None and saved[0].get("split") == self.split:
            for a, b in saved[0].get("result", {}).get("pairs", []):
                if (a, b) != (1, 2) and 1 <= a <= d and 1 <= b <= d:
                    maps[f"pca-{a}-{b}"] = MapSpec(f"pca-{a}-{b}", f"PCA {a}-{b}", (a, b))
        if (tsne := self._tsne()) is not None:
            r = tsne[0].get("result", {})
            title = f"t-SNE (saved, {r.get('n', '?')} points, perplexity {r.get('perplexity')})"
            maps["tsne"] = MapSpec("tsne", title)
        return maps

    def _tsne(self) -> tuple[dict, dict] | None:
        """The saved t-SNE map when it was made from these latents (same split and count)."""
        saved = load_result(self.path, "tsne")
        if saved is None:
            return None
        rec, arrays = saved
        ok = (
            rec.get("split") == self.split
            and rec.get("result", {}).get("n_total") == len(self.z)
            and {"embedding", "index"} <= set(arrays)
            and len(arrays["index"]) == len(arrays["embedding"])
            and (len(arrays["index"]) == 0 or int(arrays["index"].max()) < len(self.z))
        )
        if not ok:
            self.log("explore: the saved t-SNE map is not of these latents; not offered")
            return None
        return rec, arrays

    # ------------------------------------------------------------ facts

    @property
    def z_dim(self) -> int:
        return int(self.z.shape[1])

    def info(self) -> dict[str, Any]:
        lat = self.lat
        colours = self.colour_choices()
        return {
            "run": str(self.path),
            "name": self.path.name,
            "kind": "vae" if self.run.variational else "ae",
            "z_dim": self.z_dim,
            "image_shape": [int(v) for v in self.run.input_shape],
            "epoch": self.run.epoch,
            "split": self.split,
            "counts": {
                "points": len(self.z),
                "map_points": len(self.map_rows),
                "reference": len(self.reference),
            },
            "images": self.images is not None,
            "images_note": self.images_note,
            "label_names": list(lat.label_names) if lat.label_names else None,
            "maps": [{"name": m.name, "title": m.title} for m in self.maps.values()],
            "colours": colours,
            "default_colour": self.default_colour(),
            "samplers": self.sampler_list(),
            "directions": min(N_DIRECTIONS, self.z_dim),
        }

    def directions(self) -> dict[str, Any]:
        """The leading PCA directions (unit vectors with their std) and the per-axis std:
        what the page's sliders move along, in units of one standard deviation."""
        k = min(N_DIRECTIONS, self.z_dim)
        return {
            "mean": _round(self.mean, 7),
            "pca": [
                {
                    "component": j + 1,
                    "sigma": float(self.sigma[j]),
                    "explained": float(self.explained[j]),
                    "vector": _round(self.components[j], 7),
                }
                for j in range(k)
            ],
            "axis_std": _round(self.axis_std, 7),
        }

    # ------------------------------------------------------------ colours and maps

    def colour_choices(self) -> list[str]:
        out = ["label"] if self.lat.label is not None else []
        out += list(self.lat.attr_names or ()) if self.lat.attr is not None else []
        return [*out, "radius", "none"]

    def default_colour(self) -> str:
        choices = self.colour_choices()
        return next((c for c in ("label", "Male") if c in choices), choices[0])

    def colour(self, by: str, rows: np.ndarray) -> dict[str, Any]:
        lat = self.lat
        if by == "label":
            values = np.asarray(lat.label)[rows]
            top = int(np.asarray(lat.label).max()) + 1
            names = list(lat.label_names or ()) or [str(v) for v in range(top)]
            return {"by": by, "kind": "category", "values": values.tolist(), "names": names}
        if by == "radius":
            return {"by": by, "kind": "continuous", "values": _round(self.radius(self.z[rows]), 4)}
        if by == "none":
            return {"by": by, "kind": "none", "values": []}
        col = np.asarray(lat.attr)[np.asarray(rows), list(lat.attr_names or ()).index(by)]
        # CelebA's -1 / +1, and 0 for images the attribute file does not cover
        values = np.where(col > 0, 1, np.where(col < 0, 0, 2))
        names = [f"not {by}", by, "unknown"]
        return {"by": by, "kind": "category", "values": values.tolist(), "names": names}

    def map_data(self, name: str, by: str) -> dict[str, Any]:
        spec = self.maps[name]
        if spec.pair is None:  # the saved t-SNE map
            if (saved := self._tsne()) is None:
                raise ZspaceError("the saved t-SNE map has changed since the explorer started")
            arrays = saved[1]
            rows = np.asarray(arrays["index"], np.int64)
            xy = np.asarray(arrays["embedding"], np.float64)
        else:
            rows = self.map_rows
            comps = self.components[[spec.pair[0] - 1, spec.pair[1] - 1]]
            xy = (np.asarray(self.z[rows], np.float64) - self.mean) @ comps.T
        return {
            "name": name,
            "title": spec.title,
            "rows": rows.tolist(),
            "x": _round(xy[:, 0]),
            "y": _round(xy[:, 1]),
            "colour": self.colour(by, rows),
        }

    # ------------------------------------------------------------ images

    def decode_png(self, z: np.ndarray) -> list[bytes]:
        """(n, d) points to PNGs of their decoded images. Callers serialise model use."""
        return [png_bytes(img, PNG_LEVEL) for img in decode_u8(self.run, z)]

    def nearest(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, distances) of the nearest training point to each row of z (exact)."""
        dist, rows = self.neighbours.query(z)
        return rows[:, 0], dist[:, 0]

    def image_png(self, i: int) -> bytes:
        """The original image of point ``i`` (a row of the split's latents)."""
        if self.images is None:
            raise ZspaceError(self.images_note or "no images")
        return png_bytes(np.asarray(self.images[int(self.lat.index[i])]), PNG_LEVEL)

    def radius(self, z: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(z, np.float64), axis=-1)

    def point(self, i: int) -> dict[str, Any]:
        """Encoded point ``i``: z, its radius and nearest other training point, its
        original image and reconstruction (of mu for a VAE, of z for an AE)."""
        lat = self.lat
        code = lat.mu[i] if lat.mu is not None else self.z[i]
        out: dict[str, Any] = {
            "i": int(i),
            "index": int(lat.index[i]),
            "z": _round(self.z[i], 7),
            "radius": float(self.radius(self.z[i])),
            "reconstruction_of": "mu" if lat.mu is not None else "z",
            "reconstruction": self.decode_png(code[None])[0],
            "original": self.image_png(i) if self.images is not None else None,
        }
        if lat.mu is not None:
            out["mu_radius"] = float(self.radius(lat.mu[i]))
        if lat.label is not None:
            lab = int(lat.label[i])
            out["label"] = lab
            names = lat.label_names or ()
            out["label_name"] = names[lab] if 0 <= lab < len(names) else str(lab)
        if lat.attr is not None and lat.attr_names:
            row = np.asarray(lat.attr[i])
            out["attributes"] = {n: int(v) for n, v in zip(lat.attr_names, row, strict=True) if v}
        return out

    # ------------------------------------------------------------ samplers and paths

    def sampler_list(self) -> list[dict[str, Any]]:
        gauss = (
            "saved fit (zspace generate)"
            if self._gauss_saved
            else "fitted to the training points on first use, kept in memory"
        )
        gmm_note = (
            f"saved fit, {self._gmm.info.get('n_components')} components"
            if self._gmm is not None
            else f"no saved fit for these latents: run `zspace generate {self.path} "
            "--sampler gmm` first"
        )
        return [
            {"name": "normal", "available": True, "note": "N(0, I)"},
            {
                "name": "uniform",
                "available": True,
                "note": "every component uniform in [-limit, limit]",
                "limit": UNIFORM_LIMIT,
            },
            {"name": "gauss", "available": True, "note": gauss},
            {"name": "gmm", "available": self._gmm is not None, "note": gmm_note},
        ]

    def draw(self, name: str, n: int, seed: int, limit: float | None = None) -> np.ndarray:
        """(n, d) points from sampler ``name`` with a seeded generator."""
        rng = np.random.default_rng(seed)
        if name == "gmm":
            if self._gmm is None:
                raise ZspaceError(self.sampler_list()[3]["note"])
            return self._gmm.sample(n, rng)
        if samplers.check_sampler(name) == "gauss":
            with self._lock:  # fitted once, on the first draw
                self._gauss = self._gauss or samplers.Fitted("gauss").fit(self.reference)
            return self._gauss.sample(n, rng)
        uniform = limit or UNIFORM_LIMIT if name == "uniform" else None
        return samplers.Sampler(self.z_dim, uniform).sample(n, rng)

    def path_points(self, a: int, b: int, steps: int) -> dict[str, np.ndarray]:
        za, zb = self.z[a], self.z[b]
        return {"lerp": paths.lerp(za, zb, steps), "slerp": paths.slerp(za, zb, steps)}
