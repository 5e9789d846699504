"""`MambaCrfTrainer`: the Hugging Face `Trainer` plus an honest account of the training loop's speed,
and an optional exponential moving average of the weights.

`Trainer`'s own `train_samples_per_second` counts padded examples and includes the evaluations run
during training. This subclass counts what the model really reads in every training step: real
tokens (the attention mask's ones) and padded positions, and the seconds spent evaluating, so a
run's summary can say how many real tokens per second the loop trained on and what share of the
work was padding.

With ``ema_decay`` (`--ema_decay`), `WeightAverage` keeps an exponential moving average of the
trainable weights, updated after every optimizer step; the evaluations and checkpoints during training
see the averaged weights (so the best checkpoint is chosen, and saved, averaged), the optimizer keeps
stepping the raw ones, and the model ends with the averaged weights.

With ``adversarial_epsilon`` (`--adversarial_epsilon`), every training step also trains on an adversarial
copy of its batch (the fast gradient method of Miyato et al. 2017, "FGM"): after the step's backward pass
each tagger's character-embedding matrix is moved by epsilon along its gradient (scaled to norm epsilon),
the batch is read again and its loss's gradients are added, and the embeddings are put back. Twice the
work per step.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler


class WeightAverage(TrainerCallback):
    """Exponential moving average of a model's trainable parameters, updated after each optimizer step.

    The decay of update t is min(decay, (1 + t) / (10 + t)), so the first updates follow the weights
    closely instead of keeping the random initialisation. A run resumed from a checkpoint starts its
    average from the checkpoint's weights (which are averaged ones).
    """

    def __init__(self, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.params: list[torch.nn.Parameter] = []
        self.shadow: list[torch.Tensor] = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.updates = 0

    @torch.no_grad()
    def on_step_end(self, args, state, control, **kwargs):
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.shadow, self.params, 1.0 - decay)

    @torch.no_grad()
    def copy_in(self) -> None:
        """Put the averaged weights into the model (for good)."""
        for p, s in zip(self.params, self.shadow):
            p.copy_(s)

    @contextmanager
    def swapped_in(self):
        """The averaged weights in the model inside the block, the raw ones back after it."""
        with torch.no_grad():
            raw = [p.detach().clone() for p in self.params]
            self.copy_in()
        try:
            yield
        finally:
            with torch.no_grad():
                for p, r in zip(self.params, raw):
                    p.copy_(r)


class MambaCrfTrainer(Trainer):
    """`Trainer` that counts real and padded tokens of the training batches and times evaluation."""

    def __init__(self, *args, ema_decay: float = 0.0, adversarial_epsilon: float = 0.0, **kwargs):
        """``ema_decay`` > 0: evaluate, save and end with an exponential moving average of the weights
        (`WeightAverage`); 0: the raw weights. ``adversarial_epsilon`` > 0: also train every step on the
        batch with its embeddings moved by this norm along their gradient (`adversarial_step`); 0: off."""
        if adversarial_epsilon < 0:
            raise ValueError(f"the adversarial epsilon must be >= 0 (0: off), got {adversarial_epsilon}")
        super().__init__(*args, **kwargs)
        self.adversarial_epsilon = adversarial_epsilon
        self.real_tokens = 0  # attention-mask ones seen by training steps
        self.padded_tokens = 0  # positions of training batches (real + padding)
        self.evaluation_seconds = 0.0  # spent in evaluate() (also when called during train())
        self.weight_average = WeightAverage(ema_decay) if ema_decay else None
        if self.weight_average is not None:
            self.add_callback(self.weight_average)

    def _maybe_log_save_evaluate(self, *args, **kwargs):
        """Evaluations and checkpoints during training see the averaged weights, when there are any."""
        if self.weight_average is not None and (self.control.should_evaluate or self.control.should_save):
            with self.weight_average.swapped_in():
                return super()._maybe_log_save_evaluate(*args, **kwargs)
        return super()._maybe_log_save_evaluate(*args, **kwargs)

    def train(self, *args, **kwargs):
        result = super().train(*args, **kwargs)
        if self.weight_average is not None and self.weight_average.shadow and not self.args.load_best_model_at_end:
            self.weight_average.copy_in()  # with load_best_model_at_end the best (averaged) checkpoint is in
        return result

    def training_step(self, model, inputs, *args, **kwargs):
        mask = inputs.get("attention_mask")
        if mask is not None:
            self.real_tokens += int(mask.sum())
            self.padded_tokens += mask.numel()
        elif "input_ids" in inputs:
            self.real_tokens += inputs["input_ids"].numel()
            self.padded_tokens += inputs["input_ids"].numel()
        loss = super().training_step(model, inputs, *args, **kwargs)
        if self.adversarial_epsilon:
            self.adversarial_step(model, inputs, *args, **kwargs)
        return loss

    def adversarial_step(self, model, inputs, *args, **kwargs) -> None:
        """FGM: move each character-embedding matrix by epsilon * g / |g| (g its gradient so far), add the
        gradients of the batch's loss read with the moved embeddings, put the original ones back (nothing
        when no embedding has a gradient)."""
        unwrapped = self.accelerator.unwrap_model(model)
        backbones = unwrapped.backbones() if hasattr(unwrapped, "backbones") else [unwrapped]
        moved = []
        with torch.no_grad():
            for backbone in backbones:
                weight = backbone.get_input_embeddings().weight
                if weight.grad is None:
                    continue
                norm = torch.linalg.vector_norm(weight.grad)
                if not torch.isfinite(norm) or norm == 0:
                    continue
                moved.append((weight, weight.detach().clone()))
                weight.add_(weight.grad, alpha=float(self.adversarial_epsilon / norm))
        if not moved:
            return
        try:
            super().training_step(model, dict(inputs), *args, **kwargs)
        finally:
            with torch.no_grad():
                for weight, original in moved:
                    weight.copy_(original)

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
