"""ROCLING / HealthNER reader and writer: one fixture per quirk, round trips, random input."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mamba_ner.data import DataFormatError, Sentence, read_files
from mamba_ner.data.bio import count_entities
from mamba_ner.data.rocling import read_rocling, write_rocling


@pytest.fixture
def rocling_dir(fixtures_dir):
    return fixtures_dir / "data" / "rocling"


def test_basic_lf(rocling_dir):
    sentences, report = read_rocling(rocling_dir / "basic_lf.txt")
    assert [s.text for s in sentences] == [
        "頭痛可以吃普拿疼嗎？",
        "血糖過高要做糖化血色素檢查。",
        "多吃蔬菜補充維生素Ｃ。",
    ]
    first = sentences[0]
    assert first.tags[:2] == ["B-SYMP", "I-SYMP"] and first.doc_id == "basic_lf" and first.index == 0
    assert first.offsets is None and first.source.endswith("basic_lf.txt:1")
    assert sentences[1].source.endswith("basic_lf.txt:12")
    report.check()
    assert report.totals == {"read": 5, "kept": 5, "dropped": 0, "repaired": 0, "merged": 0}
    assert report.counts["sentences"] == 3 and report.counts["tokens"] == 35


def test_crlf_whitespace_separators_and_malformed_tags(rocling_dir):
    path = rocling_dir / "quirks_crlf_space_separator.txt"
    sentences, report = read_rocling(path)
    assert [s.text for s in sentences] == ["大便帶血三天", "胃經常抽痛", "服用鐵劑", "發育早期", "經由肝臟"]
    assert sentences[0].tags == ["B-BODY", "I-BODY", "B-SYMP", "I-SYMP", "O", "O"]
    assert sentences[1].tags == ["B-BODY", "B-SYMP", "I-SYMP", "I-SYMP", "I-SYMP"]  # O-SYMP inside a symptom
    assert sentences[2].tags == ["O", "O", "B-CHEM", "I-CHEM"]
    assert sentences[3].tags == ["O", "O", "B-TIME", "I-TIME"]
    assert sentences[4].tags == ["O", "O", "B-BODY", "I-BODY"]  # O-SYMP between O's (as in ROCLING 2022)
    report.check()
    assert report.totals == {"read": 7, "kept": 7, "dropped": 0, "repaired": 4, "merged": 0}
    locations = sorted(item.location.rsplit(":", 1)[1] for item in report.items_for("repaired"))
    assert locations == ["16", "21", "3", "9"]  # where each repaired entity starts
    assert any("O-SYMP" in item.detail for item in report.items_for("repaired"))
    (warning,) = report.items_for("warning")
    assert warning.location.endswith(":24") and "O-SYMP" in warning.detail


@pytest.mark.parametrize(
    "o_prefix, second, fifth",
    [
        ("inside", ["B-BODY", "B-SYMP", "I-SYMP", "I-SYMP", "I-SYMP"], ["B-SYMP", "O", "B-BODY", "I-BODY"]),
        ("outside", ["B-BODY", "B-SYMP", "O", "B-SYMP", "I-SYMP"], ["O", "O", "B-BODY", "I-BODY"]),
    ],
)
def test_o_prefix_policies(rocling_dir, o_prefix, second, fifth):
    sentences, report = read_rocling(rocling_dir / "quirks_crlf_space_separator.txt", o_prefix=o_prefix)
    assert sentences[1].tags == second and sentences[4].tags == fifth
    report.check()


def test_unlabelled_test_file(rocling_dir):
    sentences, report = read_rocling(rocling_dir / "test_notags.txt")
    assert [s.tags for s in sentences] == [None, None]
    assert sentences[1].text == "多吃蔬菜補充維生素Ｃ。"
    assert report.totals["read"] == 0 and report.counts["sentences"] == 2


def test_healthner_json_lines(rocling_dir):
    sentences, report = read_rocling(rocling_dir / "healthner.json")
    basic, _ = read_rocling(rocling_dir / "basic_lf.txt")
    assert [(s.tokens, s.tags) for s in sentences] == [(s.tokens, s.tags) for s in basic]
    assert sentences[2].source.endswith("healthner.json:3")
    report.check()


def test_wrong_column_count_raises_with_file_and_line(rocling_dir):
    with pytest.raises(
        DataFormatError, match=r"bad_columns.txt:2: expected a line 'char tag' \(2 columns\), found '痛 I-SYMP extra'"
    ):
        read_rocling(rocling_dir / "bad_columns.txt")


def test_wrong_column_count_skip_and_report(rocling_dir):
    sentences, report = read_rocling(rocling_dir / "bad_columns.txt", on_error="skip")
    assert [s.text for s in sentences] == ["多"]
    report.check()
    assert report.totals["dropped"] == 1
    assert report.items_for("dropped")[0].location.endswith("bad_columns.txt:1")
    assert report.reasons("skipped") == {"line with 3 columns; its sentence was skipped": 1}


def test_bad_json_and_bad_utf8(tmp_path):
    bad_json = tmp_path / "x.json"
    bad_json.write_text(
        '{"character": ["a"], "character_label": ["O"]}\n{"character": ["a", "b"], "character_label": ["O"]}\n'
    )
    with pytest.raises(DataFormatError, match=r"x.json:2: expected a JSON object"):
        read_rocling(bad_json)
    bad_bytes = tmp_path / "y.txt"
    bad_bytes.write_bytes("頭 B-SYMP\n".encode() + b"\xff O\n\n" + "多 O\n".encode())
    with pytest.raises(DataFormatError, match=r"y.txt:2: expected UTF-8 text"):
        read_rocling(bad_bytes)
    sentences, report = read_rocling(bad_bytes, on_error="skip")
    assert [s.text for s in sentences] == ["多"] and report.totals["dropped"] == 1
    report.check()


def test_unreadable_tag_raises(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("頭 B-\n痛 O\n")
    with pytest.raises(DataFormatError, match=r"t.txt:1: expected a tag"):
        read_rocling(path)


def test_read_files_dispatch_and_input_not_mutated(rocling_dir):
    paths = [rocling_dir / "basic_lf.txt", rocling_dir / "quirks_crlf_space_separator.txt"]
    copy = list(paths)
    sentences, report = read_files("rocling", paths)
    assert paths == copy and len(sentences) == 8
    assert {s.doc_id for s in sentences} == {"basic_lf", "quirks_crlf_space_separator"}
    with pytest.raises(ValueError, match="unknown format"):
        read_files("xml", paths)


@pytest.mark.parametrize("name", ["basic_lf.txt", "quirks_crlf_space_separator.txt", "test_notags.txt"])
@pytest.mark.parametrize("separator, newline", [("", "\n"), (" ", "\r\n")])
def test_round_trip(rocling_dir, tmp_path, name, separator, newline):
    first, _ = read_rocling(rocling_dir / name)
    write_rocling(first, tmp_path / name, separator=separator, newline=newline)
    second, report = read_rocling(tmp_path / name)
    assert second == first
    assert report.totals["repaired"] == 0


def test_writer_rejects_unwritable_tokens(tmp_path):
    with pytest.raises(ValueError, match="empty or has whitespace"):
        write_rocling([Sentence(["a b"], ["O"], "d", 0)], tmp_path / "w.txt")


# ---- property tests -------------------------------------------------------------------------------
LINE = st.one_of(
    st.just(""),
    st.just(" "),
    st.builds(
        lambda c, t: f"{c} {t}",
        st.sampled_from("頭痛ＤaZ1。"),
        st.sampled_from(["O", "B-A", "I-A", "i-B", "O-A", "B-", "X"]),
    ),
    st.text(alphabet=st.sampled_from('頭 \tO-B\r\x00{}"[]:,é'), max_size=8),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(LINE, max_size=12), st.sampled_from(["\n", "\r\n"]), st.sampled_from([".txt", ".json"]), st.booleans())
def test_property_random_input_only_data_format_error(tmp_path, lines, newline, suffix, skip):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(newline.join(lines).encode("utf-8"))
    try:
        sentences, report = read_rocling(path, on_error="skip" if skip else "raise")
    except DataFormatError as error:
        assert str(path) in str(error)
        return
    report.check()
    assert sum(count_entities(s.tags for s in sentences).values()) == report.totals["kept"]


SENTENCE = st.lists(
    st.tuples(st.sampled_from("頭痛胃ＤA1。"), st.sampled_from(["O", "B-A", "I-A", "B-B", "I-B"])),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(SENTENCE, min_size=1, max_size=5))
def test_property_write_read_identity(tmp_path, rows):
    from mamba_ner.data.bio import repair_tags

    sentences = [
        Sentence([c for c, _ in row], repair_tags([t for _, t in row]).tags, "doc", index)
        for index, row in enumerate(rows)
    ]
    write_rocling(sentences, tmp_path / "doc.txt")
    again, report = read_rocling(tmp_path / "doc.txt")
    assert again == sentences and report.totals["repaired"] == 0
