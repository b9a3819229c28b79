"""What a model will need before it is built: parameters and one batch's activations.

The model is built on torch's ``meta`` device (shapes only, no memory), so the counts
are exact for the architecture the config describes, whatever its layers are; one
forward pass of one image gives its activations. That pass runs on the CPU with real
weights when the model is small (milliseconds), and on the meta device only for large
ones: the meta device's first forward costs about 2.5 s of one-time setup, which every
``load_run`` of a command paid before. ``check_model_fits`` turns the
counts into a lower bound of the bytes training (weights, gradients, Adam's two
moments, the batch's saved activations) or inference needs and refuses, in one
line, a model the device cannot hold (issue 18: z_dim 10^7 or filters of 10^5 used
to die inside the allocator).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zspace.config import ModelConfig
from zspace.core.resources import check_fits, device_memory, format_bytes
from zspace.models.autoencoder import AutoEncoder, count_parameters, leaf_outputs


@dataclass(frozen=True)
class ModelSizes:
    parameters: int
    activations_per_image: int  # values the layers output for one image

    def training_bytes(self, batch: int, precision: str = "fp32") -> int:
        """Weights, gradients and Adam's two moments in float32, plus the activations
        autograd keeps for one batch (lower bound: each layer's output once)."""
        act = 2 if precision == "bf16" else 4
        return 16 * self.parameters + act * self.activations_per_image * batch

    def inference_bytes(self, batch: int) -> int:
        return 4 * self.parameters + 4 * self.activations_per_image * batch


#: up to this many parameters (64 MB of float32) the activations are counted by a real
#: one-image forward on the CPU; above, on the meta device, which allocates nothing
REAL_FORWARD_MAX_PARAMETERS = 16_000_000


def model_sizes(cfg: ModelConfig, input_shape: tuple[int, int, int]) -> ModelSizes:
    """Exact parameter count and activations per image, without allocating either for
    a large model (see the module docstring)."""
    with torch.device("meta"):
        model = AutoEncoder(cfg, input_shape)
    parameters = count_parameters(model)
    device = "meta"
    if parameters <= REAL_FORWARD_MAX_PARAMETERS:
        with torch.random.fork_rng(devices=[]):  # the caller's random stream is untouched
            model = AutoEncoder(cfg, input_shape).eval()
        device = "cpu"
    with torch.random.fork_rng(devices=[]):  # a VAE draws its eps
        seen = leaf_outputs(model, torch.zeros((1, *input_shape), device=device))
    outputs = sum(out.numel() for _, _, out in seen if isinstance(out, torch.Tensor))
    return ModelSizes(int(parameters), int(outputs))


def check_model_fits(
    cfg: ModelConfig,
    input_shape: tuple[int, int, int],
    device: torch.device,
    *,
    batch: int,
    training: bool = True,
    precision: str = "fp32",
) -> ModelSizes:
    """Refuse a model (and batch) that cannot fit the device's free memory."""
    sizes = model_sizes(cfg, input_shape)
    if training:
        need = sizes.training_bytes(batch, precision)
        what = (
            f"training this model ({sizes.parameters:,} parameters with gradients and Adam "
            f"state: {format_bytes(16 * sizes.parameters)}; activations of a batch of {batch}: "
            f"{format_bytes(need - 16 * sizes.parameters)})"
        )
    else:
        need = sizes.inference_bytes(batch)
        what = f"this model ({sizes.parameters:,} parameters, batches of {batch})"
    c, h, w = input_shape
    check_fits(
        what,
        need,
        device_memory(device),
        f"reduce model.z_dim ({cfg.z_dim:,}), model.encoder_filters, model.enc_dense, "
        f"the kernels, the image size ({h}x{w}x{c}) or train.batch_size",
    )
    return sizes
