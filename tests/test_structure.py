"""The package's shape: the stage order of docs/architecture.md, the public names, the
notebook guarantees (issues 12, 26)."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zspace

ROOT = Path(__file__).resolve().parents[1]


def import_graph():
    """tools/import_graph.py: the one reading of the import rules and of the stage order
    in docs/architecture.md."""
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools/import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_cycle_and_every_import_points_down_the_stage_order():
    graph = import_graph()
    edges = graph.arrows(graph.modules())
    assert graph.cycles(edges) == []
    stages = graph.stage_order()
    assert len(stages) >= 10 and stages[0][0] == "core" and stages[-1][0] == "cli"
    assert graph.upward(edges, stages) == []
    folders = {p.name for p in (ROOT / "zspace").iterdir() if (p / "__init__.py").is_file()}
    assert folders <= {name for stage in stages for name in stage}  # every folder has a stage
    loose = {p.stem for p in (ROOT / "zspace").glob("*.py")}
    assert loose == {"__init__", "__main__", "_version"}  # every module lives in its stage


def test_the_rules_see_function_level_imports_and_skip_type_checking(tmp_path, monkeypatch):
    graph = import_graph()
    pkg = tmp_path / "zspace"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from zspace.a import y\n"
        "def f():\n    from zspace.a.y import g\n"
    )
    (pkg / "a" / "y.py").write_text("import zspace.a.x\ndef g(): pass\n")
    monkeypatch.setattr(graph, "ROOT", tmp_path)
    monkeypatch.setattr(graph, "PACKAGE", pkg)
    edges = graph.arrows(graph.modules())
    assert edges["zspace.a.x"] == {"zspace.a.y"} and edges["zspace.a.y"] == {"zspace.a.x"}
    assert graph.cycles(edges) == [["zspace.a.x", "zspace.a.y"]]


def test_public_names_are_listed_once_and_all_load():
    assert sorted(zspace.__all__) == sorted(zspace.PUBLIC)
    names = dir(zspace)
    for name in zspace.PUBLIC:
        assert name in names
        assert getattr(zspace, name) is not None
    # a public function stays a function after its module is imported (no shadowing)
    from zspace.flow import demo as demo_module

    assert callable(demo_module.demo)

    assert callable(zspace.demo) and callable(zspace.pipeline) and callable(zspace.train)
    # the TYPE_CHECKING block names exactly the public names
    tree = ast.parse((ROOT / "zspace" / "__init__.py").read_text())
    guarded = {
        a.asname or a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for imp in node.body
        if isinstance(imp, ast.ImportFrom)
        for a in imp.names
    }
    assert guarded == set(zspace.PUBLIC)


def test_pca_signs_are_fixed_like_scikit_learn():
    from sklearn.decomposition import PCA

    from zspace.analysis.pca import pca_analysis, principal_axes

    rng = np.random.default_rng(3)
    z = rng.normal(size=(500, 6)) * np.array([5, 4, 3, 2, 1, 0.5]) @ rng.normal(size=(6, 6))
    _, _, comps = principal_axes(z)
    ref = PCA(6, svd_solver="full").fit(z).components_
    np.testing.assert_allclose(comps, ref, atol=1e-8)
    a = pca_analysis(z, pairs=((1, 2),), max_points=500)
    b = pca_analysis(z[::-1].copy(), pairs=((1, 2),), max_points=500)
    np.testing.assert_allclose(
        np.sort(a.proj_pca[0], axis=0), np.sort(b.proj_pca[0], axis=0), atol=1e-4
    )


def test_results_display_in_a_notebook():
    from matplotlib.figure import Figure

    from zspace.analysis.radius import RadiusParams, radius_distribution

    z = np.random.default_rng(0).normal(size=(400, 8))
    res = radius_distribution(z, RadiusParams(bin_width=0.25))
    assert repr(res).startswith("RadiusResult(radius peaks at R = ")
    assert isinstance(res.figure(), Figure)
    html = res._repr_html_()
    assert '<img src="data:image/png;base64,' in html and "radius peaks" in html
    assert set(res.arrays()) == {"counts", "edges"} and "counts" not in res.to_dict()
    assert radius_distribution(z, bin_width=0.25).to_dict() == res.to_dict()


def test_reporting_never_switches_the_matplotlib_backend(tmp_path):
    """In a fresh interpreter: the backend before and after writing a report is the same."""
    code = """
import matplotlib
matplotlib.use("svg")
import numpy as np, zspace
from zspace.analysis.radius import radius_distribution
from zspace.reporting import html, figures, compare
radius_distribution(np.random.default_rng(0).normal(size=(50, 4))).figure()
print(matplotlib.get_backend())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"


def test_rate_control_is_an_error_when_the_data_folder_is_gone(tmp_path):
    """Only a run without a held-out split falls back to training latents; a run whose
    data folder moved away gets an error instead of a mislabelled control."""
    from PIL import Image

    from zspace.config import load_config
    from zspace.core.errors import ZspaceError
    from zspace.generation import meaningful_rates

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (16, 16), np.uint8)).save(folder / f"{i:03d}.png")
    common = [
        f'data.source="folder:{folder}"', f'data.cache_dir="{tmp_path / "cache"}"',
        "model.z_dim=3", "model.encoder_filters=[4, 8]", "model.encoder_strides=[2, 2]",
        "train.epochs=1", "train.threads=1",
    ]  # fmt: skip
    quiet = {"log": lambda _m: None, "progress": False}
    held = zspace.train(load_config(None, common), run_dir=tmp_path / "held", **quiet)
    none = zspace.train(
        load_config(None, common + ["data.valid_fraction=0"]), run_dir=tmp_path / "none", **quiet
    )
    for run in (held, none):
        zspace.encode(run)
    out = meaningful_rates(none, "normal", n=10, reference_size=30)
    assert out["results"][0]["params"]["control"] == "training latents (no held-out split)"
    out = meaningful_rates(held, "normal", n=10, reference_size=30)
    assert out["results"][0]["params"]["control"] == "valid images, encoded"
    folder.rename(tmp_path / "moved")
    import shutil

    shutil.rmtree(tmp_path / "cache")
    with pytest.raises(ZspaceError):  # a fresh load: the Run object caches its data
        meaningful_rates(zspace.load_run(held.path), "normal", n=10, reference_size=30)
