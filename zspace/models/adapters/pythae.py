"""pythae (0.1.2) autoencoders behind the one model interface.

Supported: the families whose encoder returns ``embedding`` (AE-like: z itself) or
``embedding`` and ``log_covariance`` (VAE-like: q(z|x) = N(embedding,
exp(log_covariance)); pythae's ``log_covariance`` is the diagonal's log variance, so
it is logvar) under an N(0, I) prior. Families with another latent or prior (VQVAE's
codebook, SVAE's and PoincareVAE's manifolds, VAMP's learnt prior, the flow and
Hamiltonian posteriors whose z is not the encoder's Gaussian) are refused in one line.

The decoder's ``reconstruction`` is the image as it is: pythae's default decoders
(the MLP and the benchmark conv nets) end in a sigmoid, and a custom decoder whose
output leaves [0, 1] on the data is refused when the model is wrapped (the probe of
``zspace.models.wrapped``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from zspace.core.checks import require
from zspace.core.errors import ZspaceError, first_line
from zspace.models.interface import Adapted

AE_LIKE = ("AE", "RAE_L2", "RAE_GP", "WAE_MMD")
VAE_LIKE = (
    "VAE", "BetaVAE", "DisentangledBetaVAE", "FactorVAE", "BetaTCVAE", "INFOVAE_MMD",
    "IWAE", "MIWAE", "PIWAE", "CIWAE", "MSSSIM_VAE", "Adversarial_AE", "VAEGAN",
)  # fmt: skip
NETWORKS = ("encoder", "decoder")  # the parts a pythae model may bring as custom nets


def family(obj: Any) -> str | None:
    """The pythae model class ``obj`` is (or derives from); None for anything else; a
    one-line refusal for a family zspace cannot read."""
    name = next((c.__name__ for c in type(obj).__mro__ if c.__module__.startswith("pythae.")), None)
    if name is not None:
        check_family(name)
    return name


def check_family(name: str) -> None:
    if name not in AE_LIKE + VAE_LIKE:
        raise ZspaceError(
            f"pythae {name} is not supported: its latent or prior is not a Gaussian z; "
            f"supported: {', '.join(AE_LIKE + VAE_LIKE)}"
        )


def adapt(obj: Any) -> Adapted | None:
    name = family(obj)
    if name is None:
        return None
    return Adapted(obj, _gaussian if name in VAE_LIKE else _embedding, _reconstruction)


def _inputs(net: Any, x: Any) -> Any:
    want = net.model_config.input_dim
    if want is not None and tuple(want) != tuple(x.shape[1:]):
        raise ZspaceError(
            f"the pythae {type(net).__name__} takes inputs of shape {tuple(want)} "
            f"(model_config.input_dim); the data are {tuple(x.shape[1:])}: set data.image_size "
            "and data.channels to match"
        )
    return net.encoder(x)


def _embedding(net: Any, x: Any) -> Any:
    return _inputs(net, x)["embedding"]


def _gaussian(net: Any, x: Any) -> Any:
    out = _inputs(net, x)
    return out["embedding"], out["log_covariance"]


def _reconstruction(net: Any, z: Any) -> Any:
    return net.decoder(z)["reconstruction"]


def origin(model: Any) -> dict[str, Any]:
    """What a run records to rebuild the model: its family and JSON config (the custom
    networks' pickles, when any, are the run folder's business)."""
    return {"kind": "pythae", "model": family(model), "config": model.model_config.to_dict()}


def custom_networks(config: dict[str, Any]) -> list[str]:
    """The parts the model brought as its own networks (pythae pickles those)."""
    return [part for part in NETWORKS if not config.get(f"uses_default_{part}", True)]


def build(record: dict[str, Any], networks: dict[str, nn.Module]) -> Any:
    """The model of an origin record, with fresh weights: its default networks rebuilt
    from the config, the custom ones given (``networks``, by part)."""
    models = require("pythae.models", "pythae", "a pythae model")
    config = dict(record.get("config") or {})
    name = str(config.pop("name", ""))
    model = name.removesuffix("Config").removesuffix("_")  # VAEConfig -> VAE, RAE_L2_Config
    check_family(model)
    try:
        return getattr(models, model)(getattr(models, name).from_dict(config), **networks)
    except Exception as exc:  # pydantic's validation, a network that does not fit
        raise ZspaceError(
            f"pythae {model}: cannot build it from its config: {first_line(exc)}"
        ) from None


def describe(record: dict[str, Any]) -> str:
    return f"pythae {record.get('model', '?')}"
