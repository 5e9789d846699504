"""Every data set in ../shared/data converts to the counts its DATASET.md gives, minus exactly what
the conversion report lists. Skipped when the data is absent; a few seconds each."""

import pytest

from mamba_ner.data import read_brat_documents, read_conll, read_rocling
from mamba_ner.data.bio import count_entities, tags_to_spans
from mamba_ner.data.brat import spans_from_sentences

pytestmark = pytest.mark.realdata

# Per-type entity counts as written in each DATASET.md ("Per type" lines and count tables).
ROCLING22 = {
    "BODY": 5316,
    "SYMP": 1947,
    "DISE": 2609,
    "CHEM": 1719,
    "DRUG": 481,
    "TREAT": 468,
    "INST": 250,
    "EXAM": 207,
    "TIME": 198,
    "SUPP": 183,
}
ROCLING23 = {
    "FT": {
        "BODY": 2461,
        "SYMP": 2636,
        "DISE": 2300,
        "CHEM": 1124,
        "DRUG": 932,
        "TREAT": 512,
        "TIME": 423,
        "EXAM": 223,
        "INST": 191,
        "SUPP": 47,
    },
    "SM": {
        "BODY": 2572,
        "SYMP": 2280,
        "DISE": 1322,
        "DRUG": 746,
        "EXAM": 511,
        "TREAT": 363,
        "CHEM": 321,
        "SUPP": 92,
        "TIME": 44,
        "INST": 41,
    },
    "WA": {
        "BODY": 3843,
        "DISE": 1970,
        "SYMP": 1890,
        "CHEM": 748,
        "DRUG": 451,
        "TREAT": 308,
        "EXAM": 180,
        "TIME": 166,
        "INST": 149,
        "SUPP": 56,
    },
}
ROCLING23_SIZES = {"FT": (2035, 149_276), "SM": (2208, 98_317), "WA": (2381, 92_498)}
HEALTHNER = {
    "BODY": 3171,
    "SYMP": 1481,
    "DISE": 1005,
    "CHEM": 744,
    "EXAM": 404,
    "TREAT": 203,
    "SUPP": 122,
    "DRUG": 79,
    "TIME": 54,
    "INST": 42,
}
RUIJIN = {
    "Test": 44476,
    "Disease": 34413,
    "Anatomy": 23392,
    "Drug": 13541,
    "Test_Value": 8776,
    "Symptom": 4291,
    "Reason": 3766,
    "Level": 1539,
    "Amount": 1078,
    "Treatment": 1036,
    "Duration": 982,
    "Method": 874,
    "SideEff": 749,
    "Operation": 630,
    "Frequency": 485,
}
CONLL = {  # file: (documents, sentences, tokens, LOC, MISC, ORG, PER)
    "eng.train": (946, 14041, 203621, 7140, 3438, 6321, 6600),
    "eng.testa": (216, 3250, 51362, 1837, 922, 1341, 1842),
    "eng.testb": (231, 3453, 46435, 1668, 702, 1661, 1617),
}


def _documented_total(folder, total):
    """The total must appear, with thousands separators, in the folder's DATASET.md."""
    assert f"{total:,}" in (folder / "DATASET.md").read_text(encoding="utf-8")


def _assert_output_matches_report(sentences, report, expected_read):
    report.check()
    assert dict(report.read) == expected_read
    produced = count_entities(s.tags for s in sentences)
    dropped_per_type = {t: n for t, n in report.dropped.items() if n}
    assert {t: expected_read[t] - dropped_per_type.get(t, 0) for t in expected_read} == {
        t: produced.get(t, 0) for t in expected_read
    }
    assert sum(dropped_per_type.values()) == len(report.items_for("dropped"))


def test_rocling2022_truth_and_test(shared_data):
    folder = shared_data / "rocling2022"
    _documented_total(folder, 13_378)
    sentences, report = read_rocling(folder / "ROCLING22_CHNER_truth.txt")
    assert len(sentences) == 3205 and report.counts["tokens"] == 118_116
    _assert_output_matches_report(sentences, report, ROCLING22)
    assert report.totals["dropped"] == 0
    # 6 IOB2 violations + the lower-case i-CHEM; the lone O-SYMP (between O's) becomes O, listed as a warning
    assert report.totals["repaired"] == 7
    assert report.reasons("repaired") == {
        "IOB2 violation repaired (the tag was re-encoded, see detail)": 6,
        "malformed tag normalised (e.g. i-X -> I-X, O-X -> I-X)": 1,
    }
    (warning,) = report.items_for("warning")
    assert "O-SYMP" in warning.detail and warning.location.endswith(":11988")
    unlabelled, _ = read_rocling(folder / "ROCLING22_CHNER_test.txt")
    assert [s.tokens for s in unlabelled] == [s.tokens for s in sentences] and unlabelled[0].tags is None


@pytest.mark.parametrize("genre", ["FT", "SM", "WA"])
def test_rocling2023_truth_and_test(shared_data, genre):
    folder = shared_data / "rocling2023"
    _documented_total(folder, sum(ROCLING23[genre].values()))
    sentences, report = read_rocling(folder / f"MultiNER-Health_truth_{genre}.txt")
    assert (len(sentences), report.counts["tokens"]) == ROCLING23_SIZES[genre]
    _assert_output_matches_report(sentences, report, ROCLING23[genre])
    assert report.totals["repaired"] == (4 if genre == "FT" else 0) and report.totals["dropped"] == 0
    unlabelled, _ = read_rocling(folder / f"MultiNER-Health_test_{genre}.txt")
    assert [s.tokens for s in unlabelled] == [s.tokens for s in sentences]


def test_healthner_json_lines(shared_data):
    folder = shared_data / "healthner"
    _documented_total(folder, 7305)
    sentences, report = read_rocling(folder / "test.json")
    assert len(sentences) == 2531 and report.counts["tokens"] == 121_284
    _assert_output_matches_report(sentences, report, HEALTHNER)
    assert report.totals["repaired"] == report.totals["dropped"] == 0
    assert sum(1 for s in sentences if not any(t != "O" for t in s.tags)) == 807


def test_ruijin_brat(shared_data):
    folder = shared_data / "ruijin-brat"
    _documented_total(folder, 140_028)
    documents, report = read_brat_documents(folder / "train")
    sentences = [s for d in documents for s in d.sentences]
    assert len(documents) == 363 and report.counts["characters"] == 3_205_776
    _assert_output_matches_report(sentences, report, RUIJIN)
    reasons = report.reasons("dropped")
    # DATASET.md: 57 same-span pairs with two types, 9 crossing pairs, the rest of the 435 nested
    assert reasons["same tokens as a kept entity of another type"] == 57
    assert reasons["crosses a kept entity"] == 9
    assert set(reasons) == {
        "same tokens as a kept entity of another type",
        "crosses a kept entity",
        "nested inside a longer kept entity",
    }
    # 12,529 discontinuous entities, all split by one line break: joined, unless dropped as an overlap
    assert report.reasons("merged") == {"discontinuous fragments joined (gaps are whitespace)": report.totals["merged"]}
    dropped_lines = {item.location for item in report.items_for("dropped")}
    discontinuous_lines = _discontinuous_lines(folder / "train")
    assert len(discontinuous_lines) == 12_529
    assert report.totals["merged"] + len(discontinuous_lines & dropped_lines) == 12_529
    # 9 surface mismatches, listed as warnings; offsets are used
    assert len(report.items_for("warning")) == 9
    # entities never cut by a sentence boundary, and predictions map back to the kept entities
    for document in documents[:20]:
        assert spans_from_sentences(document.sentences)[document.doc_id] == [e.span for e in document.entities]


def _discontinuous_lines(folder):
    lines = set()
    for ann in sorted(folder.glob("*.ann")):
        for number, line in enumerate(ann.read_text(encoding="utf-8").splitlines(), start=1):
            if line.startswith("T") and ";" in line.split("\t")[1]:
                lines.add(f"{ann}:{number}")
    return lines


@pytest.mark.parametrize("name", sorted(CONLL))
def test_conll2003(shared_data, name):
    folder = shared_data / "conll2003"
    documents, n_sentences, n_tokens, *per_type = CONLL[name]
    expected = dict(zip(["LOC", "MISC", "ORG", "PER"], per_type))
    _documented_total(folder, sum(per_type))
    sentences, report = read_conll(folder / name)
    assert (report.counts["documents"], len(sentences), report.counts["tokens"]) == (documents, n_sentences, n_tokens)
    assert report.counts["docstart lines"] == documents
    _assert_output_matches_report(sentences, report, expected)
    assert any("detected as IOB1" in note for note in report.notes)
    # IOB1 -> IOB2: every entity now starts with B-
    assert all(tags[s].startswith("B-") for tags in (x.tags for x in sentences) for s, _, _ in tags_to_spans(tags))
    # the only repairs are IOB1 B- tags that do not follow an entity of the same type
    assert all("breaks IOB1" in item.detail for item in report.items_for("repaired"))


@pytest.mark.parametrize(
    "name, read_total, removed, sizes",
    [
        ("healthner", 13_378 + 10_849 + 8_292 + 9_761 + 7_305, 1, (8845, 983, 2531)),
        ("rocling22", 7_305 + 10_849 + 8_292 + 9_761 + 13_378, 2, (8237, 916, 3205)),
        ("conll03", 23_499 + 5_942 + 5_648, None, (None, 3250, 3453)),
        ("ruijin", 140_028, None, (None, None, None)),
    ],
)
def test_protocols(shared_data, name, read_total, removed, sizes):
    from mamba_ner.data.protocols import load_protocol

    dataset, report = load_protocol(name, shared_data)
    report.check()
    assert report.totals["read"] == read_total
    produced = 0
    for split in dataset.values():
        names = split.features["ner_tags"].feature.names  # (Dataset.features copies: read it once)
        produced += sum(len(tags_to_spans([names[i] for i in row])) for row in split["ner_tags"])
    assert produced == report.totals["read"] - report.totals["dropped"] == report.totals["kept"]
    if removed is not None:
        assert sum(report.reasons("removed").values()) == removed
    for split, size in zip(("train", "validation", "test"), sizes):
        if size is not None:
            assert len(dataset[split]) == size
    train = {tuple(t) for t in dataset["train"]["tokens"]}
    assert not train & {tuple(t) for t in dataset["test"]["tokens"]}
    if name == "ruijin":
        docs = {split: set(dataset[split]["doc_id"]) for split in dataset}
        assert (len(docs["train"]), len(docs["validation"]), len(docs["test"])) == (289, 37, 37)
