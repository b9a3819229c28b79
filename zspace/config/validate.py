"""Resolving derived defaults and validating a configuration, with one-line errors.

``resolve`` broadcasts scalar kernels/strides and mirrors the decoder; ``validate``
checks the values that do not depend on the data; ``check_geometry`` the strides
against the image size, once the data is known.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from zspace.config.schema import CHOICES, SECTIONS, Config, ModelConfig
from zspace.core.errors import ZspaceError


def _at_least(low: int, note: str = "") -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v >= low), f"must be >= {low}{note}"


_FRACTION = (lambda v: 0 <= v < 1), "must be in [0, 1)"
#: each number's test and what the message says it must be (a list: every entry)
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": _at_least(0, " (NumPy's generators need it)"),
    "model.z_dim": _at_least(1),
    "model.fact": _at_least(0),
    "model.fact_warmup_epochs": _at_least(0),
    "model.encoder_filters": _at_least(1),
    "model.decoder_filters": _at_least(1),
    "model.encoder_kernels": (
        lambda v: v >= 1 and v % 2 == 1,
        "kernel sizes must be odd and >= 1 ('same' padding is symmetric only for odd kernels)",
    ),
    "model.encoder_strides": _at_least(1),
    "model.leaky_slope": _at_least(0),
    "model.dropout": _FRACTION,
    "model.enc_dense": _at_least(0, " (0 = off)"),
    "model.eps_clip": _at_least(0),
    "model.eps_scale": _at_least(0),
    "data.image_size": _at_least(0, " (0 = native)"),
    "data.channels": ((lambda v: v in (0, 1, 3)), "must be 1, 3 or 0 (= native)"),
    "data.class_names": ((lambda v: bool(v.strip())), "a class name must not be empty"),
    "data.noise_sigma": _at_least(0),
    "data.drop_fraction": _FRACTION,
    "data.valid_fraction": _FRACTION,
    "train.epochs": _at_least(1),
    "train.batch_size": _at_least(1),
    "train.lr": ((lambda v: v > 0), "must be > 0"),
    "train.lr_decay_every": _at_least(0),
    "train.lr_decay_factor": ((lambda v: 0 < v <= 1), "must be in (0, 1]"),
    "train.keep_checkpoints": _at_least(0),
    "train.threads": _at_least(0, " (0 = all cores)"),
    "train.lr_base_batch": _at_least(1),
}
RULES["model.decoder_kernels"] = RULES["model.encoder_kernels"]
RULES["model.decoder_strides"] = RULES["model.encoder_strides"]


def did_you_mean(name: str, choices: list[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest choice, or one whose last dotted part
    is ``name`` (``fact`` -> ``model.fact``); else ""."""
    close = difflib.get_close_matches(name, choices, n=1)
    close = close or [c for c in choices if c.rpartition(".")[2] == name][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


def flatten(cfg: Config) -> dict[str, Any]:
    """Every value of a Config by its key: ``{"seed": 0, "model.z_dim": 16, ...}``."""
    out: dict[str, Any] = {"seed": cfg.seed}
    for name in SECTIONS:
        for key, value in dataclasses.asdict(getattr(cfg, name)).items():
            out[f"{name}.{key}"] = value
    return out


def _broadcast(
    name: str, values: tuple[int, ...], n: int, against: str = "model.encoder_filters has"
) -> tuple[int, ...]:
    """A single value applies to every layer; otherwise the list must have one per layer."""
    if len(values) == 1 and n > 1:
        return values * n
    if len(values) != n:
        raise ZspaceError(f"config: {name} has {len(values)} entries but {against} {n}")
    return values


def resolve(cfg: Config) -> Config:
    """Fill derived defaults (broadcast kernels/strides, mirror the decoder lists)."""
    m = cfg.model
    n = len(m.encoder_filters)
    if n == 0:
        raise ZspaceError("config: model.encoder_filters = []: needs at least one layer")
    kernels = _broadcast("model.encoder_kernels", m.encoder_kernels, n)
    strides = _broadcast("model.encoder_strides", m.encoder_strides, n)
    dec_kernels = m.decoder_kernels or tuple(reversed(kernels))
    dec_strides = m.decoder_strides or tuple(reversed(strides))
    mirrors = "the decoder mirrors the encoder's layers:"
    dec_kernels = _broadcast("model.decoder_kernels", dec_kernels, n, mirrors)
    dec_strides = _broadcast("model.decoder_strides", dec_strides, n, mirrors)
    model = dataclasses.replace(
        m,
        encoder_kernels=kernels,
        encoder_strides=strides,
        decoder_kernels=dec_kernels,
        decoder_strides=dec_strides,
    )
    return dataclasses.replace(cfg, model=model)


def decoder_filters(model: ModelConfig, channels: int) -> tuple[int, ...]:
    """The decoder's filter list: given, or the encoder's reversed ending in ``channels``."""
    if model.decoder_filters:
        return model.decoder_filters
    return tuple(reversed(model.encoder_filters[:-1])) + (channels,)


def validate(cfg: Config) -> Config:
    """Check values that do not depend on the data (shapes are checked by ``check_geometry``)."""
    values = flatten(cfg)
    for key, choices in CHOICES.items():
        for v in values[key] if isinstance(values[key], tuple) else [values[key]]:
            if v not in choices:
                raise ZspaceError(
                    f"config: {key} = {v!r}: expected one of {', '.join(choices)}"
                    f"{did_you_mean(v, list(choices))}"
                )
    for key, (ok, must) in RULES.items():
        value = values[key]
        if not all(ok(v) for v in (value if isinstance(value, tuple) else [value])):
            shown = list(value) if isinstance(value, tuple) else repr(value)
            raise ZspaceError(f"config: {key} = {shown}: {must}")
    m, d = cfg.model, cfg.data
    if m.decoder_filters and len(m.decoder_filters) != len(m.encoder_filters):
        raise ZspaceError(
            f"config: model.decoder_filters has {len(m.decoder_filters)} entries but "
            f"model.encoder_filters has {len(m.encoder_filters)}"
        )
    if not d.source:
        raise ZspaceError("config: data.source is empty")
    if d.task == "denoise" and d.noise_sigma == 0 and d.drop_fraction == 0:
        raise ZspaceError(
            "config: data.task = 'denoise' needs data.noise_sigma > 0 or data.drop_fraction > 0"
        )
    return cfg


def check_geometry(cfg: Config, image_size: int, channels: int) -> None:
    """Refuse strides that do not divide the size they meet, naming the layer and sizes.

    With 'same' padding a stride-s layer maps H to ceil(H/s); the decoder mirrors
    the encoder back only when each division is exact, so anything else is refused
    rather than cropped.
    """
    m = cfg.model
    size = image_size
    for i, s in enumerate(m.encoder_strides, start=1):
        if size % s:
            sizes = accumulate(m.encoder_strides, lambda a, s: math.ceil(a / s), initial=image_size)
            chain = " -> ".join(map(str, sizes))
            raise ZspaceError(
                f"config: model.encoder_strides = {list(m.encoder_strides)}: stride {s} of "
                f"encoder layer {i} does not divide the size {size} it meets "
                f"(sizes {chain} for {image_size}x{image_size} input)"
            )
        size //= s
    out = size * math.prod(m.decoder_strides)
    if out != image_size:
        raise ZspaceError(
            f"config: model.decoder_strides = {list(m.decoder_strides)}: the decoder maps "
            f"{size}x{size} to {out}x{out}, not the input size {image_size}x{image_size}"
        )
    dec = decoder_filters(m, channels)
    if dec[-1] != channels:
        raise ZspaceError(
            f"config: model.decoder_filters = {list(dec)}: the last layer must output the "
            f"{channels} image channel(s)"
        )
