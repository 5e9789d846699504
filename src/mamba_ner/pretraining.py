"""Self-supervised pretraining of the backbone on unlabelled text (masked-token prediction).

`examples/run_pretraining.py` and `mamba-ner pretrain` are thin wrappers around `main()`. The steps
follow `transformers`' `run_mlm.py`:

1. arguments: the model size/feature options of `training.ModelArguments`, the `PretrainingArguments`
   below and any `TrainingArguments` option (command line or one JSON file);
2. text: plain text files (one document or sentence per line), the text of labelled files in any
   supported format (rocling, brat, conll, ...; the tags are ignored), or a benchmark protocol's
   *training* split (never its validation or test text); 5% of the texts are held out;
3. a tokenizer built from that text (`tokenization.build_tokenizer`: characters for Chinese,
   WordPiece otherwise), saved with the checkpoint;
4. the texts tokenized (`[CLS] ... [SEP]` each), concatenated and cut into rows of `max_seq_length`
   tokens (a long document spans several rows, short sentences share one);
5. `MambaCrfForMaskedLM` trained with BERT's masking (`DataCollatorForLanguageModeling`: 15% of the
   real tokens, of which 80% become `[MASK]`, 10% a random token, 10% stay; special tokens, `[UNK]`
   and padding are never chosen). Word dropout is off: masking already hides tokens;
6. the model and tokenizer saved to `output_dir`, and the held-out loss and masked-token accuracy
   printed (the held-out masks are drawn with a fixed seed, so every evaluation sees the same ones).

Fine-tune from the result with `run_ner.py --model_name_or_path OUTPUT_DIR`: the tokenizer comes
from the folder, the backbone weights load into `MambaCrfForTokenClassification`, the classifier
and CRF start from scratch. Characters of the NER data missing from the pretraining text map to `[UNK]`.
"""

from __future__ import annotations

import logging
import random
import sys
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
import torch
import transformers
from datasets import Dataset, DatasetDict
from transformers import AutoTokenizer, DataCollatorForLanguageModeling, HfArgumentParser, TrainingArguments, set_seed

from .commandline import DefaultsHelpFormatter, UsageError, describe_negations, parse_dataclasses, run_command
from .configuration_mamba_crf import MambaCrfConfig
from .modeling_mamba_crf import MambaCrfForMaskedLM
from .runtime import keep_freed_memory
from .trainer import MambaCrfTrainer
from .training import ModelArguments, _special_token_ids, _with_lexicon

logger = logging.getLogger(__name__)

TEXT_FORMAT = "text"  # plain text: one document or sentence per line


@dataclass
class PretrainingArguments:
    train_files: list[str] = field(default_factory=list, metadata={"help": "Text files/folders (plain text or a labelled format)"})
    data_format: str = field(default="auto", metadata={"help": "text (one document or sentence per line), rocling, brat, conll, "
                                                                "spanjson, or auto (detected; raw text is read as text)"})
    protocol: str | None = field(default=None, metadata={"help": "Pretrain on this benchmark protocol's training split text only"})
    data_dir: str = field(default="../shared/data", metadata={"help": "Where the protocols' data lives"})
    max_seq_length: int = field(default=256, metadata={"help": "Tokens per row: texts are concatenated and cut into rows of this length"})
    mlm_probability: float = field(default=0.15, metadata={"help": "Share of real tokens chosen for prediction"})
    validation_split_ratio: float = field(default=0.05, metadata={"help": "Share of the texts held out for the final evaluation"})
    split_seed: int = field(default=42, metadata={"help": "Seed of the held-out split and of its masks"})
    tie_word_embeddings: bool = field(default=True, metadata={"help": "The LM head's output matrix is the input embedding matrix"})


def build_parser() -> HfArgumentParser:
    parser = HfArgumentParser((ModelArguments, PretrainingArguments, TrainingArguments),
                              prog=Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "run_pretraining.py",
                              formatter_class=DefaultsHelpFormatter,
                              usage="%(prog)s [CONFIG.json] [--option value ...]  (the command line overrides the JSON file)")
    describe_negations(parser)
    return parser


def parse_args(argv: list[str] | None = None):
    """`[CONFIG.json] [--option value ...]`: JSON values first, the command line wins."""
    return parse_dataclasses(build_parser(), list(sys.argv[1:] if argv is None else argv))


# ----------------------------------------------------------------------------------- text
def read_texts(paths: list[str], data_format: str = "auto") -> list[str]:
    """The texts of `paths`: lines of plain text files, or the sentences of labelled files.

    Args:
        paths: files or folders (a folder stands for the files in it).
        data_format (`str`): `"text"`, a reader of `mamba_ner.data.read_files`, or `"auto"` (the
            format detected from the content; files detected as raw text are read as lines).

    Returns:
        one string per non-empty line / sentence (a labelled sentence's tokens joined by spaces).
    """
    from .data import detect_format, read_files
    from .data.detect import expand_folders

    if data_format == "auto":
        kinds = {detect_format(path)[0] for path in paths}
        data_format = TEXT_FORMAT if kinds == {TEXT_FORMAT} else "auto"
        if TEXT_FORMAT in kinds and len(kinds) > 1:
            raise UsageError(f"{', '.join(map(str, paths))}: raw text mixed with labelled files ({sorted(kinds)}); pass --data_format")
    if data_format == TEXT_FORMAT:
        texts = []
        for path in expand_folders(paths):
            with open(path, encoding="utf-8") as handle:
                texts += [line.strip() for line in handle if line.strip()]
        logger.info("%d lines of text from %s", len(texts), ", ".join(map(str, paths)))
        return texts
    sentences, report = read_files(data_format, paths)
    logger.info("%s:\n%s", ", ".join(map(str, paths)), report.summary())
    return [" ".join(sentence.tokens) for sentence in sentences if sentence.tokens]


def load_texts(args: PretrainingArguments) -> list[str]:
    """The pretraining text: the files, or a protocol's training split (never validation or test)."""
    if args.protocol:
        from .data.protocols import load_protocol

        dataset, _ = load_protocol(args.protocol, args.data_dir)
        logger.info("protocol %s: pretraining on its %d training sentences only", args.protocol, len(dataset["train"]))
        return [" ".join(tokens) for tokens in dataset["train"]["tokens"] if tokens]
    if not args.train_files:
        raise UsageError("give --train_files (text or labelled files/folders) or --protocol")
    return read_texts(args.train_files, args.data_format)


def split_texts(texts: list[str], ratio: float, seed: int) -> dict[str, list[str]]:
    """`{"train": ..., "validation": ...}`: a random `ratio` of the texts held out (at least one when ratio > 0)."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    held_out = min(max(round(ratio * len(texts)), 1 if ratio > 0 else 0), len(texts) - 1)
    return {"train": [texts[i] for i in sorted(order[held_out:])], "validation": [texts[i] for i in sorted(order[:held_out])]}


def tokenize_into_rows(texts: Dataset, tokenizer, max_seq_length: int) -> Dataset:
    """Texts -> rows of at most `max_seq_length` token ids (`input_ids`, `attention_mask`).

    Each text is tokenized as `[CLS] ... [SEP]`; the ids of consecutive texts are concatenated and
    cut every `max_seq_length` tokens (per `map` batch of 1,000 texts; its last row may be shorter).
    """

    def tokenize_and_cut(batch):
        ids = list(chain.from_iterable(tokenizer(batch["text"])["input_ids"]))
        rows = [ids[start:start + max_seq_length] for start in range(0, len(ids), max_seq_length)]
        return {"input_ids": rows, "attention_mask": [[1] * len(row) for row in rows]}

    return texts.map(tokenize_and_cut, batched=True, remove_columns=texts.column_names, desc="tokenize and cut into rows")


# ----------------------------------------------------------------------------------- model and trainer
def build_model(model_args: ModelArguments, args: PretrainingArguments, tokenizer) -> MambaCrfForMaskedLM:
    """A new `MambaCrfForMaskedLM` of the asked size, or one continued from `model_name_or_path`."""
    if model_args.word_dropout_prob:
        logger.info("word_dropout_prob %s ignored: pretraining masks tokens instead", model_args.word_dropout_prob)
    if model_args.model_name_or_path:
        return _with_lexicon(MambaCrfForMaskedLM.from_pretrained(model_args.model_name_or_path, word_dropout_prob=0.0,
                                                                 lexicon_dropout_prob=model_args.lexicon_dropout_prob),
                             model_args, tokenizer)
    config = MambaCrfConfig(
        vocab_size=len(tokenizer), hidden_size=model_args.hidden_size, num_hidden_layers=model_args.num_hidden_layers,
        state_size=model_args.state_size, expand=model_args.expand, bidirectional=model_args.bidirectional,
        bigram_vocab_size=model_args.bigram_vocab_size, hidden_dropout_prob=model_args.hidden_dropout_prob,
        residual_dropout_prob=model_args.residual_dropout_prob, word_dropout_prob=0.0,
        lexicon_max_word_length=model_args.lexicon_max_word_length, lexicon_dropout_prob=model_args.lexicon_dropout_prob,
        tie_word_embeddings=args.tie_word_embeddings, **_special_token_ids(tokenizer),
    )
    return _with_lexicon(MambaCrfForMaskedLM(config), model_args, tokenizer)


def masking_collator(tokenizer, mlm_probability: float, seed: int | None = None) -> DataCollatorForLanguageModeling:
    """BERT's 80/10/10 masking of `mlm_probability` of the real, non-special tokens; pads each batch."""
    return DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=mlm_probability, seed=seed)


def masked_token_accuracy(eval_prediction) -> dict:
    """Share of the masked tokens whose arg-max prediction is the original token."""
    predictions, labels = np.asarray(eval_prediction.predictions), np.asarray(eval_prediction.label_ids)
    masked = labels != -100
    return {"masked_accuracy": float((predictions[masked] == labels[masked]).mean()) if masked.any() else 0.0}


class MaskedLMTrainer(MambaCrfTrainer):
    """Every evaluation masks the held-out rows with the same seeded draw, so its losses compare."""

    def __init__(self, *args, eval_mask_seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_mask_seed = eval_mask_seed

    def evaluate(self, *args, **kwargs):
        train_collator = self.data_collator
        self.data_collator = masking_collator(train_collator.tokenizer, train_collator.mlm_probability, self.eval_mask_seed)
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self.data_collator = train_collator


# ----------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """`run_pretraining.py` / `mamba-ner pretrain`: user mistakes end in one line (`--debug`: traceback)."""
    return run_command(_main, argv, build_parser().prog)


def _main(argv: list[str]) -> int:
    # 1. Arguments and logging
    model_args, args, training_args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=logging.INFO if training_args.should_log else logging.WARN)
    transformers.utils.logging.set_verbosity_warning()
    keep_freed_memory()
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)

    # 2. Text, held-out split
    all_texts = load_texts(args)
    if not all_texts:
        raise UsageError(f"{', '.join(args.train_files) or args.protocol}: no text to pretrain on")
    texts = split_texts(all_texts, args.validation_split_ratio, args.split_seed)
    logger.info("texts: %d for training, %d held out", len(texts["train"]), len(texts["validation"]))

    # 3. Tokenizer (from the checkpoint folder when continuing, else built from all the text)
    if model_args.tokenizer_name or model_args.model_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or model_args.model_name_or_path)
    else:
        from .tokenization import build_tokenizer

        tokenizer = build_tokenizer(texts["train"] + texts["validation"], kind=model_args.tokenizer_kind,
                                    vocab_size=model_args.tokenizer_vocab_size)
    logger.info("tokenizer: %d entries", len(tokenizer))

    # 4. Rows of max_seq_length tokens
    raw = DatasetDict({split: Dataset.from_dict({"text": part}) for split, part in texts.items() if part})
    with training_args.main_process_first(desc="tokenizing"):
        rows = DatasetDict({split: tokenize_into_rows(dataset, tokenizer, args.max_seq_length) for split, dataset in raw.items()})
    logger.info("rows of <= %d tokens: %s", args.max_seq_length, {split: len(d) for split, d in rows.items()})

    # 5. Model and Trainer
    model = build_model(model_args, args, tokenizer)
    logger.info("model: %.2fM parameters, bidirectional=%s, bigram buckets %d", model.num_parameters() / 1e6,
                model.config.bidirectional, model.config.bigram_vocab_size)
    trainer = MaskedLMTrainer(
        model=model,
        args=training_args,
        train_dataset=rows["train"],
        eval_dataset=rows.get("validation"),
        processing_class=tokenizer,
        data_collator=masking_collator(tokenizer, args.mlm_probability),
        compute_metrics=masked_token_accuracy,
        eval_mask_seed=args.split_seed,
    )

    # 6. Train, save, evaluate on the held-out text
    result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    result.metrics.update(trainer.throughput(result.metrics["train_runtime"]))
    trainer.save_model()
    tokenizer.save_pretrained(output_dir)
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    eval_metrics = trainer.evaluate() if "validation" in rows else {}
    if eval_metrics:
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
    if trainer.is_world_process_zero():
        print(f"\ntraining loop: {result.metrics['train_real_tokens_per_second']:.0f} real tokens/s "
              f"({torch.get_num_threads()} threads), {result.metrics['train_real_tokens']} tokens in "
              f"{result.metrics['train_loop_seconds']:.0f} s")
        if eval_metrics:
            print(f"held-out text ({len(texts['validation'])} texts): loss {eval_metrics['eval_loss']:.4f}, "
                  f"masked-token accuracy {eval_metrics['eval_masked_accuracy']:.4f}")
        print(f"checkpoint: {output_dir.resolve()}  (fine-tune: run_ner.py --model_name_or_path {output_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
