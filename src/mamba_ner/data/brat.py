"""brat standoff (`.txt` + `.ann`): reader and writer.

Reading a document, step by step (every entity ends up kept or dropped in the report):

1. `T` lines are parsed: `T<n>\\t<Type> <start> <end>[;<start> <end>...]\\t<surface>`. Other lines
   (`R` relations, `E` events, `A`/`M` attributes, `N` normalisations, `#` notes, `*`) are
   ignored and counted. Offsets are code-point offsets into the `.txt` read byte-exactly
   (`newline=""`, so CRLF counts as two characters, as brat does).
2. Bad offsets raise `DataFormatError` (or, with `on_error="skip"`, drop the entity). A surface
   text that differs from the `.txt` at those offsets is listed as a warning; the offsets win.
3. Discontinuous entities (`;` fragments, in Ruijin always split by a line break) are joined into
   one span from the first start to the last end (`merged`), or dropped (`discontinuous="drop"`).
4. The text is tokenised (`text.tokenize_text`: characters for Chinese, words otherwise); an
   entity boundary inside a token is widened to the token edge (`repaired`).
5. Overlapping entities cannot all be flat-tagged: `bio.resolve_overlaps` keeps the longest,
   then the earliest (`overlap="longest"`), or the earliest first (`"earliest"`), or raises
   (`"error"`); each dropped entity names the kept one it collided with.
6. The document is cut into sentences that never split a kept entity (`text.sentence_bounds`),
   or kept whole (`split="document"`); every sentence keeps its token character offsets so that
   predictions can be written back with `spans_from_sentences` + `write_brat`.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

from .bio import canonical_scheme, resolve_overlaps, spans_to_tags, tags_to_spans
from .records import DataFormatError, Document, Entity, Sentence
from .report import ConversionReport
from .tagging import check_on_error, gc_paused
from .text import resolve_mode, sentence_bounds, token_range, tokenize_text

_OTHER_LINES = {
    "R": "relation",
    "E": "event",
    "A": "attribute",
    "M": "attribute",
    "N": "normalization",
    "#": "note",
    "*": "equivalence",
}
# Runs of text between line breaks: every character `str.splitlines` breaks at (the reader splits
# `.ann` files with it), so no fragment of a written entity, and no surface text, spans two lines.
_NOT_LINE_BREAK = re.compile(r"[^\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")
_T_LINE = "a line 'T<n>\\t<Type> <start> <end>[;<start> <end>...]\\t<text>'"


@dataclass
class _Candidate:
    entity: Entity
    line: int
    first: int = 0  # token span [first, last)
    last: int = 0
    widened: bool = False


def read_brat(paths: Iterable[str | Path] | str | Path, **options) -> tuple[list[Sentence], ConversionReport]:
    """Read brat documents and return their sentences; options as for `read_brat_documents`."""
    documents, report = read_brat_documents(paths, **options)
    return [sentence for document in documents for sentence in document.sentences], report


def read_brat_documents(
    paths: Iterable[str | Path] | str | Path,
    *,
    split: str = "sentence",
    tokenize: str = "auto",
    overlap: str = "longest",
    discontinuous: str = "join",
    entity_types: Iterable[str] | None = None,
    max_chars: int | None = 512,
    scheme: str = "IOB2",
    on_error: str = "raise",
) -> tuple[list[Document], ConversionReport]:
    """Read brat folders / pairs into `Document`s (text, kept entities, sentences).

    Args:
        paths: folders (every `*.txt` in them, sorted by name), `.txt` or `.ann` files, or stems.
            A `.txt` without `.ann` is unlabelled (tags `None`); an `.ann` without `.txt` is an error.
        split (`str`): `"sentence"` (default), `"line"` or `"document"` (one sentence per document).
        tokenize (`str`): `"auto"` (per document: characters if it has CJK text, else words),
            `"char"` or `"word"`.
        overlap (`str`): `"longest"`, `"earliest"` or `"error"` (see `bio.resolve_overlaps`).
        discontinuous (`str`): `"join"` fragments into one span, or `"drop"` the entity.
        entity_types: keep only these types (others are dropped with a reason); default all.
        max_chars (`int`, *optional*): soft maximum sentence length in characters (512).
        scheme (`str`): tag scheme of the sentences (IOB2).
        on_error (`str`): `"raise"` or `"skip"` (drop the bad entity / line and itemise it).
    """
    check_on_error(on_error)
    if discontinuous not in ("join", "drop"):
        raise ValueError(f"discontinuous must be 'join' or 'drop', got {discontinuous!r}")
    scheme = canonical_scheme(scheme)
    selected = set(entity_types) if entity_types is not None else None
    report = ConversionReport()
    documents = []
    with gc_paused():  # millions of small tuples: the cyclic GC would rescan them over and over
        for txt_path, ann_path in _find_pairs(paths):
            text = _read_text(txt_path)
            candidates = None
            if ann_path is not None:
                candidates = _parse_ann(ann_path, text, report, on_error, discontinuous, selected)
            else:
                report.note(f"{txt_path}: no .ann file, read as unlabelled text")
            document = _build_document(
                txt_path, ann_path, text, candidates, split, tokenize, overlap, max_chars, scheme, report
            )
            documents.append(document)
            report.counts["documents"] += 1
            report.counts["sentences"] += len(document.sentences)
            report.counts["characters"] += len(text)
    return documents, report


def _find_pairs(paths) -> list[tuple[Path, Path | None]]:
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    pairs = []
    for path in map(Path, paths):
        if path.is_dir():
            stems = sorted(
                {p.with_suffix("") for p in path.iterdir() if p.suffix in (".txt", ".ann")}, key=lambda p: p.name
            )
            if not stems:
                raise DataFormatError(path, None, "brat .txt/.ann files in this folder", "none")
        else:
            stems = [path.with_suffix("") if path.suffix in (".txt", ".ann") else path]
        for stem in stems:
            txt, ann = stem.with_name(stem.name + ".txt"), stem.with_name(stem.name + ".ann")
            if not txt.is_file():
                raise DataFormatError(
                    ann if ann.is_file() else txt, None, f"a text file {txt.name} beside the annotations"
                )
            pairs.append((txt, ann if ann.is_file() else None))
    return pairs


def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise DataFormatError(path, line, "UTF-8 text", f"undecodable byte at offset {error.start}") from None


def _parse_ann(
    ann_path: Path, text: str, report: ConversionReport, on_error: str, discontinuous: str, selected
) -> list[_Candidate]:
    candidates = []
    for number, line in enumerate(_read_text(ann_path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{ann_path}:{number}"
        if line[0] in _OTHER_LINES:
            report.note_item("ignored", f"{_OTHER_LINES[line[0]]} line ({line[0]})", where, line)
            continue
        try:
            entity = _parse_t_line(line, ann_path, number, len(text))
        except DataFormatError as error:
            if on_error == "raise":
                raise
            entity_type = _type_of(line)
            if entity_type is None:
                report.note_item("skipped", "unreadable .ann line", where, line)
            else:
                report.entity_read(entity_type)
                report.entity_dropped(entity_type, "unreadable T line or bad offsets", where, error.expected)
            continue
        report.entity_read(entity.type)
        surface = line.split("\t", 2)[2] if line.count("\t") >= 2 else None  # the text may hold tabs
        expected = " ".join(text[s:e] for s, e in entity.fragments)
        if surface is not None and surface != expected:
            report.note_item(
                "warning",
                ".ann surface differs from the .txt at these offsets (offsets used)",
                where,
                f"{surface!r} vs {expected!r}",
                entity.type,
            )
        if selected is not None and entity.type not in selected:
            report.entity_dropped(entity.type, "entity type not selected", where)
        elif len(entity.fragments) > 1 and discontinuous == "drop":
            report.entity_dropped(entity.type, "discontinuous entity (discontinuous='drop')", where)
        elif not text[entity.start : entity.end].strip():
            report.entity_dropped(entity.type, "entity covers only whitespace", where)
        else:
            candidates.append(_Candidate(entity, number))
    return candidates


def _parse_t_line(line: str, ann_path: Path, number: int, text_length: int) -> Entity:
    fields = line.split("\t")
    if not line.startswith("T") or len(fields) < 2:
        raise DataFormatError(ann_path, number, _T_LINE, line)
    type_and_offsets = fields[1].split(" ", 1)
    if len(type_and_offsets) != 2 or not type_and_offsets[0]:
        raise DataFormatError(ann_path, number, _T_LINE, line)
    entity_type, offsets = type_and_offsets
    fragments = []
    for piece in offsets.split(";"):
        bounds = piece.split()
        if len(bounds) != 2 or not all(b.isdigit() for b in bounds):
            raise DataFormatError(ann_path, number, f"{_T_LINE} (offsets as integers)", line)
        fragments.append((int(bounds[0]), int(bounds[1])))
    previous_end = 0
    for start, end in fragments:
        if not (previous_end <= start < end <= text_length):
            raise DataFormatError(
                ann_path,
                number,
                f"ascending fragment offsets with 0 <= start < end <= {text_length} (the .txt length)",
                line,
            )
        previous_end = end
    return Entity(fragments[0][0], fragments[-1][1], entity_type, tuple(fragments), fields[0], f"{ann_path}:{number}")


def _type_of(line: str) -> str | None:
    fields = line.split("\t")
    if len(fields) >= 2 and fields[0].startswith("T") and fields[1].split(" ")[0]:
        return fields[1].split(" ")[0]
    return None


def _build_document(
    txt_path, ann_path, text, candidates, split, tokenize, overlap, max_chars, scheme, report
) -> Document:
    mode = resolve_mode(text, tokenize)
    tokens, offsets = tokenize_text(text, mode)
    starts = list(map(itemgetter(0), offsets))
    kept = (
        _place_entities(candidates, text, offsets, starts, overlap, ann_path, report) if candidates is not None else []
    )
    protected = [(offsets[c.first][0], offsets[c.last - 1][1]) for c in kept]
    line_starts = [0] + [match.end() for match in re.finditer("\n", text)]
    sentences, entity_index = [], 0
    for start, end in sentence_bounds(text, split, protected, max_chars, mode):
        first, last = token_range(starts, start, end)
        if first == last:
            continue
        spans = []
        while entity_index < len(kept) and kept[entity_index].first < last:
            candidate = kept[entity_index]
            spans.append((candidate.first - first, candidate.last - first, candidate.entity.type))
            entity_index += 1
        tags = spans_to_tags(last - first, spans, scheme) if candidates is not None else None
        line = bisect_right(line_starts, offsets[first][0])  # 1-based line of the first token
        sentences.append(
            Sentence(tokens[first:last], tags, txt_path.stem, len(sentences), offsets[first:last], f"{txt_path}:{line}")
        )
    report.counts["tokens"] += len(tokens)
    report.counts[f"documents tokenised per {mode}"] += 1
    entities = sorted((c.entity for c in kept), key=lambda e: (e.start, e.end)) if candidates is not None else None
    return Document(txt_path.stem, text, entities, sentences, str(txt_path))


def _place_entities(candidates, text, offsets, starts, overlap, ann_path, report) -> list[_Candidate]:
    """Map entities to token spans, resolve overlaps, record kept / dropped / merged / repaired;
    returns the kept candidates sorted by position."""
    for candidate in candidates:
        entity = candidate.entity
        candidate.first, candidate.last = token_range(starts, entity.start, entity.end)
        if candidate.first > 0 and offsets[candidate.first - 1][1] > entity.start:
            candidate.first -= 1  # the entity starts inside a token
        candidate.widened = offsets[candidate.first][0] < entity.start or offsets[candidate.last - 1][1] > entity.end
    policy = "longest" if overlap == "error" else overlap
    keep, dropped = resolve_overlaps([(c.first, c.last) for c in candidates], policy)
    if dropped and overlap == "error":
        loser, winner = candidates[dropped[0][0]], candidates[dropped[0][1]]
        raise DataFormatError(
            ann_path,
            loser.line,
            "entities that do not overlap (overlap='error')",
            _describe(winner, text).replace("kept", "it overlaps", 1),
        )
    for index, blocking in dropped:
        loser, winner = candidates[index], candidates[blocking]
        report.entity_dropped(
            loser.entity.type, _overlap_reason(loser, winner), f"{ann_path}:{loser.line}", _describe(winner, text)
        )
    kept = sorted((candidates[i] for i in keep), key=lambda c: (c.first, c.last))
    for candidate in kept:
        entity, where = candidate.entity, f"{ann_path}:{candidate.line}"
        report.entity_kept(entity.type)
        if len(entity.fragments) > 1:
            gaps = "".join(text[e:s] for (_, e), (s, _) in zip(entity.fragments, entity.fragments[1:]))
            reason = (
                "discontinuous fragments joined (gaps are whitespace)"
                if not gaps.strip()
                else "discontinuous fragments joined over text"
            )
            report.entity_merged(entity.type, reason, where, repr(gaps))
        if candidate.widened:
            token_text = text[offsets[candidate.first][0] : offsets[candidate.last - 1][1]]
            report.entity_repaired(
                entity.type,
                "boundary inside a token, widened to the token edges",
                where,
                f"{text[entity.start : entity.end]!r} -> {token_text!r}",
            )
    return kept


def _overlap_reason(loser: _Candidate, winner: _Candidate) -> str:
    a, b = (loser.first, loser.last), (winner.first, winner.last)
    if a == b:
        same_type = loser.entity.type == winner.entity.type
        return (
            "duplicate of a kept entity (same tokens, same type)"
            if same_type
            else "same tokens as a kept entity of another type"
        )
    if b[0] <= a[0] and a[1] <= b[1]:
        return "nested inside a longer kept entity"
    if a[0] <= b[0] and b[1] <= a[1]:
        return "contains a kept entity"
    return "crosses a kept entity"


def _describe(candidate: _Candidate, text: str) -> str:
    entity = candidate.entity
    return f"kept {entity.ann_id} {entity.type} {entity.start}-{entity.end} {text[entity.start : entity.end]!r}"


def write_brat(doc_id: str, text: str, spans: Iterable[tuple[int, int, str]], out_dir: str | Path) -> Path:
    """Write `<doc_id>.txt` (the text, byte-exact) and `<doc_id>.ann` with one `T` line per span.

    Args:
        spans: `(start, end, type)` character offsets (end exclusive). A span running over line
            breaks is written as `;`-separated fragments, one per line, as brat expects. The line
            break itself (`\n`, the `\r` of CRLF, a lone `\r`, or any other character
            `str.splitlines` breaks at) is never part of a fragment, so the `.ann` line's text
            stays on one line; line breaks at the ends of a span are left out of it.

    Returns:
        the `.ann` path. Raises `ValueError` for a span outside the text, empty, or covering only
        line breaks.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for number, (start, end, entity_type) in enumerate(sorted(spans, key=lambda s: (s[0], s[1], s[2])), start=1):
        if not (0 <= start < end <= len(text)) or not entity_type or " " in entity_type:
            raise ValueError(
                f"{doc_id}: span {(start, end, entity_type)} is empty, outside the text (length {len(text)}) or badly typed"
            )
        fragments = [m.span() for m in _NOT_LINE_BREAK.finditer(text, start, end)]
        if not fragments:
            raise ValueError(f"{doc_id}: span {(start, end, entity_type)} covers only line breaks")
        offsets = ";".join(f"{s} {e}" for s, e in fragments)
        surface = " ".join(text[s:e] for s, e in fragments)
        lines.append(f"T{number}\t{entity_type} {offsets}\t{surface}")
    with open(out_dir / f"{doc_id}.txt", "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    ann_path = out_dir / f"{doc_id}.ann"
    ann_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return ann_path


def spans_from_sentences(sentences: Iterable[Sentence]) -> dict[str, list[tuple[int, int, str]]]:
    """Character spans per document from tagged sentences that have offsets (e.g. predictions),
    ready for `write_brat(doc_id, text, spans, out_dir)`."""
    spans: dict[str, list[tuple[int, int, str]]] = {}
    for sentence in sentences:
        if sentence.offsets is None:
            raise ValueError(f"{sentence.source or sentence.doc_id}: sentence has no character offsets")
        entries = spans.setdefault(sentence.doc_id, [])
        for first, last, entity_type in tags_to_spans(sentence.tags or []):
            entries.append((sentence.offsets[first][0], sentence.offsets[last - 1][1], entity_type))
    return spans
