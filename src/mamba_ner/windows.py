"""Overlapping training windows over long tokenised rows (whole documents), loss on the centre only.

A model with no position embeddings tags a whole document in one pass, but training on whole
documents gives few, huge, unevenly sized steps. `window_features` cuts every tokenised row longer
than `window + 2 * context` into windows whose centres tile the row: window i covers the tokens
`[i * window - context, (i + 1) * window + context)` (clipped to the row), and only its centre
`[i * window, (i + 1) * window)` keeps its labels; the context on both sides gets -100, which the
CRF leaves off the chain. So every labelled position is scored exactly once per epoch, always with
at least `context` tokens of real text on each side (except at the document's own ends).

A centre must not begin inside an entity: its first labelled token would be `I-X`, which the CRF's
BIO constraints forbid at the start of a chain (and the neighbouring centre would end inside the
entity, which IOBES forbids). So each cut between two centres moves left, from `i * window`, to the
nearest position whose first labelled token is not a continuation tag (`I-`, and `E-` for IOBES);
give the label names (`label_names`) for that. The cuts stay shared between neighbouring windows, so
the centres still tile the row.

Rows are the output of `tokenization.tokenize_and_align_labels` (`input_ids`, `attention_mask`,
optional `token_type_ids`, `labels`); evaluation and prediction keep whole documents.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def window_spans(length: int, window: int, context: int,
                 continuation: list[bool] | None = None) -> list[tuple[int, int, int, int]]:
    """`(start, end, centre_start, centre_end)` of the windows of a row of `length` tokens.

    One span `(0, length, 0, length)` when the row fits in `window + 2 * context` tokens.
    `continuation[i]`: token i's chain would start with a continuation tag if cut before it (see
    the module docstring); a cut never falls on such a position (None: cut anywhere).
    """
    if window < 1 or context < 0:
        raise ValueError(f"window must be >= 1 and context >= 0, got window={window}, context={context}")
    if length <= window + 2 * context:
        return [(0, length, 0, length)]
    cuts = [0]
    for nominal in range(window, length, window):
        cut = nominal
        while continuation is not None and cut > cuts[-1] + 1 and continuation[cut]:
            cut -= 1
        if continuation is None or not continuation[cut]:
            cuts.append(cut)
    cuts.append(length)
    return [(max(0, a - context), min(length, b + context), a, b) for a, b in zip(cuts, cuts[1:])]


def _continuation_flags(labels, continuation_ids: set[int]) -> list[bool]:
    """flags[i]: the first labelled token at or after i carries a continuation tag."""
    flags, following = [False] * len(labels), False
    for i in range(len(labels) - 1, -1, -1):
        if labels[i] != -100:
            following = labels[i] in continuation_ids
        flags[i] = following
    return flags


TOKEN_COLUMNS = ("input_ids", "attention_mask", "token_type_ids", "labels")  # the columns with one value per token


def continuation_label_ids(label_names) -> set[int]:
    """Ids of the tags that continue an entity (`I-X`, `E-X`, and the `M-X` of BMES)."""
    return {i for i, name in enumerate(label_names) if name[:2] in ("I-", "E-", "M-")}


def window_features(batch: dict, window: int, context: int, label_names=None) -> dict:
    """`Dataset.map(batched=True)` function: long rows -> overlapping windows (see the module docstring).

    Every column that holds one value per token (same length as `input_ids`) is cut; `labels`
    outside each window's centre become -100. With `label_names`, no centre begins inside an
    entity. Other columns are not kept (remove them in `map`).
    """
    token_columns = [name for name in TOKEN_COLUMNS if name in batch]
    continuation_ids = continuation_label_ids(label_names) if label_names is not None else None
    out = {name: [] for name in token_columns}
    for row in range(len(batch["input_ids"])):
        length = len(batch["input_ids"][row])
        flags = None
        if continuation_ids is not None and "labels" in batch:
            flags = _continuation_flags(batch["labels"][row], continuation_ids)
        for start, end, centre_start, centre_end in window_spans(length, window, context, flags):
            for name in token_columns:
                values = list(batch[name][row][start:end])
                if name == "labels":
                    values = [
                        label if centre_start <= start + i < centre_end else -100 for i, label in enumerate(values)
                    ]
                out[name].append(values)
    return out
