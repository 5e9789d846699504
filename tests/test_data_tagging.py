"""`tagging.read_tagged_files`: the file loop shared by the CoNLL and ROCLING readers."""

from pathlib import Path

import pytest

from mamba_ner.data import conll, rocling
from mamba_ner.data.conll import read_conll
from mamba_ner.data.rocling import read_rocling
from mamba_ner.data.tagging import RawSentence, read_tagged_files

OPTIONS = {"input_scheme": "IOB2", "scheme": "IOBES", "o_prefix": "auto", "on_error": "skip"}


def fake_reader(calls, n_documents=2, skipped=frozenset()):
    def read_file(path, report):
        calls.append((path, report))
        raw = [
            RawSentence(["头", "痛"], ["B-Sym", "I-Sym"], [1, 2], path.stem, 0),
            RawSentence(["发", "热"], ["B-Sym", "I-Sym"], [4, 5], path.stem, 1),
        ]
        return raw, set(skipped), n_documents

    return read_file


def test_one_report_over_all_files_with_file_and_document_counts():
    calls = []
    sentences, report = read_tagged_files(["a.txt", Path("b.txt")], fake_reader(calls), **OPTIONS)
    assert [path for path, _ in calls] == [Path("a.txt"), Path("b.txt")]
    assert all(r is report for _, r in calls)  # every file writes into the one report
    assert report.counts["files"] == 2 and report.counts["documents"] == 4 and report.counts["sentences"] == 4
    assert [(s.doc_id, s.index, s.tags, s.source) for s in sentences[:2]] == [
        ("a", 0, ["B-Sym", "E-Sym"], "a.txt:1"),
        ("a", 1, ["B-Sym", "E-Sym"], "a.txt:4"),
    ]
    report.check()
    assert report.totals == {"read": 4, "kept": 4, "dropped": 0, "repaired": 0, "merged": 0}


def test_single_path_skipped_sentences_and_on_error_check():
    calls = []
    sentences, report = read_tagged_files("a.txt", fake_reader(calls, n_documents=1, skipped={1}), **OPTIONS)
    assert [path for path, _ in calls] == [Path("a.txt")]
    assert [s.text for s in sentences] == ["头痛"]
    report.check()
    assert report.totals["read"] == 2 and report.totals["dropped"] == 1
    assert report.counts["files"] == 1 and report.counts["documents"] == 1
    with pytest.raises(ValueError, match="on_error must be one of"):
        read_tagged_files("a.txt", fake_reader(calls), **{**OPTIONS, "on_error": "ignore"})
    assert len(calls) == 1  # checked before any file is read


def test_conll_and_rocling_readers_share_the_loop(fixtures_dir, monkeypatch):
    seen = []

    def spy(paths, read_file, **options):
        seen.append(options)
        return read_tagged_files(paths, read_file, **options)

    monkeypatch.setattr(conll, "read_tagged_files", spy)
    monkeypatch.setattr(rocling, "read_tagged_files", spy)
    _, conll_report = read_conll(fixtures_dir / "data" / "conll" / "iob1_docstart.txt")
    _, rocling_report = read_rocling(fixtures_dir / "data" / "rocling" / "basic_lf.txt", scheme="IOBES")
    assert seen == [
        {"input_scheme": "auto", "scheme": "IOB2", "o_prefix": "auto", "on_error": "raise"},
        {"input_scheme": "IOB2", "scheme": "IOBES", "o_prefix": "auto", "on_error": "raise"},
    ]
    assert conll_report.counts["files"] == 1 and conll_report.counts["documents"] >= 1
    assert rocling_report.counts["files"] == 1 and rocling_report.counts["documents"] == 1
