"""diffusers' AutoencoderKL (the VAE of latent diffusion) behind the one model interface.

It reads images in [-1, 1], so zspace feeds 2x - 1, and its posterior is a diagonal
Gaussian per latent pixel: its mean and logvar are mu and logvar, unscaled. The
config's ``scaling_factor`` (0.18215 for Stable Diffusion) is what a diffusion model
multiplies the latents by; it is recorded and shown, not applied, so N(0, I) is the
VAE's own prior and the radius and the samplers see the latent the decoder reads.
The decoder has no output activation: its output is mapped with clamp((y + 1) / 2, 0,
1). The latent is a map, C x H/2^(blocks-1) x W/2^(blocks-1) (4 x H/8 x W/8 for
Stable Diffusion's VAE); the stages see it flattened.
"""

from __future__ import annotations

from typing import Any

from zspace.core.checks import require
from zspace.core.errors import ZspaceError, first_line
from zspace.models.interface import Adapted

SUPPORTED = "AutoencoderKL"


def family(obj: Any) -> str | None:
    """``AutoencoderKL`` for that class (or a subclass); None for what diffusers did not
    make; a one-line refusal for its other models."""
    names = [c.__name__ for c in type(obj).__mro__ if c.__module__.startswith("diffusers.")]
    if not names:
        return None
    if SUPPORTED not in names:
        raise ZspaceError(
            f"diffusers {names[0]} is not supported: zspace reads diffusers' {SUPPORTED} "
            "(a Gaussian latent)"
        )
    return SUPPORTED


def adapt(obj: Any) -> Adapted | None:
    return None if family(obj) is None else Adapted(obj, _posterior, _images)


def _posterior(net: Any, x: Any) -> Any:
    dist = net.encode(2 * x - 1).latent_dist
    return dist.mean, dist.logvar


def _images(net: Any, z: Any) -> Any:
    return ((net.decode(z).sample + 1) / 2).clamp(0, 1)


def origin(model: Any) -> dict[str, Any]:
    """The config a run records to rebuild the model (weights apart)."""
    config = {k: v for k, v in model.config.items() if not k.startswith("_")}
    return {"kind": "diffusers", "model": SUPPORTED, "config": config}


def build(record: dict[str, Any]) -> Any:
    """An AutoencoderKL of the recorded config, with fresh weights."""
    autoencoder = require("diffusers", "diffusers", "an AutoencoderKL").AutoencoderKL
    try:
        return autoencoder.from_config(record.get("config") or {})
    except Exception as exc:  # a config this diffusers cannot build
        raise ZspaceError(
            f"diffusers {SUPPORTED}: cannot build it from its config: {first_line(exc)}"
        ) from None


def describe(record: dict[str, Any]) -> str:
    factor = (record.get("config") or {}).get("scaling_factor")
    shown = "" if factor is None else f" (scaling_factor {factor:g} recorded, not applied)"
    return f"diffusers {SUPPORTED}{shown}"
