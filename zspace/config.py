"""Run configuration: frozen dataclasses, TOML in and out, validation with one-line errors.

A run is fully described by its resolved config (saved as ``RUN/config.toml``), so
loading that file and training again reproduces the run. Every check here raises
``ZspaceError`` with a message that names the key and the value, because the CLI
shows exactly that line to the user.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from zspace.checks import positive
from zspace.errors import ZspaceError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ACTIVATIONS = ("leaky_relu", "relu", "selu")
LOSSES = ("bce", "mse")
TASKS = ("reconstruct", "denoise", "recolor")
CROPS = ("center", "none")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")
COMPILE_MODES = ("off", "on")
LOG_BACKENDS = ("tensorboard",)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and loss. Decoder lists mirror the encoder unless given."""

    z_dim: int = 16
    variational: bool = True
    fact: float = 1.0
    fact_warmup_epochs: int = 0
    loss: str = "bce"
    per_pixel: bool = False
    encoder_filters: tuple[int, ...] = (32, 64, 128)
    encoder_kernels: tuple[int, ...] = (3,)
    encoder_strides: tuple[int, ...] = (1, 2, 2)
    decoder_filters: tuple[int, ...] = ()
    decoder_kernels: tuple[int, ...] = ()
    decoder_strides: tuple[int, ...] = ()
    activation: str = "leaky_relu"
    leaky_slope: float = 0.3
    batch_norm: bool = False
    dropout: float = 0.0
    enc_dense: int = 0
    eps_clip: float = 5.0
    eps_scale: float = 1.0


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and what the model is asked to do with them.

    ``image_size = 0`` and ``channels = 0`` mean "as the source delivers them".
    """

    source: str = "builtin:digits"
    image_size: int = 0
    channels: int = 0
    crop: str = "center"
    task: str = "reconstruct"
    noise_sigma: float = 0.0
    drop_fraction: float = 0.0
    valid_fraction: float = 0.1
    cache_dir: str = ""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: Adam with an optional step decay of the learning rate."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 5e-4
    lr_decay_every: int = 0
    lr_decay_factor: float = 0.5
    device: str = "auto"
    precision: str = "fp32"
    compile: str = "off"
    keep_checkpoints: int = 3
    threads: int = 0
    log: tuple[str, ...] = ()  # training loggers, e.g. ["tensorboard"] (writes RUN/tb/)


@dataclass(frozen=True)
class Config:
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


# --------------------------------------------------------------------------- parsing


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check a TOML value against a dataclass field type; return it in canonical form."""
    origin = get_origin(hint)
    if origin is tuple:
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            what = "strings" if get_args(hint)[0] is str else "integers"
            raise ZspaceError(f"config: {key} = {value!r}: expected a list of {what}")
        inner = get_args(hint)[0]
        return tuple(_coerce(key, v, inner) for v in value)
    if origin is Union:
        return _coerce(key, value, get_args(hint)[0])
    if hint is bool:
        if not isinstance(value, bool):
            raise ZspaceError(f"config: {key} = {value!r}: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ZspaceError(f"config: {key} = {value!r}: expected an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ZspaceError(f"config: {key} = {value!r}: expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ZspaceError(f"config: {key} = {value!r}: expected a string")
        return value
    raise TypeError(f"unsupported config type {hint!r}")  # a bug, not a user error


def _build_section(name: str, cls: type, values: dict[str, Any]) -> Any:
    hints = get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ZspaceError(f"config: unknown key '{name}.{key}'{_did_you_mean(key, known)}")
        kwargs[key] = _coerce(f"{name}.{key}", value, hints[key])
    return cls(**kwargs)


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a Config from nested dicts (as TOML gives them)."""
    top_known = ["seed", *SECTIONS]
    for key in raw:
        if key not in top_known:
            raise ZspaceError(f"config: unknown key '{key}'{_did_you_mean(key, top_known)}")
    sections = {}
    for name, cls in SECTIONS.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            raise ZspaceError(f"config: '{name}' must be a section ([{name}])")
        sections[name] = _build_section(name, cls, values)
    seed = _coerce("seed", raw.get("seed", 0), int)
    cfg = Config(seed=seed, **sections)
    return validate(resolve(cfg))


def _parse_value(text: str) -> Any:
    """A --set value is read as TOML when it parses (3, 1e-3, true, [1,2]), else as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to a nested dict (returns a new dict)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for item in overrides:
        if "=" not in item:
            raise ZspaceError(f"--set {item!r}: expected section.key=value")
        path, text = item.split("=", 1)
        parts = path.strip().split(".")
        value = _parse_value(text.strip())
        if len(parts) == 1:
            out[parts[0]] = value
        elif len(parts) == 2:
            section, key = parts
            if section not in SECTIONS:
                raise ZspaceError(
                    f"--set {item!r}: unknown section '{section}'"
                    f"{_did_you_mean(section, list(SECTIONS))}"
                )
            out.setdefault(section, {})[key] = value
        else:
            raise ZspaceError(f"--set {item!r}: expected section.key=value")
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ZspaceError(f"config file not found: {path}")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ZspaceError(f"config file {path}: invalid TOML: {exc}") from None


def config_from_toml(text: str, where: str = "config") -> Config:
    """A Config from TOML text (e.g. the copy a checkpoint carries)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ZspaceError(f"{where}: invalid TOML: {exc}") from None
    return config_from_dict(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a TOML file (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    raw = read_toml(path) if path is not None else {}
    return config_from_dict(apply_overrides(raw, overrides or []))


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def to_toml(cfg: Config) -> str:
    """Serialise a Config; the output parses back to an equal Config."""

    def fmt(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str):
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            return f'"{escaped}"'
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(fmt(v) for v in value) + "]"
        raise TypeError(f"cannot write {value!r} to TOML")

    lines = [f"seed = {cfg.seed}", ""]
    for name in SECTIONS:
        lines.append(f"[{name}]")
        for key, value in dataclasses.asdict(getattr(cfg, name)).items():
            lines.append(f"{key} = {fmt(value)}")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- resolution


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


# --------------------------------------------------------------------------- validation


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ZspaceError(
            f"config: {key} = {value!r}: expected one of {', '.join(choices)}"
            f"{_did_you_mean(value, list(choices))}"
        )


def _positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    positive(f"config: {key}", value, allow_zero=allow_zero)


def validate(cfg: Config) -> Config:
    """Check values that do not depend on the data (shapes are checked by ``check_geometry``)."""
    m, d, t = cfg.model, cfg.data, cfg.train
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
