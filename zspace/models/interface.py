"""The one model interface every stage after training uses.

zspace's own ``AutoEncoder`` is one implementation; a model a user brings (their
``nn.Module``, an encoder/decoder pair, a pythae model, diffusers' ``AutoencoderKL``)
is another, adapted once where it is wrapped. The stages see only this contract:

- ``encode(x)``: float images NCHW in [0, 1], on the model's device, to an
  ``EncoderOutput`` whose tensors have the shape (N, *latent_shape); ``mu`` and
  ``logvar`` are None for a deterministic model, and ``z`` is drawn as
  ``mu + exp(logvar / 2) * eps * eps_scale`` for a variational one.
- ``decode(z)``: (N, *latent_shape) to images (N, C, H, W) in [0, 1].
- ``input_shape`` (C, H, W), ``latent_shape`` (the latent's own shape: (16,) for a
  vector, (4, 8, 8) for a map), ``variational``, and ``eps_scale`` (settable) for a
  variational model.

``Run.encode``/``Run.decode`` flatten and unflatten the latent, batch, and move data
between devices, so analyses and samplers work on (N, D) vectors whatever the shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class EncoderOutput:
    z: torch.Tensor
    mu: torch.Tensor | None
    logvar: torch.Tensor | None


@runtime_checkable
class LatentModel(Protocol):
    """What a model must offer to be analysed, sampled, evaluated and shown."""

    input_shape: tuple[int, int, int]

    @property
    def latent_shape(self) -> tuple[int, ...]: ...

    @property
    def variational(self) -> bool: ...

    def encode(self, x: torch.Tensor) -> EncoderOutput: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


def latent_dim(model: LatentModel) -> int:
    """D, the length of the flattened latent every analysis and sampler works on."""
    return math.prod(model.latent_shape)
