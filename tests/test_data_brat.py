"""brat reader and writer: offsets, fragments, overlaps, surface mismatches, non-T lines, long
documents, sentence vs document mode, write-back, random input."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mamba_ner.data import DataFormatError, read_files
from mamba_ner.data.bio import count_entities, tags_to_spans
from mamba_ner.data.brat import read_brat, read_brat_documents, spans_from_sentences, write_brat
from mamba_ner.data.text import sentence_bounds, tokenize_text


@pytest.fixture
def brat_dir(fixtures_dir):
    return fixtures_dir / "data" / "brat"


def test_chinese_folder_every_quirk(brat_dir):
    documents, report = read_brat_documents(brat_dir / "zh")
    assert [d.doc_id for d in documents] == ["guideline", "visit"]
    guideline = documents[0]
    assert [(e.ann_id, e.type) for e in guideline.entities] == [
        ("T1", "Disease"),
        ("T3", "Test"),
        ("T4", "Drug"),
        ("T6", "Disease"),
        ("T8", "Level"),
        ("T9", "Test"),
    ]
    assert guideline.entities[1].fragments == ((12, 16), (17, 19)) and guideline.entities[1].span == (12, 19, "Test")
    assert [s.text for s in guideline.sentences] == [
        "2型糖尿病患者应定期检测糖化血红蛋白。",
        "二甲双胍是一线用药;",
        "如出现低血糖,应减量。",
        "老年患者血糖控制目标可适当放宽。",
    ]
    first = guideline.sentences[0]
    assert first.tags[:5] == ["B-Disease", "I-Disease", "I-Disease", "I-Disease", "I-Disease"]
    assert first.tags[12:18] == ["B-Test"] + ["I-Test"] * 5  # joined over the line break
    assert first.offsets[16] == (17, 18)  # the newline is not a token
    assert guideline.sentences[2].source.endswith("guideline.txt:2")
    report.check()
    assert report.totals == {"read": 13, "kept": 9, "dropped": 4, "repaired": 0, "merged": 1}
    assert report.reasons("dropped") == {
        "nested inside a longer kept entity": 1,
        "duplicate of a kept entity (same tokens, same type)": 1,
        "same tokens as a kept entity of another type": 1,
        "crosses a kept entity": 1,
    }
    assert {item.location.rsplit("/", 1)[1] for item in report.items_for("dropped")} == {
        "guideline.ann:2",
        "guideline.ann:6",
        "guideline.ann:8",
        "guideline.ann:11",
    }
    assert sum(report.reasons("ignored").values()) == 3
    (warning,) = report.items_for("warning")
    assert warning.location.endswith("guideline.ann:10") and "血塘" in warning.detail
    assert report.counts["documents"] == 2
    assert sum(count_entities(s.tags for d in documents for s in d.sentences).values()) == report.totals["kept"]


def test_crlf_text_offsets_count_carriage_returns(brat_dir):
    documents, report = read_brat_documents(brat_dir / "zh" / "visit.txt")
    (visit,) = documents
    assert "\r\n" in visit.text
    assert [s.text for s in visit.sentences] == ["患者主诉头痛三天,伴恶心。"]
    assert visit.sentences[0].tags == [
        "O",
        "O",
        "O",
        "O",
        "B-Symptom",
        "I-Symptom",
        "B-Duration",
        "I-Duration",
        "O",
        "O",
        "B-Symptom",
        "I-Symptom",
        "O",
    ]
    assert report.items_for("warning") == []


def test_document_mode_and_line_mode(brat_dir):
    whole, _ = read_brat(brat_dir / "zh" / "guideline.ann", split="document")
    assert len(whole) == 1 and whole[0].text.startswith("2型糖尿病") and whole[0].text.endswith("放宽。")
    lines, _ = read_brat(brat_dir / "zh" / "guideline", split="line")
    assert [s.text for s in lines] == [
        "2型糖尿病患者应定期检测糖化血红蛋白。二甲双胍是一线用药;如出现低血糖,应减量。",
        "老年患者血糖控制目标可适当放宽。",
    ]  # the entity over the break keeps lines 1-2 together


def test_english_single_pair_word_tokens_and_widening(brat_dir):
    sentences, report = read_brat([brat_dir / "en" / "trial.txt"])
    assert [s.tokens for s in sentences] == [
        ["Aspirin", "reduced", "fever", "in", "the", "Paris-based", "trial", "."],
        ["Dr", "."],
        ["Chen", "led", "it", "."],
        ["Metformin", "was", "not", "used", "."],
    ]
    assert sentences[0].tags == ["B-Drug", "O", "B-Symptom", "O", "O", "B-Location", "O", "O"]
    report.check()
    (item,) = report.items_for("repaired")
    assert "'Paris' -> 'Paris-based'" in item.detail and item.location.endswith("trial.ann:3")
    char_level, _ = read_brat([brat_dir / "en" / "trial.txt"], tokenize="char")
    assert char_level[0].tokens[:3] == ["A", "s", "p"]


def test_bad_offsets_and_unreadable_lines(brat_dir):
    with pytest.raises(
        DataFormatError, match=r"doc.ann:2: expected ascending fragment offsets with 0 <= start < end <= 4"
    ):
        read_brat(brat_dir / "bad")
    sentences, report = read_brat(brat_dir / "bad", on_error="skip")
    assert sentences[0].tags == ["B-Symptom", "I-Symptom", "O", "O"]
    report.check()
    assert report.totals == {"read": 2, "kept": 1, "dropped": 1, "repaired": 0, "merged": 0}
    assert report.reasons("skipped") == {"unreadable .ann line": 1}


def test_missing_files(tmp_path):
    (tmp_path / "only.ann").write_text("T1\tX 0 1\ta\n")
    with pytest.raises(DataFormatError, match=r"only.ann: expected a text file only.txt beside the annotations"):
        read_brat(tmp_path)
    (tmp_path / "only.ann").unlink()
    (tmp_path / "raw.txt").write_text("头痛。发烧。")
    sentences, report = read_brat(tmp_path)
    assert [s.tags for s in sentences] == [None, None] and any("unlabelled" in n for n in report.notes)


def test_options_validate(brat_dir):
    with pytest.raises(ValueError, match="discontinuous must be"):
        read_brat(brat_dir / "zh", discontinuous="split")
    with pytest.raises(
        DataFormatError,
        match=r"guideline.ann:2: expected entities that do not overlap \(overlap='error'\), found \"it overlaps T1",
    ):
        read_brat(brat_dir / "zh", overlap="error")
    sentences, report = read_brat(brat_dir / "zh", discontinuous="drop", entity_types=["Disease", "Test"])
    report.check()
    assert report.reasons("dropped")["entity type not selected"] == 8
    assert report.reasons("dropped")["discontinuous entity (discontinuous='drop')"] == 1


def test_long_document_sentences_and_max_chars(tmp_path):
    sentence = "患者空腹血糖升高,建议复查糖化血红蛋白,并调整二甲双胍剂量"
    text = "\n".join(sentence + ("。" if i % 7 == 6 else ",") for i in range(200))  # ~6,000 characters
    spans = [(m, m + 4, "Drug") for m in range(len(text)) if text.startswith("二甲双胍", m)]
    write_brat("long", text, spans, tmp_path)
    documents, report = read_brat_documents(tmp_path, max_chars=100)
    report.check()
    assert len(documents[0].text) > 5000 and report.totals["kept"] == 200
    lengths = [s.offsets[-1][1] - s.offsets[0][0] for s in documents[0].sentences]
    assert max(lengths) <= 100 and len(lengths) > 60
    whole, _ = read_brat(tmp_path, split="document")
    assert len(whole) == 1 and len(whole[0].tokens) == len(text) - text.count("\n")


def test_write_back_round_trip(brat_dir, tmp_path):
    documents, _ = read_brat_documents(brat_dir / "zh")
    for document in documents:
        write_brat(document.doc_id, document.text, [e.span for e in document.entities], tmp_path)
    again, report = read_brat_documents(tmp_path)
    assert again == documents
    assert report.totals["dropped"] == 0 and report.items_for("warning") == []
    assert (tmp_path / "guideline.ann").read_text().splitlines()[1] == "T2\tTest 12 16;17 19\t糖化血红 蛋白"
    predicted = spans_from_sentences(s for d in documents for s in d.sentences)
    assert predicted["guideline"] == [e.span for e in documents[0].entities]


def test_write_back_crlf_entity_over_line_break(tmp_path):
    """CRLF text: a fragment never keeps the `\r` of a line break (brat cannot read such a line back)."""
    text = "患者主诉头\r\n痛三天。\r\n诊断为2型糖\r\r\n尿病,服用二甲双胍。\r\n"
    spans = [
        (4, 8, "Symptom"),  # 头\r\n痛
        (8, 10, "Duration"),  # 三天
        (16, 24, "Disease"),  # 2型糖\r\r\n尿病
        (27, 31, "Drug"),
    ]
    ann_path = write_brat("visit", text, spans, tmp_path)
    ann = ann_path.read_bytes().decode("utf-8")
    assert "\r" not in ann
    assert ann.splitlines() == [
        "T1\tSymptom 4 5;7 8\t头 痛",
        "T2\tDuration 8 10\t三天",
        "T3\tDisease 16 19;22 24\t2型糖 尿病",
        "T4\tDrug 27 31\t二甲双胍",
    ]
    (document,), report = read_brat_documents(tmp_path, split="document")
    assert document.text == text
    assert [e.span for e in document.entities] == spans
    assert [e.fragments for e in document.entities] == [((4, 5), (7, 8)), ((8, 10),), ((16, 19), (22, 24)), ((27, 31),)]
    report.check()
    assert report.totals == {"read": 4, "kept": 4, "dropped": 0, "repaired": 0, "merged": 2}
    assert report.items_for("warning") == [] and report.items_for("skipped") == []
    assert spans_from_sentences(document.sentences)["visit"] == spans
    with pytest.raises(ValueError, match="only line breaks"):
        write_brat("breaks", text, [(5, 7, "X")], tmp_path)


def test_surface_text_with_a_tab_is_read_whole(tmp_path):
    """The surface text is everything after the second tab of a T line, tabs included."""
    text = "dose\t5 mg daily"
    (tmp_path / "tab.txt").write_text(text, encoding="utf-8")
    (tmp_path / "tab.ann").write_text("T1\tDose 0 8\tdose\t5 m\n", encoding="utf-8")
    (document,), report = read_brat_documents(tmp_path, split="document")
    assert [e.span for e in document.entities] == [(0, 8, "Dose")]
    assert report.items_for("warning") == []
    write_brat("again", text, [(0, 8, "Dose")], tmp_path)
    again, report = read_brat_documents(tmp_path, split="document")
    assert report.items_for("warning") == [] and [e.span for e in again[0].entities] == [(0, 8, "Dose")]


def test_read_files_dispatch(brat_dir):
    sentences, report = read_files("brat", [brat_dir / "zh", brat_dir / "en" / "trial"])
    assert {s.doc_id for s in sentences} == {"guideline", "visit", "trial"}


def test_text_helpers():
    assert tokenize_text("EU rejects 1996-08-30 talks, U.S. says")[0] == [
        "EU",
        "rejects",
        "1996-08-30",
        "talks",
        ",",
        "U.S",
        ".",
        "says",
    ]
    tokens, offsets = tokenize_text("头痛 Ｄ\n糖", "auto")
    assert tokens == ["头", "痛", "Ｄ", "糖"] and offsets == [(0, 1), (1, 2), (3, 4), (5, 6)]
    assert sentence_bounds("头痛。发烧。", protected=[(1, 4)]) == [(0, 6)]
    assert sentence_bounds("头痛。发烧。") == [(0, 3), (3, 6)]
    with pytest.raises(ValueError, match="split must be"):
        sentence_bounds("x", split="para")


# ---- property tests -------------------------------------------------------------------------------
ANN_LINE = st.one_of(
    st.builds(
        lambda t, s, n: f"T{n}\t{t} {s} {s + n}\tx",
        st.sampled_from(["A", "Test_Value"]),
        st.integers(-2, 12),
        st.integers(0, 4),
    ),
    st.builds(lambda s: f"T9\tA {s} {s + 1};{s + 2} {s + 4}\tx y", st.integers(0, 10)),
    st.sampled_from(
        ["R1\tRel Arg1:T1 Arg2:T2", "#1\tnote", "A1\tNeg T1", "", "T1\tA", "T2\tA x y\tz", "T3\t 1 2\ta", "E1\tEv:T1"]
    ),
    st.text(alphabet=st.sampled_from("T1\t A;0"), max_size=12),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(alphabet=st.sampled_from("头痛 Ab.。,\n\r"), max_size=16),
    st.lists(ANN_LINE, max_size=8),
    st.booleans(),
    st.sampled_from(["sentence", "line", "document"]),
    st.sampled_from(["auto", "char", "word"]),
)
def test_property_random_input_only_data_format_error(tmp_path, text, ann_lines, skip, split, tokenize):
    with open(tmp_path / "d.txt", "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    (tmp_path / "d.ann").write_text("\n".join(ann_lines), encoding="utf-8")
    try:
        documents, report = read_brat_documents(
            tmp_path, on_error="skip" if skip else "raise", split=split, tokenize=tokenize
        )
    except DataFormatError as error:
        assert "d.ann" in str(error) or "d.txt" in str(error)
        return
    report.check()
    sentences = documents[0].sentences
    assert sum(count_entities(s.tags for s in sentences).values()) == report.totals["kept"]
    assert [t for s in sentences for t in s.tokens] == tokenize_text(text, tokenize)[0]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.sampled_from(["头", "痛", "糖", "尿", "病", " ", "。", "\n", "\r\n", "\r"]), min_size=1, max_size=40).map("".join),
    st.data(),
)
def test_property_write_read_identity(tmp_path, text, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8, unique=True)))
    spans = []
    for start, end in zip(cuts, cuts[1:]):
        piece = text[start:end]
        if piece.strip() and piece[0] not in " \r\n" and piece[-1] not in " \r\n" and data.draw(st.booleans()):
            spans.append((start, end, data.draw(st.sampled_from(["A", "B"]))))
    write_brat("doc", text, spans, tmp_path)
    (document,), report = read_brat_documents(tmp_path)
    assert document.text == text
    assert b"\r" not in (tmp_path / "doc.ann").read_bytes()
    assert [e.span for e in document.entities] == spans
    assert report.totals["dropped"] == 0 and report.totals["repaired"] == 0
    assert spans_from_sentences(document.sentences).get("doc", []) == spans
    for sentence in document.sentences:
        for first, last, _ in tags_to_spans(sentence.tags):
            assert (sentence.offsets[first][0], sentence.offsets[last - 1][1], _) in spans
