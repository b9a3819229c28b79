"""The checks for numbers, shared by the config, analyses and generation."""

from __future__ import annotations

import math

from zspace.core.errors import ZspaceError


def positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """Refuse a value that is not > 0 (>= 0 with ``allow_zero``) or not finite.

    The message names the value and the bound, ``NAME = VALUE: must be > 0``; for
    integers the bound reads ``>= 1``, which is what a count means."""
    ok = value >= 0 if allow_zero else value > 0
    try:
        finite = math.isfinite(value)
    except (TypeError, OverflowError):
        finite = False
    if ok and finite:
        return
    integer = isinstance(value, int) and not isinstance(value, bool)
    bound = ">= 0" if allow_zero else (">= 1" if integer else "> 0")
    raise ZspaceError(f"{name} = {value!r}: must be {bound}")


FLOAT32_MAX = 3.4028234663852886e38


def finite_float32(name: str, value: float) -> float:
    """Refuse NaN, inf and magnitudes float32 cannot hold (the dtype of z and images),
    which would otherwise turn into NaN pictures without a word."""
    try:
        ok = math.isfinite(value) and abs(value) <= FLOAT32_MAX
    except (TypeError, OverflowError):
        ok = False
    if not ok:
        raise ZspaceError(f"{name} = {value!r}: must be a finite number within float32's range")
    return float(value)
