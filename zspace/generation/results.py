"""What the generation functions return: small dataclasses a notebook can show.

They read like the dicts they replace (``res["results"]``, ``entry["file"]``), so
code written against the files keeps working, and they display themselves in
Jupyter: ``_repr_html_`` with the key numbers and the images inline, ``figure()``
for a matplotlib Figure (drawn by the reporting stage's renderer, ``core.display``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zspace.core.display import data_url, renderer
from zspace.core.results import Result

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _img(path: Path, alt: str) -> str:
    if not path.is_file():
        return f"<p>{html.escape(str(path))} is missing</p>"
    return f'<img src="{data_url(path.read_bytes())}" alt="{html.escape(alt)}">'


@dataclass(frozen=True, eq=False)
class SampleImage(Result):
    """One PNG under ``RUN/samples/`` and its index entry."""

    file: str
    kind: str
    sampler: str
    params: dict[str, Any]
    caption: str
    folder: Path = field(repr=False)

    @classmethod
    def of(cls, entry: dict[str, Any], folder: Path) -> SampleImage:
        return cls(**{k: entry[k] for k in ("file", "kind", "sampler", "params", "caption")},
                   folder=Path(folder))  # fmt: skip

    @property
    def path(self) -> Path:
        return self.folder / self.file

    def figure(self) -> Figure:
        return renderer().figures(self)[0]

    def _repr_html_(self) -> str:
        cap = html.escape(self.caption)
        return f"<figure>{_img(self.path, self.file)}<figcaption>{cap}</figcaption></figure>"


@dataclass(frozen=True, eq=False)
class SampleImages(Sequence):
    """Several grids (one per sampler, limit, sharpening factor), in the order made."""

    items: tuple[SampleImage, ...]

    def __getitem__(self, i):  # type: ignore[override]
        return self.items[i]

    def __len__(self) -> int:
        return len(self.items)

    def _repr_html_(self) -> str:
        return "".join(item._repr_html_() for item in self.items)


@dataclass(frozen=True, eq=False)
class Reconstructions(Result):
    """Reconstruction grids and, when measured, the split's mean loss, PSNR and SSIM."""

    split: str
    metrics: dict[str, Any] | None
    entries: SampleImages

    def _repr_html_(self) -> str:
        m = self.metrics
        head = (
            f"<p>{html.escape(self.split)}: mean loss {m['loss']:.4g}, PSNR {m['psnr']:.2f} dB, "
            f"SSIM {m['ssim']:.3f} over {m['n']} images</p>"
            if m
            else ""
        )
        return head + self.entries._repr_html_()


@dataclass(frozen=True, eq=False)
class Rates(Result):
    """The meaningful-point rate per sampler (what ``samples/rates.json`` holds)."""

    threshold: float
    quantile: float
    reference_size: int
    spread: float
    warning: str | None
    space: str
    seed: int
    results: list[dict[str, Any]]

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(r['sampler'])}</td><td>{html.escape(_params(r['params']))}"
            f"</td><td>{r['rate']:.3f}</td><td>{r['mean_radius']:.3g}</td></tr>"
            for r in self.results
        )
        warn = f"<p><b>warning</b>: {html.escape(self.warning)}</p>" if self.warning else ""
        return (
            f"<p>meaningful-point rate (threshold {self.threshold:.4g}, {self.reference_size} "
            f"reference points in {html.escape(self.space)})</p>{warn}<table><tr><th>sampler"
            f"</th><th>parameters</th><th>rate</th><th>mean radius</th></tr>{rows}</table>"
        )


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
