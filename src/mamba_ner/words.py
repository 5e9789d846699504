"""Word lists for the model's whole-word embeddings (`MambaCrfConfig.word_vocab_size`).

For sub-word or character input (a WordPiece vocabulary, e.g. the character-level one of
`tokenizer_vocab_size: 1`), the model can add an embedding of each whole word, looked up inside the
model: a word is a token that does not continue the previous one followed by its `##` pieces, and
its hash is made from its tokens lower-cased and with digits as `0` (`word_hashes`). The list holds
the hashes of the training text's words seen at least `min_count` times; the others share one
embedding, as the rare words that from-scratch taggers replace by UNK. The list and the two
per-token tables are buffers of the checkpoint, so pipelines and remote loading need nothing new.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from .modeling_mamba_crf import word_hashes

CONTINUATION_PREFIX = "##"


@dataclass
class WordListReport:
    """What a word-list build kept and dropped; the counts add up to `words`."""

    words: int  # distinct words of the training text, as the model sees them
    kept: int
    rare: int  # seen fewer than min_count times
    min_count: int

    def __str__(self):
        return (f"word list: {self.words:,} distinct words in the training text, kept {self.kept:,} seen at least "
                f"{self.min_count} times; {self.rare:,} rarer ones share the unknown-word embedding")


def word_tables(tokenizer) -> tuple[torch.Tensor, torch.LongTensor]:
    """(continuation (vocab,) bool, token_map (vocab,) long) of `word_hashes` for a tokenizer.

    A token continues a word when it starts with "##". Tokens that are equal once lower-cased and
    with every digit as "0" (and alike in their "##" prefix) map to the same id, the smallest of them.
    """
    vocab = tokenizer.get_vocab()
    size = max(len(tokenizer), max(vocab.values()) + 1)
    continuation = torch.zeros(size, dtype=torch.bool)
    token_map = torch.arange(size)
    canonical: dict[tuple[bool, str], int] = {}
    for token, index in sorted(vocab.items(), key=lambda item: item[1]):
        is_piece = token.startswith(CONTINUATION_PREFIX) and len(token) > len(CONTINUATION_PREFIX)
        continuation[index] = is_piece
        base = token[len(CONTINUATION_PREFIX):] if is_piece else token
        if base.startswith("[") and base.endswith("]"):  # special tokens stay themselves
            continue
        token_map[index] = canonical.setdefault((is_piece, re.sub(r"\d", "0", base.lower())), index)
    return continuation, token_map


def build_word_list(token_lists: Iterable[Sequence[str]], tokenizer, min_count: int = 2
                    ) -> tuple[torch.LongTensor, torch.Tensor, torch.LongTensor, WordListReport]:
    """(sorted word hashes, continuation, token_map, report) of the words in `token_lists` under `tokenizer`.

    Words are counted as the model sees them: each word of the text is tokenized alone and split at
    every token that does not continue the previous one (a pre-tokenizer that splits punctuation off
    makes "U.S." four words), then hashed by `word_hashes`.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    continuation, token_map = word_tables(tokenizer)
    text_counts = Counter(word for tokens in token_lists for word in tokens)
    if not text_counts:
        raise ValueError("no words to build a word list from (the training text is empty)")
    surface = list(text_counts)
    encoded = tokenizer(surface, add_special_tokens=False)["input_ids"]
    counts: Counter = Counter()
    batch = 4096
    for begin in range(0, len(surface), batch):
        rows = encoded[begin:begin + batch]
        width = max((len(ids) for ids in rows), default=0)
        if width == 0:
            continue
        ids = torch.tensor([row + [0] * (width - len(row)) for row in rows], dtype=torch.long)
        lengths = torch.tensor([len(row) for row in rows])
        real = torch.arange(width)[None, :] < lengths[:, None]
        hashes, first = word_hashes(ids, real, continuation, token_map)
        is_start = (first == torch.arange(width)[None, :]) & real
        for row, (row_hashes, row_starts) in enumerate(zip(hashes.tolist(), is_start.tolist())):
            count = text_counts[surface[begin + row]]
            for value, start in zip(row_hashes, row_starts):
                if start:
                    counts[value] += count
    kept = sorted(value for value, count in counts.items() if count >= min_count)
    report = WordListReport(words=len(counts), kept=len(kept), rare=len(counts) - len(kept), min_count=min_count)
    return torch.tensor(kept, dtype=torch.long), continuation, token_map, report
