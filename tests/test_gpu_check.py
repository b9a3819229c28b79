"""benchmarks/gpu_check.sh --dry: the GPU session's script on tiny sizes on the CPU, so
it cannot rot between the rare sessions that have a GPU (issue 15)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_prints_one_table(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, OUT=str(tmp_path))
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry"],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    table = (tmp_path / "gpu_table.txt").read_text()
    assert table in proc.stdout  # printed last, as one block
    assert table.splitlines()[0].startswith("zspace GPU check (DRY")
    rows = {line[:52].strip(): line for line in table.splitlines()[2:]}
    eager = rows["train   b16 fp32 eager"]
    rate = float(re.search(r"([\d,]+) img/s", eager).group(1).replace(",", ""))
    ratio = float(re.search(r"([\d.]+)x", eager).group(1))
    assert rate > 0 and abs(ratio - rate / 1400) <= 0.05 + 0.01 * ratio
    assert "img/s" in rows["encode  512 images, b512 fp32"]
    assert "needs CUDA" in rows["train   b16 fp32 graphed"]
    assert "q/s" in rows["k-NN    rate reference 500 x 500 x 256, k 1, torch"]
    record = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert record["machine"]["dry"] is True
    assert not [r for r in record["rows"] if r["note"].startswith("FAILED")], record["rows"]
