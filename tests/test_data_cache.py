"""The uint8 cache: location, reuse, staleness, crash safety and concurrent builders."""

from __future__ import annotations

import json
import multiprocessing
import sys

import numpy as np
import pytest
from PIL import Image

from zspace.config import load_config
from zspace.data import load_data
from zspace.data.cache import CacheSpec, cache_root, open_or_build, probe

GEO = {"height": 2, "width": 2, "channels": 1, "crop": "center"}


def spec(tmp_path, listing="a"):
    return CacheSpec("folder", "/data/x", GEO, listing, tmp_path / "cache")


def writer(value):
    def build(tmp):
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(3, 2, 2, 1))
        arr[:] = value
        arr.flush()
        return {"skipped": []}

    return build


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("ZSPACE_CACHE", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root(str(tmp_path / "cfg")) == tmp_path / "cfg"
    assert cache_root("") == tmp_path / "env"
    monkeypatch.delenv("ZSPACE_CACHE")
    if sys.platform.startswith("linux"):
        assert cache_root("") == tmp_path / "xdg" / "zspace"


def test_build_reuse_and_stale(tmp_path):
    first = open_or_build(spec(tmp_path), writer(7))
    assert first.state == "built" and first.images.shape == (3, 2, 2, 1)
    assert not first.images.flags.writeable  # memory-mapped read-only
    meta = json.loads(first.meta_path.read_text())
    assert meta["listing_sha256"] == "a" and meta["count"] == 3 and meta["geometry"] == GEO
    again = open_or_build(spec(tmp_path), writer(9))
    assert again.state == "reused" and int(again.images[0, 0, 0, 0]) == 7
    assert probe(spec(tmp_path, listing="b"))[0] == "stale"
    rebuilt = open_or_build(spec(tmp_path, listing="b"), writer(9))
    assert rebuilt.state == "rebuilt (source changed)" and int(rebuilt.images[0, 0, 0, 0]) == 9
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_a_crashed_build_leaves_nothing_behind(tmp_path):
    def crash(tmp):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        open_or_build(spec(tmp_path), crash)
    assert probe(spec(tmp_path))[0] == "absent"
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".lock"]
    assert open_or_build(spec(tmp_path), writer(1)).state == "built"


def test_a_damaged_meta_is_rebuilt(tmp_path):
    open_or_build(spec(tmp_path), writer(1))
    spec(tmp_path).meta_path.write_text("{not json")
    assert probe(spec(tmp_path))[0] == "broken"
    assert open_or_build(spec(tmp_path), writer(2)).state == "built"


def _load(source, cache, barrier, queue):
    cfg = load_config(None, [f'data.source="{source}"', f'data.cache_dir="{cache}"']).data
    barrier.wait()
    data = load_data(cfg)
    queue.put((data.details["cache"]["state"], int(np.asarray(data.images, np.int64).sum())))


@pytest.mark.skipif(sys.platform != "linux", reason="uses fork to start two builders at once")
def test_two_processes_building_the_same_cache(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(150):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / f"{i}.png")
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_load, args=(f"folder:{root}", tmp_path / "c", barrier, queue))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(state for state, _ in results) == ["built", "reused"]
    assert results[0][1] == results[1][1]
    assert sorted(p.suffix for p in (tmp_path / "c").iterdir()) == [".json", ".lock", ".npy"]
    assert sorted(p.name for p in root.iterdir()) == sorted(f"{i}.png" for i in range(150))
