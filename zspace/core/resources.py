"""How many cores, memory and disk there are, and the one check that a planned allocation fits.

A model of z_dim 10^7 or images of 10^5 x 10^5 pixels would ask the allocator for
terabytes and die with its traceback, or get the process killed; these checks run
before anything is allocated and refuse in one line naming the size and the limit
(issue 18). Estimates are lower bounds (what the arrays themselves take), so a
refusal is certain to be right; a plan that passes may still be tight.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from pathlib import Path
from typing import Any

from zspace.core.errors import ZspaceError


def cpu_count() -> int:
    """The cores this process may run on (its affinity, which a container or taskset
    narrows), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def format_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def available_memory() -> tuple[int, str]:
    """(bytes, where the number comes from) of memory a new allocation can get.

    Linux: MemAvailable of /proc/meminfo (what the kernel can hand out without
    swapping), capped by a cgroup (container) limit; elsewhere the physical memory."""
    avail: tuple[int, str] | None = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = (int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo")
                    break
    except (OSError, ValueError, IndexError):
        pass
    limit = _cgroup_limit()
    if limit is not None and (avail is None or limit[0] < avail[0]):
        avail = limit
    if avail is not None:
        return avail
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "physical memory"
    except (ValueError, OSError, AttributeError):
        return 1 << 40, "unknown (assumed 1 TB)"


def _cgroup_limit() -> tuple[int, str] | None:
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            text = Path(limit_file).read_text().strip()
            if text == "max" or int(text) >= 1 << 60:
                continue
            used = int(Path(usage_file).read_text().strip())
            return max(0, int(text) - used), f"the container's memory limit ({limit_file})"
        except (OSError, ValueError):
            continue
    return None


def device_memory(device: Any) -> tuple[int, str]:
    """Free memory of a torch device: the GPU's own for CUDA, the machine's otherwise."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free), f"free memory of {device}"
    return available_memory()


def free_disk(path: str | Path) -> int:
    """Free bytes on the file system that holds ``path`` (or its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return int(shutil.disk_usage(p).free)
    except OSError:
        return 1 << 62  # cannot tell: let the write itself report a full disk


def check_fits(what: str, need: int, have: tuple[int, str], advice: str = "") -> None:
    """Refuse ``need`` bytes when ``have`` (bytes, where that number comes from) is less."""
    available, where = have
    if need <= available:
        return
    more = f"; {advice}" if advice else ""
    raise ZspaceError(
        f"{what} needs at least {format_bytes(need)}, but only {format_bytes(available)} "
        f"are available ({where}){more}"
    )


def check_memory(what: str, need: int, advice: str = "") -> None:
    check_fits(what, need, available_memory(), advice)


def check_disk(what: str, need: int, folder: str | Path, advice: str = "") -> None:
    check_fits(what, need, (free_disk(folder), f"free disk space at {folder}"), advice)


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Have glibc keep freed memory in this process (no mmap per large block, the top of
    the heap trimmed above 1 GiB only, so up to the process's peak may stay with it): with
    its defaults every activation of a training step or an encoded batch (tens of MB) is a
    fresh mapping whose pages fault on first touch, 1.3-1.5x slower on the CPU
    (docs/performance.md). The CLI calls it for the verbs that run networks, in its own
    process; a library must not change its caller's allocator. Skipped where
    GLIBC_TUNABLES sets malloc options, ZSPACE_MALLOC=default, or libc is not glibc.
    Returns whether the options were set."""
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if os.environ.get("ZSPACE_MALLOC") == "default":
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:  # no C library to load (Windows)
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # musl, macOS: their own allocators
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
