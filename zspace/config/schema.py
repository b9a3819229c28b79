"""The configuration schema: frozen dataclasses with the defaults, and the allowed values.

A run is fully described by its resolved config (saved as ``RUN/config.toml``), so
loading that file and training again reproduces the run. Parsing lives in
``parse``, resolution and validation in ``validate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zspace.core.checks import check_type

TASKS = ("reconstruct", "denoise", "recolor")
SPLITS = ("train", "valid", "test")  # the data splits: every stage and verb names them so
#: the allowed values of each text key (each entry of a list)
CHOICES: dict[str, tuple[str, ...]] = {
    "model.loss": ("bce", "mse"),
    "model.activation": ("leaky_relu", "relu", "selu"),
    "data.crop": ("center", "none"),
    "data.task": TASKS,
    "train.device": ("auto", "cpu", "cuda", "mps"),
    "train.precision": ("fp32", "bf16", "fp16"),
    "train.compile": ("off", "on", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
    "train.log": ("tensorboard",),
    "train.cuda_graphs": ("off", "on"),
    "train.lr_scaling": ("none", "sqrt", "linear"),
}


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
    class_names: tuple[str, ...] = ()
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
    precision: str = "fp32"  # "bf16" (autocast), "fp16" (autocast + gradient scaler, CUDA)
    tf32: bool = True  # fp32 matmuls/convolutions on TF32 tensor cores (CUDA, Ampere+)
    compile: str = "off"
    keep_checkpoints: int = 3
    threads: int = 0
    log: tuple[str, ...] = ()  # training loggers, e.g. ["tensorboard"] (writes RUN/tb/)
    cuda_graphs: str = "off"
    lr_scaling: str = "none"
    lr_base_batch: int = 128


@dataclass(frozen=True)
class Config:
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:  # the values are checked by config_from_dict
        check_type("seed", self.seed, int, "an integer")
        for name, cls in SECTIONS.items():
            check_type(name, getattr(self, name), cls, f"a {cls.__name__}")


SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
