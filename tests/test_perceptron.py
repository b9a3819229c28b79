"""Tests of the single-neuron perceptron study (SPEC section 7).

The acceptance numbers of the reference study are checked on the FULL 5500 x 5500 mesh
(arange(-5.5, 5.5, 0.002)): the accumulate-per-sample surface takes about a second
per scaling here, so no local-mesh shortcut is needed. Everything else uses small
meshes or no mesh.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from scipy.special import expit
from sklearn.preprocessing import MinMaxScaler, Normalizer, StandardScaler

from zspace.cli.perceptron import add_parser, run
from zspace.core.errors import ZspaceError
from zspace.perceptron import (
    SCALINGS,
    MeshSpec,
    cost,
    cost_surface,
    fit_scaling,
    gradient_descent,
    output_grid,
    outputs,
    perceptron_study,
    reference_samples,
)

S = reference_samples()
FULL = MeshSpec(-5.5, 5.5, 0.002)


def scaled(name: str) -> np.ndarray:
    return fit_scaling(name, S.K).transform(S.K)


def naive_surface(k: np.ndarray, t: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """The reference's way: a full mesh array per sample, then their mean."""
    W1, W2 = np.meshgrid(w1, w2)
    per_sample = [0.5 * (expit(W1 * k[i, 0] + W2 * k[i, 1]) - t[i]) ** 2 for i in range(len(t))]
    return np.mean(per_sample, axis=0)


def sig(x: float, digits: int) -> float:
    return float(f"{x:.{digits}g}")


# ---------------------------------------------------------------- data and scalings


def test_reference_data_uses_table_values():
    assert S.K.shape == (14, 2) and len(S) == 14
    assert S.K[7, 0] == 14 and S.K[10, 1] == 7  # the tables, not the code listing's typos
    assert S.target.tolist() == [0.3, 0.7] * 7


def test_normalizer_per_feature_matches_reference_and_sklearn():
    sc = fit_scaling("normalizer-feature", S.K)
    np.testing.assert_allclose(sc.scale, [0.0021393372268854655, 0.0021110722130092533], rtol=1e-12)
    k = sc.transform(S.K)
    np.testing.assert_allclose(k, Normalizer().fit_transform(S.K.T).T, rtol=1e-12)
    np.testing.assert_allclose(
        k[:2], [[0.42786745, 0.02955501], [0.00213934, 0.22588473]], atol=5e-9
    )
    # kept factors transform new points the same way
    np.testing.assert_allclose(
        sc.transform([[100.0, 50.0]]), [[100 * sc.scale[0], 50 * sc.scale[1]]]
    )


def test_other_scalings_match_sklearn_and_definitions():
    np.testing.assert_allclose(scaled("standard"), StandardScaler().fit_transform(S.K), atol=1e-12)
    np.testing.assert_allclose(scaled("minmax"), MinMaxScaler().fit_transform(S.K), atol=1e-12)
    np.testing.assert_allclose(scaled("factor"), S.K / 227.0)  # K2 range 229 - 2 is the largest
    np.testing.assert_array_equal(scaled("none"), S.K)
    k = scaled("normalizer-sample")
    np.testing.assert_allclose(np.linalg.norm(k, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(k[0], [0.99755897, 0.06982913], atol=5e-9)
    # per-sample scaling of a new point depends on that point only
    sc = fit_scaling("normalizer-sample", S.K)
    np.testing.assert_allclose(sc.transform([[3.0, 4.0], [0.0, 0.0]]), [[0.6, 0.8], [0.0, 0.0]])


def test_scaling_names_are_forgiving_about_case_and_underscores():
    assert fit_scaling("Normalizer_Sample", S.K).name == "normalizer-sample"


def test_unknown_scaling_lists_the_known_ones_in_one_line():
    with pytest.raises(ZspaceError) as exc:
        fit_scaling("robust", S.K)
    msg = str(exc.value)
    assert "\n" not in msg and "robust" in msg
    assert all(name in msg for name in SCALINGS)


# ---------------------------------------------------------------- cost surface


@pytest.mark.parametrize("name", list(SCALINGS))
def test_surface_equals_naive_per_sample_arrays(name):
    # 'none' exercises the overflow-safe path (|w * K| reaches ~1000 there)
    k = scaled(name)
    w1 = np.arange(-5.5, 5.5, 0.1)
    w2 = np.arange(-5.0, 5.0, 0.125)  # a different axis: rows are w2, columns w1
    s = cost_surface(k, S.target, w1, w2, threads=2)
    ref = naive_surface(k, S.target, w1, w2)
    assert s.cost.shape == (w2.size, w1.size)
    np.testing.assert_allclose(s.cost, ref, rtol=1e-12, atol=1e-300)
    assert s.c_min == pytest.approx(ref.min(), rel=1e-12)
    assert s.index == np.unravel_index(np.argmin(ref), ref.shape)
    assert s.w_min == (w1[s.index[1]], w2[s.index[0]])
    assert s.c_min == pytest.approx(cost(s.w_min, k, S.target), rel=1e-12)


def test_surface_threads_and_keep_do_not_change_the_answer():
    k, ax = scaled("normalizer-feature"), np.arange(-5.5, 5.5, 0.01)
    a = cost_surface(k, S.target, ax, ax, threads=1)
    b = cost_surface(k, S.target, ax, ax, threads=3)
    c = cost_surface(k, S.target, ax, ax, keep=False)
    np.testing.assert_array_equal(a.cost, b.cost)
    assert c.cost is None
    assert a.c_min == b.c_min == c.c_min and a.index == b.index == c.index


@pytest.mark.parametrize(
    "name, c_min, w_min",
    [
        ("normalizer-feature", 0.000635016, (-2.416, 2.398)),
        ("normalizer-sample", 2.27268e-05, (-0.908, 0.900)),
    ],
)
def test_full_mesh_minimum_matches_reference(name, c_min, w_min):
    ax = FULL.axis()
    assert ax.size == 5500
    s = cost_surface(scaled(name), S.target, ax, ax, keep=False)
    assert sig(s.c_min, 6) == c_min
    assert abs(s.w_min[0] - w_min[0]) <= FULL.step + 1e-9
    assert abs(s.w_min[1] - w_min[1]) <= FULL.step + 1e-9


# ---------------------------------------------------------------- gradient descent


@pytest.mark.parametrize(
    "name, steps, final, total_error",
    [
        ("normalizer-feature", 2500, (-2.4153, 2.3976), 0.068990),
        ("normalizer-sample", 1000, (-0.9090, 0.9009), 0.011214),
    ],
)
def test_descents_match_reference(name, steps, final, total_error):
    k = scaled(name)
    batch = gradient_descent(k, S.target, mode="batch", start=(-0.2, 0.25), eta=0.2, steps=steps)
    assert tuple(round(w, 4) for w in batch.final) == final
    assert sig(batch.total_error, 5) == total_error
    stoch = gradient_descent(k, S.target, mode="stochastic", start=(-0.2, 0.25), steps=steps)
    assert np.max(np.abs(np.subtract(stoch.final, batch.final))) < 0.001
    assert batch.weights.shape == (steps + 1, 2) and batch.costs.shape == (steps + 1,)
    np.testing.assert_array_equal(batch.weights[0], [-0.2, 0.25])
    assert batch.costs[-1] < batch.costs[0]
    np.testing.assert_allclose(batch.outputs, outputs(batch.final, k))
    np.testing.assert_allclose(batch.errors, np.abs(batch.outputs - S.target) / S.target)


def test_batch_table_matches_reference_rows():
    k = scaled("normalizer-feature")
    batch = gradient_descent(k, S.target, mode="batch", steps=2500)
    np.testing.assert_allclose(batch.outputs[[0, 6, 13]], [0.276360, 0.352072, 0.745810], atol=1e-6)
    np.testing.assert_allclose(batch.errors[[0, 6, 13]], [0.078799, 0.173572, 0.065443], atol=1e-6)


def test_batch_step_is_eta_times_summed_gradient():
    k, w0, eta = scaled("standard"), np.array([-0.2, 0.25]), 0.3
    h = 1e-6
    grad = [
        (cost(w0 + h * e, k, S.target) - cost(w0 - h * e, k, S.target)) / (2 * h) for e in np.eye(2)
    ]
    # C is half the MEAN, so the summed per-sample gradient is n * dC/dw
    one = gradient_descent(k, S.target, mode="batch", start=tuple(w0), eta=eta, steps=1)
    np.testing.assert_allclose(one.final, w0 - eta * len(S) * np.array(grad), rtol=1e-7)


def test_stochastic_step_updates_after_each_sample():
    k = scaled("standard")
    w = np.array([-0.2, 0.25])
    for x, t in zip(k, S.target, strict=True):
        a = expit(x @ w)
        w = w - 0.2 * (a - t) * a * (1 - a) * x
    one = gradient_descent(k, S.target, mode="stochastic", steps=1)
    np.testing.assert_allclose(one.final, w, rtol=1e-12)


def test_learning_rate_decrease_schedule():
    k = scaled("normalizer-feature")
    const = gradient_descent(k, S.target, steps=2, eta=0.2)
    dec = gradient_descent(k, S.target, steps=2, eta=0.2, decrease=1.0)
    np.testing.assert_array_equal(const.weights[1], dec.weights[1])  # step 0 uses eta
    # step 1 uses eta / 2: half the displacement from the same point
    w1_half = gradient_descent(k, S.target, start=tuple(dec.weights[1]), steps=1, eta=0.1)
    np.testing.assert_allclose(dec.weights[2], w1_half.final, rtol=1e-14)


def test_unscaled_inputs_saturate_and_descent_stalls():
    none = gradient_descent(scaled("none"), S.target, steps=200)
    assert np.allclose(none.final, (-0.2, 0.25), atol=1e-6)
    assert none.total_error > 0.5


# ---------------------------------------------------------------- decision geometry


def test_output_is_constant_along_rays_for_per_sample_scaling():
    sc = fit_scaling("normalizer-sample", S.K)
    w = (-0.9090, 0.9009)
    for c in (0.05, 0.5, 1.0, 3.0, 12.0):  # lines K2 = c * K1
        K1 = np.linspace(1.0, 300.0, 50)
        a = outputs(w, sc.transform(np.column_stack((K1, c * K1))))
        assert np.ptp(a) < 1e-12
    # ... and the rays carry different values, so the level sets are rays, not one line
    a_low = outputs(w, sc.transform([[100.0, 10.0]]))[0]
    a_high = outputs(w, sc.transform([[10.0, 100.0]]))[0]
    assert a_low < 0.4 < 0.6 < a_high


def test_output_contours_are_parallel_lines_for_per_feature_scaling():
    sc = fit_scaling("normalizer-feature", S.K)
    w = np.array([-2.4153, 2.3976])
    # A depends on K only through (w * scale) . K: constant along one fixed direction d
    g = w * sc.scale
    d = np.array([g[1], -g[0]])
    for K0 in ([0.0, 0.0], [200.0, 14.0], [11.0, 193.0], [-20.0, 240.0]):
        pts = np.asarray(K0) + np.outer(np.linspace(-300, 300, 41), d / np.linalg.norm(d))
        assert np.ptp(outputs(w, sc.transform(pts))) < 1e-12
    # not constant along a ray through the origin (unlike per-sample scaling)
    ray = np.outer([1.0, 2.0], [100.0, 10.0])
    assert np.ptp(outputs(w, sc.transform(ray))) > 0.05


def test_output_grid_orientation():
    sc = fit_scaling("normalizer-feature", S.K)
    K1, K2 = np.array([0.0, 100.0, 200.0]), np.array([5.0, 50.0])
    A = output_grid(sc, (-2.0, 2.0), K1, K2)
    assert A.shape == (2, 3)
    assert A[1, 2] == pytest.approx(outputs((-2.0, 2.0), sc.transform([[200.0, 50.0]]))[0])


# ---------------------------------------------------------------- API, errors, CLI


@pytest.mark.parametrize(
    "kwargs",
    [
        {"steps": 0},
        {"steps": 2.5},
        {"eta": 0.0},
        {"eta": -0.1},
        {"eta": float("nan")},
        {"decrease": -1.0},
        {"start": (0.0, float("inf"))},
        {"start": (0.0,)},
        {"mesh": (1.0, -1.0, 0.1)},
        {"mesh": (-1.0, 1.0, 0.0)},
        {"mesh": (-1.0, 1.0, -0.1)},
        {"mesh": (-1.0, 1.0)},
        {"mesh": ("a", 1.0, 0.1)},
        {"mesh": (-1.0, 1.0, 1e-5)},  # 200000^2 points: over the memory limit
        {"threads": 0},
    ],
)
def test_bad_settings_raise_one_line_errors(kwargs):
    with pytest.raises(ZspaceError) as exc:
        perceptron_study("normalizer-feature", **kwargs)
    assert "\n" not in str(exc.value)


def test_bad_descent_mode():
    with pytest.raises(ZspaceError, match="stochastic, batch"):
        gradient_descent(S.K, S.target, mode="adam")


def test_python_api_without_output_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = perceptron_study("factor", steps=50, mesh=(-2.0, 2.0, 0.05))
    assert r.out is None and list(tmp_path.iterdir()) == []
    assert r.surface.cost.shape == (80, 80)
    assert r.scaling.name == "factor" and r.k.shape == (14, 2)
    assert r.batch.steps == 50 and r.stochastic.mode == "stochastic"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zspace")
    add_parser(p.add_subparsers(dest="command"))
    return p


def test_cli_prints_tables_and_writes_page(tmp_path, capsys):
    out = tmp_path / "study"
    args = parser().parse_args(
        ["perceptron", "--scaling", "normalizer-feature", "--mesh", "-5.5", "5.5", "0.02"]
        + ["--start", "-0.2", "0.25", "--eta", "0.2", "--steps", "2500", "--out", str(out)]
    )
    assert args.func is run
    assert run(args) == 0
    text = capsys.readouterr().out
    assert "(w1, w2) = (-2.4153, 2.3976)" in text and "total error 0.068990" in text
    assert " 6  0.256720  0.004222  120    2     0.3  0.352072  0.173572" in text  # batch row
    assert "C_min = " in text
    for name in ("samples.png", "cost_surface.png", "evolution.png", "output.png"):
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    page = (out / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "http://" not in page and "https://" not in page
    assert "0.352072" in page and "normalizer-feature" in page
    res = json.loads((out / "results.json").read_text())
    assert res["batch"]["total_error"] == pytest.approx(0.0689904, abs=1e-7)
    assert res["surface"]["shape"] == [550, 550]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_cli_default_out_folder_and_no_mesh(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["perceptron", "--scaling", "normalizer_sample", "--steps", "1000", "--no-mesh"]
    args = parser().parse_args(argv)
    assert args.out is None
    assert run(args) == 0
    text = capsys.readouterr().out
    assert "cost surface: skipped" in text and "total error 0.011214" in text
    folder = tmp_path / "perceptron-normalizer-sample"
    assert (folder / "index.html").is_file() and (folder / "output.png").is_file()
    assert not (folder / "cost_surface.png").exists()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--scaling", "robust"], "known: normalizer-feature"),
        (["--scaling", "none", "--steps", "0"], "steps"),
        (["--scaling", "none", "--eta", "0"], "eta"),
        (["--scaling", "none", "--mesh", "1", "0", "0.1"], "bad mesh"),
    ],
)
def test_cli_user_errors(tmp_path, argv, match):
    args = parser().parse_args(["perceptron", *argv, "--out", str(tmp_path / "x")])
    with pytest.raises(ZspaceError, match=match):
        run(args)
    assert not (tmp_path / "x").exists()


def test_lazy_exports_and_light_cli_import():
    import subprocess
    import sys

    import zspace.perceptron as P

    assert sorted(P.__all__) == sorted(P._EXPORTS)
    assert all(getattr(P, name) is not None for name in P.__all__)
    assert not any(isinstance(getattr(P, name), type(P)) for name in P.__all__)  # no submodule
    # registering the verb must not load scikit-learn, SciPy or matplotlib for every command
    code = (
        "import sys, zspace.cli.perceptron; "
        "print(any(m in sys.modules for m in ('sklearn', 'scipy', 'matplotlib')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
