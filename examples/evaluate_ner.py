#!/usr/bin/env python
"""Score a checkpoint on files or a saved dataset, writing the same report as training.

    python examples/evaluate_ner.py --model outputs/sample --data_format rocling \
        --files examples/sample_data/rocling/test.txt --output_dir outputs/sample/eval

The logic lives in `mamba_ner.evaluation` (also `mamba-ner evaluate`).
"""
import sys

from mamba_ner.evaluation import main

if __name__ == "__main__":
    sys.exit(main())
