"""How eval.json's rows are read: the headline (sorted by, shown first), the
fidelity, the metrics' names and order, and the flags (docs/evaluation.md, *Reading
a row*, has the evidence for each choice and threshold).

Both flag rules compare a row with the real-vs-real floor, so they hold for any
data set, evaluator and n:

- precision, density or the latent rate reaches ``CLOSE`` of the floor's (or beats
  it) while recall or coverage is below ``SMALL`` of the floor's: the letters' grey
  mush, beside a few odd real images, scored precision 1.000 this way;
- two thirds of the row's images fall in the balls of at most ``HANDFUL`` reference
  images (``capture.most_held_by``) and at most a fifth as many as the floor's (at
  a tiny n even real images crowd into a few balls).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FD_NAME = "FD-zspace"
HEADLINE: dict[str, Any] = {"metric": "fd", "higher_is_better": False}
FIDELITY: dict[str, Any] = {"metric": "vouched_precision", "higher_is_better": True}
METRICS = {  # eval.json key -> the name tables show, in their order: the headline first
    "fd": FD_NAME,
    "vouched_precision": "vouched precision",
    "precision": "precision",
    "recall": "recall",
    "density": "density",
    "coverage": "coverage",
    "kid": "KID",
    "extent": "extent",
    "confident_share": "confident share",
    "face_rate": "face rate",
}
CLOSE = 0.9
SMALL = 0.1
HANDFUL = 3
HIGH = (("precision", "precision"), ("density", "density"), ("latent_rate", "latent rate"))
LOW = (("recall", "recall"), ("coverage", "coverage"))


def row_flags(row: dict[str, Any], floor: dict[str, Any], reference_size: int) -> list[str]:
    """The flag sentences of one row (empty when nothing is wrong); ``row`` and
    ``floor`` are eval.json rows, with ``latent_rate`` where rates.json had it."""
    m, f = {**row["metrics"], **_rate(row)}, {**floor["metrics"], **_rate(floor)}
    out = []
    high = [(label, m[key], f[key]) for key, label in HIGH if key in m and key in f and
            f[key] > 0 and m[key] >= CLOSE * f[key]]  # fmt: skip
    low = [(label, m[key], f[key]) for key, label in LOW if f.get(key, 0) > 0 and
           m[key] < SMALL * f[key]]  # fmt: skip
    if high and low:
        out.append(
            " and ".join(f"{label} {v:.4g}" for label, v, _ in high)
            + (" reaches" if len(high) == 1 else " reach")
            + f" {100 * CLOSE:.0f} % of the real floor's ("
            + ", ".join(f"{fv:.4g}" for _, _, fv in high)
            + ") or more while "
            + " and ".join(f"{label} is {100 * v / fv:.2g} %" for label, v, fv in low)
            + " of the floor's: it overstates, the images resemble little of the data"
        )
    cap, n = row.get("capture") or {}, row["params"]["n"]
    most, floor_most = cap.get("most_held_by"), (floor.get("capture") or {}).get("most_held_by")
    if most is not None and most <= min(HANDFUL, (floor_most or 0) / 5):
        out.append(
            f"{cap['inside']:,} of {n:,} images fall in the balls of {cap['held_by']:,} of "
            f"{reference_size:,} reference images, two thirds in {most:,}: a tight cluster "
            "beside a few real images"
        )
    return out


def _rate(row: dict[str, Any]) -> dict[str, float]:
    rate = row.get("latent_rate")
    return {} if rate is None else {"latent_rate": float(rate)}


def ranked(results: Sequence[dict[str, Any]], headline: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows in display order: ``real`` first, then best headline first (rows
    without it last). eval.json keeps the order computed."""
    sign = -1 if headline.get("higher_is_better") else 1

    def key(row: dict[str, Any]) -> tuple[bool, float]:
        value = row.get("metrics", {}).get(headline.get("metric"))
        return row["sampler"] != "real", sign * value if value is not None else float("inf")

    return sorted(results, key=key)
