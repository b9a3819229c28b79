"""The explorer's HTTP API on a tiny trained run: values, errors, safety rules, stopping."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import ROOT, copy_run
from PIL import Image

import zspace
from zspace.analysis.neighbours import NeighbourIndex
from zspace.analysis.runner import load_result
from zspace.core.errors import ZspaceError
from zspace.data.prepare import prepare
from zspace.explorer import api as explorer_api
from zspace.explorer.server import allowed_hosts, is_loopback, load_static
from zspace.generation import samplers
from zspace.latents.store import load_latents


@pytest.fixture(scope="module")
def run(tiny_runs, tmp_path_factory):
    """A copy of the shared tiny VAE with PCA, t-SNE and a fitted GMM."""
    r = zspace.load_run(copy_run(tiny_runs["vae"], tmp_path_factory.mktemp("explore") / "vae"))
    zspace.analyze(r, only="pca,tsne", tsne={"n": 300, "perplexity": 10, "n_iter": 100,
                   "n_jobs": 1}, pca={"pairs": "1-2,2-3"})  # fmt: skip
    samplers.Fitted("gmm", [1, 2], seed=r.config.seed).fitted(
        r.path / "samplers", load_latents(r).z
    )
    return r


@pytest.fixture(scope="module")
def server(run):
    with zspace.explore(run) as handle:
        yield handle


def get(server, path, headers=None):
    """(status, headers, body) without raising on 4xx."""
    req = urllib.request.Request(server.url.rstrip("/") + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def raw(server, path, host=None, method="GET", extra=None):
    """A request with a chosen Host header (or none) and the path sent as given."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=20)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        for k, v in (extra or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def png_array(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)


def from_data_url(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return png_array(base64.b64decode(url.split(",", 1)[1]))


def zq(z) -> str:
    return ",".join(repr(float(v)) for v in z)


def test_info_describes_the_run(server, run):
    status, headers, body = get(server, "/api/info")
    assert status == 200 and headers["Content-Type"] == "application/json"
    info = json.loads(body)
    lat = load_latents(run)
    assert info["z_dim"] == 4 and info["kind"] == "vae" and info["split"] == "train"
    assert info["image_shape"] == [1, 16, 16] and info["images"] is True
    assert info["counts"] == {"points": len(lat), "map_points": len(lat), "reference": len(lat)}
    assert [m["name"] for m in info["maps"]] == ["pca", "pca-2-3", "tsne"]
    assert info["colours"] == ["label", "radius", "none"] and info["default_colour"] == "label"
    offered = {s["name"]: s["available"] for s in info["samplers"]}
    assert offered == {"normal": True, "uniform": True, "gauss": True, "gmm": True}


def test_decode_two_z_give_two_pngs_of_the_image_size(server, run):
    lat = load_latents(run)
    z1, z2 = lat.z[0], lat.z[1]
    s1, h1, b1 = get(server, f"/api/decode?z={zq(z1)}")
    s2, h2, b2 = get(server, f"/api/decode?z={zq(z2)}")
    assert s1 == s2 == 200 and h1["Content-Type"] == "image/png"
    a1, a2 = png_array(b1), png_array(b2)
    assert a1.shape == a2.shape == (16, 16) and a1.dtype == np.uint8
    assert b1 != b2 and np.abs(a1.astype(int) - a2).sum() > 0
    # the same z decodes to the run's own decoder output, and the headers are right
    expect = (np.clip(run.decode(lat.z[:1]).numpy()[0, 0], 0, 1) * 255).round()
    assert np.abs(a1.astype(float) - expect).max() <= 1
    assert float(h1["X-Zspace-Radius"]) == pytest.approx(np.linalg.norm(z1), rel=1e-5)


def test_nearest_names_the_closest_training_point(server, run):
    lat = load_latents(run)
    out = json.loads(get(server, f"/api/nearest?z={zq(lat.z[5])}")[2])
    assert out["row"] == 5 and out["distance"] < 1e-6
    rng = np.random.default_rng(3)
    for _ in range(5):
        z = rng.normal(size=4).astype(np.float32) * 2
        out = json.loads(get(server, f"/api/nearest?z={zq(z)}")[2])
        full = np.linalg.norm(lat.z.astype(np.float64) - z.astype(np.float64), axis=1)
        assert out["row"] == int(full.argmin())
        assert out["distance"] == pytest.approx(float(full.min()), rel=1e-9)
        assert out["radius"] == pytest.approx(float(np.linalg.norm(z)), rel=1e-6)


def test_nearest_index_is_exact():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(3000, 16)).astype(np.float32) * 5 + 40  # far from the origin
    q = rng.normal(size=(50, 16)).astype(np.float32) * 5 + 40
    dist, rows = (a[:, 0] for a in NeighbourIndex(ref).query(q))
    full = np.linalg.norm(q[:, None, :].astype(np.float64) - ref[None].astype(np.float64), axis=2)
    assert np.array_equal(rows, full.argmin(axis=1))
    assert np.allclose(dist, full.min(axis=1), rtol=1e-12)


def test_saved_fits_draw_what_they_drew_when_fitted(tmp_path):
    """The explorer draws from the fits `zspace generate` saved: the same points."""
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(size=(300, 6)), rng.normal(size=(300, 6)) * 0.3 + 4])
    z[:, 5] = 0.0  # a dead axis: the ridge rule must match too
    for fit in (samplers.Fitted("gauss").fit(z), samplers.Fitted("gmm", 2, seed=0).fit(z)):
        fit.save(tmp_path)
        loaded = fit.load(tmp_path)
        assert loaded is not None
        for seed in (0, 5):
            a = loaded.sample(40, np.random.default_rng(seed))
            assert np.array_equal(a, fit.sample(40, np.random.default_rng(seed)))


def test_point_shows_original_reconstruction_and_radius(server, run):
    lat = load_latents(run)
    status, _, body = get(server, "/api/point?i=7")
    p = json.loads(body)
    assert status == 200 and p["i"] == 7 and p["index"] == int(lat.index[7])
    data, _ = prepare(run.config, run.path)
    assert np.array_equal(from_data_url(p["original"]), data.images[lat.index[7]][..., 0])
    recon = (run.decode(lat.mu[7:8]).numpy()[0, 0] * 255).round()
    assert np.abs(from_data_url(p["reconstruction"]).astype(float) - recon).max() <= 1
    assert p["reconstruction_of"] == "mu"
    assert p["radius"] == pytest.approx(float(np.linalg.norm(lat.z[7].astype(np.float64))))
    assert p["label"] == int(lat.label[7]) and np.allclose(p["z"], lat.z[7], atol=1e-5)
    _, headers, thumb = get(server, "/api/thumb?i=7")
    assert headers["Content-Type"] == "image/png"
    assert np.array_equal(png_array(thumb), data.images[lat.index[7]][..., 0])


def test_maps_match_the_latents_and_the_saved_tsne(server, run):
    lat = load_latents(run)
    m = json.loads(get(server, "/api/map?name=pca&colour=label")[2])
    rows = np.array(m["rows"])
    assert np.array_equal(rows, np.arange(len(lat))) and m["colour"]["values"] == lat.label.tolist()
    z = lat.z.astype(np.float64)
    vals, vecs = np.linalg.eigh(np.cov(z, rowvar=False))
    pc1 = (z - z.mean(0)) @ vecs[:, -1]
    assert abs(np.corrcoef(pc1, m["x"])[0, 1]) > 0.9999  # PC1, up to its sign
    t = json.loads(get(server, "/api/map?name=tsne&colour=radius")[2])
    _, arrays = load_result(run.path, "tsne")
    assert t["rows"] == arrays["index"].tolist()
    assert np.allclose(t["x"], arrays["embedding"][:, 0], atol=1e-3)
    assert t["colour"]["kind"] == "continuous"
    r = np.linalg.norm(lat.z[arrays["index"]].astype(np.float64), axis=1)
    assert np.allclose(t["colour"]["values"], r, atol=1e-3)


def test_samples_are_seeded_and_respect_the_limit(server):
    def sample(q):
        status, _, body = get(server, f"/api/sample?{q}")
        assert status == 200, body
        return json.loads(body)

    a, b = sample("sampler=normal&n=5&seed=3"), sample("sampler=normal&n=5&seed=3")
    assert a["images"] == b["images"] and len(a["images"]) == 5
    assert sample("sampler=normal&n=5&seed=4")["images"] != a["images"]
    u = sample("sampler=uniform&n=8&limit=0.25&seed=1")
    assert np.abs(np.array(u["z"])).max() <= 0.25 and u["params"] == {"limit": 0.25}
    for name in ("gauss", "gmm"):
        s = sample(f"sampler={name}&n=3")
        assert len(s["images"]) == 3 and from_data_url(s["images"][0]).shape == (16, 16)
        assert np.allclose(s["radius"], np.linalg.norm(np.array(s["z"]), axis=1), atol=1e-4)


def test_interpolation_runs_from_a_to_b(server, run):
    lat = load_latents(run)
    out = json.loads(get(server, "/api/interpolate?a=3&b=9&steps=5")[2])
    first = get(server, f"/api/decode?z={zq(lat.z[3])}")[2]
    last = get(server, f"/api/decode?z={zq(lat.z[9])}")[2]
    for name in ("lerp", "slerp"):
        path = out["paths"][name]
        assert len(path["images"]) == 5
        assert np.array_equal(from_data_url(path["images"][0]), png_array(first))
        assert np.array_equal(from_data_url(path["images"][-1]), png_array(last))
    ra, rb = np.linalg.norm(lat.z[3]), np.linalg.norm(lat.z[9])
    # slerp's radius moves evenly from |a| to |b|; lerp's dips below it in between
    assert np.allclose(out["paths"]["slerp"]["radius"], np.linspace(ra, rb, 5), rtol=1e-4)
    assert out["paths"]["lerp"]["radius"][2] <= out["paths"]["slerp"]["radius"][2] + 1e-6


BAD = [
    ("/api/decode", 400, "'z' is required"),
    ("/api/decode?z=1,2,3", 400, "z has 3 values; this model's z_dim is 4"),
    ("/api/decode?z=0,0,nan,0", 400, "z[2] = 'nan' is not a finite number"),
    ("/api/decode?z=0,inf,0,0", 400, "is not a finite number"),
    ("/api/decode?z=0,abc,0,0", 400, "z[1] = 'abc'"),
    ("/api/decode?z=0,0,0,1e7", 400, "must be <= 1e+06"),
    ("/api/decode?z=0,0,0,0&x=1", 400, "unknown parameter 'x'"),
    ("/api/decode?z=0,0,0,0&z=0,0,0,0", 400, "given twice"),
    ("/api/nearest?z=1,2", 400, "/api/nearest: z has 2 values; this model's z_dim is 4"),
    ("/api/nearest?z=0,0,-inf,0", 400, "/api/nearest: z[2] = '-inf' is not a finite number"),
    ("/api/point?i=-1", 400, "out of range"),
    ("/api/point?i=99999", 400, "out of range"),
    ("/api/point?i=abc", 400, "is not an integer"),
    ("/api/thumb?i=1.5", 400, "is not an integer"),
    ("/api/sample?sampler=bogus", 400, "choose one of normal, uniform, gauss, gmm"),
    ("/api/sample?sampler=normal&n=0", 400, "n=0 is out of range 1..64"),
    ("/api/sample?sampler=normal&n=65", 400, "out of range"),
    ("/api/sample?sampler=normal&limit=2", 400, "uniform sampler only"),
    ("/api/sample?sampler=uniform&limit=0", 400, "expected a number in"),
    ("/api/sample?sampler=normal&seed=-2", 400, "out of range"),
    ("/api/interpolate?a=1&b=2&steps=1", 400, "steps=1 is out of range 2..32"),
    ("/api/interpolate?a=1&b=2&steps=33", 400, "out of range"),
    ("/api/interpolate?a=1", 400, "'b' is required"),
    ("/api/map?name=bogus", 400, "choose one of pca, pca-2-3, tsne"),
    ("/api/map?colour=Smiling", 400, "choose one of label, radius, none"),
    ("/api/info?" + "&".join(f"k{i}=1" for i in range(20)), 400, "malformed query"),
    ("/api/nope", 404, "no such API endpoint"),
]


@pytest.mark.parametrize(("path", "status", "message"), BAD)
def test_bad_parameters_get_a_4xx_and_one_line(server, path, status, message):
    got, headers, body = get(server, path)
    text = body.decode()
    assert got == status and headers["Content-Type"].startswith("text/plain")
    assert message in text and text.endswith("\n") and text.count("\n") == 1
    assert "Traceback" not in text


def test_methods_other_than_get_are_refused(server):
    status, body = raw(server, "/api/info", host=f"127.0.0.1:{server.port}", method="POST")
    assert status == 405 and body.count(b"\n") == 1


@pytest.mark.parametrize(
    "path",
    [
        "/../../../../etc/passwd",
        "/static/../server.py",
        "/static/../../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/explore.js/../../session.py",
        "//etc/passwd",
        "/static/session.py",
        "/static/",
        "/index.html",
        "/api/../static/explore.js",
    ],
)
def test_no_request_path_reaches_the_file_system(server, path):
    status, body = raw(server, path, host=f"127.0.0.1:{server.port}")
    assert status == 404 and b"root:" not in body and b"import" not in body
    assert body.count(b"\n") == 1


def test_static_files_are_the_packaged_ones(server):
    for route, (content, kind) in load_static().items():
        status, headers, body = get(server, route)
        assert status == 200 and body == content and headers["Content-Type"] == kind
    _, headers, page = get(server, "/")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    text = page.decode()
    assert "http://" not in text and "https://" not in text  # nothing from the network
    js = get(server, "/static/explore.js")[2].decode()
    assert "http://" not in js and "https://" not in js


def test_foreign_host_headers_are_refused(server):
    port = server.port
    for host in ("evil.example.com", f"evil.example.com:{port}", f"127.0.0.1:{port + 1}",
                 f"localhost.evil.com:{port}", f"127.0.0.1.nip.io:{port}", ""):  # fmt: skip
        status, body = raw(server, "/api/info", host=host)
        assert status == 403 and body.startswith(b"Host ") and body.count(b"\n") == 1
    assert raw(server, "/api/info")[0] == 403  # no Host header at all
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert raw(server, "/api/info", host=host)[0] == 200
    cross = {"Sec-Fetch-Site": "cross-site"}
    assert raw(server, "/api/info", host=f"127.0.0.1:{port}", extra=cross)[0] == 403
    same = {"Sec-Fetch-Site": "same-origin"}
    assert raw(server, "/api/info", host=f"127.0.0.1:{port}", extra=same)[0] == 200


def test_allowed_hosts_and_loopback():
    assert allowed_hosts("127.0.0.1", 80) == {"127.0.0.1:80", "localhost:80", "[::1]:80"}
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


def test_a_bug_answers_500_without_a_traceback(run, monkeypatch):
    logged = []
    with zspace.explore(run, log=logged.append) as handle:

        def broken(z):
            raise RuntimeError("kaboom")

        monkeypatch.setattr(handle.session, "decode_png", broken)
        status, _, body = get(handle, "/api/decode?z=0,0,0,0")
    assert status == 500 and b"Traceback" not in body and b"kaboom" not in body
    assert body.count(b"\n") == 1
    assert any("RuntimeError: kaboom" in line for line in logged)


def test_the_gate_bounds_waiting_model_requests():
    gate = explorer_api.Gate(limit=2)
    inside, release = threading.Event(), threading.Event()

    def hold():
        with gate():
            inside.set()
            release.wait(10)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    holders[0].start()
    assert inside.wait(10)
    holders[1].start()  # waits for the model
    for _ in range(200):
        if gate.waiting == 2:
            break
        threading.Event().wait(0.01)
    with pytest.raises(explorer_api.ApiError) as err, gate():
        pass
    assert err.value.status == 503 and "busy" in err.value.message
    release.set()
    for t in holders:
        t.join(10)
    assert gate.waiting == 0
    with gate():  # free again
        pass


def test_stop_frees_the_port_and_closes_connections(run):
    handle = zspace.explore(run)
    assert handle.url in repr(handle) and "running" in repr(handle)
    assert f'href="{handle.url}"' in handle._repr_html_()
    conn = http.client.HTTPConnection(handle.host, handle.port, timeout=10)
    conn.request("GET", "/api/info")  # a kept-alive connection stays open
    assert conn.getresponse().read()
    handle.stop()
    handle.stop()  # idempotent
    assert not handle.running and "stopped" in repr(handle)
    with pytest.raises(OSError):
        socket.create_connection((handle.host, handle.port), timeout=2).close()
    with zspace.explore(run, port=handle.port) as again:  # the port is free for a new one
        assert get(again, "/api/info")[0] == 200
    with pytest.raises((OSError, http.client.HTTPException)):
        conn.request("GET", "/api/info")
        conn.getresponse().read()
    conn.close()


def test_errors_before_serving_are_one_line(run, tmp_path):
    with pytest.raises(ZspaceError, match="no latents for split 'valid'"):
        zspace.explore(run, split="valid")
    with pytest.raises(ZspaceError, match="port 70000"):
        zspace.explore(run, port=70000)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ZspaceError, match="cannot listen on 127.0.0.1"):
            zspace.explore(run, port=busy.getsockname()[1])
    logged = []
    with pytest.raises(ZspaceError, match="cannot listen on 192.0.2.1"):
        zspace.explore(run, host="192.0.2.1", log=logged.append)  # TEST-NET: not ours
    assert logged and logged[0].startswith("zspace: warning: --host 192.0.2.1 is not a loopback")


def test_cli_prints_the_url_and_ctrl_c_stops_it(run):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "zspace", "explore", str(run.path), "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert line.startswith("zspace explore: http://127.0.0.1:") and "Ctrl-C" in line
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/info", timeout=20) as r:
            assert json.loads(r.read())["z_dim"] == 4
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.strip() == "zspace explore: stopped" and "Traceback" not in err


def test_cli_error_is_one_line(tmp_path, capsys):
    from zspace.cli.main import main

    assert main(["explore", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err == f"zspace: error: run folder not found: {tmp_path / 'missing'}\n"
    assert main(["explore", str(tmp_path), "--port", "-1"]) == 2
    assert capsys.readouterr().err.startswith("zspace: error: --port -1: must be 0..65535")


@pytest.fixture(scope="module")
def celeba_run(tmp_path_factory):
    from conftest import shared_data

    zip_path = shared_data() / "celeba-558" / "img_align_celeba.zip"
    if not zip_path.is_file():
        pytest.skip(f"test data absent: {zip_path}")
    root = tmp_path_factory.mktemp("explore-celeba")
    overrides = [
        f'data.source="celeba:{zip_path}"', f'data.cache_dir="{root / "cache"}"',
        "data.image_size=16", "model.z_dim=4", "model.encoder_filters=[8, 16]",
        "model.encoder_strides=[2, 2]", "train.epochs=1", "train.batch_size=64",
        "train.threads=1",
    ]  # fmt: skip
    r = zspace.train(None, run_dir=root / "run", overrides=overrides, progress=False,
                     log=lambda s: None)  # fmt: skip
    zspace.encode(r)
    return r


def test_celeba_attributes_colour_the_map_and_describe_points(celeba_run):
    from zspace.explorer.api import Api
    from zspace.explorer.session import Session

    lat = load_latents(celeba_run)
    api = Api(Session(celeba_run))
    info = json.loads(api.handle("/api/info", "").body)
    assert info["image_shape"] == [3, 16, 16] and info["default_colour"] == "Male"
    assert info["colours"] == [*lat.attr_names, "radius", "none"]  # no labels in CelebA
    m = json.loads(api.handle("/api/map", "colour=Smiling").body)
    col = lat.attr[np.array(m["rows"]), lat.attr_names.index("Smiling")]
    assert m["colour"]["names"] == ["not Smiling", "Smiling", "unknown"]
    assert np.array_equal(m["colour"]["values"], np.where(col > 0, 1, np.where(col < 0, 0, 2)))
    assert (np.array(m["colour"]["values"]) == 2).sum() > 350  # the file covers 100 images
    covered = int(np.flatnonzero((lat.attr != 0).any(axis=1))[0])
    p = json.loads(api.handle("/api/point", f"i={covered}").body)
    expect = {n: int(v) for n, v in zip(lat.attr_names, lat.attr[covered], strict=True) if v}
    assert p["attributes"] == expect and "label" not in p
    assert from_data_url(p["original"]).shape == (16, 16, 3)
    bad = api.handle("/api/map", "colour=Smilng")
    assert bad.status == 400 and b"choose one of 5_o_Clock_Shadow" in bad.body


def test_a_run_whose_images_are_gone_still_explores(run, tmp_path):
    import shutil

    from zspace.explorer.api import Api
    from zspace.explorer.session import Session

    moved = tmp_path / "moved"
    shutil.copytree(run.path, moved)
    cfg = (moved / "config.toml").read_text()
    (moved / "config.toml").write_text(
        cfg.replace('source = "builtin:digits"', f'source = "mnist:{tmp_path / "gone"}"')
    )
    api = Api(Session(moved))
    info = json.loads(api.handle("/api/info", "").body)
    assert info["images"] is False and "cannot be read" in info["images_note"]
    thumb = api.handle("/api/thumb", "i=0")
    assert thumb.status == 404 and thumb.body.count(b"\n") == 1
    p = json.loads(api.handle("/api/point", "i=0").body)
    assert p["original"] is None and from_data_url(p["reconstruction"]).shape == (16, 16)
    assert api.handle("/api/decode", "z=0,0,0,0").status == 200
