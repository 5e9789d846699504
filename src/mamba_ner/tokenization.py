"""Build a tokenizer from the training text with `tokenizers`, and align word labels to it.

No pretrained tokenizer can be downloaded here, so the vocabulary comes from the training data:

* `kind="char"`: every character is a token (`WordLevel` over single characters; Chinese NER
  works per character, and a pre-tokenised word such as `"HBA1C"` becomes 5 tokens);
* `kind="wordpiece"`: a BERT-style WordPiece vocabulary (case kept, punctuation split, CJK
  characters isolated); a word of known characters always decomposes, down to single characters.
  The vocabulary is learnt by `mamba_ner.wordpiece` (not `WordPieceTrainer`, whose result varies
  from run to run), so the same text always gives the same tokenizer files;
* `kind="auto"`: `"char"` when CJK characters make up at least 30% of the text, else `"wordpiece"`.

Characters never seen in training map to `[UNK]`. The result is a `PreTrainedTokenizerFast` with
`[PAD] [UNK] [CLS] [SEP] [MASK]`, a BERT post-processor (`[CLS] ... [SEP]`) and a very large
`model_max_length` (the model has no length limit); `save_pretrained(dir)` writes a folder that
`AutoTokenizer.from_pretrained(dir)` loads offline.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOKENIZER_KINDS = ("auto", "char", "wordpiece")
MODEL_MAX_LENGTH = 1_000_000
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]")


def _as_texts(texts_or_token_lists: Iterable[str | Sequence[str]]) -> list[str]:
    return [item if isinstance(item, str) else " ".join(item) for item in texts_or_token_lists]


def choose_kind(texts: Sequence[str]) -> str:
    """`"char"` if at least 30% of the non-space characters are CJK, else `"wordpiece"`."""
    sample = "".join(texts[:10_000])
    letters = len(sample) - sum(map(str.isspace, sample))
    return "char" if letters and len(_CJK.findall(sample)) >= 0.3 * letters else "wordpiece"


def build_tokenizer(
    texts_or_token_lists: Iterable[str | Sequence[str]],
    kind: str = "auto",
    vocab_size: int = 30_000,
    min_frequency: int = 1,
) -> PreTrainedTokenizerFast:
    """Train a tokenizer on the given texts (strings, or token lists such as `dataset["tokens"]`).

    Args:
        texts_or_token_lists: training text.
        kind (`str`): `"char"`, `"wordpiece"` or `"auto"` (see the module docstring).
        vocab_size (`int`): at most this many entries, special tokens included (the most
            frequent characters / word pieces win).
        min_frequency (`int`): drop characters / pieces seen fewer times (they become `[UNK]`).

    Returns:
        `PreTrainedTokenizerFast`; call `.save_pretrained(dir)` to keep it.
    """
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"kind must be one of {TOKENIZER_KINDS}, got {kind!r}")
    texts = _as_texts(texts_or_token_lists)
    if kind == "auto":
        kind = choose_kind(texts)
        logger.info("tokenizer kind chosen from the text: %s", kind)
    if kind == "char":
        tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), behavior="isolated")]
        )
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS
        )
        tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))  # deterministic (sorted ties)
    else:
        tokenizer = _wordpiece_tokenizer(texts, vocab_size, min_frequency)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=MODEL_MAX_LENGTH,
    )


def _wordpiece_tokenizer(texts: list[str], vocab_size: int, min_frequency: int) -> Tokenizer:
    """BERT-style WordPiece (case kept, punctuation split, CJK characters isolated) whose vocabulary
    is learnt by `wordpiece.train_wordpiece_vocab`: unlike `WordPieceTrainer`, the same text always
    gives the same vocabulary."""
    from .wordpiece import train_wordpiece_vocab

    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    word_counts = Counter(
        word for text in texts for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
    )
    vocab = train_wordpiece_vocab(word_counts, SPECIAL_TOKENS, vocab_size=vocab_size, min_frequency=min_frequency)
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def tokenize_and_align_labels(
    examples: dict,
    tokenizer,
    label_column: str = "ner_tags",
    max_length: int | None = None,
    label_all_subwords: bool = False,
    label_names: Sequence[str] | None = None,
    keep_word_ids: bool = False,
) -> dict:
    """Tokenise pre-split words and give each sub-token the label of its word, for `Dataset.map(batched=True)`.

    Special tokens and (unless `label_all_subwords`) every sub-token after a word's first get
    -100, which the loss ignores. With `label_all_subwords` and `label_names`, continuation
    sub-tokens of a `B-X` word get `I-X`. A word that yields no sub-token at all (whitespace-only
    or characters the normaliser removes) has no position to carry its label: it is logged.

    Args:
        examples: a batch with `"tokens"` (list of word lists) and, if present, `label_column`
            (list of label-id lists). A single example (one word list) works too. With the
            columns `context_before` / `context_after` (`data.features.add_sentence_context`),
            that many words at each end of a row are context: their sub-tokens get -100.
        tokenizer: a fast tokenizer (needs `word_ids()`).
        max_length (`int`, *optional*): truncate to this many sub-tokens (default: no truncation).

    Returns:
        the tokenizer's encoding as a dict plus `"labels"` (when labels were given) and
        `"word_ids"` (with `keep_word_ids`, `None` for special tokens).
    """
    words = examples["tokens"]
    single = bool(words) and isinstance(words[0], str)
    batch_words = [words] if single else words
    encoding = tokenizer(
        batch_words, is_split_into_words=True, truncation=max_length is not None, max_length=max_length
    )
    word_ids = [encoding.word_ids(batch_index=i) for i in range(len(batch_words))]
    result = dict(encoding)
    if max_length is None:
        lost = sum(len(w) - len({i for i in ids if i is not None}) for w, ids in zip(batch_words, word_ids))
        if lost:
            logger.warning("%d word(s) produced no sub-token and cannot carry a label", lost)
    if label_column in examples:
        labels = [examples[label_column]] if single else examples[label_column]
        continuation = _continuation_ids(label_names) if label_all_subwords else None
        result["labels"] = [_align(ids, row, label_all_subwords, continuation) for ids, row in zip(word_ids, labels)]
        if "context_before" in examples:  # rows with neighbouring sentences as context (data.features.add_sentence_context)
            before = [examples["context_before"]] if single else examples["context_before"]
            after = [examples["context_after"]] if single else examples["context_after"]
            for row_labels, ids, row_words, left, right in zip(result["labels"], word_ids, batch_words, before, after):
                mask_context_labels(row_labels, ids, left, len(row_words) - right)
    if keep_word_ids:
        result["word_ids"] = word_ids
    return {key: value[0] for key, value in result.items()} if single else result


def mask_context_labels(labels: list[int], word_ids: Sequence[int | None], first: int, end: int) -> None:
    """Set to -100, in place, the labels of the sub-tokens of words outside `[first, end)` (context words)."""
    for position, word in enumerate(word_ids):
        if word is not None and not first <= word < end:
            labels[position] = -100


def _continuation_ids(label_names: Sequence[str] | None) -> dict[int, int]:
    """label id of `B-X` -> label id of `I-X` (empty without label names)."""
    if label_names is None:
        return {}
    index = {name: i for i, name in enumerate(label_names)}
    return {i: index.get("I-" + name[2:], i) for i, name in enumerate(label_names) if name.startswith("B-")}


def _align(
    word_ids: list[int | None],
    word_labels: Sequence[int],
    label_all_subwords: bool,
    continuation: dict[int, int] | None,
) -> list[int]:
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(-100)
        elif word != previous:
            labels.append(word_labels[word])
        elif label_all_subwords:
            labels.append(continuation.get(word_labels[word], word_labels[word]))
        else:
            labels.append(-100)
        previous = word
    return labels
