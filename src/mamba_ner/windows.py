"""Overlapping training windows over long tokenised rows (whole documents), loss on the centre only.

A model with no position embeddings tags a whole document in one pass, but training on whole
documents gives few, huge, unevenly sized steps. `window_features` cuts every tokenised row longer
than `window + 2 * context` into windows whose centres tile the row: window i covers the tokens
`[i * window - context, (i + 1) * window + context)` (clipped to the row), and only its centre
`[i * window, (i + 1) * window)` keeps its labels; the context on both sides gets -100, which the
CRF leaves off the chain. So every labelled position is scored exactly once per epoch, always with
at least `context` tokens of real text on each side (except at the document's own ends).

Rows are the output of `tokenization.tokenize_and_align_labels` (`input_ids`, `attention_mask`,
optional `token_type_ids`, `labels`); evaluation and prediction keep whole documents.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def window_spans(length: int, window: int, context: int) -> list[tuple[int, int, int, int]]:
    """`(start, end, centre_start, centre_end)` of the windows of a row of `length` tokens.

    One span `(0, length, 0, length)` when the row fits in `window + 2 * context` tokens.
    """
    if window < 1 or context < 0:
        raise ValueError(f"window must be >= 1 and context >= 0, got window={window}, context={context}")
    if length <= window + 2 * context:
        return [(0, length, 0, length)]
    spans = []
    for centre_start in range(0, length, window):
        centre_end = min(centre_start + window, length)
        spans.append((max(0, centre_start - context), min(length, centre_end + context), centre_start, centre_end))
    return spans


def window_features(batch: dict, window: int, context: int) -> dict:
    """`Dataset.map(batched=True)` function: long rows -> overlapping windows (see the module docstring).

    Every column that holds one value per token (same length as `input_ids`) is cut; `labels`
    outside each window's centre become -100. Other columns are not kept (remove them in `map`).
    """
    token_columns = [name for name in ("input_ids", "attention_mask", "token_type_ids", "labels") if name in batch]
    out = {name: [] for name in token_columns}
    for row in range(len(batch["input_ids"])):
        length = len(batch["input_ids"][row])
        for start, end, centre_start, centre_end in window_spans(length, window, context):
            for name in token_columns:
                values = list(batch[name][row][start:end])
                if name == "labels":
                    values = [
                        label if centre_start <= start + i < centre_end else -100 for i, label in enumerate(values)
                    ]
                out[name].append(values)
    return out
