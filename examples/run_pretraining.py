#!/usr/bin/env python
"""Pretrain the Mamba backbone on unlabelled text (masked-token prediction) with the Hugging Face Trainer.

    python examples/run_pretraining.py examples/configs/pretrain_rocling22.json
    python examples/run_pretraining.py --train_files notes/ --data_format text --output_dir outputs/pretrain \
        --max_seq_length 256 --num_train_epochs 3 --learning_rate 1e-3
    python examples/run_ner.py examples/configs/rocling22.json --model_name_or_path outputs/pretrain

Every `TrainingArguments` option is accepted; the model and pretraining options are listed by
`--help`. The logic lives in `mamba_ner.pretraining` (also `mamba-ner pretrain`).
"""
import sys

from mamba_ner.pretraining import main

if __name__ == "__main__":
    sys.exit(main())
