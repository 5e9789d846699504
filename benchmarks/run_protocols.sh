#!/usr/bin/env bash
# Train and evaluate every accuracy protocol of ../shared/BENCHMARKS.md, one after the other, with
# 2 threads, and record each run's scores in benchmarks/accuracy.json (benchmarks/collect_accuracy.py
# reads them from the run's own summary.json). A config that fine-tunes from pretraining on the protocol's own
# training text gets its pretraining run first (examples/configs/pretrain_<protocol>.json).
# Logs go to outputs/<protocol>.log; scores to outputs/<protocol>/summary.json and *_scores.json.
#   bash benchmarks/run_protocols.sh [healthner rocling22 conll03 ruijin]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=1
mkdir -p outputs
for name in "${@:-healthner rocling22 conll03 ruijin}"; do
  for p in $name; do
    echo "=== $p $(date -u +%FT%TZ)" | tee -a outputs/protocols.log
    start=$(date +%s)
    status=0
    # a config that fine-tunes from masked-token pretraining (model_name_or_path) whose pretraining config
    # examples/configs/pretrain_<protocol>.json writes that folder: pretrain first (its time counts in the wall time)
    from=$($PY -c "import json, sys; print(json.load(open(sys.argv[1])).get('model_name_or_path') or '')" "examples/configs/$p.json")
    if [ -n "$from" ] && [ -f "examples/configs/pretrain_$p.json" ] && \
       [ "$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['output_dir'])" "examples/configs/pretrain_$p.json")" = "$from" ]; then
      echo "=== pretrain_$p (for $from)" | tee -a outputs/protocols.log
      $PY examples/run_pretraining.py "examples/configs/pretrain_$p.json" > "outputs/pretrain_$p.log" 2>&1
      status=$?
    fi
    if [ "$status" = 0 ]; then
      $PY examples/run_ner.py "examples/configs/$p.json" > "outputs/$p.log" 2>&1
      status=$?
    fi
    wall=$(( $(date +%s) - start ))
    echo "=== $p exit $status after $wall s" | tee -a outputs/protocols.log
    if [ "$status" = 0 ]; then
      $PY benchmarks/collect_accuracy.py "$p" --wall-seconds "$wall" | tee -a outputs/protocols.log
    fi
  done
done
