"""Shared by the readers: raw token/tag rows (ROCLING, CoNLL) -> `Sentence`, with every entity
recorded in the `ConversionReport` (read, kept, repaired or dropped with a location); the
per-file driver loop of those readers (`read_tagged_files`); line iteration with file:line
errors; a GC pause for bulk reading."""

from __future__ import annotations

import contextlib
import gc
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .bio import canonical_scheme, detect_scheme, normalize_tag, repair_tags, tags_to_spans
from .records import DataFormatError, Sentence
from .report import ConversionReport

logger = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip")


@dataclass
class RawSentence:
    """Tokens and tags exactly as read, with the 1-based line number of each token."""

    tokens: list[str]
    tags: list[str] | None
    lines: list[int]
    doc_id: str
    index: int


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while building millions of small objects (token
    offsets, tags): it would otherwise rescan them at every generation threshold (measured on the
    Ruijin corpus: 12.5 s -> 8 s). Nothing built here forms reference cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


def read_tagged_files(
    paths: Iterable[str | Path] | str | Path,
    read_file: Callable[[Path, ConversionReport], tuple[list[RawSentence], set[int], int]],
    *,
    input_scheme: str,
    scheme: str,
    o_prefix: str,
    on_error: str,
) -> tuple[list[Sentence], ConversionReport]:
    """The file loop of the token/tag readers (CoNLL, ROCLING): one report for all `paths`.

    `read_file(path, report)` reads one file into `(raw_sentences, skipped, n_documents)` (see
    `build_sentences` for `skipped`); each file adds to `report.counts` `files` (1) and
    `documents` (`n_documents`), and its sentences go through `build_sentences`.
    """
    check_on_error(on_error)
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    report = ConversionReport()
    sentences: list[Sentence] = []
    with gc_paused():  # many small objects; see gc_paused
        for path in map(Path, paths):
            if path.is_dir():
                raise DataFormatError(path, None, "a file (read_files expands folders)", "a folder")
            raw, skipped, n_documents = read_file(path, report)
            if not raw:
                empty = "an empty file" if path.stat().st_size == 0 else "no token lines (only blank or -DOCSTART- lines)"
                raise DataFormatError(path, None, "at least one sentence: token lines separated by blank lines", empty)
            report.counts["files"] += 1
            report.counts["documents"] += n_documents
            sentences += build_sentences(
                raw,
                path,
                report,
                input_scheme=input_scheme,
                scheme=scheme,
                o_prefix=o_prefix,
                on_error=on_error,
                skipped=skipped,
            )
    return sentences, report


# Weibo NER (Peng & Dredze 2015) writes each character with its position in the word segmentation:
# `科0 技1`. Those digits are not part of the text; left in, they double the vocabulary.
_SEGMENTATION_DIGIT = re.compile(r"^(\D)(\d)$")


def check_segmentation_digits(raw_sentences: list[RawSentence], path: Path, report: ConversionReport, strip: bool) -> None:
    """Detect tokens that are one character plus a segmentation digit (most tokens of the file);
    strip the digit when `strip`, else warn (report and log) and name the option that strips it."""
    tokens = [token for raw in raw_sentences for token in raw.tokens]
    marked = sum(1 for token in tokens if _SEGMENTATION_DIGIT.match(token))
    if not tokens or marked < 0.8 * len(tokens):
        return
    if strip:
        for raw in raw_sentences:
            raw.tokens = [token[0] if _SEGMENTATION_DIGIT.match(token) else token for token in raw.tokens]
        report.note(f"{path}: segmentation digits stripped from {marked} of {len(tokens)} tokens ('科0' -> '科')")
        return
    first = next(raw for raw in raw_sentences if any(_SEGMENTATION_DIGIT.match(t) for t in raw.tokens))
    message = (f"{marked} of {len(tokens)} tokens are a character plus a word-segmentation digit "
               f"(Weibo NER style, e.g. {first.tokens[0]!r}); the digits would enter the vocabulary. "
               "Strip them with --strip_segmentation_digits (convert: --strip-segmentation-digits)")
    report.note_item("warning", "tokens carry a segmentation digit", f"{path}:{first.lines[0]}", message)
    logger.warning("%s: %s", path, message)


def iter_lines(path: Path, report: ConversionReport, on_error: str) -> Iterator[tuple[int, str]]:
    """`(line_number, text)` for each line of a UTF-8 file, CRLF or LF, without the line end.

    A line that is not valid UTF-8 raises `DataFormatError`, or with `on_error="skip"` is yielded
    as `None` text after being itemised as skipped (the caller drops the sentence holding it).
    """
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        report.note(f"{path}: UTF-8 byte-order mark removed")
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if on_error == "raise":
                raise DataFormatError(
                    path, number, "UTF-8 text", f"undecodable byte at column {error.start + 1}"
                ) from None
            report.note_item("skipped", "line is not UTF-8; its sentence was skipped", f"{path}:{number}")
            yield number, None


def resolve_input_scheme(
    raw_sentences: list[RawSentence], input_scheme: str, path: Path, report: ConversionReport
) -> str:
    """`"auto"` -> detect from the file's (normalised, readable) tags; otherwise canonicalise."""
    if input_scheme != "auto":
        return canonical_scheme(input_scheme)
    sequences = []
    for raw in raw_sentences:
        if raw.tags is None:
            continue
        normalized = []
        for tag in raw.tags:
            try:
                normalized.append(normalize_tag(tag)[0])
            except ValueError:
                normalized.append("O")
        sequences.append(normalized)
    detected = detect_scheme(sequences)
    report.note(f"{path}: input tag scheme detected as {detected}")
    return detected


def build_sentences(
    raw_sentences: list[RawSentence],
    path: Path,
    report: ConversionReport,
    *,
    input_scheme: str,
    scheme: str,
    o_prefix: str,
    on_error: str,
    skipped: set[int] = frozenset(),
) -> list[Sentence]:
    """Repair and re-encode each raw sentence's tags; record every entity in `report`.

    `skipped` holds indices (into `raw_sentences`) of sentences that had an unreadable line (the
    reader itemised that line as skipped): their entities are counted as read and dropped.
    """
    input_scheme = resolve_input_scheme(raw_sentences, input_scheme, path, report)
    scheme = canonical_scheme(scheme)
    sentences = []
    for position, raw in enumerate(raw_sentences):
        where = f"{path}:{raw.lines[0]}" if raw.lines else str(path)
        if raw.tags is None:
            if position in skipped:  # the bad line is itemised already
                continue
            sentences.append(Sentence(list(raw.tokens), None, raw.doc_id, raw.index, None, where))
            report.counts["tokens"] += len(raw.tokens)
            continue
        try:
            repair = repair_tags(raw.tags, input_scheme, scheme, o_prefix)
        except ValueError as error:
            bad = _first_unreadable(raw.tags, o_prefix)
            if on_error == "raise":
                raise DataFormatError(
                    path, raw.lines[bad], "a tag 'O' or B-/I-/M-/E-/S- followed by a type", raw.tags[bad]
                ) from error
            report.note_item("skipped", "sentence with an unreadable tag", f"{path}:{raw.lines[bad]}", raw.tags[bad])
            _drop_all(raw, path, o_prefix, report, "sentence skipped: unreadable tag")
            continue
        if position in skipped:  # the bad line is itemised already; its entities are dropped
            for start, _, entity_type in repair.spans:
                report.entity_read(entity_type)
                report.entity_dropped(entity_type, "sentence skipped: unreadable line", f"{path}:{raw.lines[start]}")
            continue
        _record_entities(raw, repair, path, input_scheme, report)
        sentences.append(Sentence(list(raw.tokens), repair.tags, raw.doc_id, raw.index, None, where))
        report.counts["tokens"] += len(raw.tokens)
    report.counts["sentences"] += len(sentences)
    return sentences


def _record_entities(raw: RawSentence, repair, path: Path, input_scheme: str, report: ConversionReport) -> None:
    repaired = set(repair.repaired_spans)
    for index, (start, end, entity_type) in enumerate(repair.spans):
        report.entity_read(entity_type)
        report.entity_kept(entity_type)
        if index in repaired:
            problems = [p for p in repair.problems if start <= p.position < end]
            reasons = sorted({_REASONS[p.kind].format(scheme=input_scheme) for p in problems})
            detail = "; ".join(f"line {raw.lines[p.position]}: {p.message}" for p in problems)
            report.entity_repaired(entity_type, "; ".join(reasons), f"{path}:{raw.lines[start]}", detail)
    inside = {p for s, e, _ in repair.spans for p in range(s, e)}
    for problem in repair.problems:
        if problem.position not in inside:
            report.note_item(
                "warning", "tag outside any entity normalised", f"{path}:{raw.lines[problem.position]}", problem.message
            )


_REASONS = {
    "spelling": "malformed tag normalised (e.g. i-X -> I-X, O-X -> I-X)",
    "scheme": "{scheme} violation repaired (the tag was re-encoded, see detail)",
}


def _first_unreadable(tags: list[str], o_prefix: str) -> int:
    for position, tag in enumerate(tags):
        try:
            normalize_tag(tag, o_prefix)
        except ValueError:
            return position
    return 0


def _drop_all(raw: RawSentence, path: Path, o_prefix: str, report: ConversionReport, reason: str) -> None:
    """Count the readable entities of a skipped sentence as read and dropped."""
    readable = []
    for tag in raw.tags or []:
        try:
            readable.append(normalize_tag(tag, o_prefix)[0])
        except ValueError:
            readable.append("O")
    for start, _, entity_type in tags_to_spans(readable):
        report.entity_read(entity_type)
        report.entity_dropped(entity_type, reason, f"{path}:{raw.lines[start]}")
