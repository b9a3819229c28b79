"""The one rule for the names of generated files.

``<kind>-<part>-<part>...png``: the kind (grid, recon, interp, traverse, attribute),
then every parameter that changes the picture, each as a short key and its value
(``limit0.5``, ``sharp3``, ``s0to2x5``, ``seed0``). So a grid made with other
parameters gets another name and both are kept, while the same call made twice
replaces its own file. Values are made safe for every file system: a file given
as input contributes its stem (no ``.png`` inside a name), other characters
become ``_``, and a name longer than ``MAX_LEN`` keeps its start and ends in a
short hash of all its parts, so it stays unique.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MAX_LEN = 96
_UNSAFE = re.compile(r"[^A-Za-z0-9+-]+")


def number(x: float) -> str:
    """1 -> "1", 0.5 -> "0.5", -3 -> "-3", 1e-05 -> "1e-5"."""
    text = f"{float(x):g}"
    return text.replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")


def numbers(values: Sequence[float]) -> str:
    """A list of numbers: ``0to2x5`` for five evenly spaced values from 0 to 2 (to 1 %
    of a step, so rounded values count), else the values joined by ``_``."""
    vals = [float(v) for v in values]
    if len(vals) >= 3:
        steps = [b - a for a, b in zip(vals, vals[1:], strict=False)]
        if steps[0] and max(steps) - min(steps) <= 0.01 * abs(steps[0]):  # rounded values too
            return f"{number(vals[0])}to{number(vals[-1])}x{len(vals)}"
    return "_".join(number(v) for v in vals)


def text(value: Any) -> str:
    """A string part: a path contributes its stem; unsafe characters become ``_``."""
    s = str(value)
    if "/" in s or "\\" in s or Path(s).suffix:
        s = Path(s).stem
    safe = _UNSAFE.sub("_", s).strip("_")
    if len(safe) < len(s) / 2:  # mostly other scripts: a short hash keeps names apart
        safe = (safe + "_" if safe else "") + hashlib.sha1(s.encode()).hexdigest()[:6]
    return safe


def part(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return key if value else ""
    if isinstance(value, int | float):
        return f"{key}{number(value)}"
    if isinstance(value, list | tuple):
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return f"{key}{numbers(value)}"
        return key + "+".join(text(v) for v in value)
    return f"{key}{text(value)}"


def sample_file(kind: str, *parts: tuple[str, Any], ext: str = "png") -> str:
    """The file name for a generated image: kind, then ``key+value`` for each part
    that is set (None and False parts are left out), e.g.
    ``sample_file("grid", ("", "uniform"), ("limit", 0.5), ("n", 64), ("seed", 0))``
    -> ``grid-uniform-limit0.5-n64-seed0.png``."""
    bits = [text(kind)] + [p for p in (part(k, v) for k, v in parts) if p]
    stem = "-".join(bits)
    if len(stem) > MAX_LEN:
        digest = hashlib.sha1(repr(parts).encode()).hexdigest()[:8]
        stem = f"{stem[: MAX_LEN - 9].rstrip('-_')}-{digest}"
    return f"{stem}.{ext}"
