"""A model a user brings, behind the one model interface (``zspace.models.interface``).

``adapt`` turns what ``zspace.wrap`` accepts into an ``Adapted``: the ``nn.Module``
that holds the weights and two functions of it, ``encode(net, x)`` and
``decode(net, z)``. The adapters are tried in order (``ADAPTERS``), so a model family
that needs its own (pythae, diffusers) goes before the generic ones. The functions
take the net as an argument, so a copy of the model (``.to()``, ``deepcopy``) uses
its own weights.

The encoder's output says what the model is: a tensor makes an AE, a pair
``(mu, logvar)`` a variational model, whose ``z = mu + exp(logvar / 2) * eps *
eps_scale``. ``probe`` reads the latent shape from one encode of a real batch and
checks the decoder gives that batch's shape back, in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch
from torch import nn

from zspace.core.errors import ZspaceError, first_line
from zspace.models.adapters import diffusers, pythae
from zspace.models.interface import Adapted, EncoderOutput

METHODS = ("encode", "decode")


class Pair(nn.Module):
    """An (encoder, decoder) pair as one module: weights under ``encoder.``/``decoder.``
    (plain functions hold none)."""

    def __init__(self, encoder: Callable, decoder: Callable) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder


def _pair(obj: Any) -> Adapted | None:
    if isinstance(obj, tuple | list) and len(obj) == 2 and all(map(callable, obj)):
        return Adapted(Pair(*obj), lambda n, x: n.encoder(x), lambda n, z: n.decoder(z))
    return None


def _methods(obj: Any) -> Adapted | None:
    if isinstance(obj, nn.Module) and all(callable(getattr(obj, f, None)) for f in METHODS):
        return Adapted(obj, lambda n, x: n.encode(x), lambda n, z: n.decode(z))
    return None


# the model families of other libraries, by the origin kind their runs record
FAMILIES: dict[str, ModuleType] = {"pythae": pythae, "diffusers": diffusers}
# tried in order; the first that recognises the object adapts it: the families first
ADAPTERS: list[Callable[[Any], Adapted | None]] = [
    *(f.adapt for f in FAMILIES.values()),
    _pair,
    _methods,
]


def family_of(obj: Any) -> ModuleType | None:
    """The adapter module of a model another library made (pythae, diffusers), else None."""
    return next((f for f in FAMILIES.values() if f.family(obj) is not None), None)


def adapt(obj: Any) -> Adapted:
    for adapter in ADAPTERS:
        if (found := adapter(obj)) is not None:
            return found
    raise ZspaceError(
        f"cannot wrap an object of type {type(obj).__name__}: expected a torch.nn.Module with "
        "encode() and decode(), or an (encoder, decoder) pair of modules or functions"
    )


def _what(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)}: " + ", ".join(map(_what, value))
    return f"a {type(value).__name__}"


def heads(out: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z, None) for an AE's output, (mu, logvar) for a variational one's."""
    if isinstance(out, EncoderOutput):
        return (out.z, None) if out.mu is None else (out.mu, out.logvar)
    if isinstance(out, torch.Tensor):
        return out, None
    if (
        isinstance(out, tuple | list)
        and len(out) == 2
        and all(isinstance(t, torch.Tensor) for t in out)
        and out[0].shape == out[1].shape
    ):
        return out[0], out[1]
    raise ZspaceError(
        f"the encoder returned {_what(out)}: expected a tensor (an AE) or (mu, logvar) of "
        "one shape (a variational model)"
    )


class WrappedModel(nn.Module):
    """The interface over an ``Adapted`` model; ``net`` holds its weights."""

    def __init__(
        self,
        adapted: Adapted,
        input_shape: tuple[int, int, int],
        latent_shape: tuple[int, ...],
        variational: bool,
    ) -> None:
        super().__init__()
        self.net = adapted.net
        self._encode, self._decode = adapted.encode, adapted.decode
        self.input_shape: tuple[int, int, int] = input_shape
        self.latent_shape, self.variational = tuple(latent_shape), bool(variational)
        self.eps_scale = 1.0

    def heads(self, x: torch.Tensor) -> Any:
        """The encoder as the user wrote it: z, or (mu, logvar); no sampling."""
        return self._encode(self.net, x)

    def encode(self, x: torch.Tensor) -> EncoderOutput:
        mu, logvar = heads(self.heads(x))
        if tuple(mu.shape[1:]) != self.latent_shape or (logvar is not None) != self.variational:
            kind = "(mu, logvar)" if logvar is not None else "z"
            raise ZspaceError(
                f"the encoder now returns {kind} of shape {tuple(mu.shape[1:])}; this run "
                f"recorded {'(mu, logvar)' if self.variational else 'z'} of shape "
                f"{self.latent_shape} at import: import the model again"
            )
        if logvar is None:
            return EncoderOutput(mu, None, None)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) * self.eps_scale
        return EncoderOutput(z, mu, logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._decode(self.net, z)


def weights_of(model: nn.Module) -> nn.Module:
    """The module whose state_dict is the model's weights file: a wrapped model's own
    net (the keys its author knows), zspace's model as a whole."""
    return model.net if isinstance(model, WrappedModel) else model


@torch.no_grad()
def probe(obj: Any, batch: torch.Tensor) -> WrappedModel:
    """Wrap ``obj`` after one encode and decode of ``batch`` (N, C, H, W) in [0, 1]:
    the latent's shape and kind come from the encoder; the decoder must give the
    batch's shape back, in [0, 1]."""
    adapted = adapt(obj)
    adapted.net.eval()
    batch = batch.to(next((p.device for p in adapted.net.parameters()), torch.device("cpu")))
    mu, logvar = heads(_call(adapted.encode, adapted.net, batch, "encoder"))
    if mu.ndim < 2 or len(mu) != len(batch):
        raise ZspaceError(
            f"the encoder returned {_what(mu)} for {len(batch)} images: expected (N, *latent_shape)"
        )
    c, h, w = batch.shape[1:]
    model = WrappedModel(adapted, (c, h, w), tuple(mu.shape[1:]), logvar is not None)
    check_images(_call(adapted.decode, adapted.net, mu, "decoder"), tuple(batch.shape))
    return model


def _call(half: Callable, net: nn.Module, x: torch.Tensor, name: str) -> Any:
    """The user's encoder or decoder on ``x``; what it raises is said in one line."""
    try:
        return half(net, x)
    except Exception as exc:  # the user's code: its failure is theirs, named
        raise ZspaceError(
            f"the {name} raised {type(exc).__name__} on a batch of shape {tuple(x.shape)}"
            f"{' from the data' if name == 'encoder' else ''}: {first_line(exc)}"
        ) from None


def check_images(out: Any, shape: tuple[int, ...]) -> None:
    """A decoder's output: a tensor of ``shape`` (N, C, H, W) with values in [0, 1]."""
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != shape:
        raise ZspaceError(
            f"the decoder returned {_what(out)}: expected images of shape {shape} (N, C, H, "
            "W) like the data, values in [0, 1]"
        )
    lo, hi = float(out.min()), float(out.max())
    if not (lo >= -1e-4 and hi <= 1 + 1e-4):  # also NaN
        raise ZspaceError(
            f"the decoder returned values in [{lo:.4g}, {hi:.4g}]: expected images in [0, 1] "
            "(apply a sigmoid to logits, or (x + 1) / 2 to [-1, 1])"
        )
