"""ROCLING / HealthNER character-per-line files: reader and writer.

Two shapes are read:

* character per line, `char tag` (or `char` alone in the unlabelled test files), sentences
  separated by a line that is empty *or* holds only whitespace (ROCLING 2022 uses `" \\r\\n"`,
  ROCLING 2023 an empty line), CRLF or LF, with or without a final separator;
* HealthNER JSON Lines: one object per line with `character` / `character_label` (IOB2), or, in
  the older release, only `sentence` plus `word` / `word_label` (bare types per word), from which
  character tags are derived. Without labels the sentence is prediction input (`tags=None`).

Each file is one document (`doc_id` = file stem); `Sentence.index` counts sentences in the file.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from .bio import spans_to_tags
from .records import DataFormatError, Sentence
from .report import ConversionReport
from .tagging import RawSentence, check_segmentation_digits, iter_lines, read_tagged_files

_COLUMNS = re.compile(r"[ \t]+")
MAX_TOKEN_CHARS = 100
logger = logging.getLogger(__name__)


def read_rocling(
    paths: Iterable[str | Path] | str | Path,
    *,
    scheme: str = "IOB2",
    input_scheme: str = "IOB2",
    has_tags: bool | None = None,
    o_prefix: str = "auto",
    on_error: str = "raise",
    strip_segmentation_digits: bool = False,
) -> tuple[list[Sentence], ConversionReport]:
    """Read character-per-line or HealthNER JSON-lines files.

    Args:
        paths: one file or several (their sentences are concatenated, each file its own document).
        scheme (`str`): scheme of the returned tags (IOB2 default).
        input_scheme (`str`): scheme the files use (`IOB2`; `"auto"` detects it per file).
        has_tags (`bool`, *optional*): whether lines carry a tag column; by default decided per
            file by its first non-blank line (1 column: no tags, 2: tags).
        o_prefix (`str`): read `O-X` as `I-X` after a same-type `B-`/`I-` and as `O` elsewhere
            (`"auto"`, default), always as `I-X` (`"inside"`) or always as `O` (`"outside"`).
        on_error (`str`): `"raise"` (default) raises `DataFormatError` at the first malformed line;
            `"skip"` drops the sentence holding it and itemises it in the report.
        strip_segmentation_digits (`bool`): remove the word-segmentation digit of Weibo NER tokens
            (`科0` -> `科`); without it such files are only warned about.

    Tokens of more than one character in a char-per-line file are listed as warnings in the report
    (and logged); a line longer than `MAX_TOKEN_CHARS` without a tag column is refused (plain text
    is not char-per-line data).

    Returns:
        `(sentences, report)`.
    """

    def read_file(path: Path, report: ConversionReport):
        if _is_json_lines(path):
            raw, skipped = _read_json_lines(path, report, on_error)
        else:
            raw, skipped = _read_char_lines(path, has_tags, report, on_error)
            check_segmentation_digits(raw, path, report, strip_segmentation_digits)
            _warn_long_tokens(raw, path, report)
        return raw, skipped, 1  # each file is one document

    return read_tagged_files(
        paths, read_file, input_scheme=input_scheme, scheme=scheme, o_prefix=o_prefix, on_error=on_error
    )


def _is_json_lines(path: Path) -> bool:
    """Decided from the content, never the name: a first line that parses as a JSON object."""
    with open(path, "rb") as handle:
        first = handle.readline(1 << 20).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not first.startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


def _warn_long_tokens(raw_sentences: list[RawSentence], path: Path, report: ConversionReport) -> None:
    """Itemise tokens of more than one character (a char-per-line file should hold characters)."""
    long_tokens = [(raw.lines[i], token) for raw in raw_sentences for i, token in enumerate(raw.tokens) if len(token) > 1]
    for line, token in long_tokens:
        report.note_item("warning", "token of more than one character in a char-per-line file", f"{path}:{line}", token)
    if long_tokens:
        logger.warning("%s: %d token(s) of more than one character in a char-per-line file, e.g. line %d %r",
                       path, len(long_tokens), long_tokens[0][0], long_tokens[0][1][:20])


def _read_char_lines(path: Path, has_tags: bool | None, report: ConversionReport, on_error: str):
    raw_sentences: list[RawSentence] = []
    skipped: set[int] = set()
    tokens, tags, lines = [], [], []
    bad_sentence = False
    doc_id = path.stem

    def flush():
        nonlocal tokens, tags, lines, bad_sentence
        if tokens:
            if bad_sentence:
                skipped.add(len(raw_sentences))
            raw_sentences.append(RawSentence(tokens, tags if has_tags else None, lines, doc_id, len(raw_sentences)))
        tokens, tags, lines, bad_sentence = [], [], [], False

    for number, text in iter_lines(path, report, on_error):
        if text is None:  # undecodable, already itemised
            bad_sentence = True
            tokens.append("")
            tags.append("O")
            lines.append(number)
            continue
        if not text.strip():
            flush()
            continue
        fields = _COLUMNS.split(text.strip(" \t"))
        if has_tags is None:
            has_tags = len(fields) == 2
        expected = 2 if has_tags else 1
        if len(fields[0]) > MAX_TOKEN_CHARS:
            found = f"a {len(fields[0])}-character token: plain text? (`mamba-ner predict` tags raw text)"
            if on_error == "raise":
                raise DataFormatError(path, number, f"one character (or a token of at most {MAX_TOKEN_CHARS}) per line", found)
            report.note_item("skipped", "token too long for a char-per-line file; its sentence was skipped", f"{path}:{number}", found)
            bad_sentence = True
            fields = ["?"] + fields[1:]
        if len(fields) != expected:
            what = "'char tag' (2 columns)" if has_tags else "'char' alone (1 column, like the first line)"
            if on_error == "raise":
                raise DataFormatError(path, number, f"a line {what}", text)
            report.note_item(
                "skipped", f"line with {len(fields)} columns; its sentence was skipped", f"{path}:{number}", text
            )
            bad_sentence = True
            fields = (fields + ["O"])[:2] if has_tags else fields[:1]
        tokens.append(fields[0])
        tags.append(fields[1] if has_tags else "O")
        lines.append(number)
    flush()
    return raw_sentences, skipped


def _read_json_lines(path: Path, report: ConversionReport, on_error: str):
    raw_sentences: list[RawSentence] = []
    skipped: set[int] = set()
    for number, text in iter_lines(path, report, on_error):
        if text is None:
            continue
        if not text.strip():
            continue
        try:
            tokens, tags = _json_record(json.loads(text))
        except (ValueError, TypeError, AttributeError) as error:
            expected = "a JSON object with 'character' (and 'character_label') or 'sentence' (and 'word'/'word_label')"
            if on_error == "raise":
                raise DataFormatError(path, number, expected, f"{text} ({error})") from None
            report.note_item("skipped", "unreadable JSON record", f"{path}:{number}", str(error))
            continue
        if tokens:
            raw_sentences.append(RawSentence(tokens, tags, [number] * len(tokens), path.stem, len(raw_sentences)))
    return raw_sentences, skipped


def _json_record(record) -> tuple[list[str], list[str] | None]:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if "character" in record:
        tokens = record["character"]
        tags = record.get("character_label")
    elif "word" in record or "sentence" in record:
        words = record.get("word") or [record["sentence"]]
        if not all(isinstance(w, str) for w in words):
            raise ValueError("'word' must be a list of strings")
        tokens = [char for word in words for char in word]
        tags = None
        if "word_label" in record:
            labels = record["word_label"]
            if not isinstance(labels, list) or len(labels) != len(words):
                raise ValueError(f"'word_label' must be a list of {len(words)} labels, one per word")
            spans, position = [], 0
            for word, label in zip(words, labels):
                if label != "O":
                    spans.append((position, position + len(word), str(label)))
                position += len(word)
            tags = spans_to_tags(len(tokens), [s for s in spans if s[0] < s[1]])
    else:
        raise ValueError("no 'character', 'word' or 'sentence' key")
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t.strip() for t in tokens):
        raise ValueError("'character' must be a list of non-blank strings")
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags) or len(tags) != len(tokens):
            raise ValueError(f"'character_label' must be a list of {len(tokens)} strings")
    return list(tokens), (list(tags) if tags is not None else None)


def write_rocling(sentences: Iterable[Sentence], path: str | Path, *, newline: str = "\n", separator: str = "") -> Path:
    """Write sentences as `char tag` lines (or `char` alone when `tags` is None), one separator
    line (empty by default; ROCLING 2022 uses `" "`) after each sentence.

    Raises:
        `ValueError` if a token is empty or contains whitespace (it could not be read back).
    """
    path = Path(path)
    if separator.strip():
        raise ValueError(f"separator must be blank, got {separator!r}")
    chunks = []
    for sentence in sentences:
        for position, token in enumerate(sentence.tokens):
            if not token or _COLUMNS.search(token) or token != token.strip():
                raise ValueError(
                    f"{sentence.source or sentence.doc_id}: token {position} {token!r} is empty or has whitespace"
                )
            chunks.append(token if sentence.tags is None else f"{token} {sentence.tags[position]}")
        chunks.append(separator)
    path.write_text("".join(chunk + newline for chunk in chunks), encoding="utf-8", newline="")
    return path
