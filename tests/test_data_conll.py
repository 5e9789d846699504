"""CoNLL reader and writer: columns, -DOCSTART- forms, tag schemes, round trips, random input."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mamba_ner.data import DataFormatError, Sentence, read_files
from mamba_ner.data.bio import SCHEMES, count_entities, spans_to_tags
from mamba_ner.data.conll import read_conll, write_conll


@pytest.fixture
def conll_dir(fixtures_dir):
    return fixtures_dir / "data" / "conll"


def test_iob1_with_both_docstart_forms(conll_dir):
    sentences, report = read_conll(conll_dir / "iob1_docstart.txt")
    assert [s.tokens[0] for s in sentences] == ["Maria", "Acme", "Berlin"]
    assert sentences[0].tags == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    assert sentences[1].tags == ["B-ORG", "I-ORG", "O", "B-PER", "B-PER", "O"]
    assert sentences[2].tags == ["B-LOC", "B-LOC", "O", "O", "O"]
    assert [(s.doc_id, s.index) for s in sentences] == [
        ("iob1_docstart#0", 0),
        ("iob1_docstart#0", 1),
        ("iob1_docstart#1", 0),
    ]
    report.check()
    assert report.totals == {"read": 7, "kept": 7, "dropped": 0, "repaired": 0, "merged": 0}
    assert report.counts["documents"] == 2 and report.counts["docstart lines"] == 2
    assert any("detected as IOB1" in note for note in report.notes)


def test_choose_columns_and_target_scheme(conll_dir):
    chunks, _ = read_conll(conll_dir / "iob1_docstart.txt", tag_column=2, input_scheme="IOB1")
    assert chunks[0].tags == ["B-NP", "I-NP", "B-VP", "B-NP", "O"]
    pos_tokens, _ = read_conll(conll_dir / "iob1_docstart.txt", token_column=1)
    assert pos_tokens[0].tokens == ["NNP", "NNP", "VBD", "NNP", "."]
    iobes, _ = read_conll(conll_dir / "iob1_docstart.txt", scheme="IOBES")
    assert iobes[2].tags == ["S-LOC", "S-LOC", "O", "O", "O"]


def test_iob2_tabs_with_orphan_is_repaired(conll_dir):
    sentences, report = read_conll(conll_dir / "iob2_tabs_orphan.tsv", input_scheme="IOB2", delimiter="\t")
    assert sentences[0].tags == ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"]
    assert sentences[0].doc_id == "iob2_tabs_orphan#0"
    report.check()
    (item,) = report.items_for("repaired")
    assert item.location.endswith("iob2_tabs_orphan.tsv:5") and item.entity_type == "LOC"


def test_auto_detection_keeps_rare_orphans_as_iob2_repairs(conll_dir):
    _, report = read_conll(conll_dir / "iob2_tabs_orphan.tsv")  # 2 B- starts vs 1 I- start: IOB2
    assert report.totals["repaired"] == 1


@pytest.mark.parametrize("name", ["iobes.txt", "bmes_chinese.txt"])
def test_iobes_and_bmes_to_iob2(conll_dir, name):
    sentences, report = read_conll(conll_dir / name)
    report.check()
    assert report.totals["repaired"] == 0
    if name == "iobes.txt":
        assert sentences[0].tags == ["B-PER", "O", "O", "B-ORG", "I-ORG", "I-ORG", "O"]
        assert any("IOBES" in note for note in report.notes)
    else:
        assert sentences[0].tags[4:10] == ["B-DRUG", "I-DRUG", "I-DRUG", "I-DRUG", "O", "B-BODY"]
        assert sentences[1].tags == ["B-CHEM", "I-CHEM", "O"]


def test_wrong_column_count(conll_dir):
    with pytest.raises(DataFormatError, match=r"bad_columns.txt:2: expected 2 columns like the first token line"):
        read_conll(conll_dir / "bad_columns.txt")
    sentences, report = read_conll(conll_dir / "bad_columns.txt", on_error="skip")
    assert sentences == [] and report.totals == {"read": 1, "kept": 0, "dropped": 1, "repaired": 0, "merged": 0}
    report.check()


def test_bad_column_choice_and_unlabelled_input(conll_dir):
    with pytest.raises(DataFormatError, match=r"tokens_only.txt:1: expected different token and tag columns"):
        read_conll(conll_dir / "tokens_only.txt")
    with pytest.raises(DataFormatError, match=r"expected a tag column 5"):
        read_conll(conll_dir / "iob1_docstart.txt", tag_column=5)
    sentences, _ = read_conll(conll_dir / "tokens_only.txt", tag_column=None)
    assert [s.tokens for s in sentences] == [["Maria", "Santos", "visited", "Lisbon"], ["OK"]]
    assert sentences[0].tags is None


def test_read_files_dispatch(conll_dir):
    sentences, report = read_files("conll", [conll_dir / "iobes.txt", conll_dir / "bmes_chinese.txt"])
    assert len(sentences) == 4 and report.counts["files"] == 2


@pytest.mark.parametrize("name", ["iob1_docstart.txt", "iobes.txt", "bmes_chinese.txt", "tokens_only.txt"])
@pytest.mark.parametrize("written_scheme", [None, "IOBES", "IOB1"])
def test_round_trip(conll_dir, tmp_path, name, written_scheme):
    tag_column = None if name == "tokens_only.txt" else -1
    first, _ = read_conll(conll_dir / name, tag_column=tag_column)
    write_conll(first, tmp_path / name, scheme=written_scheme)
    second, report = read_conll(tmp_path / name, tag_column=tag_column, input_scheme=written_scheme or "IOB2")
    assert second == first
    assert report.totals["repaired"] == 0


def test_writer_rejects_unwritable_tokens(tmp_path):
    for token in ["New York", "", "-DOCSTART-"]:
        with pytest.raises(ValueError, match="is empty, has whitespace or is -DOCSTART-"):
            write_conll([Sentence([token], ["O"], "d", 0)], tmp_path / "w.txt")


# ---- property tests -------------------------------------------------------------------------------
LINE = st.one_of(
    st.just(""),
    st.just("-DOCSTART- -X- O O"),
    st.builds(
        lambda w, p, t: f"{w} {p} {t}",
        st.sampled_from(["EU", "rejects", "--", '"', "血"]),
        st.sampled_from(["NNP", "-X-"]),
        st.sampled_from(["O", "B-A", "I-A", "E-A", "S-B", "M-B", "i-A", "O-A", "B-"]),
    ),
    st.text(alphabet=st.sampled_from("aB- \tIO\x0b\u3000"), max_size=10),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(LINE, max_size=14), st.booleans(), st.sampled_from(["auto", *SCHEMES]))
def test_property_random_input_only_data_format_error(tmp_path, lines, skip, input_scheme):
    path = tmp_path / "random.conll"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        sentences, report = read_conll(path, input_scheme=input_scheme, on_error="skip" if skip else "raise")
    except DataFormatError as error:
        assert str(path) in str(error)
        return
    report.check()
    assert sum(count_entities(s.tags for s in sentences).values()) == report.totals["kept"]


@st.composite
def documents(draw):
    sentences = []
    for doc in range(draw(st.integers(1, 3))):
        for index in range(draw(st.integers(1, 3))):
            n = draw(st.integers(1, 6))
            tokens = draw(st.lists(st.sampled_from(["EU", "Paris", "血", "1996-08-30", "--"]), min_size=n, max_size=n))
            starts = sorted(draw(st.lists(st.integers(0, n), max_size=4, unique=True)))
            spans = [(s, e, draw(st.sampled_from(["PER", "LOC"]))) for s, e in zip(starts, starts[1:])]
            sentences.append(Sentence(tokens, spans_to_tags(n, spans), f"doc#{doc}", index))
    return sentences


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents(), st.sampled_from(SCHEMES))
def test_property_write_read_identity(tmp_path, sentences, scheme):
    write_conll(sentences, tmp_path / "doc.txt", scheme=scheme)
    again, report = read_conll(tmp_path / "doc.txt", input_scheme=scheme)
    assert again == sentences
    assert report.totals["repaired"] == 0
