"""All tag-sequence logic in one place: spans <-> tags, schemes, validation, repair, overlaps.

A *span* is `(start, end, type)` in token positions, end exclusive. Schemes:

    IOB2   B-X starts every entity, I-X continues it             (the default everywhere)
    IOB1   I-X everywhere; B-X only where an entity directly follows one of the same type
    IOBES  B-X I-X ... E-X for multi-token entities, S-X for single tokens   (alias BIOES)
    BMES   B-X M-X ... E-X and S-X (common in Chinese NER)

`tags_to_spans` decodes every scheme with one lenient rule: `B`/`S` start an entity, `I`/`M`/`E`
continue the open entity of the same type and otherwise start one (an "orphan"), `E`/`S` close
it. A sequence is *valid* in a scheme when re-encoding its spans gives back the same tags, so
`validate_tags` reports exactly the positions a repair changes. Malformed tags (`i-CHEM`,
`O-SYMP`, `B_CHEM`, a bare `CHEM`) are normalised first by `normalize_tag`.

Written by hand because `seqeval` only scores sequences; it neither repairs nor re-encodes them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Span = tuple[int, int, str]

SCHEMES = ("IOB1", "IOB2", "IOBES", "BMES")
_SCHEME_ALIASES = {
    "BIO": "IOB2",
    "IOB": "IOB2",
    "BIOES": "IOBES",
    "IOBES": "IOBES",
    "IOB1": "IOB1",
    "IOB2": "IOB2",
    "BMES": "BMES",
}
OVERLAP_POLICIES = ("longest", "earliest", "error")
O_PREFIX_POLICIES = ("auto", "inside", "outside")

_TAG = re.compile(r"^([BIMES])-(.+)$")
_LOOSE_TAG = re.compile(r"^([A-Za-z])[-_](.+)$")
_O_PREFIXED = re.compile(r"^[Oo][-_].+$")


def canonical_scheme(scheme: str) -> str:
    """`"bioes"` -> `"IOBES"`, `"BIO"` -> `"IOB2"`; raises `ValueError` for an unknown name."""
    name = _SCHEME_ALIASES.get(str(scheme).upper())
    if name is None:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)} (or BIO, BIOES)")
    return name


# ---- spans -> tags ------------------------------------------------------------------------------
def spans_to_tags(n_tokens: int, spans: Iterable[Span], scheme: str = "IOB2") -> list[str]:
    """Encode non-overlapping token spans as tags.

    Args:
        n_tokens (`int`): length of the sequence.
        spans: `(start, end, type)` with `0 <= start < end <= n_tokens`, not overlapping.
        scheme (`str`): target scheme (`IOB2`, `IOB1`, `IOBES`/`BIOES`, `BMES`).

    Returns:
        `list[str]` of length `n_tokens`.

    Raises:
        `ValueError` for an out-of-range, empty or overlapping span.
    """
    scheme = canonical_scheme(scheme)
    tags = ["O"] * n_tokens
    previous_end, previous_type = -1, None
    for start, end, entity_type in sorted(spans, key=lambda s: (s[0], s[1])):
        if not (0 <= start < end <= n_tokens):
            raise ValueError(f"span {(start, end, entity_type)} is empty or outside 0..{n_tokens}")
        if start < previous_end:
            raise ValueError(f"span {(start, end, entity_type)} overlaps the span ending at {previous_end}")
        if not entity_type or entity_type == "O":
            raise ValueError(f"span {(start, end, entity_type)} has no entity type")
        if scheme == "IOB2":
            tags[start:end] = [f"B-{entity_type}"] + [f"I-{entity_type}"] * (end - start - 1)
        elif scheme == "IOB1":
            first = "B" if (previous_end == start and previous_type == entity_type) else "I"
            tags[start:end] = [f"{first}-{entity_type}"] + [f"I-{entity_type}"] * (end - start - 1)
        else:
            inside = "I" if scheme == "IOBES" else "M"
            if end - start == 1:
                tags[start] = f"S-{entity_type}"
            else:
                tags[start:end] = (
                    [f"B-{entity_type}"] + [f"{inside}-{entity_type}"] * (end - start - 2) + [f"E-{entity_type}"]
                )
        previous_end, previous_type = end, entity_type
    return tags


# ---- tags -> spans ------------------------------------------------------------------------------
def split_tag(tag: str) -> tuple[str, str | None]:
    """`"B-CHEM"` -> `("B", "CHEM")`, `"O"` -> `("O", None)`; `ValueError` for anything else."""
    if tag == "O":
        return "O", None
    match = _TAG.match(tag)
    if match is None:
        raise ValueError(f"malformed tag {tag!r}: expected O or B-/I-/M-/E-/S- followed by a type")
    return match.group(1), match.group(2)


def tags_to_spans(tags: Sequence[str]) -> list[Span]:
    """Decode well-formed tags of any scheme into spans with the lenient rule of the module docstring.

    Raises:
        `ValueError` naming the position of a malformed tag (use `normalize_tag` / `repair_tags` first).
    """
    spans: list[Span] = []
    start, open_type = None, None  # the open entity, if any
    for position, tag in enumerate(tags):
        try:
            prefix, entity_type = split_tag(tag)
        except ValueError as error:
            raise ValueError(f"position {position}: {error}") from None
        continues = prefix in "IME" and open_type == entity_type and start is not None
        if not continues:
            if start is not None:
                spans.append((start, position, open_type))
            start, open_type = (None, None) if prefix == "O" else (position, entity_type)
        if prefix in "ES" and start is not None:
            spans.append((start, position + 1, open_type))
            start, open_type = None, None
    if start is not None:
        spans.append((start, len(tags), open_type))
    return spans


def count_entities(tag_sequences: Iterable[Sequence[str] | None]) -> Counter:
    """Entities per type over many well-formed tag sequences (`None` sequences are skipped)."""
    counts: Counter = Counter()
    for tags in tag_sequences:
        if tags is not None:
            counts.update(entity_type for _, _, entity_type in tags_to_spans(tags))
    return counts


def convert_scheme(tags: Sequence[str], target: str = "IOB2") -> list[str]:
    """Re-encode well-formed tags of any scheme in `target` (e.g. IOB1 or BMES -> IOB2)."""
    return spans_to_tags(len(tags), tags_to_spans(tags), target)


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of well-formed tags: BMES if `M-` occurs, IOBES if `E-`/`S-` occur, IOB1 if
    entities starting with `I-` outnumber those starting with `B-` (IOB1 files have almost no `B-`),
    otherwise IOB2."""
    prefixes: Counter = Counter()
    starts: Counter = Counter()
    for tags in tag_sequences:
        for start, _, _ in tags_to_spans(tags):
            starts[tags[start][0]] += 1
        prefixes.update(tag[0] for tag in tags)
    if prefixes["M"]:
        return "BMES"
    if prefixes["E"] or prefixes["S"]:
        return "IOBES"
    return "IOB1" if starts["I"] > starts["B"] else "IOB2"


# ---- validation and repair -----------------------------------------------------------------------
@dataclass(frozen=True)
class TagProblem:
    """A tag that is malformed or breaks the scheme, at a 0-based position, and how it was read."""

    position: int
    tag: str
    message: str
    repaired_to: str = ""
    kind: str = "spelling"  # "spelling" (normalize_tag changed it) or "scheme" (broke the scheme)


def normalize_tag(tag: str, o_prefix: str = "inside") -> tuple[str, str | None]:
    """Normalise one tag's spelling. Returns `(tag, problem)`, `problem` is `None` when unchanged.

    `i-CHEM` -> `I-CHEM`; `B_CHEM` -> `B-CHEM`; `o` -> `O`; `O-SYMP` -> `I-SYMP` (or `O` with
    `o_prefix="outside"`; `"auto"` is decided from the context by `repair_tags`); an unknown
    one-letter prefix (`T-TIME`) -> `I-TIME`; a bare type
    (`CHEM`, as in IO tagging) -> `I-CHEM`. `I-` forms are then decoded leniently (continue a
    same-type entity, else start one).

    Raises:
        `ValueError` for an empty tag or a prefix without a type (`B-`).
    """
    if _TAG.match(tag) or tag == "O":
        return tag, None
    stripped = tag.strip()
    if not stripped or stripped in {"-", "_"}:
        raise ValueError(f"malformed tag {tag!r}: empty")
    if stripped.upper() == "O":
        return "O", f"'{tag}' read as 'O'"
    match = _LOOSE_TAG.match(stripped)
    if match is None:
        if re.search(r"[-_]$", stripped) or re.match(r"^[A-Za-z]?[-_]", stripped):
            raise ValueError(f"malformed tag {tag!r}: a prefix without an entity type")
        return f"I-{stripped}", f"'{tag}' has no B-/I- prefix, read as 'I-{stripped}'"
    prefix, entity_type = match.group(1).upper(), match.group(2)
    if prefix == "O":
        if o_prefix == "outside":
            return "O", f"'{tag}' read as 'O'"
        return f"I-{entity_type}", f"'{tag}' read as 'I-{entity_type}'"
    if prefix not in "BIMES":
        return f"I-{entity_type}", f"unknown prefix in '{tag}', read as 'I-{entity_type}'"
    fixed = f"{prefix}-{entity_type}"
    return fixed, f"'{tag}' read as '{fixed}'"


def validate_tags(tags: Sequence[str], scheme: str = "IOB2", o_prefix: str = "auto") -> list[TagProblem]:
    """Every malformed tag and every scheme violation (e.g. an orphan `I-X` in IOB2), by position."""
    return repair_tags(tags, scheme, o_prefix=o_prefix).problems


@dataclass
class Repair:
    """Result of `repair_tags`.

    Attributes:
        tags: the repaired tags in the target scheme.
        spans: the decoded entities (same for input and output).
        problems: what was wrong in the input, by position.
        repaired_spans: indices into `spans` of entities that contain a problem.
    """

    tags: list[str]
    spans: list[Span]
    problems: list[TagProblem] = field(default_factory=list)
    repaired_spans: list[int] = field(default_factory=list)


def repair_tags(tags: Sequence[str], scheme: str = "IOB2", target: str | None = None, o_prefix: str = "auto") -> Repair:
    """Normalise, decode leniently and re-encode tags; report what differed from `scheme`.

    Args:
        tags: tags as read (may be malformed).
        scheme (`str`): the scheme the input claims to use; positions whose tag differs from the
            canonical encoding in that scheme are problems (an orphan `I-X` in IOB2 but not in IOB1).
        target (`str`, *optional*): scheme of the returned tags, defaults to `scheme`.
        o_prefix (`str`): how to read `O-X`: `"auto"` (default) as `I-X` where it follows a `B-X`/`I-X`
            (a slip inside an entity) and as `O` elsewhere; `"inside"` always as `I-X`; `"outside"`
            always as `O`.

    Raises:
        `ValueError` for a tag that cannot be read (see `normalize_tag`), naming its position.
    """
    scheme = canonical_scheme(scheme)
    target = canonical_scheme(target or scheme)
    if o_prefix not in O_PREFIX_POLICIES:
        raise ValueError(f"o_prefix must be one of {O_PREFIX_POLICIES}, got {o_prefix!r}")
    normalized, problems = [], []
    for position, tag in enumerate(tags):
        try:
            fixed, problem = normalize_tag(tag, o_prefix)
        except ValueError as error:
            raise ValueError(f"position {position}: {error}") from None
        if o_prefix == "auto" and problem and _O_PREFIXED.match(tag.strip()):
            previous = normalized[-1] if normalized else "O"
            if previous == "O" or previous[0] not in "BIM" or previous[2:] != fixed[2:]:
                fixed, problem = "O", f"'{tag}' outside an entity of its type, read as 'O'"
        normalized.append(fixed)
        if problem:
            problems.append(TagProblem(position, tag, problem, fixed))
    spans = tags_to_spans(normalized)
    canonical = spans_to_tags(len(tags), spans, scheme)
    malformed_at = {p.position for p in problems}
    for position, (got, expected) in enumerate(zip(normalized, canonical)):
        if got != expected and position not in malformed_at:
            problems.append(
                TagProblem(
                    position, tags[position], f"'{got}' breaks {scheme} here, read as '{expected}'", expected, "scheme"
                )
            )
    problems.sort(key=lambda p: p.position)
    problem_positions = sorted({p.position for p in problems})
    repaired_spans = [i for i, (s, e, _) in enumerate(spans) if any(s <= p < e for p in problem_positions)]
    out = canonical if target == scheme else spans_to_tags(len(tags), spans, target)
    return Repair(out, spans, problems, repaired_spans)


# ---- overlaps ------------------------------------------------------------------------------------
def resolve_overlaps(spans: Sequence[tuple], policy: str = "longest") -> tuple[list[int], list[tuple[int, int]]]:
    """Choose a non-overlapping subset of spans for flat tagging.

    Policies: `"longest"` keeps the longest span first, ties broken by the earliest start, then
    by input order (so of two spans with the same offsets and different types the first listed
    wins); `"earliest"` keeps the earliest start first, ties broken by the longest; `"error"`
    raises `ValueError` at the first overlap. Spans only need `span[0]` (start) and `span[1]`
    (end, exclusive), so token spans and character spans both work.

    Returns:
        `(kept, dropped)`: indices of kept spans in input order, and `(dropped_index,
        blocking_kept_index)` pairs.
    """
    if policy not in OVERLAP_POLICIES:
        raise ValueError(f"unknown overlap policy {policy!r}; expected one of {OVERLAP_POLICIES}")
    if policy == "earliest":
        order = sorted(range(len(spans)), key=lambda i: (spans[i][0], -(spans[i][1] - spans[i][0]), i))
    else:
        order = sorted(range(len(spans)), key=lambda i: (-(spans[i][1] - spans[i][0]), spans[i][0], i))
    owner: dict[int, int] = {}  # position -> index of the kept span covering it
    kept, dropped = [], []
    for index in order:
        start, end = spans[index][0], spans[index][1]
        blocking = next((owner[p] for p in range(start, end) if p in owner), None)
        if blocking is None:
            kept.append(index)
            owner.update((p, index) for p in range(start, end))
        elif policy == "error":
            raise ValueError(f"span {tuple(spans[index])} overlaps span {tuple(spans[blocking])}")
        else:
            dropped.append((index, blocking))
    return sorted(kept), sorted(dropped)
