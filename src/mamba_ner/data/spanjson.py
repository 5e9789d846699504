"""Span JSON (CMeEE / CBLUE and many Chinese medical corpora): reader.

Records hold a text and its entities as character spans, in a JSON array, a JSON object with one
list of records (`{"data": [...]}`), or JSON lines (one record per line):

    {"text": "患者有高血压。", "entities": [{"start_idx": 3, "end_idx": 5, "type": "dis", "entity": "高血压"}]}
    {"text": "...", "entities": [[3, 6, "dis"]]}                 # [start, end, type] triples
    {"text": "...", "label": [[3, 6, "dis"]]}                    # doccano

Keys read: the text from `text` (or `sentence`, `content`, `originalText`); the entity list from
`entities` (or `entity_mentions`, `spans`, `label`, `labels`, `mentions`); in an entity object the
start from `start_idx`/`start`/`start_offset`/`begin`, the end from `end_idx`/`end`/`end_offset`,
the type from `type`/`label`/`entity_type`/`label_type`, the surface text from `entity`/`text`/`mention`.

**End offsets.** CMeEE's `end_idx` is *inclusive*, most other corpora's end is exclusive. With
`end="auto"` (default) the reader decides per file from the surface texts: if `text[start:end+1]`
equals the surface text for every entity that has one, ends are inclusive; otherwise exclusive
(and a mismatching surface is a warning). Without any surface text, ends are exclusive. The choice
is a note of the report; `end="inclusive"` / `"exclusive"` forces it.

**Nested and overlapping entities** (CMeEE nests symptoms inside diseases, for example) cannot all
be flat-tagged. The rule, documented here and applied by `bio.resolve_overlaps`: the *longest*
entity wins, then the *earliest*; every entity left out is counted as dropped in the report with
the reason (`nested inside a longer kept entity`, `crosses a kept entity`, a duplicate...) and the
kept entity it collided with. `overlap="earliest"` keeps the earliest first; `"error"` refuses.

Each record is one document (`doc_id` = `<file stem>#<record index>`), tokenised and cut into
sentences like a brat document (`text.tokenize_text`; characters for Chinese), kept whole by
default (`split="document"`, as CMeEE records are sentences already).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .bio import canonical_scheme
from .brat import _build_document, _Candidate
from .detect import SPAN_JSON_ENTITY_KEYS, SPAN_JSON_TEXT_KEYS, expand_folders
from .records import DataFormatError, Entity, Sentence
from .report import ConversionReport
from .tagging import check_on_error, gc_paused

START_KEYS = ("start_idx", "start", "start_offset", "begin", "startOffset")
END_KEYS = ("end_idx", "end", "end_offset", "endOffset")
TYPE_KEYS = ("type", "label", "entity_type", "label_type")
SURFACE_KEYS = ("entity", "text", "mention", "span")
END_RULES = ("auto", "exclusive", "inclusive")
_ENTITY = "an entity as {'start_idx'/'start', 'end_idx'/'end', 'type'} or [start, end, type]"


def read_spanjson(
    paths: Iterable[str | Path] | str | Path,
    *,
    end: str = "auto",
    overlap: str = "longest",
    split: str = "document",
    tokenize: str = "auto",
    max_chars: int | None = None,
    entity_types: Iterable[str] | None = None,
    scheme: str = "IOB2",
    on_error: str = "raise",
) -> tuple[list[Sentence], ConversionReport]:
    """Read span-JSON files (or folders of them) into sentences plus a report.

    Args:
        paths: files or folders.
        end (`str`): `"auto"`, `"exclusive"` or `"inclusive"` end offsets (see the module docstring).
        overlap (`str`): `"longest"` (default), `"earliest"` or `"error"` for nested/overlapping entities.
        split (`str`): `"document"` (a record is one sentence, default), `"sentence"` or `"line"`.
        tokenize (`str`): `"auto"`, `"char"` or `"word"` (`text.tokenize_text`).
        max_chars (`int`, *optional*): soft maximum sentence length when splitting.
        entity_types: keep only these types (others are dropped with a reason); default all.
        scheme (`str`): tag scheme of the sentences (IOB2).
        on_error (`str`): `"raise"` or `"skip"` (drop the bad record / entity and itemise it).
    """
    check_on_error(on_error)
    if end not in END_RULES:
        raise ValueError(f"end must be one of {END_RULES}, got {end!r}")
    scheme = canonical_scheme(scheme)
    selected = set(entity_types) if entity_types is not None else None
    report = ConversionReport()
    sentences: list[Sentence] = []
    with gc_paused():
        for path in expand_folders(paths):
            records = _records(path, report, on_error)
            if not records:
                raise DataFormatError(path, None, "at least one JSON record with a text", "no records")
            inclusive = _inclusive_ends(path, records, end, report)
            for index, (line, record) in enumerate(records):
                sentences += _read_record(path, line, index, record, inclusive, selected, overlap, split, tokenize,
                                          max_chars, scheme, on_error, report)
            report.counts["files"] += 1
    return sentences, report


def _records(path: Path, report: ConversionReport, on_error: str) -> list[tuple[int, dict]]:
    """`(line, record)` pairs: JSON lines, or a whole-file array / object holding a list of records."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if value is None:  # JSON lines
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except ValueError as error:
                if on_error == "raise":
                    raise DataFormatError(path, number, "one JSON record per line (or one JSON array)", f"{line} ({error})") from None
                report.note_item("skipped", "unreadable JSON line", f"{path}:{number}", str(error))
        return records
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        value = lists[0] if not any(k in value for k in SPAN_JSON_TEXT_KEYS) and len(lists) == 1 else [value]
    if not isinstance(value, list):
        raise DataFormatError(path, 1, "a JSON array of records, or JSON lines", type(value).__name__)
    lines = _record_lines(text, len(value))
    return list(zip(lines, value))


def _record_lines(text: str, n: int) -> list[int]:
    """Best-effort 1-based line of each record of a JSON array (one per line in CMeEE files)."""
    starts = [number for number, line in enumerate(text.splitlines(), start=1) if line.lstrip().startswith("{")]
    return starts if len(starts) == n else list(range(1, n + 1))


def _field(record: dict, keys: tuple[str, ...]):
    return next((record[key] for key in keys if key in record), None)


def _raw_entities(record: dict) -> list:
    entities = _field(record, SPAN_JSON_ENTITY_KEYS)
    return [] if entities is None else entities


def _parse_entity(item) -> tuple[int, int, str, str | None]:
    """`(start, end as written, type, surface or None)`; `ValueError` for anything else."""
    if isinstance(item, dict):
        start, end, kind = _field(item, START_KEYS), _field(item, END_KEYS), _field(item, TYPE_KEYS)
        surface = _field(item, SURFACE_KEYS)
    elif isinstance(item, (list, tuple)) and len(item) >= 3:
        start, end, kind, surface = item[0], item[1], item[2], item[3] if len(item) > 3 else None
    else:
        raise ValueError(_ENTITY)
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or not kind:
        raise ValueError(_ENTITY)
    return start, end, str(kind), surface if isinstance(surface, str) else None


def _inclusive_ends(path: Path, records, end: str, report: ConversionReport) -> bool:
    if end != "auto":
        report.note(f"{path}: entity end offsets read as {end} (given)")
        return end == "inclusive"
    inclusive_fit = exclusive_fit = checked = 0
    for _, record in records:
        text = _field(record, SPAN_JSON_TEXT_KEYS) if isinstance(record, dict) else None
        if not isinstance(text, str):
            continue
        for item in _raw_entities(record) if isinstance(record, dict) else []:
            try:
                start, stop, _, surface = _parse_entity(item)
            except ValueError:
                continue
            if surface is None:
                continue
            checked += 1
            inclusive_fit += text[start : stop + 1] == surface
            exclusive_fit += text[start:stop] == surface
    inclusive = checked > 0 and inclusive_fit == checked and exclusive_fit < checked
    why = f"the surface texts of {checked} entities" if checked else "no surface texts to check; the default"
    report.note(f"{path}: entity end offsets read as {'inclusive' if inclusive else 'exclusive'} ({why})")
    return inclusive


def _read_record(path, line, index, record, inclusive, selected, overlap, split, tokenize, max_chars, scheme, on_error,
                 report) -> list[Sentence]:
    where = f"{path}:{line}"
    text = _field(record, SPAN_JSON_TEXT_KEYS) if isinstance(record, dict) else None
    if not isinstance(text, str):
        if on_error == "raise":
            raise DataFormatError(path, line, f"a JSON object with a text under one of {list(SPAN_JSON_TEXT_KEYS)}", str(record))
        report.note_item("skipped", "record without a text", where, str(record)[:80])
        return []
    labelled = isinstance(record, dict) and any(key in record for key in SPAN_JSON_ENTITY_KEYS)
    candidates = []
    for item in _raw_entities(record):
        try:
            start, stop, kind, surface = _parse_entity(item)
            stop += inclusive
            if not 0 <= start < stop <= len(text):
                raise ValueError(f"0 <= start < end <= {len(text)} (the text length)")
        except ValueError as error:
            if on_error == "raise":
                raise DataFormatError(path, line, str(error), str(item)) from None
            kind = item.get("type") if isinstance(item, dict) else None
            if kind:
                report.entity_read(str(kind))
                report.entity_dropped(str(kind), "unreadable entity or bad offsets", where, str(item))
            else:
                report.note_item("skipped", "unreadable entity", where, str(item))
            continue
        report.entity_read(kind)
        if surface is not None and surface != text[start:stop]:
            report.note_item("warning", "surface text differs from the text at these offsets (offsets used)", where,
                             f"{surface!r} vs {text[start:stop]!r}", kind)
        if selected is not None and kind not in selected:
            report.entity_dropped(kind, "entity type not selected", where)
        elif not text[start:stop].strip():
            report.entity_dropped(kind, "entity covers only whitespace", where)
        else:
            candidates.append(_Candidate(Entity(start, stop, kind, ann_id=f"#{len(candidates) + 1}", source=where), line))
    doc_id = f"{path.stem}#{index}"
    document = _build_document(path, path, text, candidates if labelled else None, split, tokenize, overlap,
                               max_chars, scheme, report)
    report.counts["documents"] += 1
    report.counts["sentences"] += len(document.sentences)
    for sentence in document.sentences:
        sentence.doc_id, sentence.source = doc_id, where
    return document.sentences
