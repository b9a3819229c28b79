"""The configuration as a reader sees it: resolved TOML with a comment on every key.

``annotated_toml(defaults)`` is the block the README shows (a test regenerates it
and fails when the two differ) and what ``zspace config --defaults`` prints;
``zspace config --show RUN`` prints a run's resolved config the same way, with the
default beside every value that differs from it.
"""

from __future__ import annotations

from zspace.config.parse import load_config, to_toml, toml_value
from zspace.config.schema import Config
from zspace.config.validate import flatten

#: one short line per key: what it does, its units or its choices
COMMENTS: dict[str, str] = {
    "seed": "seeds splits, initialisation, batches, noise and every later stage",
    "model.z_dim": "size of the latent space",
    "model.variational": "true: VAE (mu, logvar, KL term); false: plain AE",
    "model.fact": "weight of the KL term (1e-5 is 'tiny')",
    "model.fact_warmup_epochs": "linear warm-up of fact over the first epochs",
    "model.loss": '"bce" or "mse"',
    "model.per_pixel": "divide the losses by H*W",
    "model.encoder_filters": "one conv layer per entry",
    "model.encoder_kernels": "one value applies to every layer",
    "model.encoder_strides": "one value applies to every layer",
    "model.decoder_filters": "[] = the encoder's mirrored, ending in the image channels",
    "model.decoder_kernels": "default: the encoder's mirrored",
    "model.decoder_strides": "default: the encoder's mirrored",
    "model.activation": '"leaky_relu", "relu" or "selu" (LeCun-normal init + AlphaDropout)',
    "model.leaky_slope": "Keras's default, used by the reference",
    "model.batch_norm": "batch norm after each conv layer",
    "model.dropout": "dropout rate after each conv layer",
    "model.enc_dense": "size of an extra dense layer before the heads (0 = off)",
    "model.eps_clip": "VAE: clamp eps to [-eps_clip, eps_clip] (0 = off)",
    "model.eps_scale": "VAE: z = mu + eps_scale * sigma * eps",
    "data.source": "KIND:PATH (builtin, mnist, cifar10, celeba, folder, npy)",
    "data.class_names": "[] = the source's (classes.txt, CIFAR-10, sub-folders), else 0, 1, ...",
    "data.image_size": "0 = the source's own size (digits: 32)",
    "data.channels": "0 = the source's own; 1 or 3 converts",
    "data.crop": '"center" square crop before resizing, or "none" (squash)',
    "data.task": '"reconstruct", "denoise" (needs noise_sigma or drop_fraction), "recolor"',
    "data.noise_sigma": "denoise: Gaussian noise std in [0, 1] pixel units",
    "data.drop_fraction": "denoise: share of pixels set to black",
    "data.valid_fraction": "held-out share when the source has no partition",
    "data.cache_dir": '"" = $ZSPACE_CACHE, else the user cache folder',
    "train.epochs": "number of epochs",
    "train.batch_size": "images per batch: the global batch, over all torchrun processes",
    "train.lr": "Adam learning rate",
    "train.lr_decay_every": "step decay: multiply lr by lr_decay_factor every N epochs (0 = off)",
    "train.lr_decay_factor": "factor of the step decay",
    "train.device": '"auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "mps"',
    "train.precision": '"fp32", "bf16" (refused where emulated), "fp16" (CUDA, gradient scaler)',
    "train.tf32": "CUDA, Ampere+: fp32 matmuls and convolutions on TF32 tensor cores",
    "train.compile": '"on" (or a torch.compile mode: "reduce-overhead", "max-autotune", ...)',
    "train.keep_checkpoints": "epoch checkpoints kept besides last.pt and best.pt",
    "train.threads": "torch threads while training (0 = all cores); restored after",
    "train.log": 'training loggers, e.g. ["tensorboard"] (writes RUN/tb/)',
    "train.cuda_graphs": '"on": each full batch\'s step replayed as one CUDA graph (CUDA)',
    "train.lr_scaling": '"linear" or "sqrt": lr * (batch_size / lr_base_batch)^(1 or 1/2)',
    "train.lr_base_batch": "the batch size train.lr was chosen for (docs/performance.md)",
}


def defaults() -> Config:
    """The resolved default configuration (what a run without a config file uses)."""
    return load_config(None)


def annotated_toml(cfg: Config | None = None, *, against: Config | None = None) -> str:
    """``to_toml(cfg)`` with a comment on each line: the key's meaning, or, with
    ``against``, the default for each value that differs from it (a run's changes)."""
    cfg = defaults() if cfg is None else cfg
    if against is None:
        return to_toml(cfg, COMMENTS)
    values, base = flatten(cfg), flatten(against)
    return to_toml(cfg, {k: f"default: {toml_value(v)}" for k, v in base.items() if values[k] != v})
