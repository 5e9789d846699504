"""A WordPiece vocabulary learnt deterministically: the same text gives the same vocabulary, byte for byte.

Why not `tokenizers.trainers.WordPieceTrainer`: its BPE core assigns ids to the `##x`
continuation pieces in hash-map order, and breaks ties between equally frequent merges by those
ids, so two runs on the same file give different vocabularies (2652, 2654, 2656 entries were seen
on one CoNLL file; huggingface/tokenizers#1794). A resumed run that rebuilds its tokenizer then
feeds the saved weights other token ids. This module does the same BPE-style training in Python
with every tie broken by the strings themselves, and hands the vocabulary to `tokenizers`'
`WordPiece` model, which does the encoding.

The algorithm (as the trainer's): start from every character (word-initial) and `##` + character
(inside a word); repeatedly merge the most frequent adjacent pair, weighting each word by its
count, ties broken by the smaller `(left, right)` strings; the merged piece is `left + right`
without the right's `##`. Stop at `vocab_size` entries or when the best pair is rarer than
`min_frequency`.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable

PREFIX = "##"


def _pairs(symbols: list[str]) -> Iterable[tuple[str, str]]:
    return zip(symbols, symbols[1:])


def _merge(symbols: list[str], pair: tuple[str, str], merged: str) -> list[str]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def train_wordpiece_vocab(
    word_counts: Counter, special_tokens: list[str], vocab_size: int = 30_000, min_frequency: int = 1
) -> dict[str, int]:
    """Learn a WordPiece vocabulary (token -> id) from pre-tokenised word counts.

    Args:
        word_counts (`Counter`): word -> number of occurrences (after normalisation and pre-tokenisation).
        special_tokens: ids 0, 1, ... in this order.
        vocab_size (`int`): most entries (the characters are always kept, even beyond it).
        min_frequency (`int`): a merge must be seen at least this often.

    Returns:
        the vocabulary; ids: special tokens, characters (sorted), `##` characters (sorted), merges
        in the order they were made.
    """
    words = sorted(word for word in word_counts if word)
    counts = [word_counts[word] for word in words]
    symbols = [[word[0]] + [PREFIX + char for char in word[1:]] for word in words]
    vocab: dict[str, int] = {}
    for token in special_tokens:
        vocab.setdefault(token, len(vocab))
    initial = sorted({s for word in symbols for s in word[:1]}) + sorted({s for word in symbols for s in word[1:]})
    for token in initial:
        vocab.setdefault(token, len(vocab))

    pair_counts: Counter = Counter()
    where: dict[tuple[str, str], set[int]] = {}
    for index, word in enumerate(symbols):
        for pair in _pairs(word):
            pair_counts[pair] += counts[index]
            where.setdefault(pair, set()).add(index)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    while heap and len(vocab) < vocab_size:
        negative, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -negative:  # a stale entry; the current count has its own entry
            continue
        if count < max(min_frequency, 1):
            break
        merged = pair[0] + pair[1][len(PREFIX):] if pair[1].startswith(PREFIX) else pair[0] + pair[1]
        vocab.setdefault(merged, len(vocab))
        changed: set[tuple[str, str]] = set()
        for index in sorted(where.pop(pair, ())):
            old = symbols[index]
            new = _merge(old, pair, merged)
            for p in _pairs(old):
                pair_counts[p] -= counts[index]
                changed.add(p)
            for p in _pairs(new):
                pair_counts[p] += counts[index]
                changed.add(p)
            for p in set(_pairs(old)) - set(_pairs(new)):
                where.get(p, set()).discard(index)
            for p in _pairs(new):
                where.setdefault(p, set()).add(index)
            symbols[index] = new
        pair_counts.pop(pair, None)
        for p in changed:
            if p != pair and pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
            elif pair_counts.get(p, 0) <= 0:
                pair_counts.pop(p, None)
    return vocab
