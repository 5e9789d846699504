"""Mention replacement: training rows whose entity mentions are swapped for other mentions of the same type.

With `--mention_replacement_prob P` (`run_ner.py` / `mamba-ner train`) every entity mention of a
training row is, with probability P and afresh each time the row is read (so each epoch sees other
swaps), replaced by a mention of the same type drawn from the training split's distinct mentions
(Dai & Adel, 2020, "An analysis of simple data augmentation for named entity recognition"). The
context a type appears in is then seen with many surface forms, and a tagger leans less on having
memorised the names of the training split. Evaluation and prediction are not affected.

It works on the tokenized training features (after `--train_window`), so it needs no tokenizer call
per row: a mention is a run of labelled tokens `B-X I-X ...` (`S-X` / `B-X I-X ... E-X` with IOBES)
that is followed by the row's end, a labelled token or a special token. A run followed by an
unlabelled token (a continuation word piece, or a window's unlabelled context) is left as it is and
is not put in the pool: replacing it would leave the rest of its word behind. So on
character-level Chinese every mention qualifies; with WordPiece only mentions of whole-piece words do.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import torch

from .windows import TOKEN_COLUMNS


def _tag_table(label_names: Sequence[str]) -> tuple[dict[int, tuple[str, str]], dict[tuple[str, str], int], bool]:
    """Label id -> (prefix, type); (prefix, type) -> id; whether the scheme ends mentions with E-/S-."""
    parsed = {}
    for i, name in enumerate(label_names):
        if len(name) > 2 and name[1] == "-" and name[0] in "BIES":
            parsed[i] = (name[0], name[2:])
    ids = {value: i for i, value in parsed.items()}
    iobes = any(prefix in ("E", "S") for prefix, _ in parsed.values())
    return parsed, ids, iobes


def mention_spans(input_ids: Sequence[int], labels: Sequence[int], label_names: Sequence[str],
                  special_ids: set[int] = frozenset()) -> list[tuple[int, int, str]]:
    """The replaceable mentions of one row: `(start, end, type)`, end exclusive (see the module docstring)."""
    parsed, _, iobes = _tag_table(label_names)
    return _spans(input_ids, labels, parsed, iobes, special_ids)


def _spans(input_ids, labels, parsed: dict, iobes: bool, special_ids) -> list[tuple[int, int, str]]:
    """`mention_spans` with the label table already parsed (`_tag_table`)."""
    spans, i, n = [], 0, len(labels)
    while i < n:
        tag = parsed.get(labels[i])
        if tag is None or tag[0] not in "BS":
            i += 1
            continue
        kind, end = tag[1], i + 1
        if tag[0] == "B":
            while end < n and parsed.get(labels[end]) in (("I", kind), ("E", kind)):
                end += 1
                if iobes and parsed[labels[end - 1]][0] == "E":
                    break
            if iobes and parsed[labels[end - 1]][0] != "E":
                i = end  # an IOBES mention without its E-: not a well-formed span
                continue
        whole = end == n or labels[end] != -100 or input_ids[end] in special_ids
        if whole:
            spans.append((i, end, kind))
        i = end
    return spans


def _labels_for(kind: str, length: int, ids: dict, iobes: bool) -> list[int] | None:
    """The label ids of a mention of `length` tokens and type `kind`, or None when the scheme lacks one."""
    if iobes:
        prefixes = ["S"] if length == 1 else ["B"] + ["I"] * (length - 2) + ["E"]
    else:
        prefixes = ["B"] + ["I"] * (length - 1)
    try:
        return [ids[(prefix, kind)] for prefix in prefixes]
    except KeyError:
        return None


class MentionReplacement(torch.utils.data.Dataset):
    """The training features, each row's mentions replaced with probability `probability` when it is read.

    Args:
        features: tokenized training rows (a `datasets.Dataset` or a list of dicts) with `input_ids`
            and `labels` (and optionally `attention_mask`, `token_type_ids`).
        label_names (`list[str]`): the label of each id (`B-X`, `I-X`, `O`, ...).
        probability (`float`): chance that one mention is replaced (0 returns the rows unchanged).
        seed (`int`, *optional*, defaults to 42): the draws of row i's k-th reading come from
            `(seed, i, k)`, so a run is reproducible whatever the sampler's order.
        special_ids (`set[int]`, *optional*): token ids of [CLS]/[SEP]/padding (a mention may end before one).
    """

    def __init__(self, features, label_names: Sequence[str], probability: float, seed: int = 42,
                 special_ids: set[int] = frozenset()):
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"the mention replacement probability must be between 0 and 1, got {probability}")
        self.features = features
        self.probability = probability
        self.seed = seed
        parsed, ids_of, iobes = _tag_table(label_names)
        special_ids = set(special_ids)
        self.spans, self.lengths = [], []
        counts = Counter()
        for row in features:
            ids, labels = row["input_ids"], row["labels"]
            spans = _spans(ids, labels, parsed, iobes, special_ids)
            self.spans.append(spans)
            self.lengths.append(len(ids))
            counts.update((kind, tuple(ids[start:end])) for start, end, kind in spans)
        self.pool: dict[str, list[tuple[int, ...]]] = {}  # type -> its distinct mentions (token ids)
        self._mention_labels = {}  # (type, mention) -> the label ids it gets
        for kind, mention in sorted(counts):
            mention_labels = _labels_for(kind, len(mention), ids_of, iobes)
            if mention_labels is not None:
                self.pool.setdefault(kind, []).append(mention)
                self._mention_labels[kind, mention] = mention_labels
        self.mention_count = sum(len(spans) for spans in self.spans)
        self._readings = [0] * len(self.spans)

    def __len__(self) -> int:
        return len(self.spans)

    def report(self) -> str:
        """One line: how many mentions can be replaced, and the pool per type."""
        sizes = ", ".join(f"{kind} {len(mentions)}" for kind, mentions in self.pool.items())
        return (f"mention replacement p={self.probability}: {self.mention_count:,} replaceable mentions in "
                f"{len(self):,} training rows; distinct mentions per type: {sizes}")

    def __getitem__(self, index: int) -> dict:
        row = self.features[index]
        spans = self.spans[index]
        if not spans or self.probability == 0:
            return row
        rng = random.Random(f"{self.seed}/{index}/{self._readings[index]}")
        self._readings[index] += 1
        columns = [name for name in TOKEN_COLUMNS if name in row]
        out = {name: [] for name in columns}
        previous = 0
        for start, end, kind in spans:
            if rng.random() >= self.probability or kind not in self.pool:
                continue
            mention = rng.choice(self.pool[kind])
            for name in columns:
                out[name].extend(row[name][previous:start])
            out["input_ids"].extend(mention)
            out["labels"].extend(self._mention_labels[kind, mention])
            for name in ("attention_mask", "token_type_ids"):
                if name in out:
                    out[name].extend([row[name][start]] * len(mention))
            previous = end
        if previous == 0:
            return row
        for name in columns:
            out[name].extend(row[name][previous:])
        return {**{k: v for k, v in row.items() if k not in out}, **out}
