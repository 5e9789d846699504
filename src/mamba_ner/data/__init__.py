"""Data layer: one reader/writer per format, a shared BIO core and a conversion report.

    sentences, report = read_files("rocling", ["train.txt"])       # or "brat", "conll"
    print(report.summary())

`mamba_ner.data.features` (DatasetDict building, splits) and `mamba_ner.data.protocols` (the
benchmark protocols) import `datasets` and are therefore not imported here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .records import DataFormatError, Document, Entity, Sentence
from .report import ConversionReport, ReportItem

FORMATS = ("rocling", "brat", "conll")


def read_files(fmt: str, paths: Iterable[str | Path] | str | Path, **options) -> tuple[list[Sentence], ConversionReport]:
    """Read files of one format into sentences plus a report.

    Args:
        fmt (`str`): `"rocling"`, `"brat"` or `"conll"`.
        paths: files (brat: folders, `.txt`/`.ann` files or stems).
        **options: passed to `read_rocling`, `read_brat` or `read_conll`.
    """
    if fmt == "rocling":
        from .rocling import read_rocling as reader
    elif fmt == "brat":
        from .brat import read_brat as reader
    elif fmt == "conll":
        from .conll import read_conll as reader
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    return reader(paths, **options)


def __getattr__(name):  # readers and writers, imported on first use
    lazy = {
        "read_rocling": "rocling", "write_rocling": "rocling",
        "read_conll": "conll", "write_conll": "conll",
        "read_brat": "brat", "read_brat_documents": "brat", "write_brat": "brat", "spans_from_sentences": "brat",
    }
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(f".{lazy[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMATS", "ConversionReport", "DataFormatError", "Document", "Entity", "ReportItem", "Sentence", "read_files",
    "read_rocling", "write_rocling", "read_conll", "write_conll", "read_brat", "read_brat_documents", "write_brat",
    "spans_from_sentences",
]
