#!/usr/bin/env bash
# The one script for a GPU session (issue 15): at most ~4 minutes on one GPU.
#
#   bash benchmarks/gpu_check.sh           # on the GPU machine, from the repository root
#   bash benchmarks/gpu_check.sh --dry     # tiny sizes on the CPU (the suite runs this)
#
# 1. makes zspace importable without a registry: wheels the machine's image lacks
#    (faiss-cpu, openTSNE) from benchmarks/wheels/ (see docs/performance.md for the
#    `pip download` that fills it), then `pip install --no-deps -e .`, falling back
#    to PYTHONPATH=. when the editable install cannot build offline;
# 2. runs the tests marked `cuda` (skipped in --dry: they skip on a CPU anyway);
# 3. runs benchmarks/gpu_bench.py: training of the celeba96 reference net (batch 128
#    and 512, fp32 and bf16, eager / CUDA-graphed / compiled), the encode of 170k
#    images, the rate's and the evaluation's k-NN, and prints ONE table with img/s
#    and the ratio to the reference's 1,400 img/s;
# 4. runs benchmarks/bench_precision.py (issue 14): training throughput per
#    train.precision (fp32, tf32, bf16, fp16) for the celeba96 and mnist28 nets.
# Logs and the table go to $OUT (default /tmp/zspace-gpu): gpu_tests.log,
# gpu_bench.json, gpu_table.txt. Put the table into docs/performance.md.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
if [[ "${1:-}" == "--dry" ]]; then DRY=1; shift; fi
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/zspace-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
started=$(date +%s)

if [[ $DRY == 0 ]]; then
  if compgen -G "benchmarks/wheels/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/zspace-site benchmarks/wheels/*.whl \
      && export PYTHONPATH=/tmp/zspace-site${PYTHONPATH:+:$PYTHONPATH}
  else
    echo "note: benchmarks/wheels/ is empty: no faiss rows, no openTSNE (see docs/performance.md)"
  fi
  if ! "$PY" -c "import zspace" 2>/dev/null; then
    "$PY" -m pip install -q --no-deps --no-build-isolation -e . >"$OUT/pip.log" 2>&1 \
      || echo "note: editable install failed offline (pip.log); using PYTHONPATH=."
  fi
  "$PY" -c "import zspace" 2>/dev/null || export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,temperature.gpu \
    --format=csv 2>/dev/null | tee "$OUT/nvidia-smi.txt"
  echo "== cuda-marked tests"
  # only the files that hold cuda tests: the others need packages this image may lack
  files=$(grep -l "pytest.mark.cuda" tests/test_*.py | tr '\n' ' ')
  timeout 90 "$PY" -m pytest -q -m cuda --no-cov -p no:cacheprovider $files 2>&1 \
    | tee "$OUT/gpu_tests.log" | tail -15
  echo "cuda tests: $(tail -1 "$OUT/gpu_tests.log")"
  budget=$((180 - ($(date +%s) - started)))
  echo "== timings (budget ${budget} s)"
  "$PY" benchmarks/gpu_bench.py --budget "$budget" --out "$OUT"
  echo "== precisions"
  timeout 60 "$PY" benchmarks/bench_precision.py --device cuda --net celeba96 mnist28 \
    2>&1 | tee "$OUT/precision.txt" | tail -12
else
  "$PY" benchmarks/gpu_bench.py --dry --out "$OUT"
fi
status=$?
echo "gpu_check: $(( $(date +%s) - started )) s in all; table in $OUT/gpu_table.txt"
exit $status
