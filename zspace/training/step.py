"""Faster training steps on a GPU: ``torch.compile`` modes and a CUDA-graphed step.

``compiled(model, mode)`` maps ``train.compile`` to ``torch.compile``: "on" is
inductor's default mode, "reduce-overhead" adds inductor's own CUDA graphs (forward
and backward; the optimiser stays eager), "max-autotune" also searches kernel
configurations (long first epoch), "max-autotune-no-cudagraphs" the search alone.

``GraphedStep`` (``train.cuda_graphs = "on"``) captures one whole training step,
forward, loss, backward and Adam's update, as one CUDA graph and replays it for
every full batch: one launch instead of a few hundred, and no host work at all
between launches. What a graph needs and how it is met:

* static shapes: the graph is captured for the full batch size; a smaller last
  batch of an epoch runs eagerly (the same optimiser, so its update is exact);
* static inputs: each batch is copied into the graph's input buffers, and the
  step's terms come back in a buffer the loop copies before the next replay;
* constants baked in: the learning rate and the objective's per-epoch weights
  (a VAE's warm-up of ``fact``) are Python floats inside the graph, so it is
  captured again whenever ``(lr, objective.graph_key(epoch))`` changes;
* Adam's step counter on the device: ``capturable=True`` (``set_capturable``);
* warm-up: the first ``WARMUP`` full batches run eagerly on a side stream (real
  steps, not extra ones), as CUDA graphs require before a capture.

Random draws inside the step (the VAE's eps, dropout) come from the CUDA generator,
which PyTorch advances on every replay, so each step still draws fresh numbers
(other numbers than an eager run draws). Not combined with DDP, fp16's gradient
scaler, or compile modes that bring their own graphs.
"""

from __future__ import annotations

from typing import Any

import torch

from zspace.config.schema import CHOICES
from zspace.core.errors import ZspaceError

GRAPHED_COMPILE = ("reduce-overhead", "max-autotune")  # these capture graphs themselves
WARMUP = 3


def compiled(model: torch.nn.Module, mode: str) -> torch.nn.Module:
    """``model`` wrapped in ``torch.compile`` for ``train.compile = mode`` ("off": as is)."""
    if mode == "off":
        return model
    if mode not in (modes := CHOICES["train.compile"]):
        raise ZspaceError(f"train.compile = {mode!r}: choose off or {', '.join(modes[1:])}")
    # torch.compile of a Module returns an OptimizedModule; its stub says a plain callable
    return torch.compile(model, mode="default" if mode == "on" else mode)  # type: ignore[return-value]


def check_graphs(device: torch.device, precision: str, compile_mode: str, world: int) -> None:
    """The one-line errors for settings a CUDA-graphed step cannot run with."""
    problems = (
        (device.type != "cuda", f"needs a CUDA device, not {device.type.upper()}; use "
         "train.cuda_graphs = 'off'"),
        (compile_mode in GRAPHED_COMPILE, f"with train.compile = {compile_mode!r}: that mode "
         "captures CUDA graphs itself; use one of them, not both"),
        (precision == "fp16", "with train.precision = 'fp16': the gradient scaler decides on "
         "the host whether to skip a step; use 'bf16' or 'fp32'"),
        (world > 1, "runs in one process only, not under DDP"),
    )  # fmt: skip
    for found, why in problems:
        if found:
            raise ZspaceError(f"train.cuda_graphs = 'on' {why}")


def set_capturable(opt: torch.optim.Optimizer, on: bool) -> None:
    """Make the optimiser's step counters live on the parameters' device (``on``: what
    a graph needs) or on the CPU (the eager default), e.g. after loading a
    checkpoint that a graphed run wrote into a run that is not graphed."""
    for group in opt.param_groups:
        if "capturable" not in group:
            continue
        group["capturable"] = bool(on)
        for p in group["params"]:
            state = opt.state.get(p, {})
            step = state.get("step")
            if isinstance(step, torch.Tensor):
                device = p.device if on else torch.device("cpu")
                state["step"] = step.to(device=device, dtype=torch.float32)


class GraphedStep:
    """A training step captured as a CUDA graph; see the module docstring. The
    objective names what of an epoch the graph bakes in (``graph_key(epoch)``)."""

    def __init__(
        self,
        model: torch.nn.Module,
        objective: Any,
        optimizer: torch.optim.Optimizer,
        *,
        batch_size: int,
        precision: str = "fp32",
    ) -> None:
        self.model = model
        self.objective = objective
        self.opt = optimizer
        self.batch_size = int(batch_size)
        self.precision = precision
        self.graph: torch.cuda.CUDAGraph | None = None
        self.key: Any = None
        self.captures = 0  # how many times a graph was captured (tests, benchmarks)
        self._warm = 0
        self._x: torch.Tensor | None = None  # the graph's static input, target and terms
        self._target: torch.Tensor | None = None
        self._terms: torch.Tensor | None = None
        set_capturable(optimizer, True)

    def fits(self, x: torch.Tensor) -> bool:
        """True for a full batch (the graph's shape); other batches run eagerly."""
        return x.shape[0] == self.batch_size

    def _autocast(self):
        if self.precision == "bf16":
            # the autocast cache must stay off while a graph is captured
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
        return torch.autocast("cuda", enabled=False)

    def _eager(self, x: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
        with self._autocast():
            loss, terms = self.objective(self.model, x, target, epoch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return terms.detach()

    def __call__(self, x: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
        """One step on a full batch; returns the batch's terms (a buffer the next call
        overwrites: copy it before then)."""
        if self._warm < WARMUP:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                terms = self._eager(x, target, epoch)
            torch.cuda.current_stream().wait_stream(side)
            self._warm += 1
            return terms
        lrs = tuple(float(g["lr"]) for g in self.opt.param_groups)
        key = (lrs, self.objective.graph_key(epoch))
        if self.graph is None or key != self.key:
            self._capture(x, target, epoch, key)
        assert self._x is not None and self._target is not None and self._terms is not None
        self._x.copy_(x)
        self._target.copy_(target)
        assert self.graph is not None
        self.graph.replay()
        return self._terms

    def _capture(self, x: torch.Tensor, target: torch.Tensor, epoch: int, key: Any) -> None:
        self.graph = None  # frees the previous graph's memory pool first
        self._x, self._target = x.clone(), target.clone()
        self.opt.zero_grad(set_to_none=True)  # the graph allocates its own gradients
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            with self._autocast():
                loss, terms = self.objective(self.model, self._x, self._target, epoch)
            loss.backward()
            self.opt.step()
            self._terms = terms.detach()
        self.graph, self.key = graph, key
        self.captures += 1
