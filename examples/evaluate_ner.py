#!/usr/bin/env python
"""Score a checkpoint on files or a saved dataset, writing the same report as training.

    python examples/evaluate_ner.py --model outputs/sample_rocling/model --files examples/sample_data/rocling/test.txt

The files' format is detected (`--data_format` forces one); the report goes beside the model
folder (`outputs/sample_rocling/model_eval`) unless `--output_dir` says otherwise.

The logic lives in `mamba_ner.evaluation` (also `mamba-ner evaluate`).
"""
import sys

from mamba_ner.evaluation import main

if __name__ == "__main__":
    sys.exit(main())
