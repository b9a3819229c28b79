"""The MNIST KL sweep recipe end to end, timed, with its page's figures for the docs.

    python benchmarks/mnist_kl_sweep.py [--data ../shared/data/mnist] [--jobs 2]
        [--out /tmp/zspace-mnist-kl-sweep] [--shots docs/img]

Runs ``zspace recipe run mnist-kl-sweep`` (8 VAEs, fact 1e-5 .. 1, every stage) as a
user would, prints the machine, the load average before and after, the wall time
against the 30-minute budget of issue 13 and the CPU time of the recipe's processes
per core (on a shared machine: what the same cores take when no one else uses them),
one JSON line per run with the numbers the page plots and the page's direction
checks; with ``--shots`` it screenshots the page's sections with headless Chromium
into that folder. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_name

from zspace.reporting.sweep_page import sweep_numbers, trend_rows

BUDGET_S = 30 * 60
SHOTS = ("losses", "radius", "logvar", "active", "generation", "grids", "trends", "numbers")


def screenshots(page: Path, folder: Path, stem: str) -> list[Path]:
    """One PNG per section of the page (headless Chromium, as tests/test_report.py)."""
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tempfile.mkdtemp()}",
        "--window-size=1280,1200",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    out = []
    try:
        driver.get(page.resolve().as_uri())
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, height + 200)
        folder.mkdir(parents=True, exist_ok=True)
        for sid in SHOTS:
            found = driver.find_elements(By.ID, sid)
            if found:
                path = folder / f"{stem}-{sid}.png"
                path.write_bytes(found[0].screenshot_as_png)
                out.append(path)
    finally:
        driver.quit()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    shared = Path(__file__).resolve().parents[2] / "shared/data/mnist"
    ap.add_argument("--data", default=str(shared))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="/tmp/zspace-mnist-kl-sweep")
    ap.add_argument("--shots", help="folder for the page's section screenshots")
    args = ap.parse_args()
    load0 = os.getloadavg()
    print(
        json.dumps(
            {
                "cpu": cpu_name(),
                "cores": os.cpu_count(),
                "jobs": args.jobs,
                "load_before": [round(x, 2) for x in load0],
            }
        ),
        flush=True,
    )
    cmd = [
        sys.executable,
        "-m",
        "zspace",
        "recipe",
        "run",
        "mnist-kl-sweep",
        "--data",
        args.data,
        "--run-dir",
        args.out,
        "--jobs",
        str(args.jobs),
        "--no-progress",
    ]
    t0 = time.perf_counter()
    log = Path(args.out + ".log")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("w") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the recipe and its workers
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    load1 = os.getloadavg()
    print(
        json.dumps(
            {
                "wall_s": round(wall),
                "budget_s": BUDGET_S,
                "wall_over_budget": round(wall / BUDGET_S, 3),
                "cpu_s": round(cpu),
                "cpu_s_per_core": round(cpu / (os.cpu_count() or 1)),
                "load_after": [round(x, 2) for x in load1],
                "log": str(log),
            }
        ),
        flush=True,
    )
    for row in sweep_numbers(args.out):
        keep = {
            k: row[k]
            for k in (
                "name",
                "epochs",
                "reco",
                "kl_share",
                "peak",
                "mean",
                "expected",
                "logvar",
                "active",
                "rates",
            )
        }
        keep["eval_normal"] = (row.get("eval") or {}).get("normal")
        print(json.dumps(keep), flush=True)
    sweep = json.loads((Path(args.out) / "sweep.json").read_text())
    for t in trend_rows(Path(args.out), sweep):
        print(
            json.dumps(
                {
                    "trend": t["quantity"],
                    "direction": t["direction"],
                    "rho": t["rho"],
                    "verdict": t["verdict"],
                }
            ),
            flush=True,
        )
    if args.shots:
        for path in screenshots(Path(args.out) / "sweep.html", Path(args.shots), "mnist-kl-sweep"):
            print(f"screenshot: {path}")


if __name__ == "__main__":
    main()
