"""The records every reader returns and every writer takes.

A `Sentence` is one tagged token sequence (a training example). A `Document` keeps what only
standoff formats (brat) have: the full text and character-offset entities, so that predictions
can be written back as `.ann` files. `DataFormatError` is the one error type readers raise for
malformed input; it names the file, the line (or character offset) and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Sentence:
    """One token sequence with its tags.

    Args:
        tokens (`list[str]`): the tokens (characters for Chinese, words for space-separated text).
        tags (`list[str]` or `None`): one tag per token, in the scheme the reader was asked for
            (IOB2 by default); `None` for unlabelled input (prediction files).
        doc_id (`str`): the document the sentence belongs to (file stem, `stem#3` for the 3rd
            `-DOCSTART-` document of a CoNLL file, or the brat document name).
        index (`int`): position of the sentence within its document, from 0.
        offsets (`list[tuple[int, int]]`, *optional*): per token `(start, end)` character offsets
            in the document text (end exclusive); only where a text exists (brat, raw text).
        source (`str`): where the sentence starts, `file:line` or `file:offset`. Not part of
            equality, so a round trip through another file name compares equal.
    """

    tokens: list[str]
    tags: list[str] | None
    doc_id: str
    index: int
    offsets: list[tuple[int, int]] | None = None
    source: str = field(default="", compare=False)

    def __post_init__(self):
        if self.tags is not None and len(self.tags) != len(self.tokens):
            raise ValueError(f"{self.source or self.doc_id}: {len(self.tokens)} tokens but {len(self.tags)} tags")
        if self.offsets is not None and len(self.offsets) != len(self.tokens):
            raise ValueError(f"{self.source or self.doc_id}: {len(self.tokens)} tokens but {len(self.offsets)} offsets")

    @property
    def text(self) -> str:
        """The tokens joined without separator (the sentence string for Chinese char-per-token data)."""
        return "".join(self.tokens)


@dataclass(frozen=True)
class Entity:
    """An entity as character offsets into a document text (end exclusive).

    `fragments` keeps the original discontinuous pieces of a brat entity (`;`-separated); for a
    continuous entity it is `((start, end),)`. `ann_id` is the brat id (`T12`), `source` the
    `file:line` where it was read; neither takes part in equality (a rewrite renumbers the ids).
    """

    start: int
    end: int
    type: str
    fragments: tuple[tuple[int, int], ...] = ()
    ann_id: str = field(default="", compare=False)
    source: str = field(default="", compare=False)

    def __post_init__(self):
        if not self.fragments:
            object.__setattr__(self, "fragments", ((self.start, self.end),))

    @property
    def span(self) -> tuple[int, int, str]:
        return (self.start, self.end, self.type)


@dataclass
class Document:
    """A whole document of a standoff format: its text, its (kept) entities and its sentences."""

    doc_id: str
    text: str
    entities: list[Entity] | None
    sentences: list[Sentence]
    source: str = field(default="", compare=False)


class DataFormatError(ValueError):
    """Malformed input. The message reads `file:line: expected ..., found ...`.

    Attributes:
        path (`str`): the file.
        line (`int` or `None`): 1-based line number where the problem is (or `None`).
        expected (`str`): what the reader expected there.
        found (`str`): what it found (shortened).
        offset (`int` or `None`): character offset, for problems located in a text rather than a line.
    """

    def __init__(self, path, line: int | None, expected: str, found: str = "", offset: int | None = None):
        self.path = str(path)
        self.line = line
        self.expected = expected
        self.found = found
        self.offset = offset
        where = self.path
        if line is not None:
            where += f":{line}"
        elif offset is not None:
            where += f":offset {offset}"
        message = f"{where}: expected {expected}"
        if found:
            message += f", found {_shorten(found)}"
        super().__init__(message)

    @property
    def location(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}"
        if self.offset is not None:
            return f"{self.path}:offset {self.offset}"
        return self.path


def _shorten(text: str, limit: int = 80) -> str:
    text = repr(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
