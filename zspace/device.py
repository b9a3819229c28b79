"""Device choice and precision support: the only place that knows about hardware."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from zspace.errors import ZspaceError


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ZspaceError("train.device = 'cuda': no CUDA device is available")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ZspaceError("train.device = 'mps': no MPS device is available")
    return torch.device(name)


def cpu_flags() -> set[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(device: torch.device) -> bool:
    """True where bf16 matmuls run in hardware: CUDA (Ampere+), MPS, or a CPU with
    AVX-512 BF16 or AMX. Elsewhere torch emulates bf16 and it is slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "mps":
        return True
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "bf16" and not native_bf16(device):
        raise ZspaceError(
            f"train.precision = 'bf16': this {device.type.upper()} has no native BF16 "
            "(no avx512_bf16/amx_bf16), so bf16 would run emulated and slower than fp32; "
            "use train.precision = 'fp32'"
        )


def autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
