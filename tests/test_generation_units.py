"""Generation pieces on synthetic arrays: samplers, fits, the rate, paths, images."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from zspace.core.errors import ZspaceError
from zspace.generation import images, paths, samplers
from zspace.generation.rate import build_reference, nearest_distances


def test_normal_and_uniform_shapes_and_seeds():
    a = samplers.Sampler(7).sample(5, np.random.default_rng(3))
    b = samplers.Sampler(7).sample(5, np.random.default_rng(3))
    assert a.shape == (5, 7) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    for limit in samplers.REFERENCE_LIMITS:
        u = samplers.Sampler(16, limit).sample(4000, np.random.default_rng(0))
        assert u.shape == (4000, 16)
        assert np.abs(u).max() <= limit
        assert np.abs(u).max() > 0.99 * limit  # the whole box is used


@pytest.mark.parametrize("limit", [0, -1, float("nan")])
def test_uniform_limit_must_be_positive(limit):
    with pytest.raises(ZspaceError, match="must be a finite number > 0"):
        samplers.Sampler(2, limit).sample(3, np.random.default_rng(0))


def test_unknown_sampler_lists_the_choices():
    with pytest.raises(ZspaceError, match="normal, uniform, gauss, gmm"):
        samplers.check_sampler("vonmises")


def test_fitted_gauss_recovers_mean_and_covariance():
    rng = np.random.default_rng(1)
    mean = np.array([1.0, -2.0, 0.5, 3.0])
    a = rng.standard_normal((4, 4))
    cov = a @ a.T + 0.5 * np.eye(4)
    z = rng.multivariate_normal(mean, cov, size=40_000).astype(np.float32)
    fit = samplers.Fitted("gauss").fit(z)
    np.testing.assert_allclose(fit.arrays["mean"], mean, atol=0.05)
    np.testing.assert_allclose(fit.arrays["cov"], cov, atol=0.1 * np.abs(cov).max())
    draw = fit.sample(40_000, np.random.default_rng(2))
    np.testing.assert_allclose(draw.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(draw, rowvar=False), cov, atol=0.1 * np.abs(cov).max())


def test_gauss_sampling_survives_a_dead_axis():
    z = np.random.default_rng(0).standard_normal((500, 3))
    z[:, 1] = 0.0  # an axis the encoder never uses: singular covariance
    out = samplers.Fitted("gauss").fit(z).sample(10, np.random.default_rng(0))
    assert np.isfinite(out).all() and np.abs(out[:, 1]).max() < 1e-3


@pytest.fixture(scope="module")
def two_blobs():
    rng = np.random.default_rng(5)
    return np.concatenate([rng.normal(-6, 1, (1500, 3)), rng.normal(6, 0.5, (500, 3))])


def test_gmm_bic_picks_two_blobs_and_samples_their_weights(two_blobs):
    fit = samplers.Fitted("gmm", [1, 2, 3], sample_size=600, seed=0).fit(two_blobs)
    assert fit.info["n_components"] == 2 and fit.info["subsample"] == 600
    assert fit.info["warning"] is None  # 2 lies inside the range tried
    edge = samplers.Fitted("gmm", [1, 2], sample_size=600, seed=0).fit(two_blobs)
    assert "BIC chose 2 components, the largest count tried" in edge.info["warning"]
    assert set(fit.info["bic"]) == {"1", "2", "3"}
    draw = fit.sample(4000, np.random.default_rng(0))
    assert draw.shape == (4000, 3)
    assert abs((draw[:, 0] > 0).mean() - 0.25) < 0.04
    np.testing.assert_array_equal(draw, fit.sample(4000, np.random.default_rng(0)))


def test_the_default_gmm_search_doubles_while_bic_picks_the_largest_count(monkeypatch):
    """24 separated clusters: 1-16 ends at its largest count, so the default search
    tries 32 (chosen) and 64 (worse) and stops; a list given is searched as given; the
    cap ends the search with the warning."""
    rng = np.random.default_rng(0)
    centres = np.stack(np.meshgrid(np.arange(6), np.arange(4)), -1).reshape(-1, 2) * 10.0
    z = (centres[:, None] + rng.normal(0, 1, (24, 40, 2))).reshape(-1, 2)
    auto = samplers.Fitted("gmm", seed=0).fit(z)
    assert list(auto.info["bic"]) == ["1", "2", "4", "8", "16", "32", "64"]
    assert auto.info["n_components"] == 32 and auto.info["warning"] is None
    given = samplers.Fitted("gmm", samplers.DEFAULT_COMPONENTS, seed=0).fit(z)
    assert list(given.info["bic"]) == ["1", "2", "4", "8", "16"]
    assert "BIC chose 16 components" in given.info["warning"]
    assert "--components 16,32,64" in given.info["warning"]
    two = samplers.Fitted("gmm", seed=0).fit(z[:80])  # two clusters: no search past 16
    assert list(two.info["bic"]) == ["1", "2", "4", "8", "16"] and two.info["n_components"] == 2
    monkeypatch.setattr(samplers, "MAX_COMPONENTS", 32)
    capped = samplers.Fitted("gmm", seed=0).fit(z)
    assert list(capped.info["bic"])[-1] == "32" and "BIC chose 32" in capped.info["warning"]


def test_fits_are_saved_as_arrays_and_reused(tmp_path, two_blobs):
    fit = samplers.Fitted("gmm", [2], sample_size=800, seed=1).fitted(
        tmp_path / "samplers", two_blobs
    )
    npz, meta = tmp_path / "samplers" / "gmm.npz", tmp_path / "samplers" / "gmm.json"
    with np.load(npz, allow_pickle=False) as f:  # plain arrays, no pickles
        assert set(f.files) == {"weights", "means", "covariances"}
    assert json.loads(meta.read_text())["n_components"] == 2
    again = samplers.Fitted("gmm", [2], sample_size=800, seed=1).fitted(
        tmp_path / "samplers", two_blobs
    )
    np.testing.assert_array_equal(again.means, fit.means)
    assert again.info["seconds"] == fit.info["seconds"]  # read back, not refitted
    changed = samplers.Fitted("gmm", [2], sample_size=800, seed=1).fitted(
        tmp_path / "samplers", two_blobs[:1000]
    )
    assert changed.info["latents"]["n"] == 1000  # other latents: refitted


def test_a_damaged_fit_is_refitted_with_a_logged_line(tmp_path, two_blobs):
    """An object array (or an npz that lacks one of the fit's arrays) in the saved fit:
    fitted again, and the log says so and why; the new fit replaces the file."""
    from zspace.core.fileio import sha256_of

    folder, logs = tmp_path / "samplers", []
    fit = samplers.Fitted("gauss").fitted(folder, two_blobs)
    for arrays, words in (
        ({"mean": np.array([{}], dtype=object), "cov": fit.arrays["cov"]}, "object arrays"),
        ({"mean": fit.arrays["mean"]}, "its arrays do not fit (KeyError('cov'))"),
    ):
        np.savez(folder / "gauss.npz", **arrays, allow_pickle=True)
        record = json.loads((folder / "gauss.json").read_text())  # a consistent pair
        record["npz_sha256"] = sha256_of(folder / "gauss.npz")
        (folder / "gauss.json").write_text(json.dumps(record))
        logs.clear()
        again = samplers.Fitted("gauss").fitted(folder, two_blobs, log=logs.append)
        assert logs[0].startswith(f"gauss: refitting {folder / 'gauss.json'}: ")
        assert words in logs[0]
        np.testing.assert_array_equal(again.arrays["mean"], fit.arrays["mean"])
    logs.clear()
    assert samplers.Fitted("gauss").load(folder, logs.append) is not None and not logs


def spatial_latents(n, d=512, rank=6, seed=0):
    """Latents of a map: a few strong directions plus per-axis noise of varying size."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, rank)))[0].T * np.arange(8, 8 - rank, -1)[:, None]
    noise = np.linspace(0.05, 0.4, d)
    return (
        2.0 + rng.standard_normal((n, rank)) @ basis + rng.standard_normal((n, d)) * noise
    ), noise


def test_high_d_gauss_fits_in_pca_space_and_keeps_the_covariance(tmp_path):
    z, noise = spatial_latents(3000)
    logs = []
    fit = samplers.Fitted("gauss").fitted(tmp_path, z.astype(np.float32), log=logs.append)
    assert fit.info["space"] == "pca" and fit.info["pca_dims"] == samplers.PCA_DIMS
    assert fit.arrays["cov"].shape == (64, 64) and fit.d == 512
    assert logs == [f"gauss: fitted {samplers.pca_note(fit.params, 512)}"]
    assert "leading 64 principal components of D = 512" in logs[0]
    draw = fit.sample(20_000, np.random.default_rng(0))
    assert draw.shape == (20_000, 512)
    cov, got = np.cov(z, rowvar=False), np.cov(draw, rowvar=False)
    assert np.linalg.norm(got - cov) / np.linalg.norm(cov) < 0.05
    # the axes outside the leading components keep their own spread, not a shared one
    np.testing.assert_allclose(np.sqrt(np.diag(got))[-50:], np.sqrt(np.diag(cov))[-50:], rtol=0.05)
    np.testing.assert_allclose(draw.mean(0), z.mean(0), atol=0.05)
    again = samplers.Fitted("gauss").load(tmp_path)  # arrays, read back
    np.testing.assert_array_equal(
        again.sample(5, np.random.default_rng(1)), fit.sample(5, np.random.default_rng(1))
    )


def test_high_d_gmm_finds_two_blobs_in_pca_space():
    # two kinds of image: a quarter of the points shifted along axis 0, with other axes
    z = np.concatenate([spatial_latents(900, 400, seed=1)[0], spatial_latents(300, 400, seed=2)[0]])
    z[900:, 0] += 30.0
    fit = samplers.Fitted("gmm", [1, 2, 3], sample_size=1200, seed=0).fit(z)
    assert fit.info["space"] == "pca" and fit.info["n_components"] == 2
    assert fit.means.shape == (2, samplers.PCA_DIMS) and fit.d == 400
    draw = fit.sample(4000, np.random.default_rng(0))
    assert abs((draw[:, 0] > 17).mean() - 0.25) < 0.04
    low = samplers.Fitted("gauss").fit(z[:, : samplers.HIGH_D])
    assert "space" not in low.info and low.arrays["cov"].shape == (256, 256)  # full, as before


def test_rate_held_out_data_high_far_points_low():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((12_000, 8))
    ref = build_reference(data[:10_000], size=3000, seed=0)
    assert len(ref.points) == 3000
    assert ref.rate(data[10_000:]) >= 0.9
    assert ref.rate(data[10_000:] + 50.0) <= 0.05
    assert ref.rate(rng.standard_normal((2000, 8)) * 6) <= 0.05


def test_sparse_reference_warns():
    rng = np.random.default_rng(1)
    dense = build_reference(rng.standard_normal((3000, 2)))
    assert not dense.too_sparse and dense.warning() is None
    sparse = build_reference(rng.standard_normal((300, 64)))  # 300 points in 64 dims
    assert sparse.too_sparse and sparse.threshold >= sparse.spread
    assert "300 reference points are too few for d = 64" in sparse.warning()


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(2)
    ref, q = rng.standard_normal((300, 5)), rng.standard_normal((50, 5))
    brute = np.sqrt(((q[:, None] - ref[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(nearest_distances(q, ref), brute, rtol=1e-6, atol=1e-9)
    self_d = nearest_distances(ref, ref, exclude_self=True)
    full = np.sqrt(((ref[:, None] - ref[None]) ** 2).sum(-1)) + np.diag([np.inf] * 300)
    np.testing.assert_allclose(self_d, full.min(1), rtol=1e-6)


def test_nearest_distances_are_float64_exact_far_from_the_origin(monkeypatch):
    """The float32 shortlist must not lose the true neighbour, even where |a|^2 is
    10^8 times the distances (centring), and across chunk borders."""
    from zspace.analysis import neighbours

    monkeypatch.setattr(neighbours, "CHUNK", 64)
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((500, 16)) * 0.01 + 1000.0
    q = ref[:200] + rng.standard_normal((200, 16)) * 0.002
    brute = np.sqrt(((q[:, None] - ref[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(nearest_distances(q, ref), brute, rtol=1e-12)
    full = np.sqrt(((ref[:, None] - ref[None]) ** 2).sum(-1)) + np.diag([np.inf] * 500)
    np.testing.assert_allclose(
        nearest_distances(ref, ref, exclude_self=True), full.min(1), rtol=1e-12
    )


def test_gmm_failure_is_one_line(monkeypatch, two_blobs):
    from sklearn.mixture import GaussianMixture

    def fail(self, x):
        raise ValueError(
            "Fitting the mixture model failed because some components have "
            "ill-defined empirical covariance\nTry decreasing n_components"
        )

    monkeypatch.setattr(GaussianMixture, "fit", fail)
    with pytest.raises(
        ZspaceError,
        match=r"^GMM with 2 components could not be fitted: "
        r"Fitting the mixture model failed [^\n]*covariance$",
    ):
        samplers.Fitted("gmm", 2, seed=0).fit(two_blobs)


def test_lerp_and_slerp():
    a, b = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    line = paths.lerp(a, b, 5)
    np.testing.assert_allclose(line[[0, -1]], [a, b], atol=1e-6)
    np.testing.assert_allclose(line[2], [1.5, 1.5], atol=1e-6)
    arc = paths.slerp(a, b, 5)
    np.testing.assert_allclose(np.linalg.norm(arc, axis=1), 3.0, atol=1e-5)
    np.testing.assert_allclose(arc[[0, -1]], [a, b], atol=1e-5)
    with pytest.raises(ZspaceError):
        paths.lerp(a, b, 1)


def test_pca_direction_axis_and_attribute_vector():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5000, 3)) * [0.5, 4.0, 1.0]
    v = paths.pca_direction(z, 1)
    assert abs(abs(v[1]) - 4.0) < 0.2 and abs(v[0]) < 0.2
    assert paths.axis_direction(z, 2)[2] == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ZspaceError, match="axis 3 does not exist"):
        paths.axis_direction(z, 3)
    steps = paths.traverse(z[0], v, [-1, 0, 1])
    np.testing.assert_allclose(steps[1], z[0], atol=1e-6)
    attr = np.where(z[:, :1] > 0, 1, -1).astype(np.int8)
    vec = paths.attribute_vector(z + attr * [0, 0, 2], attr, ["Smiling"], "Smiling")
    assert vec[2] == pytest.approx(4.0, abs=0.15)
    # 0 = not covered by the attribute file: in neither mean
    partial = attr.copy()
    partial[::2] = 0
    shifted = z + attr * [0, 0, 2] + (partial == 0) * [0, 0, 100.0]
    vec = paths.attribute_vector(shifted, partial, ["Smiling"], "Smiling")
    assert vec[2] == pytest.approx(4.0, abs=0.2)
    with pytest.raises(ZspaceError, match=r"0 of the \d+ points with a known value"):
        paths.attribute_vector(z, np.where(attr > 0, 0, attr), ["Smiling"], "Smiling")
    with pytest.raises(ZspaceError, match="unknown attribute"):
        paths.attribute_vector(z, attr, ["Smiling"], "Bald")
    with pytest.raises(ZspaceError, match="no attributes"):
        paths.attribute_vector(z, None, None, "Smiling")


def test_grid_png_is_deterministic_and_carries_no_caption(tmp_path):
    imgs = (np.random.default_rng(0).random((6, 1, 10, 10))).astype(np.float32)
    u8 = images.to_uint8(imgs)
    assert u8.shape == (6, 10, 10, 1) and u8.dtype == np.uint8
    p1 = images.write_grid(tmp_path / "a.png", [u8], 3)
    p2 = images.write_grid(tmp_path / "b.png", [u8], 3)
    assert p1.read_bytes() == p2.read_bytes()
    img = np.asarray(Image.open(io.BytesIO(p1.read_bytes())))
    cell = 10 * 6  # enlarged to >= 56 px
    # exactly the two lines of images: the caption is in index.json, not in the pixels
    assert img.shape[:2] == (2 * (cell + 2) + 2, 3 * (cell + 2) + 2)


def test_sharpen_factor_one_is_identity_and_others_change():
    imgs = images.to_uint8(np.random.default_rng(1).random((2, 3, 16, 16)))
    assert images.sharpened(imgs, 1) is imgs
    assert not np.array_equal(images.sharpened(imgs, 7), imgs)
    assert images.sharpened(imgs, 0).std() < imgs.std()  # 0 = blurred
    with pytest.raises(ZspaceError):
        images.sharpened(imgs, -1)


def test_file_names_follow_one_rule():
    from zspace.generation.naming import sample_file

    assert sample_file("grid", ("", "gmm"), ("k", 8), ("limit", None), ("n", 64), ("seed", 0)) == (
        "grid-gmm-k8-n64-seed0.png"
    )
    assert sample_file("attribute", ("", "Smiling"), ("s", [0, 0.5, 1, 1.5, 2])) == (
        "attribute-Smiling-s0to2x5.png"
    )
    assert sample_file("traverse", ("s", [-3, 0, 3.5])) == "traverse-s-3_0_3.5.png"
    assert sample_file("recon", ("", "files"), ("", ["a/me.jpg", "you.png"])) == (
        "recon-files-me+you.png"
    )
    long_a = sample_file("recon", ("", [f"photo{i:03d}.jpg" for i in range(30)]))
    long_b = sample_file("recon", ("", [f"photo{i:03d}.jpg" for i in range(31)]))
    assert len(long_a) <= 100 and long_a != long_b and long_a.endswith(".png")


def test_attribute_vector_counts_and_default_strengths_scale_with_the_spread():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(1000, 4))
    attr = np.where(rng.random((1000, 1)) < 0.3, 1, -1)
    attr[:100] = 0  # no row: in neither mean
    z[attr[:, 0] > 0, 0] += 0.3  # a small shift along axis 0
    v = paths.attribute_stats(z, attr, ["Smiling"], "Smiling")
    assert v.n_with + v.n_without == 900 and v.n_with == int((attr > 0).sum())
    assert v.spread == pytest.approx(1.0, abs=0.15) and v.relative < 0.5
    s = v.default_strengths()
    assert s[0] == 0 and len(s) == 5 and s[-1] * v.length == pytest.approx(3 * v.spread, rel=0.05)
    big = paths.AttributeVector("x", np.array([10.0, 0, 0, 0]), 5, 5, 1.0)
    assert big.default_strengths()[-1] == 2  # a long vector keeps the classic 0..2
