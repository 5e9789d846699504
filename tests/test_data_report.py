"""ConversionReport: the invariant, summary and serialisation."""

import json

import pytest

from mamba_ner.data import ConversionReport, DataFormatError, Sentence


def _report():
    report = ConversionReport()
    for entity_type in ["A", "A", "B"]:
        report.entity_read(entity_type)
    report.entity_kept("A", 2)
    report.entity_repaired("A", "orphan I-", "f.txt:3", "I-A after O")
    report.entity_dropped("B", "overlap", "f.ann:7", "inside T1")
    report.note_item("ignored", "relation line", "f.ann:9", "R1 ...")
    report.counts["sentences"] += 4
    report.note("scheme detected as IOB1")
    return report


def test_invariant_holds_and_totals():
    report = _report()
    report.check()
    assert report.totals == {"read": 3, "kept": 2, "dropped": 1, "repaired": 1, "merged": 0}
    assert report.reasons("dropped") == {"overlap": 1}


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda r: r.entity_read("B"), r"B: read 2 != kept 0 \+ dropped 1"),
        (lambda r: [r.entity_repaired("B", "x", "f:1") for _ in range(2)], "B: repaired 2 > read 1"),
        (lambda r: r.dropped.update({"A": 1}), "dropped: itemised"),
        (lambda r: r.counts.update({"ignored: relation line": 1}), "ignored: itemised"),
    ],
)
def test_invariant_violations_are_named(breakage, message):
    report = _report()
    breakage(report)
    with pytest.raises(AssertionError, match=message):
        report.check()


def test_summary_and_to_dict():
    report = _report()
    text = report.summary()
    assert "read 3, kept 2, dropped 1" in text
    assert "f.ann:7 B (inside T1)" in text and "note: scheme detected as IOB1" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["totals"]["read"] == 3
    assert data["per_type"]["dropped"] == {"B": 1}
    assert data["items"][0]["location"] == "f.txt:3"


def test_update_combines_reports():
    combined = ConversionReport().update(_report()).update(_report())
    combined.check()
    assert combined.totals["read"] == 6 and len(combined.items) == 6


def test_entity_removed_moves_kept_to_dropped():
    report = _report()
    report.entity_removed("A", "sentence removed: also in test", "f.txt:3")
    report.check()
    assert report.totals["kept"] == 1 and report.totals["dropped"] == 2
    with pytest.raises(ValueError, match="no kept 'B' entity to remove"):
        report.entity_removed("B", "x", "f:1")


def test_note_item_rejects_entity_actions():
    with pytest.raises(ValueError, match="action must be one of"):
        ConversionReport().note_item("dropped", "x", "f:1")


def test_data_format_error_message():
    error = DataFormatError("a/b.txt", 12, "'char tag' (2 columns)", "x y z")
    assert str(error) == "a/b.txt:12: expected 'char tag' (2 columns), found 'x y z'"
    assert error.location == "a/b.txt:12" and isinstance(error, ValueError)
    assert DataFormatError("d.ann", None, "offsets inside the text", offset=40).location == "d.ann:offset 40"


def test_sentence_checks_lengths_and_ignores_source_in_equality():
    assert Sentence(["a"], ["O"], "d", 0, source="x:1") == Sentence(["a"], ["O"], "d", 0, source="y:9")
    with pytest.raises(ValueError, match="1 tokens but 2 tags"):
        Sentence(["a"], ["O", "O"], "d", 0)
