"""The analyses on synthetic latents with known structure return the truth."""

import numpy as np
import pytest

from zspace.analysis.axes import axes_analysis
from zspace.analysis.kmeans import elbow, kmeans_analysis
from zspace.analysis.pca import pca_analysis
from zspace.analysis.radius import radius_distribution
from zspace.analysis.tsne import tsne_analysis
from zspace.analysis.vae_internals import vae_internals
from zspace.core.errors import ZspaceError


@pytest.fixture(scope="module")
def gauss256() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((20000, 256), dtype=np.float32)


def test_radius_of_standard_normal_256(gauss256):
    r = radius_distribution(gauss256)
    assert abs(r.peak - 16) <= 0.5
    assert abs(r.mean - 15.98) <= 0.2
    assert r.expected == 16
    assert r.half_lo < 16 < r.half_hi and r.half_hi - r.half_lo < 1.2
    assert r.counts.sum() == len(gauss256) and r.outside == 0
    assert r.to_dict()["peak"] == r.peak


def test_radius_bad_bin_width(gauss256):
    with pytest.raises(ZspaceError, match="bin_width"):
        radius_distribution(gauss256, bin_width=0)


def test_axes_flags_exactly_the_odd_ones(gauss256):
    z = gauss256.copy()
    odd = [7, 52, 130, 171, 221]
    z[:, 7] += 3
    z[:, 52] -= 3
    z[:, 130] *= 3
    z[:, 171] *= 3
    z[:, 221] += 3
    res = axes_analysis(z)
    assert res.flagged_axes == odd
    why = {f["axis"]: f["why"] for f in res.flagged}
    assert why[130] == "broad" and why[52] == "off-centre"
    assert res.densities.shape == (256, len(res.edges) - 1)


def test_axes_none_flagged_on_standard_normal(gauss256):
    assert axes_analysis(gauss256).flagged == []


def test_pca_line_and_plane():
    rng = np.random.default_rng(2)
    t = rng.normal(size=(5000, 1))
    direction = rng.normal(size=(1, 32))
    line = t * direction * 5 + 0.01 * rng.normal(size=(5000, 32))
    res = pca_analysis(line.astype(np.float32))
    assert res.dominant == 1 and res.explained[0] > 0.99
    basis = rng.normal(size=(2, 32))
    plane = rng.normal(size=(5000, 2)) @ basis * 5 + 0.01 * rng.normal(size=(5000, 32))
    res = pca_analysis(
        plane.astype(np.float32), pairs=[(1, 2)], zoom_mode="absolute", zooms=[10, 1]
    )
    assert res.dominant == 2 and res.cumulative[1] > 0.99
    assert res.proj_pca.shape == (1, 5000, 2)
    assert res.counts_pca[0][0] >= res.counts_pca[0][1]


def test_pca_flat_spectrum_has_no_dominant(gauss256):
    res = pca_analysis(gauss256[:5000], max_points=100)
    assert res.dominant == 0
    assert res.pairs == [[1, 2], [1, 18], [8, 35]] and res.proj_pca.shape == (3, 100, 2)


def test_pca_pair_out_of_range():
    z = np.zeros((10, 4), dtype=np.float32)
    with pytest.raises(ZspaceError, match="out of range"):
        pca_analysis(z, pairs=[(1, 5)])
    with pytest.raises(ZspaceError, match="out of range"):
        pca_analysis(z, axis_pairs=[(0, 4)])


def test_kmeans_elbow_on_40_gaussians_and_none_on_one():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(40, 16)) * 10
    z = centres[rng.integers(0, 40, 4000)] + rng.normal(size=(4000, 16))
    res = kmeans_analysis(z.astype(np.float32), k_max=80, sample=4000, batch_size=1024, n_init=1)
    assert res.elbow is not None and 30 <= res.elbow <= 50
    one = kmeans_analysis(
        rng.normal(size=(4000, 16)).astype(np.float32),
        k_max=60,
        k_step=4,
        sample=4000,
        batch_size=1024,
        n_init=1,
    )
    assert one.elbow is None and "no pronounced elbow" in one.summary()


def test_elbow_rule_on_exact_curves():
    ks = np.arange(2, 81, 2)
    corner = np.where(ks <= 40, np.exp(-0.1 * (ks - 2)), np.exp(-3.8) * (1 - 0.001 * (ks - 40)))
    el, _, strength, _ = elbow(ks, corner)
    assert el == 40 and strength > 0.95
    el, _, strength, _ = elbow(ks, np.exp(-0.01 * ks))
    assert el is None and strength < 0.01


def test_vae_internals_tiny_logvar():
    rng = np.random.default_rng(4)
    mu = rng.normal(size=(5000, 256)).astype(np.float32)
    logvar = np.full_like(mu, -14.0)
    z = mu + np.exp(0.5 * logvar) * rng.normal(size=mu.shape).astype(np.float32)
    res = vae_internals(z, mu, logvar)
    assert res.radius_rel_mean < 1e-3 and res.radius_rel_max < 1e-3
    assert res.logvar_mean == pytest.approx(-14) and res.logvar_above == [0, 0, 0, 0]
    assert res.diff_above == 0 and res.diff_max < 0.05


def test_tsne_small_map_separates_two_blobs():
    rng = np.random.default_rng(5)
    z = np.concatenate([rng.normal(size=(150, 8)), rng.normal(size=(150, 8)) + 20])
    label = np.repeat([0, 1], 150)
    res = tsne_analysis(
        z.astype(np.float32),
        n=200,
        perplexity=20,
        n_iter=150,
        n_jobs=1,
        colour=label,
        colour_by="label",
    )
    assert res.embedding.shape == (200, 2) and res.colour.shape == (200,)
    a, b = res.embedding[res.colour == 0], res.embedding[res.colour == 1]
    gap = np.linalg.norm(a.mean(0) - b.mean(0))
    assert gap > 3 * max(a.std(0).max(), b.std(0).max())
    with pytest.raises(ZspaceError, match="perplexity"):
        tsne_analysis(z, perplexity=0)


def test_pca_relative_windows_hold_the_stated_share_of_a_synthetic_cloud():
    """Windows are shares f of the cloud's extent (its 99 % radius in the max norm): a
    uniform square then holds (f * 0.995)^2 of its points, a 2-D Gaussian
    erf(f h / sqrt 2)^2 with h its 99 % radius; absolute windows stay as given."""
    from math import erf, sqrt

    from scipy.special import erfinv

    rng = np.random.default_rng(7)
    n = 200_000
    square = rng.uniform(-3, 3, size=(n, 2)).astype(np.float32)
    res = pca_analysis(square, pairs=[(1, 2)], axis_pairs=[(0, 1)], max_points=100)
    assert res.zoom_mode == "relative" and res.zooms == [1.0, 0.3, 0.1]
    # the square's principal axes are any rotation of it: its windows are checked on
    # the original axes, the rotation-invariant Gaussian's on both
    assert res.extent_axes[0] == pytest.approx(3 * sqrt(0.99), rel=0.01)
    shares = [c / n for c in res.counts_axes[0]]
    assert shares == pytest.approx([0.99, 0.99 * 0.3**2, 0.99 * 0.1**2], abs=0.004)
    gauss = (rng.normal(size=(n, 4)) * [5, 5, 0.1, 0.1]).astype(np.float32)
    res = pca_analysis(gauss, pairs=[(1, 2)], axis_pairs=[(0, 1)], zooms=[0.5, 0.2])
    h = sqrt(2) * erfinv(sqrt(0.99))  # 99 % radius of a unit 2-D Gaussian in the max norm
    expected = [erf(f * h / sqrt(2)) ** 2 for f in (0.5, 0.2)]
    for counts in (res.counts_pca[0], res.counts_axes[0]):
        assert [c / n for c in counts] == pytest.approx(expected, abs=0.005)
    assert res.windows_axes[0] == pytest.approx([0.5 * 5 * h, 0.2 * 5 * h], rel=0.02)
    absolute = pca_analysis(gauss, pairs=[(1, 2)], axis_pairs=[(0, 1)], zoom_mode="absolute")
    assert absolute.windows_axes[0] == [25.0, 2.5, 0.25]  # the reference's, as they were
    with pytest.raises(ZspaceError, match="pca.zoom_mode=absolute"):
        pca_analysis(gauss, zooms=[25, 2.5])
    with pytest.raises(ZspaceError, match="zoom_mode"):
        pca_analysis(gauss, zoom_mode="decades")
