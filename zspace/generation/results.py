"""What the generation functions return: small dataclasses a notebook can show.

They read like the dicts they replace (``res["results"]``, ``entry["file"]``), so
code written against the files keeps working, and they display themselves in
Jupyter: ``_repr_html_`` with the key numbers and the images inline, ``figure()``
for a matplotlib Figure (drawn by the reporting stage's renderer, ``core.display``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zspace.core.display import esc, img, renderer
from zspace.core.results import Result

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True, eq=False)
class SampleImage(Result):
    """One PNG under ``RUN/samples/`` and its index entry."""

    file: str
    kind: str
    sampler: str
    params: dict[str, Any]
    caption: str
    folder: Path = field(repr=False)

    @property
    def path(self) -> Path:
        return self.folder / self.file

    def figure(self) -> Figure:
        return renderer().figures(self)[0]

    def _repr_html_(self) -> str:
        if not self.path.is_file():
            return f"<p>{esc(self.path)} is missing</p>"
        return img(self.path.read_bytes(), self.file, self.caption)


class SampleImages(tuple[SampleImage, ...]):
    """Several grids (one per sampler, limit, sharpening factor), in the order made."""

    def _repr_html_(self) -> str:
        return "".join(item._repr_html_() for item in self)


@dataclass(frozen=True, eq=False)
class Reconstructions(Result):
    """Reconstruction grids and, when measured, the split's mean loss, PSNR and SSIM."""

    split: str
    metrics: dict[str, Any] | None
    entries: SampleImages

    def _repr_html_(self) -> str:
        m = self.metrics
        head = (
            f"<p>{esc(self.split)}: mean loss {m['loss']:.4g}, PSNR {m['psnr']:.2f} dB, "
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
            f"<tr><td>{esc(r['sampler'])}</td><td>{esc(params_text(r['params']))}"
            f"</td><td>{r['rate']:.3f}</td><td>{r['mean_radius']:.3g}</td></tr>"
            for r in self.results
        )
        warn = f"<p><b>warning</b>: {esc(self.warning)}</p>" if self.warning else ""
        return (
            f"<p>meaningful-point rate (threshold {self.threshold:.4g}, {self.reference_size} "
            f"reference points in {esc(self.space)})</p>{warn}<table><tr><th>sampler"
            f"</th><th>parameters</th><th>rate</th><th>mean radius</th></tr>{rows}</table>"
        )


def params_text(params: dict[str, Any]) -> str:
    """A row's parameters as the log and the notebook table show them: ``k=v, k=v``."""
    return ", ".join(f"{k}={v}" for k, v in params.items())
