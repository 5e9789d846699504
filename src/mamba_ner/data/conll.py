"""CoNLL column files: reader and writer.

One token per line, columns separated by spaces/tabs (or a chosen delimiter), sentences separated
by blank lines, documents started by a `-DOCSTART-` line in any form (`-DOCSTART- -X- O O`,
`-DOCSTART- -X- -X- O`, ...: only the first field is looked at). The token and tag columns are
chosen by index (defaults: first and last). Tags in IOB1, IOB2, IOBES/BIOES or BMES are
normalised to the scheme asked for (IOB2 by default); `input_scheme="auto"` detects the scheme
per file and notes it in the report.

Documents are numbered per file: `doc_id` is `"<stem>#<k>"`, `k` counting `-DOCSTART-` lines
(`#0` for a file without any), and `Sentence.index` counts sentences within the document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .bio import convert_scheme
from .records import DataFormatError, Sentence
from .report import ConversionReport
from .tagging import RawSentence, check_segmentation_digits, iter_lines, read_tagged_files

DOCSTART = "-DOCSTART-"
_WHITESPACE = re.compile(r"[ \t]+")


def read_conll(
    paths: Iterable[str | Path] | str | Path,
    *,
    token_column: int = 0,
    tag_column: int | None = -1,
    scheme: str = "IOB2",
    input_scheme: str = "auto",
    delimiter: str | None = None,
    o_prefix: str = "auto",
    on_error: str = "raise",
    strip_segmentation_digits: bool = False,
) -> tuple[list[Sentence], ConversionReport]:
    """Read CoNLL-style column files.

    Args:
        paths: one file or several.
        token_column (`int`): index of the token column (negative counts from the end).
        tag_column (`int` or `None`): index of the tag column; `None` for unlabelled input.
        scheme (`str`): scheme of the returned tags (`IOB2` default, or `IOB1`, `IOBES`, `BMES`).
        input_scheme (`str`): scheme of the files, or `"auto"` (default) to detect it per file.
        delimiter (`str`, *optional*): column separator; default any run of spaces/tabs.
        o_prefix (`str`): read `O-X` as `I-X` after a same-type `B-`/`I-` and as `O` elsewhere
            (`"auto"`, default), always as `I-X` (`"inside"`) or always as `O` (`"outside"`).
        on_error (`str`): `"raise"` or `"skip"` (drop the sentence, itemise it in the report).
        strip_segmentation_digits (`bool`): remove the word-segmentation digit of Weibo NER tokens
            (`科0` -> `科`); without it such files are only warned about (`tagging.check_segmentation_digits`).

    Returns:
        `(sentences, report)`; `report.counts` has `documents`, `sentences`, `tokens` and the
        number of `-DOCSTART-` lines.
    """
    def read_file(path: Path, report: ConversionReport):
        raw, skipped, n_documents = _read_file(path, token_column, tag_column, delimiter, report, on_error)
        check_segmentation_digits(raw, path, report, strip_segmentation_digits)
        return raw, skipped, n_documents

    return read_tagged_files(
        paths,
        read_file,
        input_scheme=input_scheme,
        scheme=scheme,
        o_prefix=o_prefix,
        on_error=on_error,
    )


def _read_file(
    path: Path,
    token_column: int,
    tag_column: int | None,
    delimiter: str | None,
    report: ConversionReport,
    on_error: str,
):
    raw_sentences: list[RawSentence] = []
    skipped: set[int] = set()
    n_columns = None
    doc_index, index_in_doc, docs_with_sentences = 0, 0, set()
    saw_docstart = False
    tokens, tags, lines, bad = [], [], [], False

    def flush():
        nonlocal tokens, tags, lines, bad, index_in_doc
        if tokens:
            if bad:
                skipped.add(len(raw_sentences))
            doc_id = f"{path.stem}#{doc_index}"
            raw_sentences.append(
                RawSentence(tokens, tags if tag_column is not None else None, lines, doc_id, index_in_doc)
            )
            docs_with_sentences.add(doc_index)
            index_in_doc += 1
        tokens, tags, lines, bad = [], [], [], False

    for number, text in iter_lines(path, report, on_error):
        if text is None:
            bad = True
            tokens.append("")
            tags.append("O")
            lines.append(number)
            continue
        stripped = text.strip(" \t")
        if not stripped.strip():
            flush()
            continue
        fields = stripped.split(delimiter) if delimiter else _WHITESPACE.split(stripped)
        if fields[0] == DOCSTART:
            flush()
            report.counts["docstart lines"] += 1
            if saw_docstart or docs_with_sentences:
                doc_index += 1
            saw_docstart, index_in_doc = True, 0
            continue
        if n_columns is None:
            n_columns = len(fields)
            _check_columns(path, number, n_columns, token_column, tag_column, text)
        if len(fields) != n_columns:
            if on_error == "raise":
                raise DataFormatError(path, number, f"{n_columns} columns like the first token line", text)
            report.note_item(
                "skipped", "line with a wrong number of columns; its sentence was skipped", f"{path}:{number}", text
            )
            bad = True
            fields = (fields + ["O"] * n_columns)[:n_columns]
        tokens.append(fields[token_column])
        tags.append(fields[tag_column] if tag_column is not None else "O")
        lines.append(number)
    flush()
    return raw_sentences, skipped, len(docs_with_sentences)


def _check_columns(
    path: Path, number: int, n_columns: int, token_column: int, tag_column: int | None, text: str
) -> None:
    for name, column in (("token", token_column), ("tag", tag_column)):
        if column is not None and not -n_columns <= column < n_columns:
            raise DataFormatError(
                path, number, f"a {name} column {column} (the first token line has {n_columns} columns)", text
            )
    if tag_column is not None and token_column % n_columns == tag_column % n_columns:
        raise DataFormatError(
            path,
            number,
            f"different token and tag columns (both are column {token_column % n_columns}; "
            "use tag_column=None for unlabelled input)",
            text,
        )


def write_conll(
    sentences: Iterable[Sentence],
    path: str | Path,
    *,
    scheme: str | None = None,
    docstart: bool = True,
    delimiter: str = " ",
    newline: str = "\n",
) -> Path:
    """Write `token tag` lines (or `token` alone for unlabelled sentences), a blank line after
    each sentence and, with `docstart=True`, a `-DOCSTART- O` line (then a blank line) wherever
    `doc_id` changes. `scheme` re-encodes the tags (e.g. `"IOBES"`); default: as they are.

    Raises:
        `ValueError` if a token is empty, contains the delimiter or whitespace, or is `-DOCSTART-`.
    """
    path = Path(path)
    out, previous_doc = [], None
    for sentence in sentences:
        if docstart and sentence.doc_id != previous_doc:
            out += [DOCSTART if sentence.tags is None else f"{DOCSTART}{delimiter}O", ""]
            previous_doc = sentence.doc_id
        tags = sentence.tags
        if tags is not None and scheme is not None:
            tags = convert_scheme(tags, scheme)
        for position, token in enumerate(sentence.tokens):
            if (
                not token
                or _WHITESPACE.search(token)
                or delimiter in token
                or token != token.strip()
                or token == DOCSTART
            ):
                raise ValueError(
                    f"{sentence.source or sentence.doc_id}: token {position} {token!r} is empty, has whitespace or is {DOCSTART}"
                )
            out.append(token if tags is None else f"{token}{delimiter}{tags[position]}")
        out.append("")
    path.write_text("".join(line + newline for line in out), encoding="utf-8", newline="")
    return path
