"""Screenshots of TensorBoard for docs/export.md: the Projector on an exported run, and the
scalars and images dashboards of its training logs.

    python docs/img/export_screenshots.py RUN [--out docs/img]

RUN needs ``RUN/export/projector/`` (``zspace export RUN --format projector``) and
``RUN/tb/`` (trained with ``train.log = ["tensorboard"]``). TensorBoard runs on a
free port of 127.0.0.1 and is stopped afterwards; headless Chromium renders the
Projector's WebGL with SwiftShader (no GPU needed).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROME_FLAGS = [
    "--headless", "--no-sandbox", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--window-size=1600,1000",
    # WebGL without a GPU: ANGLE on SwiftShader (the Projector draws with WebGL)
    "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(logdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    tb = Path(sys.executable).with_name("tensorboard")
    cmd = [str(tb), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/data/environment", timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"tensorboard did not start on {url}")


def shoot(url: str, out: Path, wait: float) -> None:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tempfile.mkdtemp()}"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.get(url)
        time.sleep(wait)  # the Projector loads the tensors and runs PCA in the page
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--wait", type=float, default=20.0)
    args = ap.parse_args()
    shots = [
        (args.run / "export" / "projector", "#projector", "export-projector.png"),
        (args.run / "tb", "#scalars&tagFilter=total", "export-tb-scalars.png"),
        (args.run / "tb", "#images", "export-tb-images.png"),
    ]
    for logdir, page, name in shots:
        proc, url = serve(logdir)
        try:
            shoot(f"{url}/{page}", args.out / name, args.wait)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
