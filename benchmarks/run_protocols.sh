#!/usr/bin/env bash
# Train and evaluate every accuracy protocol of ../shared/BENCHMARKS.md, one after the other.
# Logs go to outputs/<protocol>.log; scores to outputs/<protocol>/summary.json and *_scores.json.
#   bash benchmarks/run_protocols.sh [healthner rocling22 conll03 ruijin]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p outputs
for name in "${@:-healthner rocling22 conll03 ruijin}"; do
  for p in $name; do
    echo "=== $p $(date -u +%FT%TZ)" | tee -a outputs/protocols.log
    start=$(date +%s)
    HF_HUB_OFFLINE=1 $PY examples/run_ner.py "examples/configs/$p.json" > "outputs/$p.log" 2>&1
    echo "=== $p exit $? after $(( $(date +%s) - start )) s" | tee -a outputs/protocols.log
  done
done
