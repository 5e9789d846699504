"""Raw text -> tokens with character offsets, and sentence boundaries that never cut an entity.

Used by the brat reader and by prediction on raw text. Tokenisation:

* `"char"`: every non-whitespace character is a token (Chinese; Latin runs inside Chinese text
  are split into characters too, so every entity boundary is a token boundary);
* `"word"`: words (`\\w+`, joined across inner `-`, `'`, `.`: `1996-08-30`, `don't`, `U.S`) and
  single punctuation characters (space-separated text such as English);
* `"auto"`: `"char"` if the text holds any CJK character, else `"word"`.

Sentence boundaries (`split="sentence"`) come after runs of `。！？；!?;`, at blank lines and,
in text tokenised per word (not CJK), after `.` followed by whitespace (in Chinese text an ASCII
`.` is a decimal point or list number, often broken over a PDF line: `P<0.` + line break + `05`).
`split="line"` cuts at every line break; `split="document"` keeps one piece. Line breaks alone
are not boundaries for `"sentence"` because corpora such as Ruijin keep the hard line breaks of
the PDF and entities run across them. A piece longer than `max_chars` is cut again at the last
`，,、：:` or line break before the limit (or at the limit).
No cut ever falls strictly inside a protected (entity) span.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from itertools import pairwise

TOKENIZE_MODES = ("auto", "char", "word")
SPLIT_MODES = ("sentence", "line", "document")

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]")
_WORD = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]")
_SENTENCE_END = re.compile(r"[。！？；!?;]+|\n[^\S\n]*\n")
_SENTENCE_END_WITH_PERIOD = re.compile(r"[。！？；!?;]+|\.(?=\s)|\n[^\S\n]*\n")
_LINE_END = re.compile(r"\n")
_SOFT_END = re.compile(r"[，,、：:]|\n")


def is_cjk_text(text: str) -> bool:
    """True if `text` contains a Chinese, Japanese or Korean character."""
    return _CJK.search(text) is not None


def resolve_mode(text: str, mode: str) -> str:
    if mode not in TOKENIZE_MODES:
        raise ValueError(f"tokenize must be one of {TOKENIZE_MODES}, got {mode!r}")
    if mode == "auto":
        return "char" if is_cjk_text(text) else "word"
    return mode


def tokenize_text(text: str, mode: str = "auto") -> tuple[list[str], list[tuple[int, int]]]:
    """Split `text` into tokens; returns `(tokens, offsets)` with `(start, end)` character offsets."""
    if resolve_mode(text, mode) == "char":
        starts = [position for position, char in enumerate(text) if not char.isspace()]
        return [text[p] for p in starts], [(p, p + 1) for p in starts]
    tokens, offsets = [], []
    for match in _WORD.finditer(text):
        tokens.append(match.group())
        offsets.append(match.span())
    return tokens, offsets


def sentence_bounds(
    text: str,
    split: str = "sentence",
    protected: list[tuple[int, int]] = (),
    max_chars: int | None = 512,
    mode: str = "auto",
) -> list[tuple[int, int]]:
    """Character ranges `(start, end)` that cover `text` without gaps, cut as the module docstring says.

    Args:
        text (`str`): the document.
        split (`str`): `"sentence"`, `"line"` or `"document"`.
        mode (`str`): the tokenisation mode (`"auto"`, `"char"`, `"word"`); in `"word"` mode a `.`
            before whitespace also ends a sentence.
        protected: `(start, end)` character spans no cut may fall strictly inside (entities).
        max_chars (`int`, *optional*): soft maximum length of a piece; `None` for no limit.
    """
    if split not in SPLIT_MODES:
        raise ValueError(f"split must be one of {SPLIT_MODES}, got {split!r}")
    n = len(text)
    blocked = _blocked_positions(n, protected)
    if split == "document":
        return [(0, n)] if n else []
    if split == "line":
        pattern = _LINE_END
    else:
        pattern = _SENTENCE_END_WITH_PERIOD if resolve_mode(text, mode) == "word" else _SENTENCE_END
    cuts = [0] + [m.end() for m in pattern.finditer(text) if 0 < m.end() < n and not blocked[m.end()]] + [n]
    bounds = []
    for start, end in pairwise(cuts):
        if start < end:
            bounds += _cut_long(text, start, end, blocked, max_chars) if max_chars else [(start, end)]
    return bounds


def _blocked_positions(n: int, protected) -> bytearray:
    """`blocked[p]` is 1 where a cut at `p` would fall strictly inside a protected span."""
    blocked = bytearray(n + 1)
    for start, end in protected:
        start, end = max(start + 1, 0), min(end, n + 1)
        if start < end:
            blocked[start:end] = b"\x01" * (end - start)
    return blocked


def _cut_long(text: str, start: int, end: int, blocked: bytearray, max_chars: int) -> list[tuple[int, int]]:
    pieces = []
    while end - start > max_chars:
        limit = start + max_chars
        soft = [m.end() for m in _SOFT_END.finditer(text, start + 1, limit) if not blocked[m.end()] and m.end() < end]
        cut = soft[-1] if soft else next((p for p in range(limit, start, -1) if not blocked[p]), None)
        if cut is None:  # an entity longer than max_chars: cut right after it
            cut = next((p for p in range(limit, end) if not blocked[p]), end)
        pieces.append((start, cut))
        start = cut
    if start < end:
        pieces.append((start, end))
    return pieces


def token_range(starts: list[int], start: int, end: int) -> tuple[int, int]:
    """Indices `[first, last)` of the tokens whose start lies in `[start, end)`; `starts` is the
    list of token start offsets (sorted)."""
    return bisect_left(starts, start), bisect_left(starts, end)
