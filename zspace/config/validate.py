"""Resolving derived defaults and validating a configuration, with one-line errors.

``resolve`` broadcasts scalar kernels/strides and mirrors the decoder; ``validate``
checks the values that do not depend on the data; ``check_geometry`` the strides
against the image size, once the data is known.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import replace

from zspace.config.schema import (
    ACTIVATIONS,
    COMPILE_MODES,
    CROPS,
    CUDA_GRAPHS,
    DEVICES,
    LOG_BACKENDS,
    LOSSES,
    LR_SCALINGS,
    PRECISIONS,
    TASKS,
    Config,
    ModelConfig,
)
from zspace.core.checks import positive
from zspace.core.errors import ZspaceError


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


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
    model = replace(
        m,
        encoder_kernels=kernels,
        encoder_strides=strides,
        decoder_kernels=dec_kernels,
        decoder_strides=dec_strides,
    )
    return replace(cfg, model=model)


def decoder_filters(model: ModelConfig, channels: int) -> tuple[int, ...]:
    """The decoder's filter list: given, or the encoder's reversed ending in ``channels``."""
    if model.decoder_filters:
        return model.decoder_filters
    return tuple(reversed(model.encoder_filters[:-1])) + (channels,)


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ZspaceError(
            f"config: {key} = {value!r}: expected one of {', '.join(choices)}"
            f"{did_you_mean(value, list(choices))}"
        )


def _positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    positive(f"config: {key}", value, allow_zero=allow_zero)


def validate(cfg: Config) -> Config:
    """Check values that do not depend on the data (shapes are checked by ``check_geometry``)."""
    m, d, t = cfg.model, cfg.data, cfg.train
    if cfg.seed < 0:
        raise ZspaceError(f"config: seed = {cfg.seed}: must be >= 0 (NumPy's generators need it)")
    if m.z_dim < 1:
        raise ZspaceError(f"config: model.z_dim = {m.z_dim}: must be >= 1")
    _positive("model.fact", m.fact, allow_zero=True)
    if m.fact_warmup_epochs < 0:
        raise ZspaceError(
            f"config: model.fact_warmup_epochs = {m.fact_warmup_epochs}: must be >= 0"
        )
    _choice("model.loss", m.loss, LOSSES)
    _choice("model.activation", m.activation, ACTIVATIONS)
    for key in ("encoder_filters", "decoder_filters"):
        for v in getattr(m, key):
            if v < 1:
                raise ZspaceError(f"config: model.{key} = {list(getattr(m, key))}: must be >= 1")
    if m.decoder_filters and len(m.decoder_filters) != len(m.encoder_filters):
        raise ZspaceError(
            f"config: model.decoder_filters has {len(m.decoder_filters)} entries but "
            f"model.encoder_filters has {len(m.encoder_filters)}"
        )
    for key in ("encoder_kernels", "decoder_kernels"):
        for v in getattr(m, key):
            if v < 1 or v % 2 == 0:
                raise ZspaceError(
                    f"config: model.{key} = {list(getattr(m, key))}: kernel sizes must be odd "
                    "and >= 1 ('same' padding is symmetric only for odd kernels)"
                )
    for key in ("encoder_strides", "decoder_strides"):
        for v in getattr(m, key):
            if v < 1:
                raise ZspaceError(f"config: model.{key} = {list(getattr(m, key))}: must be >= 1")
    if m.leaky_slope < 0 or not math.isfinite(m.leaky_slope):
        raise ZspaceError(f"config: model.leaky_slope = {m.leaky_slope}: must be >= 0")
    if not 0 <= m.dropout < 1:
        raise ZspaceError(f"config: model.dropout = {m.dropout}: must be in [0, 1)")
    if m.enc_dense < 0:
        raise ZspaceError(f"config: model.enc_dense = {m.enc_dense}: must be >= 0 (0 = off)")
    _positive("model.eps_clip", m.eps_clip, allow_zero=True)
    _positive("model.eps_scale", m.eps_scale, allow_zero=True)

    if ":" not in d.source and not d.source:
        raise ZspaceError("config: data.source is empty")
    if d.image_size < 0:
        raise ZspaceError(f"config: data.image_size = {d.image_size}: must be >= 0 (0 = native)")
    if d.channels not in (0, 1, 3):
        raise ZspaceError(f"config: data.channels = {d.channels}: must be 1, 3 or 0 (= native)")
    _choice("data.crop", d.crop, CROPS)
    _choice("data.task", d.task, TASKS)
    _positive("data.noise_sigma", d.noise_sigma, allow_zero=True)
    if not 0 <= d.drop_fraction < 1:
        raise ZspaceError(f"config: data.drop_fraction = {d.drop_fraction}: must be in [0, 1)")
    if not 0 <= d.valid_fraction < 1:
        raise ZspaceError(f"config: data.valid_fraction = {d.valid_fraction}: must be in [0, 1)")
    if d.task == "denoise" and d.noise_sigma == 0 and d.drop_fraction == 0:
        raise ZspaceError(
            "config: data.task = 'denoise' needs data.noise_sigma > 0 or data.drop_fraction > 0"
        )

    if t.epochs < 1:
        raise ZspaceError(f"config: train.epochs = {t.epochs}: must be >= 1")
    if t.batch_size < 1:
        raise ZspaceError(f"config: train.batch_size = {t.batch_size}: must be >= 1")
    _positive("train.lr", t.lr)
    if t.lr_decay_every < 0:
        raise ZspaceError(f"config: train.lr_decay_every = {t.lr_decay_every}: must be >= 0")
    if not 0 < t.lr_decay_factor <= 1:
        raise ZspaceError(f"config: train.lr_decay_factor = {t.lr_decay_factor}: must be in (0, 1]")
    _choice("train.device", t.device, DEVICES)
    _choice("train.precision", t.precision, PRECISIONS)
    _choice("train.compile", t.compile, COMPILE_MODES)
    if t.keep_checkpoints < 0:
        raise ZspaceError(f"config: train.keep_checkpoints = {t.keep_checkpoints}: must be >= 0")
    if t.threads < 0:
        raise ZspaceError(f"config: train.threads = {t.threads}: must be >= 0 (0 = all cores)")
    for name in t.log:
        _choice("train.log", name, LOG_BACKENDS)
    _choice("train.cuda_graphs", t.cuda_graphs, CUDA_GRAPHS)
    _choice("train.lr_scaling", t.lr_scaling, LR_SCALINGS)
    if t.lr_base_batch < 1:
        raise ZspaceError(f"config: train.lr_base_batch = {t.lr_base_batch}: must be >= 1")
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
            chain = _size_chain(image_size, m.encoder_strides)
            raise ZspaceError(
                f"config: model.encoder_strides = {list(m.encoder_strides)}: stride {s} of "
                f"encoder layer {i} does not divide the size {size} it meets "
                f"(sizes {chain} for {image_size}x{image_size} input)"
            )
        size //= s
    out = size
    for s in m.decoder_strides:
        out *= s
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


def _size_chain(size: int, strides: tuple[int, ...]) -> str:
    sizes = [str(size)]
    for s in strides:
        size = math.ceil(size / s)
        sizes.append(str(size))
    return " -> ".join(sizes)
