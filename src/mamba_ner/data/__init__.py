"""Data layer: one reader/writer per format, a shared BIO core and a conversion report.

    sentences, report = read_files("rocling", ["train.txt"])       # or "brat", "conll"
    print(report.summary())

`mamba_ner.data.features` (DatasetDict building, splits) and `mamba_ner.data.protocols` (the
benchmark protocols) import `datasets` and are therefore not imported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import inspect

from .brat import read_brat, read_brat_documents, spans_from_sentences, write_brat
from .conll import read_conll, write_conll
from .detect import FORMAT_ALIASES, READ_FORMATS, detect_format, expand_folders, format_choices, resolve_format
from .records import DataFormatError, Document, Entity, Sentence
from .report import ConversionReport, ReportItem
from .rocling import read_rocling, write_rocling
from .spanjson import read_spanjson

FORMATS = READ_FORMATS
READERS = {"rocling": read_rocling, "brat": read_brat, "conll": read_conll, "spanjson": read_spanjson}


def read_files(
    fmt: str | None, paths: Iterable[str | Path] | str | Path, *, per_format: dict | None = None, **options
) -> tuple[list[Sentence], ConversionReport]:
    """Read files of one format into sentences plus a report.

    Args:
        fmt (`str` or `None`): `"rocling"`, `"brat"`, `"conll"`, `"spanjson"`, an alias (`"bmes"`,
            `"bioes"`: CoNLL with that input scheme) or `None`/`"auto"` to detect it from the
            content (`detect.detect_format`; the choice and its reason are logged).
        paths: files or folders (a folder stands for the files in it).
        **options: passed to the reader (`read_rocling`, `read_brat`, `read_conll`,
            `read_spanjson`); with a detected format, options the chosen reader does not take are
            left out, so one set of options can serve any format.
        per_format (`dict`, *optional*): reader name -> options used only when that reader is chosen.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    reader_name, implied = resolve_format(fmt, paths)
    reader = READERS[reader_name]
    options = {**options, **(per_format or {}).get(reader_name, {}), **implied}
    if fmt is None or fmt == "auto":
        accepted = inspect.signature(read_brat_documents if reader_name == "brat" else reader).parameters
        options = {key: value for key, value in options.items() if key in accepted}
    if reader_name != "brat":  # brat pairs .txt/.ann itself; the others read the files of a folder
        paths = expand_folders(paths)
    return reader(paths, **options)


__all__ = [
    "FORMATS",
    "FORMAT_ALIASES",
    "READERS",
    "detect_format",
    "format_choices",
    "read_spanjson",
    "ConversionReport",
    "DataFormatError",
    "Document",
    "Entity",
    "ReportItem",
    "Sentence",
    "read_brat",
    "read_brat_documents",
    "read_conll",
    "read_files",
    "read_rocling",
    "spans_from_sentences",
    "write_brat",
    "write_conll",
    "write_rocling",
]
