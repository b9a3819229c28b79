"""Device choice and precision support: the only place that knows about hardware."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from zspace.core.errors import ZspaceError


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device must exist."""
    mps = getattr(torch.backends, "mps", None)
    have = {"cuda": torch.cuda.is_available(), "mps": bool(mps and mps.is_available())}
    if name == "auto":
        return torch.device(next((d for d, ok in have.items() if ok), "cpu"))
    if not have.get(name, True):
        raise ZspaceError(f"train.device = {name!r}: no {name.upper()} device is available")
    return torch.device(name)


def cpu_info(field: str) -> str:
    """The first ``field`` line of /proc/cpuinfo ("" where there is none: not Linux)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    return ""


def cpu_flags() -> set[str]:
    return set(cpu_info("flags").split())


def onednn_matmul_faster() -> bool:
    """True on a CPU with AVX-512 that is not Intel's: MKL, torch's float32 matmul, runs
    its AVX2 code there while oneDNN runs AVX-512 (2-2.5x on a Zen 5 for the models'
    dense layers; docs/performance.md). On AVX2 CPUs the two are level, on Intel's MKL
    has AVX-512 itself."""
    return "avx512f" in cpu_flags() and cpu_info("vendor_id") != "GenuineIntel"


def native_bf16(device: torch.device) -> bool:
    """True where bf16 matmuls run in hardware: CUDA (Ampere+), MPS, or a CPU with
    AVX-512 BF16 or AMX. Elsewhere torch emulates bf16 and it is slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "mps":
        return True
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def fp16_supported(device: torch.device) -> bool:
    """fp16 training (autocast + a gradient scaler) is offered on CUDA only: CPUs have
    no fast fp16 kernels, and the scaler is a CUDA-era tool."""
    return device.type == "cuda"


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "bf16" and not native_bf16(device):
        raise ZspaceError(
            f"train.precision = 'bf16': this {device.type.upper()} has no native BF16 "
            "(no avx512_bf16/amx_bf16), so bf16 would run emulated and slower than fp32; "
            "use train.precision = 'fp32'"
        )
    if precision == "fp16" and not fp16_supported(device):
        raise ZspaceError(
            f"train.precision = 'fp16' needs a CUDA device (autocast with a gradient "
            f"scaler), not {device.type.upper()}; use train.precision = 'fp32'"
            + (" or 'bf16'" if native_bf16(device) else "")
        )


def autocast(precision: str, device: torch.device):
    """The forward pass's autocast: bf16 or fp16 where asked, nothing for fp32."""
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=device.type, dtype=dtype)
    return contextlib.nullcontext()


def set_tf32(device: torch.device, enabled: bool) -> bool:
    """Let fp32 matmuls and convolutions use TF32 on ``device`` (``enabled``), or keep
    them IEEE fp32; returns whether TF32 is in use. A no-op off CUDA."""
    if device.type != "cuda":
        return False
    on = enabled and torch.cuda.get_device_capability(device)[0] >= 8  # TF32 cores: Ampere+
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(cudnn, "conv") and hasattr(cudnn.conv, "fp32_precision"):  # torch >= 2.9
        matmul.fp32_precision = cudnn.conv.fp32_precision = "tf32" if on else "ieee"
    else:
        matmul.allow_tf32 = cudnn.allow_tf32 = on
    return on
