#!/usr/bin/env python
"""Fine-tune a Mamba+CRF tagger with the Hugging Face Trainer.

    python examples/run_ner.py examples/configs/sample_rocling.json
    python examples/run_ner.py --data_format conll --train_files a.conll --validation_files b.conll \
        --output_dir outputs/run --do_train --do_eval --num_train_epochs 3

Every `TrainingArguments` option is accepted; the model, data and run options are listed by
`--help`. The logic lives in `mamba_ner.training` (also `mamba-ner train`).
"""
import sys

from mamba_ner.training import main

if __name__ == "__main__":
    sys.exit(main())
