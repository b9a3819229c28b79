"""The generation metrics and the shared k-NN on feature arrays the tests make:
hand-computed cases, the reference implementation (prdc), and the real-vs-real floor."""

import contextlib
import io

import numpy as np
import pytest

from zspace.analysis.neighbours import knn, kth_distances, within_balls
from zspace.core.errors import ZspaceError
from zspace.evaluation import metrics as M
from zspace.evaluation.reading import row_flags


def test_knn_matches_brute_force_with_indices_and_self_exclusion():
    rng = np.random.default_rng(0)
    ref, q = rng.standard_normal((400, 6)) + 500.0, rng.standard_normal((70, 6)) + 500.0
    full = np.sqrt(((q[:, None] - ref[None]) ** 2).sum(-1))
    d, i = knn(q, ref, 5, chunk=16)
    np.testing.assert_array_equal(i, np.argsort(full, axis=1)[:, :5])
    np.testing.assert_allclose(d, np.sort(full, axis=1)[:, :5], rtol=1e-12)
    assert d.dtype == np.float64 and i.dtype == np.int64
    self_full = np.sqrt(((ref[:, None] - ref[None]) ** 2).sum(-1)) + np.diag([np.inf] * 400)
    ds, iself = knn(ref, ref, 3, exclude_self=True)
    assert not (iself == np.arange(400)[:, None]).any()
    np.testing.assert_allclose(ds, np.sort(self_full, axis=1)[:, :3], rtol=1e-12)
    np.testing.assert_allclose(kth_distances(ref, 3), np.sort(self_full, axis=1)[:, 2])
    with pytest.raises(ZspaceError, match="k = 0"):
        knn(q, ref, 0)
    with pytest.raises(ZspaceError, match="has 2 point"):
        knn(ref[:3], ref[:3], 3, exclude_self=True)
    with pytest.raises(ZspaceError, match="not two"):
        knn(q[:, :2], ref)


def test_within_balls_is_exact_on_the_boundary_and_for_copies():
    centres = np.array([[0.0, 0.0], [10.0, 0.0]]) + 1e4
    points = np.array([[3.0, 4.0], [3.0, 4.0000001], [10.0, 0.0], [20.0, 0.0]]) + 1e4
    inside = within_balls(points, centres, np.array([5.0, 0.0]))
    # on the edge (5 exactly) counts, just outside does not, a copy of a radius-0 centre counts
    assert inside.tolist() == [[True, False], [False, False], [False, True], [False, False]]


def test_prdc_by_hand():
    real = np.array([[0.0], [1.0], [2.0], [10.0]])  # k = 1 radii: 1, 1, 1, 8
    fake = np.array([[0.5], [5.0], [30.0]])  # k = 1 radii: 4.5, 4.5, 25
    s = M.prdc(real, fake, k=1, rounds=5)
    # fake 0.5 lies in the balls of 0 and 1; 5.0 only in the ball of 10 (radius 8); 30 in none
    assert s.metrics["precision"] == pytest.approx(2 / 3)
    assert s.metrics["density"] == pytest.approx((2 + 1 + 0) / 3)
    # every real point lies in a fake ball (0.5 has radius 4.5; 10 is within 25 of 30)
    assert s.metrics["recall"] == pytest.approx(1.0)
    # real balls holding a fake point: 0 and 1 (fake 0.5) and 10 (fake 5.0); not 2
    assert s.metrics["coverage"] == pytest.approx(3 / 4)
    assert set(s.spread) == set(s.metrics)


def test_prdc_equals_the_reference_implementation():
    prdc = pytest.importorskip("prdc")
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((150, 8)), rng.standard_normal((120, 8)) * 1.3 + 0.2
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        ref = prdc.compute_prdc(real, fake, nearest_k=4)
    ours = M.prdc(real, fake, 4).metrics
    for name, value in ref.items():
        assert ours[name] == pytest.approx(float(value), abs=1e-12), name


def test_frechet_distance_and_kid_by_hand():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((4000, 3))
    b = a * 2.0 + np.array([1.0, 0.0, 0.0])
    # N(0, I) vs N(mu, 4 I): |mu|^2 + tr(I + 4I - 2 * 2I) = 1 + 3, on the samples' moments
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    from scipy.linalg import sqrtm

    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * np.real(sqrtm(ca @ cb)))
    assert M.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert M.frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)
    assert M.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    x, y = rng.standard_normal((5, 2)), rng.standard_normal((4, 2))
    kxx, kyy, kxy = ((x @ x.T / 2 + 1) ** 3), ((y @ y.T / 2 + 1) ** 3), ((x @ y.T / 2 + 1) ** 3)
    by_hand = (kxx.sum() - np.trace(kxx)) / 20 + (kyy.sum() - np.trace(kyy)) / 12 - 2 * kxy.mean()
    assert M.kid(y, x) == pytest.approx(by_hand, rel=1e-12)


def test_real_vs_real_sits_at_its_floor():
    """A fresh sample of the real distribution scores like the floor (two disjoint real
    halves): density ~ 1, coverage ~ 1 - 2^-k, the rest within their spreads."""
    rng = np.random.default_rng(3)
    k, n, d = 5, 1000, 16
    mix = rng.standard_normal((4, d)) * 3

    def real(size):
        return mix[rng.integers(0, 4, size)] + rng.standard_normal((size, d))

    reference, floor_half, fresh = real(n), real(n), real(n)
    floor = M.prdc(reference, floor_half, k, seed=1)
    floor.update(M.distribution_scores(reference, floor_half, seed=1))
    other = M.prdc(reference, fresh, k, seed=2)
    other.update(M.distribution_scores(reference, fresh, seed=2))
    for s in (floor, other):
        assert s.metrics["density"] == pytest.approx(1.0, abs=4 * s.spread["density"])
        assert s.metrics["coverage"] == pytest.approx(1 - 2.0**-k, abs=0.02)
    for name in ("precision", "recall", "density", "coverage", "fd", "kid"):
        both = np.hypot(floor.spread[name], other.spread[name])
        assert 0 < both and abs(floor.metrics[name] - other.metrics[name]) <= 3 * both, name
    # far from the ideal values all the same: finite samples never reach them
    assert floor.metrics["precision"] < 0.98 and floor.metrics["fd"] > 0.01


def test_spreads_track_the_real_variability():
    """The spreads come from one generated set; over fresh sets the metrics vary by
    about that much (checked at 1,000 vs 1,000 in 16-d; docs/evaluation.md)."""
    rng = np.random.default_rng(4)
    reference = rng.standard_normal((400, 8))
    values, spreads = [], []
    for i in range(10):
        s = M.prdc(reference, rng.standard_normal((400, 8)), 5, rounds=30, seed=i)
        values.append(s.metrics)
        spreads.append(s.spread)
    for name in ("precision", "vouched_precision", "recall", "density", "coverage"):
        true = np.std([v[name] for v in values], ddof=1)
        est = np.mean([s[name] for s in spreads])
        assert 0.4 * true < est < 2.5 * true, (name, true, est)


def test_degenerate_generators():
    rng = np.random.default_rng(5)
    reference = rng.standard_normal((500, 10))
    one = np.repeat(reference.mean(0, keepdims=True), 500, axis=0)  # repeats one image
    s = M.prdc(reference, one, 5)
    assert s.metrics["recall"] <= 0.01 and s.metrics["coverage"] <= 0.05
    copies = np.repeat(rng.standard_normal((5, 10)), 100, axis=0)  # five real points
    s = M.prdc(reference, copies, 5)
    assert s.metrics["precision"] >= 0.6 and s.metrics["coverage"] <= 0.1
    far = rng.standard_normal((500, 10)) + 20
    s = M.prdc(reference, far, 5)
    assert s.metrics["precision"] == 0 and s.metrics["density"] == 0
    assert M.frechet_distance(reference, far) > 100 * M.frechet_distance(reference, reference[::-1])


def test_shares_confidence_and_histograms():
    s = M.share(np.array([1, 0, 1, 1]), "face_rate", rounds=20)
    assert s.metrics == {"face_rate": 0.75} and s.spread["face_rate"] > 0
    probs = np.array([[0.95, 0.05, 0.0], [0.5, 0.3, 0.2], [0.0, 0.02, 0.98]])
    assert M.confident(probs).tolist() == [True, False, True]
    assert M.label_histogram(probs) == [2, 0, 1]
    attrs = np.array([[0.99, 0.02], [0.6, 0.5]])
    assert M.confident(attrs, multilabel=True).tolist() == [True, False]
    assert M.label_histogram(attrs, multilabel=True) == [1.0, 0.5]
    with pytest.raises(ZspaceError, match="k = 5 needs more than 5"):
        M.prdc(np.zeros((5, 2)), np.zeros((9, 2)), 5)
    with pytest.raises(ZspaceError, match="do not match"):
        M.prdc(np.zeros((9, 2)), np.zeros((9, 3)), 1)


def _row(reference, points, name="x"):
    s = M.prdc(reference, points, 5, rounds=20)
    s.update(M.distribution_scores(reference, points, rounds=20))
    return {"sampler": name, "params": {"n": len(points)}, "metrics": s.metrics,
            "spread": s.spread, "capture": s.capture}  # fmt: skip


def test_a_tight_cluster_beside_a_few_isolated_reference_points():
    """Issue 23 in feature space: the letters' grey mush sat in the wide balls of six odd
    reference images. Ball-union precision calls the cluster real (1.0, above the
    floor); vouched precision, the capture counts and the flags do not."""
    rng = np.random.default_rng(6)
    d = 8
    odd = 20.0 * np.eye(d)[0] + 6.0 * np.eye(d)[1:7]  # six points 8.5 apart, far from the rest
    reference = np.vstack([rng.standard_normal((994, d)), odd])
    floor = _row(reference, rng.standard_normal((500, d)), "real")
    mush = _row(reference, odd.mean(0) + 0.05 * rng.standard_normal((500, d)))
    fm, mm = floor["metrics"], mush["metrics"]
    assert kth_distances(reference, 5)[-6:] == pytest.approx([6 * 2**0.5] * 6)  # wide balls
    assert mm["precision"] == 1.0 > fm["precision"] and mm["density"] > fm["density"]
    assert fm["vouched_precision"] == fm["precision"]  # no real ball is over-used at the floor
    assert mm["vouched_precision"] == 6 * 3 / 500  # six balls, each vouching for 3 = ceil(5 / 2)
    assert mm["extent"] < 0.1 < 0.8 < fm["extent"]
    assert mush["capture"] == {"inside": 500, "held_by": 6, "most_held_by": 1}
    assert floor["capture"]["held_by"] == round(fm["coverage"] * 1000)
    assert floor["capture"]["most_held_by"] > 40
    flags = row_flags(mush, floor, len(reference))
    assert len(flags) == 2
    assert flags[0].startswith("precision 1 and density 1.2 reach 90 % of the real floor's")
    assert "coverage is 0.69 % of the floor's" in flags[0]
    assert flags[1].startswith("500 of 500 images fall in the balls of 6 of 1,000 reference")
    assert row_flags(floor, floor, len(reference)) == []
    fresh = _row(reference, rng.standard_normal((500, d)))
    assert row_flags(fresh, floor, len(reference)) == []


def test_vouched_precision_and_capture_by_hand():
    from scipy.sparse import csr_matrix

    # fakes 0-3 all in ball 0 only, fake 4 in balls 0 and 1, fake 5 in no ball
    held = np.zeros((6, 3), bool)
    held[:5, 0] = True
    held[4, 1] = True
    assert M.vouched(csr_matrix(held), 1) == pytest.approx(2 / 6)  # ball 0 -> one, ball 1 -> 4
    assert M.vouched(csr_matrix(held), 2) == pytest.approx(3 / 6)
    assert M.vouched(csr_matrix(held), 9) == pytest.approx(5 / 6)  # = precision
    # two thirds of 6 = 4 points: ball 0 alone holds 5
    assert M.capture(held) == {"inside": 5, "held_by": 2, "most_held_by": 1}
    held[:3] = False  # 3 of 6 inside: fewer than two thirds
    assert M.capture(held)["most_held_by"] is None


def _flag_rows(**m):
    floor = {"metrics": {"precision": 0.9, "density": 1.0, "recall": 0.9, "coverage": 0.9},
             "capture": {"most_held_by": 60}, "params": {"n": 100}, "latent_rate": 0.9}  # fmt: skip
    capture = {"inside": 90, "held_by": 50, "most_held_by": 20, **m.get("capture", {})}
    row = {"metrics": {**floor["metrics"], **m.get("metrics", {})}, "params": {"n": 100},
           "capture": capture}  # fmt: skip
    if "latent_rate" in m:
        row["latent_rate"] = m["latent_rate"]
    return row_flags(row, floor, 1000)


def test_flag_thresholds_on_both_sides():
    """Fidelity at >= 90 % of the floor with recall or coverage < 10 % of the floor's;
    two thirds of the images in <= 3 balls (and <= a fifth of the floor's count)."""
    low = {"density": 0.5, "coverage": 0.089}  # coverage 9.9 % of the floor's
    assert _flag_rows(metrics={"precision": 0.811, **low})  # 90.1 % of the floor's 0.9
    assert not _flag_rows(metrics={"precision": 0.809, **low})
    assert not _flag_rows(metrics={"precision": 0.95, "density": 0.5, "coverage": 0.0905})
    assert _flag_rows(metrics={"precision": 0.5, "density": 0.91, "recall": 0.05})
    assert not _flag_rows(metrics={"precision": 0.5, "density": 0.2, "recall": 0.05},
                          latent_rate=0.8)  # fmt: skip
    only_rate = _flag_rows(metrics={"precision": 0.5, **low}, latent_rate=0.82)
    assert len(only_rate) == 1 and only_rate[0].startswith("latent rate 0.82 reaches 90 %")
    assert _flag_rows(capture={"most_held_by": 3}) and not _flag_rows(capture={"most_held_by": 4})
    assert not _flag_rows()  # the floor's own numbers


def test_ranked_puts_the_floor_first_then_the_best_headline():
    from zspace.evaluation.reading import HEADLINE, ranked

    rows = [{"sampler": s, "metrics": {"fd": v}} for s, v in
            (("real", 0.3), ("normal", 90.0), ("gmm", 10.0), ("gauss", 40.0))]  # fmt: skip
    rows.append({"sampler": "old", "metrics": {}})
    assert [r["sampler"] for r in ranked(rows, HEADLINE)] == ["real", "gmm", "gauss", "normal",
                                                            "old"]  # fmt: skip
    up = ranked(rows, {"metric": "fd", "higher_is_better": True})
    assert [r["sampler"] for r in up][:2] == ["real", "normal"]
