"""What the explorer costs on this machine, for the CelebA-size reference network
(96x96x3, encoder filters 32-64-128-256, strides 2, z_dim 256), torch on 2 threads:

- /api/decode over HTTP (keep-alive, one request at a time, as the page sends them):
  median and 95th percentile, beside the baseline of the same decode + PNG in-process
  without the server; the ratio is the server's overhead (query parsing, checks,
  HTTP);
- a slider drag: positions at 120 Hz for 1 s through the page's latest-wins rule
  (one request in flight), against sending every position: requests sent and the
  delay from the last position to its image;
- a burst of concurrent requests without coalescing: how many the bounded queue
  refuses (503) and how long the rest take;
- the other endpoints: the exact nearest training point among ``--points`` latents
  (its own request after each decode), the map, thumb, point, sample, interpolate;
- with Chromium present: the page's own timings (map draw of the 30,000 points,
  decode round trips while a slider moves).

The network is trained for one epoch on ``shared/data/celeba-558`` (the built-in digits
at 96x96x3 when that is absent): decode cost depends on the layers, not on the
weights. Its latents are then replaced by ``--points`` synthetic points drawn from a
Gaussian fitted to the real ones (image rows reused cyclically), so the map and the
nearest-neighbour search have the size of a real data set.

    python benchmarks/bench_explore.py [--points 30000] [--requests 200] [--no-browser]

Not part of the test suite; prints one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_name

import zspace
from zspace.explorer.session import png_bytes
from zspace.generation.images import to_uint8
from zspace.latents.store import Latents, latents_path, load_latents, save_latents

ROOT = Path(__file__).resolve().parents[1]
CELEBA = ROOT.parent / "shared" / "data" / "celeba-558"
NET = [
    "model.z_dim=256",
    "model.encoder_filters=[32, 64, 128, 256]",
    "model.encoder_strides=2",
    "model.variational=false",
    "data.image_size=96",
    "data.channels=3",
    "train.epochs=1",
    "train.batch_size=64",
    "train.threads=2",
]


def build_run(folder: Path, points: int) -> Path:
    source = f"celeba:{CELEBA}" if CELEBA.is_dir() else "builtin:digits"
    cfg = zspace.load_config(
        None, [*NET, f'data.source="{source}"', f'data.cache_dir="{folder / "cache"}"']
    )
    run = zspace.train(cfg, run_dir=folder / "run", log=lambda s: None, progress=False)
    zspace.encode(run)
    real = load_latents(run)
    rng = np.random.default_rng(0)
    z = real.z.astype(np.float64)
    cov = np.cov(z, rowvar=False) + 1e-6 * np.eye(z.shape[1])
    fake = rng.multivariate_normal(z.mean(0), cov, size=points).astype(np.float32)
    rows = np.arange(points) % len(real)
    save_latents(
        latents_path(run.path, "train"),
        Latents(
            split="train",
            z=fake,
            index=real.index[rows],
            label=None if real.label is None else real.label[rows],
            label_names=real.label_names,
            attr=None if real.attr is None else real.attr[rows],
            attr_names=real.attr_names,
        ),
    )
    return run.path


def stats_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "median_ms": round(float(np.median(ms)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "n": len(ms),
    }


def zq(z: np.ndarray) -> str:
    return ",".join(f"{v:.7g}" for v in z)


class Client:
    """One keep-alive connection, as a browser tab holds."""

    def __init__(self, handle) -> None:
        self.conn = http.client.HTTPConnection(handle.host, handle.port, timeout=60)

    def get(self, path: str) -> tuple[int, bytes, float]:
        t0 = time.perf_counter()
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        body = r.read()
        return r.status, body, time.perf_counter() - t0


def in_process(run, zs: np.ndarray) -> list[float]:
    """Baseline: decode one z and encode its PNG, no server."""
    out = []
    for z in zs:
        t0 = time.perf_counter()
        png_bytes(to_uint8(run.decode(torch.from_numpy(z[None])))[0])
        out.append(time.perf_counter() - t0)
    return out


def over_http(client: Client, zs: np.ndarray) -> list[float]:
    out = []
    for z in zs:
        status, body, dt = client.get(f"/api/decode?z={zq(z)}")
        assert status == 200, body
        out.append(dt)
    return out


def drag(handle, positions: np.ndarray, coalesce: bool, hz: float = 120.0) -> dict:
    """Slider positions arriving at ``hz`` (a fast drag; mice report at about 125 Hz),
    sent by one connection during the drag. ``coalesce``: the page's rule, one request
    in flight and only the newest waiting position sent next; otherwise every position
    in order (a FIFO queue)."""
    client = Client(handle)
    waiting: list = []
    sent = [0]
    finished = [False]
    last_answer = [0.0]
    cond = threading.Condition()

    def sender():
        while True:
            with cond:
                while not waiting and not finished[0]:
                    cond.wait()
                if not waiting:
                    return
                k, z = waiting.pop() if coalesce else waiting.pop(0)
                if coalesce:
                    waiting.clear()
            client.get(f"/api/decode?z={zq(z)}")
            sent[0] += 1
            if k == len(positions) - 1:
                last_answer[0] = time.perf_counter()

    worker = threading.Thread(target=sender)
    worker.start()
    t0 = time.perf_counter()
    for k, z in enumerate(positions):
        time.sleep(max(0.0, t0 + k / hz - time.perf_counter()))
        with cond:
            waiting.append((k, z))
            cond.notify()
    t_last = time.perf_counter()
    with cond:
        finished[0] = True
        cond.notify()
    worker.join()
    return {
        "positions": len(positions),
        "hz": hz,
        "requests": sent[0],
        "last_image_after_ms": round((last_answer[0] - t_last) * 1000, 1),
    }


def burst(handle, zs: np.ndarray, threads: int = 16) -> dict:
    """Every request at once from ``threads`` connections, no coalescing."""
    codes: list[int] = []
    lock = threading.Lock()

    def one(chunk):
        c = Client(handle)
        for z in chunk:
            status, _, _ = c.get(f"/api/decode?z={zq(z)}")
            with lock:
                codes.append(status)

    t0 = time.perf_counter()
    workers = [threading.Thread(target=one, args=(zs[k::threads],)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {
        "requests": len(zs),
        "connections": threads,
        "ok": codes.count(200),
        "refused_503": codes.count(503),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def endpoints(client: Client, z: np.ndarray) -> dict:
    n = len(z)
    out = {}
    for name, path in (
        ("nearest (exact, all points)", "/api/nearest?z={z}"),
        ("map (all points)", "/api/map?name=pca"),
        ("thumb", "/api/thumb?i={i}"),
        ("point", "/api/point?i={i}"),
        ("sample n=16 normal", "/api/sample?sampler=normal&n=16&seed={i}"),
        ("sample n=16 gauss", "/api/sample?sampler=gauss&n=16&seed={i}"),
        ("interpolate steps=8", "/api/interpolate?a={i}&b={j}&steps=8"),
    ):
        times, size = [], 0
        for k in range(5 if name.startswith("map") else 20):
            i, j = (k * 7919) % n, (k * 104729 + 1) % n
            status, body, dt = client.get(path.format(i=i, j=j, z=zq(z[i] + 0.5)))
            assert status == 200, body
            times.append(dt)
            size = len(body)
        out[name] = {**stats_ms(times[1:]), "first_ms": round(times[0] * 1000, 1), "bytes": size}
    return out


def browser(handle, profile: Path) -> dict | None:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return None
    if not Path("/usr/bin/chromium").exists():
        return None
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1600,1200",
    ):
        opts.add_argument(arg)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    until = lambda js: WebDriverWait(d, 60, 0.05).until(lambda x: x.execute_script(js))  # noqa: E731
    try:
        t0 = time.perf_counter()
        d.get(handle.url)
        until("return document.getElementById('status').textContent === 'ready'")
        ready = time.perf_counter() - t0
        until("return window.zspace.idle()")
        for _ in range(20):  # redraws: a wheel zoom each
            d.execute_script(
                "document.getElementById('map').dispatchEvent(new WheelEvent('wheel',"
                "{deltaY: -40, clientX: 300, clientY: 300, bubbles: true, cancelable: true}))"
            )
            time.sleep(0.05)
        draws = d.execute_script("return window.zspace.stats.drawMs")
        d.execute_script("window.zspace.stats.decodeMs.length = 0")
        for k in range(60):  # a slider moved step by step, 50 ms apart
            d.execute_script(
                f"const s = document.getElementById('pc1'); s.value = {-3 + k * 0.1};"
                "s.dispatchEvent(new Event('input'))"
            )
            time.sleep(0.05)
        until("return window.zspace.idle()")
        st = d.execute_script("return window.zspace.stats")
        return {
            "page_ready_s": round(ready, 2),
            "map_points": d.execute_script("return window.zspace.state.map.rows.length"),
            "map_first_draw_ms": round(draws[0], 1),
            "map_redraw_ms": stats_ms(np.asarray(draws[1:]) / 1000),
            "slider_events": 60,
            "decodes_sent": st["decodesSent"],
            "decode_round_trip_in_page": stats_ms(np.asarray(st["decodeMs"]) / 1000),
        }
    finally:
        d.quit()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=30_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_run(Path(tmp), args.points)
        t0 = time.perf_counter()
        handle = zspace.explore(folder, threads=2)
        start_s = time.perf_counter() - t0
        run, z = handle.session.run, handle.session.z
        rng = np.random.default_rng(1)
        zs = (
            z[rng.integers(0, len(z), args.requests)]
            + rng.normal(0, 0.5, (args.requests, z.shape[1]))
        ).astype(np.float32)
        try:
            client = Client(handle)
            in_process(run, zs[:10]), over_http(client, zs[:10])  # warm-up
            base = in_process(run, zs)
            http_ = over_http(client, zs)
            base2 = in_process(run, zs)  # again: the machine may have changed meanwhile
            b, h = stats_ms(base + base2), stats_ms(http_)
            path = np.linspace(-3, 3, 120)[:, None] * handle.session.components[0] * 3
            positions = (handle.session.mean + path).astype(np.float32)
            result = {
                "cpu": cpu_name(),
                "torch_threads": torch.get_num_threads(),
                "network": "celeba96 reference, z_dim 256",
                "points": args.points,
                "data": "celeba-558" if CELEBA.is_dir() else "builtin digits at 96x96x3",
                "explorer_start_s": round(start_s, 2),
                "decode_in_process": b,
                "decode_over_http": h,
                "http_over_in_process_median": round(h["median_ms"] / b["median_ms"], 2),
                "drag_coalesced": drag(handle, positions, coalesce=True),
                "drag_fifo_every_position": drag(handle, positions, coalesce=False),
                "burst_without_coalescing": burst(handle, zs[:100]),
                "endpoints": endpoints(client, z),
            }
            if not args.no_browser:
                result["page"] = browser(handle, Path(tmp) / "profile")
        finally:
            handle.stop()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
