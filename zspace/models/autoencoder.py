"""Convolutional AE / VAE built from the config lists.

The encoder is a stack of 'same'-padded convolutions, flattened into a dense head
(one for an AE, ``mu`` and ``logvar`` for a VAE). The decoder mirrors it: a dense
layer back to the last feature map, then transposed convolutions; the last one
outputs the image channels. The model returns logits: the BCE loss is computed
from logits (stable), and ``decode`` applies the sigmoid for images. On the CPU,
encoding fuses each convolution with its activation (``zspace.models.cpu``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from zspace.config import ModelConfig, decoder_filters
from zspace.models import cpu
from zspace.models.interface import EncoderOutput


def _activation(cfg: ModelConfig) -> nn.Module:
    # in place: the layers before keep their inputs for the backward, not their outputs
    if cfg.activation == "leaky_relu":
        return nn.LeakyReLU(cfg.leaky_slope, inplace=True)
    if cfg.activation == "relu":
        return nn.ReLU(inplace=True)
    return nn.SELU()


def _block(layer: nn.Module, channels: int, cfg: ModelConfig) -> nn.Sequential:
    parts: list[nn.Module] = [layer]
    if cfg.batch_norm:
        parts.append(nn.BatchNorm2d(channels))
    parts.append(_activation(cfg))
    if cfg.dropout > 0:  # SELU's self-normalisation needs AlphaDropout (keeps mean and variance)
        parts.append(
            nn.AlphaDropout(cfg.dropout) if cfg.activation == "selu" else nn.Dropout(cfg.dropout)
        )
    return nn.Sequential(*parts)


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, height, width = input_shape
        layers = []
        for filters, kernel, stride in zip(
            cfg.encoder_filters, cfg.encoder_kernels, cfg.encoder_strides, strict=True
        ):
            conv = nn.Conv2d(channels, filters, kernel, stride=stride, padding=kernel // 2)
            layers.append(_block(conv, filters, cfg))
            channels = filters
            height, width = math.ceil(height / stride), math.ceil(width / stride)
        self.convs = nn.Sequential(*layers)
        self.feature_shape = (channels, height, width)
        flat = channels * height * width
        self.dense: nn.Module
        if cfg.enc_dense:
            self.dense = nn.Sequential(cpu.Linear(flat, cfg.enc_dense), _activation(cfg))
            flat = cfg.enc_dense
        else:
            self.dense = nn.Identity()
        self.variational = cfg.variational
        if cfg.variational:
            self.mu = cpu.Linear(flat, cfg.z_dim)
            self.logvar = cpu.Linear(flat, cfg.z_dim)
        else:
            self.z = cpu.Linear(flat, cfg.z_dim)
        self.eps_clip = cfg.eps_clip
        self.eps_scale = cfg.eps_scale

    def heads(self, x: torch.Tensor, fused: bool = False) -> Any:
        """The encoder without sampling: z for an AE, (mu, logvar) for a VAE; ``fused``:
        ``cpu.flat_features`` where it applies (no gradients, on the CPU: Run.encode)."""
        fused = fused and not torch.is_grad_enabled() and cpu.on_cpu(x)
        flat = cpu.flat_features(self.convs, x) if fused else torch.flatten(self.convs(x), 1)
        h = self.dense(flat)
        return (self.mu(h), self.logvar(h)) if self.variational else self.z(h)

    def forward(
        self, x: torch.Tensor, eps: torch.Tensor | None = None, fused: bool = False
    ) -> EncoderOutput:
        if not self.variational:
            return EncoderOutput(self.heads(x, fused), None, None)
        mu, logvar = self.heads(x, fused)
        return EncoderOutput(self.sample(mu, logvar, eps), mu, logvar)

    def sample(
        self, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """z = mu + exp(logvar/2) * eps * eps_scale, eps ~ N(0, I) clipped to +-eps_clip.

        The clip stops rare extreme draws from throwing training into far-off minima;
        eps_clip = 0 turns it off. ``eps_scale`` may be changed on a loaded model.
        ``eps`` (shaped like ``mu``) is drawn from the global torch RNG when not given;
        training passes its own, drawn for the global batch from the run's seed.
        """
        if eps is None:
            eps = torch.randn_like(mu)
        if self.eps_clip > 0:
            eps = eps.clamp(-self.eps_clip, self.eps_clip)
        return mu + torch.exp(0.5 * logvar) * eps * self.eps_scale


class Decoder(nn.Module):
    def __init__(
        self, cfg: ModelConfig, feature_shape: tuple[int, int, int], out_channels: int
    ) -> None:
        super().__init__()
        self.feature_shape = feature_shape
        self.dense = cpu.Linear(cfg.z_dim, math.prod(feature_shape))
        channels = feature_shape[0]
        filters = decoder_filters(cfg, out_channels)
        layers: list[nn.Module] = []
        last = len(filters) - 1
        for i, (f, kernel, stride) in enumerate(
            zip(filters, cfg.decoder_kernels, cfg.decoder_strides, strict=True)
        ):
            # padding k//2 with output_padding s-1 maps H to H*s: Keras's 'same'.
            deconv = nn.ConvTranspose2d(
                channels, f, kernel, stride=stride, padding=kernel // 2, output_padding=stride - 1
            )
            layers.append(deconv if i == last else _block(deconv, f, cfg))
            channels = f
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of the image (apply a sigmoid for pixel values)."""
        h = self.dense(z).view(z.shape[0], *self.feature_shape)
        # channels_last: the transposed convolutions decode 1.8x faster on CPU (oneDNN's
        # NHWC kernels; measured on the reference CelebA decoder), training is unchanged
        return self.deconvs(h.contiguous(memory_format=torch.channels_last))


def _on_encoder(name: str) -> Any:
    """A knob of the encoder's sampling, read and set on the whole model too."""
    return property(
        lambda m: getattr(m.encoder, name), lambda m, v: setattr(m.encoder, name, float(v))
    )


class AutoEncoder(nn.Module):
    """AE (``variational=False``) or VAE with the SPEC's knobs; input NCHW in [0, 1].

    ``forward`` gives logits for the loss; ``encode``/``decode`` are the model
    interface of ``zspace.models.interface`` (images in [0, 1])."""

    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.cfg = cfg
        channels, height, width = input_shape
        self.input_shape = (channels, height, width)
        self.encoder = Encoder(cfg, input_shape)
        self.decoder = Decoder(cfg, self.encoder.feature_shape, input_shape[0])
        init_weights(self, cfg.activation)

    @property
    def variational(self) -> bool:
        return self.encoder.variational

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.cfg.z_dim,)

    eps_scale = _on_encoder("eps_scale")
    eps_clip = _on_encoder("eps_clip")

    def heads(self, x: torch.Tensor) -> Any:
        """The encoder without sampling: z for an AE, (mu, logvar) for a VAE."""
        return self.encoder.heads(x)

    def encode(self, x: torch.Tensor) -> EncoderOutput:
        return self.encoder(x.contiguous(memory_format=torch.channels_last), fused=True)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def forward(
        self, x: torch.Tensor, eps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, EncoderOutput]:
        """(logits, encoder output); ``eps`` is the VAE's noise (see ``Encoder.sample``)."""
        enc = self.encoder(x, eps)
        return self.decoder(enc.z), enc


def init_weights(model: nn.Module, activation: str) -> None:
    """Glorot-uniform weights and zero biases (Keras's default); LeCun-normal for SELU."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if activation == "selu":
                nn.init.kaiming_normal_(module.weight, nonlinearity="linear", mode="fan_in")
            else:
                # Keras computes fans as (in, out) * receptive field for both conv kinds;
                # torch reads ConvTranspose2d's weight as (in, out, kh, kw) and swaps the
                # fans, which is the same sum, so the bound agrees.
                nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def leaf_outputs(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module, Any]]:
    """(name, module, output) of every leaf module, in call order, in one forward of ``x``
    without gradients: what the summary shows and the footprint counts."""
    seen: list[tuple[str, nn.Module, Any]] = []
    hooks = [
        m.register_forward_hook(lambda m, _inp, out, name=name: seen.append((name, m, out)))
        for name, m in model.named_modules()
        if not list(m.children())
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def summary(model: AutoEncoder) -> str:
    """A Keras-like table (layer, output shape, parameters) from one dry forward pass."""
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = torch.zeros(1, *model.input_shape, device=param.device, dtype=param.dtype)
        seen = leaf_outputs(model, x)
    finally:
        model.train(was_training)
    leaves = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d)
    rows = [(f"{n} ({type(m).__name__})", m, out) for n, m, out in seen if isinstance(m, leaves)]
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"{'layer':<{width}}{'output shape':<22}{'params':>12}", "-" * (width + 34)]
    for name, module, out in rows:
        params = sum(p.numel() for p in module.parameters(recurse=False))
        lines.append(f"{name:<{width}}{str(tuple(out.shape[1:])):<22}{params:>12,}")
    kind = "VAE" if model.variational else "AE"
    lines += ["-" * (width + 34), f"{kind}: {count_parameters(model):,} parameters"]
    return "\n".join(lines)
