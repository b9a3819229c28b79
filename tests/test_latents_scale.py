"""Latents that do not fit in memory (issue 15): the stored .npz written in pieces and
read memory-mapped, the streaming writer, and analyses that make no (N, d) copy."""

import io
import zipfile

import numpy as np
import pytest

import zspace.core.npz as npz
from zspace.analysis.axes import axes_analysis, axis_densities, axis_stats
from zspace.analysis.common import column_blocks
from zspace.analysis.pca import pca_analysis
from zspace.analysis.vae_internals import vae_internals
from zspace.core.errors import ZspaceError
from zspace.core.fileio import read_npz
from zspace.latents.store import LatentsWriter, latents_path, load_latents, save_latents


def _arrays(rng, n=300, d=7):
    mu = rng.normal(0.3, 1.0, (n, d)).astype(np.float32)
    logvar = rng.normal(-2.0, 0.5, (n, d)).astype(np.float32)
    z = (mu + np.exp(0.5 * logvar) * rng.standard_normal((n, d))).astype(np.float32)
    return z, mu, logvar


def test_written_npz_is_read_by_numpy_and_mapped_by_load(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(1000, 5)).astype(np.float32)
    f = np.asfortranarray(rng.normal(size=(6, 4)))
    part = tmp_path / "part.npy"
    np.save(part, np.arange(10, dtype=np.int64))
    path = tmp_path / "x.npz"
    with open(path, "wb") as fh:
        npz.write(fh, {"a": a, "f": f, "part": part, "s": np.array("train"), "e": np.zeros((0, 3))})
    with np.load(path) as plain:  # an ordinary .npz
        assert np.array_equal(plain["a"], a) and np.array_equal(plain["part"], np.arange(10))
    got = read_npz(path, mmap=True)
    assert npz.is_mapped(got["a"]) and npz.is_mapped(got["f"]) and npz.is_mapped(got["part"])
    assert not npz.is_mapped(got["e"]) and got["e"].shape == (0, 3)
    assert np.array_equal(got["a"], a) and np.array_equal(got["f"], f)
    assert str(got["s"]) == "train"
    assert not got["a"].flags.writeable  # read-only: an analysis cannot change the file
    assert not npz.is_mapped(read_npz(path)["a"])


def test_old_savez_files_are_mapped_and_compressed_ones_read(tmp_path):
    a = np.arange(4000, dtype=np.float32).reshape(1000, 4)
    np.savez(tmp_path / "old.npz", z=a)
    np.savez_compressed(tmp_path / "small.npz", z=a)
    old, small = (
        read_npz(tmp_path / "old.npz", mmap=True),
        read_npz(tmp_path / "small.npz", mmap=True),
    )
    assert npz.is_mapped(old["z"]) and np.array_equal(old["z"], a)
    assert not npz.is_mapped(small["z"]) and np.array_equal(small["z"], a)


def test_a_broken_npz_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.npz"
    buf = io.BytesIO()
    np.savez(buf, z=np.zeros((100, 4), np.float32))
    bad.write_bytes(buf.getvalue()[:300])  # cut off: no central directory
    with pytest.raises(ZspaceError, match="bad.npz is truncated or corrupt"):
        read_npz(bad, mmap=True)


def test_writer_streams_batches_into_the_same_file_save_latents_writes(tmp_path):
    rng = np.random.default_rng(1)
    z, mu, logvar = _arrays(rng, n=257)
    small = dict(split="train", index=np.arange(257) * 2, label=np.arange(257) % 3,
                 label_names=("a", "b", "c"), eps_scale=0.5, seed=7)  # fmt: skip
    path = latents_path(tmp_path, "train")
    with LatentsWriter(path, len(z), z.shape[1], True) as w:
        for s in range(0, len(z), 100):
            w.add(z[s : s + 100], mu[s : s + 100], logvar[s : s + 100])
        w.finish(**small)
    assert [p.name for p in path.parent.iterdir()] == ["train.npz"]  # the parts are gone
    lat = load_latents(tmp_path)
    assert npz.is_mapped(lat.z) and npz.is_mapped(lat.mu) and npz.is_mapped(lat.logvar)
    assert np.array_equal(lat.z, z) and np.array_equal(lat.logvar, logvar)
    assert lat.label_names == ("a", "b", "c") and lat.eps_scale == 0.5 and lat.seed == 7
    assert np.array_equal(lat.index, np.arange(257) * 2)
    # the same latents through save_latents (from memory maps: copied in pieces)
    save_latents(tmp_path / "copy" / "latents" / "train.npz", lat)
    again = load_latents(tmp_path / "copy")
    assert np.array_equal(again.mu, mu) and np.array_equal(again.label, lat.label)
    with zipfile.ZipFile(path) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_writer_leaves_nothing_behind_on_error_or_a_short_count(tmp_path):
    path = latents_path(tmp_path, "valid")
    with pytest.raises(RuntimeError), LatentsWriter(path, 10, 3, False) as w:
        w.add(np.zeros((4, 3)))
        raise RuntimeError("encoder failed")
    assert list(path.parent.iterdir()) == []
    with LatentsWriter(path, 10, 3, False) as w:
        w.add(np.zeros((4, 3)))
        with pytest.raises(ValueError, match="4 of 10"):
            w.finish(split="valid", index=np.arange(10))
        with pytest.raises(ValueError, match="11 latents"):
            w.add(np.zeros((7, 3)))
        with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
            w.add(np.zeros((2, 4)))
    assert list(path.parent.iterdir()) == []


def test_load_latents_refuses_a_file_that_is_not_latents(tmp_path):
    path = latents_path(tmp_path, "train")
    path.parent.mkdir(parents=True)
    np.savez(path, something=np.zeros(3))
    with pytest.raises(ZspaceError, match="not a zspace latents file"):
        load_latents(tmp_path)


def test_column_blocks_cover_every_column_in_order():
    z = np.arange(5 * 11, dtype=np.float32).reshape(11, 5)
    blocks = list(column_blocks(z, block_bytes=2 * 11 * 4))  # two columns a block
    assert [j for j, _ in blocks] == [0, 2, 4]
    assert np.array_equal(np.concatenate([b for _, b in blocks]), z.T)


def test_chunked_analyses_equal_the_whole_array_formulas(tmp_path):
    """The per-axis quantiles/histograms over column blocks and the chunked VAE
    statistics give what the one-shot NumPy formulas give, on memory-mapped input."""
    rng = np.random.default_rng(2)
    z, mu, logvar = _arrays(rng, n=70001, d=6)  # more than one 65,536-row chunk
    np.savez(tmp_path / "l.npz", z=z, mu=mu, logvar=logvar)
    m = read_npz(tmp_path / "l.npz", mmap=True)
    centres, widths = axis_stats(m["z"])
    q = np.quantile(z, (0.25, 0.5, 0.75), axis=0)
    assert np.array_equal(centres, q[1]) and np.allclose(widths, (q[2] - q[0]) / 1.349)
    dens, edges = axis_densities(m["z"], 0.25)
    assert edges[0] <= np.quantile(z, 0.001, axis=0).min()
    expected = (np.histogram(z[:, 3], edges)[0] / (len(z) * 0.25)).astype(np.float32)
    assert np.array_equal(dens[3], expected)
    res = axes_analysis(m["z"])
    assert np.array_equal(res.densities, dens) and np.array_equal(res.centres, centres)
    v = vae_internals(m["z"], m["mu"], m["logvar"])
    assert v.logvar_min == float(logvar.min()) and v.logvar_max == float(logvar.max())
    assert v.logvar_above == [int((logvar > t).sum()) for t in (-10.0, -5.0, -1.0, 0.0)]
    assert v.logvar_mean == pytest.approx(float(logvar.mean(dtype=np.float64)), rel=1e-12)
    assert np.allclose(v.axis_logvar_mean, logvar.mean(axis=0, dtype=np.float64), rtol=1e-12)
    counts, _ = np.histogram(logvar, bins=100, range=(v.logvar_min, v.logvar_max))
    assert np.array_equal(v.logvar_counts, counts)
    assert v.diff_above == int((np.abs(z.astype(np.float64) - mu) > 0.05).sum())
    p = pca_analysis(m["z"], pairs=((1, 2),), axis_pairs=((0, 1),), zooms=(1.0, 0.1))
    p2 = pca_analysis(z, pairs=((1, 2),), axis_pairs=((0, 1),), zooms=(1.0, 0.1))
    assert p.counts_pca == p2.counts_pca and p.explained == p2.explained


def test_release_lets_mapped_pages_go_and_reading_goes_on(tmp_path):
    a = np.random.default_rng(3).normal(size=(200_000, 16)).astype(np.float32)  # 12.8 MB
    np.savez(tmp_path / "a.npz", a=a)
    m = read_npz(tmp_path / "a.npz", mmap=True)["a"]

    def resident_kib() -> int:
        for line in open("/proc/self/status"):
            if line.startswith("RssFile:"):
                return int(line.split()[1])
        pytest.skip("no RssFile in /proc/self/status")

    before = resident_kib()
    assert float(m.sum(dtype=np.float64)) == pytest.approx(float(a.sum(dtype=np.float64)))
    touched = resident_kib()
    npz.release(m)
    after = resident_kib()
    assert touched - before > 10_000 and touched - after > 10_000  # 12.8 MB mapped, then let go
    assert np.array_equal(m[-5:], a[-5:])  # still readable
    npz.release(a)  # not mapped: nothing happens
