"""``--format onnx``: ``encoder.onnx`` and ``decoder.onnx`` with a dynamic batch axis.

encoder.onnx: input ``images`` (N, C, H, W) float32 in [0, 1]; outputs ``mu`` and
``logvar`` for a VAE (the sampling step stays with the caller: z = mu +
exp(logvar / 2) * eps), ``z`` for an AE. decoder.onnx: input ``z`` (N, z_dim),
output ``images`` (N, C, H, W) in [0, 1], the sigmoid included.

The graphs are plain NCHW: the wrappers below restate the forward passes without
the channels_last layout hints the PyTorch model uses for speed (ONNX has no memory
format; the exported values are the same). Each graph is checked with
onnxruntime against PyTorch on a random batch before it is written.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zspace._version import __version__
from zspace.exporting.common import quiet, require
from zspace.models.autoencoder import AutoEncoder

OPSET = 18  # onnxruntime >= 1.14 and most other runtimes read it
CHECK_TOLERANCE = 1e-4


class EncoderGraph(nn.Module):
    """The encoder without sampling: (mu, logvar) for a VAE, z for an AE."""

    def __init__(self, model: AutoEncoder) -> None:
        super().__init__()
        self.encoder = model.encoder

    def forward(self, images: torch.Tensor):
        enc = self.encoder
        h = enc.dense(torch.flatten(enc.convs(images), 1))
        if enc.variational:
            return enc.mu(h), enc.logvar(h)
        return enc.z(h)


class DecoderGraph(nn.Module):
    """The decoder with the sigmoid: z to images in [0, 1]."""

    def __init__(self, model: AutoEncoder) -> None:
        super().__init__()
        self.decoder = model.decoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        dec = self.decoder
        h = dec.dense(z).reshape(-1, *dec.feature_shape)
        return torch.sigmoid(dec.deconvs(h))


def graph_names(variational: bool) -> dict[str, list[str]]:
    return {
        "encoder_inputs": ["images"],
        "encoder_outputs": ["mu", "logvar"] if variational else ["z"],
        "decoder_inputs": ["z"],
        "decoder_outputs": ["images"],
    }


def plain_model(run: Any) -> AutoEncoder:
    """A CPU float32 copy in eval mode with contiguous (NCHW) weights."""
    model = copy.deepcopy(run.model).cpu().float().eval()
    return model.to(memory_format=torch.contiguous_format)


def _export(module: nn.Module, example: torch.Tensor, inputs: list[str], outputs: list[str]):
    """torch's ONNX exporter (torch.export + onnxscript) with a dynamic batch axis."""
    batch = torch.export.Dim("batch", min=1)
    return quiet(
        torch.onnx.export,
        module,
        (example,),
        None,
        input_names=inputs,
        output_names=outputs,
        dynamic_shapes={inputs[0]: {0: batch}},
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
    )


def _metadata(run: Any, which: str) -> dict[str, str]:
    m = run.model
    return {
        "producer": f"zspace {__version__}",
        "zspace.graph": which,
        "zspace.kind": "vae" if m.variational else "ae",
        "zspace.z_dim": str(m.cfg.z_dim),
        "zspace.input_shape": ",".join(str(s) for s in m.input_shape),
        "zspace.epoch": str(run.epoch),
    }


def check_graph(path: Path, module: nn.Module, example: torch.Tensor) -> float:
    """Max |onnxruntime - PyTorch| over the outputs on ``example``; raises above tolerance."""
    ort = require("onnxruntime", "onnx", "checking the ONNX export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: example.numpy()})
    with torch.no_grad():
        want = module(example)
    want = want if isinstance(want, tuple) else (want,)
    diff = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))
    if not diff <= CHECK_TOLERANCE:  # also catches NaN
        raise RuntimeError(f"{path.name}: onnxruntime differs from PyTorch by {diff:.3g}")
    return diff


def write_onnx(run: Any, stage: Path, seed: int = 0) -> tuple[list[str], dict[str, float]]:
    """Write encoder.onnx and decoder.onnx into ``stage``; returns the file names and the
    largest onnxruntime-vs-PyTorch difference of each on a random batch of 3."""
    require("onnx", "onnx", "--format onnx")
    require("onnxscript", "onnx", "--format onnx")
    model = plain_model(run)
    names = graph_names(model.variational)
    gen = torch.Generator().manual_seed(seed)
    c, h, w = model.input_shape
    images = torch.rand(3, c, h, w, generator=gen)
    z = torch.randn(3, model.cfg.z_dim, generator=gen)
    parts = (
        ("encoder", EncoderGraph(model).eval(), images),
        ("decoder", DecoderGraph(model).eval(), z),
    )
    diffs: dict[str, float] = {}
    files = []
    for which, module, example in parts:
        program = _export(module, example, names[f"{which}_inputs"], names[f"{which}_outputs"])
        program.model.metadata_props.update(_metadata(run, which))
        path = stage / f"{which}.onnx"
        quiet(program.save, str(path))
        diffs[which] = check_graph(path, module, example)
        files.append(path.name)
    return files, diffs
