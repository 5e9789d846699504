"""Data layer: one reader/writer per format, a shared BIO core and a conversion report.

    sentences, report = read_files("rocling", ["train.txt"])       # or "brat", "conll"
    print(report.summary())

`mamba_ner.data.features` (DatasetDict building, splits) and `mamba_ner.data.protocols` (the
benchmark protocols) import `datasets` and are therefore not imported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .brat import read_brat, read_brat_documents, spans_from_sentences, write_brat
from .conll import read_conll, write_conll
from .records import DataFormatError, Document, Entity, Sentence
from .report import ConversionReport, ReportItem
from .rocling import read_rocling, write_rocling

FORMATS = ("rocling", "brat", "conll")


def read_files(
    fmt: str, paths: Iterable[str | Path] | str | Path, **options
) -> tuple[list[Sentence], ConversionReport]:
    """Read files of one format into sentences plus a report.

    Args:
        fmt (`str`): `"rocling"`, `"brat"` or `"conll"`.
        paths: files (brat: folders, `.txt`/`.ann` files or stems).
        **options: passed to `read_rocling`, `read_brat` or `read_conll`.
    """
    readers = {"rocling": read_rocling, "brat": read_brat, "conll": read_conll}
    if fmt not in readers:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    return readers[fmt](paths, **options)


__all__ = [
    "FORMATS",
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
