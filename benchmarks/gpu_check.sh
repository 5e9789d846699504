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
# Results land in $OUT (default outputs/gpu_check): gpu_check.md (correctness), gpu.md (CRF and speed tables),
# gpu_check.json, gpu.json, pytest_gpu.txt,
# build.txt, and summary.txt (everything, in order).
#
# Knobs (environment): TOTAL_SECONDS (default 540: the whole script, build included, stays under it),
# BUILD_SECONDS (default 360: limit of the two kernel builds together), GPU_ARGS (extra arguments for gpu.py, e.g.
# "--sizes base" for a second session that measures the base size only), BUILD=0 (skip the kernel build:
# the models then run the pure-PyTorch scan and gpu.py says their timings are not representative).
set -u
start=$(date +%s)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
OUT=${OUT:-outputs/gpu_check}
mkdir -p "$OUT"
TOTAL_SECONDS=${TOTAL_SECONDS:-540}
BUILD_SECONDS=${BUILD_SECONDS:-360}
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
# One kernel at a time with every core (measured on an H200, 16 cores: mamba-ssm alone in 112 s; the two side by
# side, as ../shared/gpu/build_kernels.sh builds them, took 320 s for mamba-ssm while causal-conv1d did not finish).
build_kernel() {  # build_kernel SDIST_PREFIX FORCE_VARIABLE LIMIT_SECONDS: compiles in place under /tmp/kernels
  local dir cap
  cap=$(python3 -c "import torch; print(''.join(map(str, torch.cuda.get_device_capability())))") || return 1
  mkdir -p /tmp/kernels && tar xzf .gpu/$1-*.tar.gz -C /tmp/kernels && dir=$(echo /tmp/kernels/$1-*)
  sed -i "s/+ cc_flag/+ [\"-gencode\", \"arch=compute_${cap},code=sm_${cap}\"]/" "$dir/setup.py"  # this GPU only
  (cd "$dir" && env "$2=TRUE" TORCH_CUDA_ARCH_LIST="${cap:0:-1}.${cap: -1}" NVCC_THREADS=1 MAX_JOBS=$(nproc) \
     timeout "$3" python3 setup.py build_ext --inplace >"/tmp/kernels/$1.log" 2>&1)
  echo "$1 exit $? after $(($(date +%s) - start)) s" >>"/tmp/kernels/$1.log"
}
if [ "${BUILD:-1}" != 0 ]; then
  log "building mamba-ssm, then causal-conv1d, in the background (limit ${BUILD_SECONDS} s for the two)"
  (build_kernel mamba_ssm MAMBA_FORCE_BUILD "$BUILD_SECONDS"
   left=$((BUILD_SECONDS - ($(date +%s) - start)))  # `timeout 0` would mean no limit
   if [ "$left" -gt 10 ]; then build_kernel causal_conv1d CAUSAL_CONV1D_FORCE_BUILD "$left"
   else echo "causal_conv1d exit skipped: no build time left" >/tmp/kernels/causal_conv1d.log; fi) &
  build=$!
fi

# 2. meanwhile, the CRF kernels' tests and the correctness section on the GPU (no timings: the build loads the CPUs)
log "pytest tests/test_crf_triton.py (all, the slow and gpu ones included) and the other gpu tests"
python3 -m pytest -q -p no:cacheprovider tests/test_crf_triton.py 2>&1 | tail -25 >"$OUT/pytest_gpu.txt"
python3 -m pytest -q -p no:cacheprovider -m gpu tests --ignore=tests/test_crf_triton.py --continue-on-collection-errors 2>&1 | tail -15 >>"$OUT/pytest_gpu.txt"
tail -3 "$OUT/pytest_gpu.txt" | tee -a "$OUT/summary.txt"
log "benchmarks/gpu.py --sections check (correctness against the CPU reference; the models use the scans available now)"
python3 benchmarks/gpu.py --sections check --json "$OUT/gpu_check.json" >"$OUT/gpu_check.md" 2>>"$OUT/summary.txt"
log "exit $? ; correctness tables in $OUT/gpu_check.md"
cat "$OUT/gpu_check.md" >>"$OUT/summary.txt"

# 3. after the build: gpu.py with the time that is left
if [ -n "${build:-}" ]; then
  wait "$build"
  tail -n 3 /tmp/kernels/*.log >>"$OUT/build.txt" 2>&1
  export PYTHONPATH=/tmp/site:$(echo /tmp/kernels/mamba_ssm-*):$(echo /tmp/kernels/causal_conv1d-*):$root/src
  log "build done: $(grep -h ' exit ' /tmp/kernels/*.log | tr '\n' ' ')"
  log "the gpu tests again, with the kernels"
  python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_scan.py 2>&1 | tail -5 | tee -a "$OUT/pytest_gpu.txt" "$OUT/summary.txt"
fi
left=$((TOTAL_SECONDS - ($(date +%s) - start)))
budget=$(python3 -c "print(max(0.5, ($left - 90) / 60))")  # minutes for the speed runs; ~90 s for the CRF and the profile
log "benchmarks/gpu.py --sections crf speed profile, speed budget ${budget} min"
python3 benchmarks/gpu.py --sections crf speed profile --steps 3 --warmup 2 --budget-minutes "$budget" --json "$OUT/gpu.json" $GPU_ARGS \
  >"$OUT/gpu.md" 2>>"$OUT/summary.txt"
log "exit $? ; tables in $OUT/gpu.md"
cat "$OUT/gpu.md" >>"$OUT/summary.txt"
