#!/bin/bash
# The GPU check of issue 11 in one command, for a lent GPU machine of this workplace (see ../shared/gpu/README.md):
# build mamba-ssm / causal-conv1d for the local GPU, run the CRF kernel tests on the GPU meanwhile, then
# benchmarks/gpu.py (correctness against the CPU reference, the CRF alone, model speed) in the time left.
#
# Prepare once, on the CPU machine, from the repository root:
#     cp -r ../shared/gpu .gpu && echo /.gpu/ >> .git/info/exclude
# Run with the device tool (one call; the machine does not stay warm long enough for a second one to reuse
# the build):
#     run(command="bash benchmarks/gpu_check.sh", carry=[".gpu"], timeout_s=600)
# Results land in $OUT (default outputs/gpu_check): gpu.md (the tables), gpu.json, pytest_gpu.txt,
# build.txt, and summary.txt (everything, in order).
#
# Knobs (environment): TOTAL_SECONDS (default 540: the whole script, build included, stays under it),
# BUILD_SECONDS (default 330: limit of each kernel build), GPU_ARGS (extra arguments for gpu.py, e.g.
# "--sizes base" for a second session that measures the base size only), BUILD=0 (skip the kernel build:
# the models then run the pure-PyTorch scan and gpu.py says their timings are not representative).
set -u
start=$(date +%s)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
OUT=${OUT:-outputs/gpu_check}
mkdir -p "$OUT"
TOTAL_SECONDS=${TOTAL_SECONDS:-540}
BUILD_SECONDS=${BUILD_SECONDS:-330}
GPU_ARGS=${GPU_ARGS:-}
unset TRITON_INTERPRET  # the kernels must compile for the GPU, not run in the interpreter
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
log() { echo "[gpu_check $(($(date +%s) - start)) s] $*" | tee -a "$OUT/summary.txt"; }

if [ ! -d .gpu ]; then
  log "no .gpu folder: copy ../shared/gpu to .gpu and carry it (see the top of this script)"; exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/summary.txt"

# 1. the wheels this machine lacks (datasets, seqeval, ...; seconds), then the kernel build in the background
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/wheels/*.whl \
  >>"$OUT/build.txt" 2>&1
export PYTHONPATH=/tmp/site:$root/src
if [ "${BUILD:-1}" != 0 ]; then
  log "building mamba-ssm and causal-conv1d in the background (limit ${BUILD_SECONDS} s each)"
  bash .gpu/build_kernels.sh "$BUILD_SECONDS" >/tmp/kernel_path.txt 2>>"$OUT/build.txt" &
  build=$!
fi

# 2. meanwhile, the CRF kernels' tests on the GPU (correctness only: the build loads the CPUs)
log "pytest tests/test_crf_triton.py (all, the slow and gpu ones included) and the other gpu tests"
python3 -m pytest -q -p no:cacheprovider tests/test_crf_triton.py 2>&1 | tail -25 >"$OUT/pytest_gpu.txt"
python3 -m pytest -q -p no:cacheprovider -m gpu tests --ignore=tests/test_crf_triton.py --continue-on-collection-errors 2>&1 | tail -15 >>"$OUT/pytest_gpu.txt"
tail -3 "$OUT/pytest_gpu.txt" | tee -a "$OUT/summary.txt"

# 3. after the build: gpu.py with the time that is left
if [ -n "${build:-}" ]; then
  wait "$build"
  tail -n 2 /tmp/kernels/conv.log /tmp/kernels/mamba.log >>"$OUT/build.txt" 2>&1
  export PYTHONPATH=/tmp/site:$(tail -1 /tmp/kernel_path.txt):$root/src
  log "build done: $(grep -h 'exit' /tmp/kernels/*.log | tr '\n' ' ')"
fi
left=$((TOTAL_SECONDS - ($(date +%s) - start)))
budget=$(python3 -c "print(max(0.5, ($left - 90) / 60))")  # minutes for the speed runs; ~90 s for the rest
log "benchmarks/gpu.py, speed budget ${budget} min"
python3 benchmarks/gpu.py --steps 3 --warmup 2 --budget-minutes "$budget" --json "$OUT/gpu.json" $GPU_ARGS \
  >"$OUT/gpu.md" 2>>"$OUT/summary.txt"
log "exit $? ; tables in $OUT/gpu.md"
cat "$OUT/gpu.md" >>"$OUT/summary.txt"
