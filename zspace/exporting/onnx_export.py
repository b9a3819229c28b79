"""``--format onnx``: ``encoder.onnx`` and ``decoder.onnx`` with a dynamic batch axis.

encoder.onnx: input ``images`` (N, C, H, W) float32 in [0, 1]; outputs ``mu`` and
``logvar`` for a VAE (the sampling step stays with the caller: z = mu +
exp(logvar / 2) * eps), ``z`` for an AE. decoder.onnx: input ``z`` (N, *latent_shape),
output ``images`` (N, C, H, W) in [0, 1], the sigmoid included. An imported model
exports when torch.export can trace its code; otherwise the export is refused in one line.

The graphs are plain NCHW: the model is exported from a contiguous copy (ONNX has
no memory format; the exported values are the same). Each graph is checked with
onnxruntime against PyTorch on a random batch once it is written.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zspace._version import __version__
from zspace.core.checks import require
from zspace.core.errors import ZspaceError, first_line
from zspace.core.fileio import atomic_path
from zspace.exporting.common import quiet
from zspace.models.autoencoder import AutoEncoder
from zspace.models.wrapped import WrappedModel
from zspace.runs.bundle import model_header
from zspace.runs.folder import origin_text
from zspace.runs.run import Run

OPSET = 18  # onnxruntime >= 1.14 and most other runtimes read it
CHECK_TOLERANCE = 1e-4


class Graph(nn.Module):
    """One half of the model as a plain function: the encoder's heads without sampling
    ((mu, logvar) for a VAE, z for an AE), or the decoder (images in [0, 1])."""

    def __init__(self, model: AutoEncoder | WrappedModel, which: str) -> None:
        super().__init__()
        self.model, self.which = model, which

    def forward(self, x: torch.Tensor):
        return self.model.heads(x) if self.which == "encoder" else self.model.decode(x)


def plain_model(run: Run) -> AutoEncoder | WrappedModel:
    """A CPU float32 copy in eval mode with contiguous (NCHW) weights."""
    model = copy.deepcopy(run.model).cpu().float().eval()
    return model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]


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


def write_onnx(run: Run, out: Path, seed: int = 0) -> tuple[list[str], dict[str, float]]:
    """Write encoder.onnx and decoder.onnx into ``out``; returns the file names and the
    largest onnxruntime-vs-PyTorch difference of each on a fresh random batch of 2."""
    require("onnx", "onnx", "--format onnx")
    require("onnxscript", "onnx", "--format onnx")
    model = plain_model(run)
    gen = torch.Generator().manual_seed(seed)
    heads = ["mu", "logvar"] if model.variational else ["z"]
    header = {f"zspace.{k}": v for k, v in model_header(run).items() if k != "zspace"}
    batch = torch.export.Dim("batch", min=1)
    diffs: dict[str, float] = {}
    path = {which: out / f"{which}.onnx" for which in ("encoder", "decoder")}
    for which, inputs, outputs, draw, shape in (
        ("encoder", ["images"], heads, torch.rand, model.input_shape),
        ("decoder", ["z"], ["images"], torch.randn, model.latent_shape),
    ):
        module = Graph(model, which).eval()
        try:
            # torch's ONNX exporter (torch.export + onnxscript) with a dynamic batch axis
            program = quiet(
                torch.onnx.export,
                module,
                (draw(3, *shape, generator=gen),),
                None,
                input_names=inputs,
                output_names=outputs,
                dynamic_shapes=({0: batch},),
                opset_version=OPSET,
                dynamo=True,
                verbose=False,
            )
            program.model.metadata_props.update(
                {"producer": f"zspace {__version__}", "zspace.graph": which, **header}
            )
            with atomic_path(path[which]) as tmp:
                quiet(program.save, str(tmp))
            # checked on a batch of another size and values than the export's: a graph
            # that froze either (a tracer's constants) fails here
            diffs[which] = check_graph(path[which], module, draw(2, *shape, generator=gen))
        except Exception as exc:  # torch.export refuses much of arbitrary user code
            if run.origin is None:
                raise
            raise ZspaceError(
                f"--format onnx: the {which} of this imported model ({origin_text(run.meta)}) does "
                f"not export to ONNX ({first_line(exc)}); projector and safetensors work"
            ) from None
    return [p.name for p in path.values()], diffs
