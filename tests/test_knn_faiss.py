"""The faiss backend of zspace.analysis.neighbours.knn (issue 15): exact, so it must return what
the torch search returns, on random and on clustered points."""

import builtins

import numpy as np
import pytest

import zspace.analysis.knn_faiss as knn_faiss
from zspace.analysis.neighbours import knn, kth_distances
from zspace.core.errors import ZspaceError

faiss = pytest.importorskip("faiss")


def _clustered(rng, n, d, clusters=12, spread=0.02):
    centres = rng.normal(0.0, 3.0, (clusters, d))
    return (centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, d))).astype(
        np.float32
    )


@pytest.mark.parametrize("kind", ["random", "clustered"])
@pytest.mark.parametrize(("k", "d"), [(1, 256), (5, 64), (3, 7)])
def test_faiss_equals_the_torch_search(kind, k, d):
    rng = np.random.default_rng(k * 100 + d)
    make = (lambda n: rng.standard_normal((n, d)).astype(np.float32)) if kind == "random" else (
        lambda n: _clustered(rng, n, d)
    )  # fmt: skip
    ref, queries = make(1500), make(300)
    for q, self_knn in ((queries, False), (ref, True)):
        dt, it = knn(q, ref, k, exclude_self=self_knn, backend="torch")
        df, i_f = knn(q, ref, k, exclude_self=self_knn, backend="faiss")
        assert np.array_equal(it, i_f)
        assert np.array_equal(dt, df)  # the same float64 re-ranking: equal to the bit
        assert df.dtype == np.float64 and i_f.dtype == np.int64 and df.shape == (len(q), k)
        if self_knn:
            assert not (i_f == np.arange(len(q))[:, None]).any()
        assert np.all(np.diff(df, axis=1) >= 0)


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_tight_clusters_far_from_the_mean_are_still_exact(backend):
    """float32 cannot rank neighbours 1e-3 apart on points of norm ~50: those queries
    fail the error-bound check and are searched again in float64."""
    rng = np.random.default_rng(11)
    pts = _clustered(rng, 1000, 256)
    p64 = pts.astype(np.float64)
    sq = (p64 * p64).sum(1)
    brute = sq[:, None] + sq[None, :] - 2 * p64 @ p64.T
    np.fill_diagonal(brute, np.inf)
    want = np.argsort(brute, axis=1, kind="stable")[:, :2]
    dist, idx = knn(pts, pts, 2, exclude_self=True, backend=backend)
    assert np.array_equal(idx, want)
    exact = np.sqrt(((p64[:, None, :] - p64[want]) ** 2).sum(2))
    assert np.allclose(dist, exact, rtol=0, atol=1e-12)


def test_faiss_distances_are_float64_exact():
    rng = np.random.default_rng(5)
    ref = rng.standard_normal((400, 16)).astype(np.float32)
    q = rng.standard_normal((50, 16)).astype(np.float32)
    dist, idx = knn(q, ref, 4, backend="faiss")
    brute = np.sqrt(((q[:, None, :].astype(np.float64) - ref[None].astype(np.float64)) ** 2).sum(2))
    assert np.array_equal(idx, np.argsort(brute, axis=1, kind="stable")[:, :4])
    assert np.allclose(dist, np.sort(brute, axis=1)[:, :4], rtol=0, atol=1e-12)


def test_tiny_reference_and_k_that_needs_every_point():
    ref = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]], np.float32)
    dist, idx = knn(ref, ref, 2, exclude_self=True, backend="faiss")
    assert idx.tolist() == [[1, 2], [0, 2], [0, 1]]
    assert np.allclose(dist[0], [1.0, 3.0])
    with pytest.raises(ZspaceError, match="k = 3 needs more"):
        knn(ref, ref, 3, exclude_self=True, backend="faiss")


def test_auto_switches_to_faiss_above_the_crossover(monkeypatch):
    rng = np.random.default_rng(6)
    pts = rng.standard_normal((300, 8)).astype(np.float32)
    calls = []
    real = knn_faiss.shortlist
    monkeypatch.setattr(knn_faiss, "shortlist", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    monkeypatch.setattr(knn_faiss, "MIN_PAIRS", 300 * 300 + 1)
    small = kth_distances(pts, 3)
    assert calls == []
    monkeypatch.setattr(knn_faiss, "MIN_PAIRS", 300 * 300)
    assert np.array_equal(kth_distances(pts, 3), small) and calls == [1]


def test_without_faiss_auto_stays_and_faiss_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    monkeypatch.setattr(knn_faiss, "_faiss", None)
    monkeypatch.setattr(knn_faiss, "MIN_PAIRS", 1)
    pts = np.random.default_rng(7).standard_normal((50, 4)).astype(np.float32)
    assert not knn_faiss.available()
    assert knn(pts, pts, 1, exclude_self=True)[0].shape == (50, 1)  # torch, silently
    with pytest.raises(ZspaceError, match=r"pip install 'zspace\[faiss\]'"):
        knn(pts, pts, 1, backend="faiss")
    with pytest.raises(ZspaceError, match="backend 'gpu'"):
        knn(pts, pts, 1, backend="gpu")
