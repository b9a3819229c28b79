"""The one check for positive numbers, shared by the config, analyses and generation."""

from __future__ import annotations

import math

from zspace.errors import ZspaceError


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
