"""`MambaCrfTrainer`: the Hugging Face `Trainer` plus an honest account of the training loop's speed.

`Trainer`'s own `train_samples_per_second` counts padded examples and includes the evaluations run
during training. This subclass counts what the model really reads in every training step: real
tokens (the attention mask's ones) and padded positions, and the seconds spent evaluating, so a
run's summary can say how many real tokens per second the loop trained on and what share of the
work was padding.
"""

from __future__ import annotations

import time

from torch.utils.data import SequentialSampler
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler


class MambaCrfTrainer(Trainer):
    """`Trainer` that counts real and padded tokens of the training batches and times evaluation."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.real_tokens = 0  # attention-mask ones seen by training steps
        self.padded_tokens = 0  # positions of training batches (real + padding)
        self.evaluation_seconds = 0.0  # spent in evaluate() (also when called during train())

    def training_step(self, model, inputs, *args, **kwargs):
        mask = inputs.get("attention_mask")
        if mask is not None:
            self.real_tokens += int(mask.sum())
            self.padded_tokens += mask.numel()
        elif "input_ids" in inputs:
            self.real_tokens += inputs["input_ids"].numel()
            self.padded_tokens += inputs["input_ids"].numel()
        return super().training_step(model, inputs, *args, **kwargs)

    def _get_train_sampler(self, train_dataset=None):
        """Length grouping reads the row lengths from a dataset that lists them (`lengths`, e.g.
        `augmentation.MentionReplacement`) instead of reading, and so augmenting, every row once."""
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        lengths = getattr(dataset, "lengths", None)
        if self.args.train_sampling_strategy == "group_by_length" and isinstance(lengths, list) and self.args.world_size <= 1:
            return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps, lengths=lengths)
        return super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        """Evaluation keeps the dataset's order, so that row i of `predict()` is example i.

        transformers 5 also length-groups the evaluation batches, in a random order, when training uses
        `group_by_length`; `training.main` sorts its evaluation sets by length itself instead.
        """
        if eval_dataset is None:
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None  # None: accelerate shards in order

    def evaluate(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self.evaluation_seconds += time.perf_counter() - start

    def throughput(self, train_runtime: float) -> dict:
        """Real tokens per second of the training loop (train time minus evaluation) and the padding share.

        Args:
            train_runtime: `train()`'s `train_runtime` (seconds, evaluations during training included).
        """
        loop_seconds = max(train_runtime - self.evaluation_seconds, 1e-9)
        return {
            "train_real_tokens": self.real_tokens,
            "train_loop_seconds": round(loop_seconds, 2),
            "train_eval_seconds": round(self.evaluation_seconds, 2),
            "train_real_tokens_per_second": round(self.real_tokens / loop_seconds, 1),
            "train_padding_share": round(1 - self.real_tokens / self.padded_tokens, 4) if self.padded_tokens else 0.0,
        }
