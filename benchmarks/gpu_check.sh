#!/usr/bin/env bash
# The GPU checks, on a machine with a CUDA GPU, from the repository root:
#   bash benchmarks/gpu_check.sh          (PYTHON=/path/to/python to pick the interpreter)
# 1. the devices; 2. the tests marked `cuda` (precisions, fp16 resume, DDP on NCCL, two
# GPUs against one where there are two); 3. training throughput per train.precision.
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
"$PYTHON" - <<'PY'
import torch
assert torch.cuda.is_available(), "gpu_check.sh needs a CUDA GPU"
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"cuda:{i} {p.name} sm_{p.major}{p.minor} {p.total_memory / 2**30:.0f} GiB; "
          f"torch {torch.__version__}, CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}")
PY
"$PYTHON" -m pytest -q -m cuda -rs tests/
"$PYTHON" benchmarks/bench_precision.py --device cuda --net celeba96 mnist28
