"""The CLI's allocator setting (core.resources.keep_freed_memory): glibc keeps freed
memory in the processes that run networks, and the user can keep glibc's defaults."""

import ctypes
import subprocess
import sys

import pytest

from zspace.cli import main as cli_main
from zspace.core import resources

GLIBC = hasattr(ctypes.CDLL(None), "gnu_get_libc_version")
MALLINFO2 = GLIBC and hasattr(ctypes.CDLL(None), "mallinfo2")

# Prints how many more bytes glibc holds in mmap'ed blocks while a 64 MiB block is allocated.
PROBE = """
import ctypes, sys
from zspace.core.resources import keep_freed_memory
FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in FIELDS.split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
before = libc.mallinfo2().hblkhd
block = libc.malloc(64 << 20)
print(kept, libc.mallinfo2().hblkhd - before)
libc.free(ctypes.c_void_p(block))
"""


def probe(mode: str) -> tuple[str, int]:
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not MALLINFO2, reason="glibc >= 2.33 (mallinfo2) only")
def test_a_large_block_comes_from_the_heap_once_freed_memory_is_kept():
    assert probe("default") == ("None", pytest.approx(64 << 20, rel=0.01))
    assert probe("keep") == ("True", 0)


def test_the_user_keeps_glibcs_defaults(monkeypatch):
    monkeypatch.setenv("ZSPACE_MALLOC", "default")
    assert resources.keep_freed_memory() is False
    monkeypatch.delenv("ZSPACE_MALLOC")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536")
    assert resources.keep_freed_memory() is False


@pytest.mark.parametrize(
    "argv, kept", [(["encode", "no-such-run"], True), (["analyze", "no-such-run"], False)]
)
def test_only_the_verbs_that_run_networks_set_it(argv, kept, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli_main, "keep_freed_memory", lambda: calls.append(argv[0]))
    assert cli_main.main(argv) == 2
    assert "no-such-run" in capsys.readouterr().err
    assert calls == ([argv[0]] if kept else [])
