"""BIO core: spans <-> tags in every scheme, repair, validation, overlaps (plus property tests)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mamba_ner.data.bio import (
    SCHEMES,
    canonical_scheme,
    convert_scheme,
    count_entities,
    detect_scheme,
    normalize_tag,
    repair_tags,
    resolve_overlaps,
    spans_to_tags,
    tags_to_spans,
    validate_tags,
)

SPANS = [(0, 2, "PER"), (2, 3, "PER"), (4, 7, "LOC")]


@pytest.mark.parametrize(
    "scheme, expected",
    [
        ("IOB2", ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O"]),
        ("IOB1", ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-LOC", "I-LOC", "O"]),
        ("IOBES", ["B-PER", "E-PER", "S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "O"]),
        ("BMES", ["B-PER", "E-PER", "S-PER", "O", "B-LOC", "M-LOC", "E-LOC", "O"]),
    ],
)
def test_spans_to_tags_each_scheme_and_back(scheme, expected):
    assert spans_to_tags(8, SPANS, scheme) == expected
    assert tags_to_spans(expected) == SPANS


def test_scheme_aliases():
    assert canonical_scheme("bioes") == "IOBES"
    assert canonical_scheme("BIO") == "IOB2"
    with pytest.raises(ValueError, match="unknown tag scheme 'XYZ'"):
        canonical_scheme("XYZ")


@pytest.mark.parametrize(
    "spans, message",
    [
        ([(0, 3, "A"), (2, 4, "B")], "overlaps"),
        ([(3, 3, "A")], "empty or outside"),
        ([(0, 9, "A")], "empty or outside"),
        ([(0, 1, "")], "no entity type"),
    ],
)
def test_spans_to_tags_rejects_bad_spans(spans, message):
    with pytest.raises(ValueError, match=message):
        spans_to_tags(5, spans)


def test_tags_to_spans_lenient_rules():
    # orphan I- starts an entity; I- of another type starts a new one; E-/S- close
    assert tags_to_spans(["O", "I-X", "I-X", "I-Y"]) == [(1, 3, "X"), (3, 4, "Y")]
    assert tags_to_spans(["B-X", "E-X", "I-X"]) == [(0, 2, "X"), (2, 3, "X")]
    assert tags_to_spans(["S-X", "S-X", "E-X"]) == [(0, 1, "X"), (1, 2, "X"), (2, 3, "X")]
    assert tags_to_spans(["B-X", "M-X", "E-X"]) == [(0, 3, "X")]
    assert tags_to_spans([]) == []


def test_tags_to_spans_rejects_malformed_with_position():
    with pytest.raises(ValueError, match=r"position 1: malformed tag 'i-CHEM'"):
        tags_to_spans(["O", "i-CHEM"])


@pytest.mark.parametrize(
    "tag, fixed",
    [
        ("i-CHEM", "I-CHEM"),
        ("b-CHEM", "B-CHEM"),
        ("B_CHEM", "B-CHEM"),
        ("O-SYMP", "I-SYMP"),
        ("T-TIME", "I-TIME"),
        ("CHEM", "I-CHEM"),
        ("Test_Value", "I-Test_Value"),
        ("o", "O"),
    ],
)
def test_normalize_tag(tag, fixed):
    result, problem = normalize_tag(tag)
    assert result == fixed and problem


def test_repair_o_prefix_auto_uses_context():
    assert repair_tags(["B-S", "O-S", "I-S"]).tags == ["B-S", "I-S", "I-S"]
    assert repair_tags(["O", "O-S", "O"]).tags == ["O", "O", "O"]
    assert repair_tags(["B-T", "O-S"]).tags == ["B-T", "O"]
    assert repair_tags(["O", "O-S", "O"], o_prefix="inside").tags == ["O", "B-S", "O"]
    with pytest.raises(ValueError, match="o_prefix must be one of"):
        repair_tags(["O"], o_prefix="maybe")


def test_normalize_tag_o_prefix_outside_and_errors():
    assert normalize_tag("O-SYMP", o_prefix="outside")[0] == "O"
    assert normalize_tag("B-X") == ("B-X", None)
    for bad in ["", "B-", "-", "I_"]:
        with pytest.raises(ValueError, match="malformed tag"):
            normalize_tag(bad)


def test_repair_rocling_quirks():
    # from ROCLING 2022's DATASET.md: 大便帶血 tagged B-BODY I-BODY I-SYMP I-SYMP, and O-SYMP inside a symptom
    repair = repair_tags(["B-BODY", "I-BODY", "I-SYMP", "I-SYMP", "B-SYMP", "O-SYMP", "i-SYMP", "O"])
    assert repair.tags == ["B-BODY", "I-BODY", "B-SYMP", "I-SYMP", "B-SYMP", "I-SYMP", "I-SYMP", "O"]
    assert repair.spans == [(0, 2, "BODY"), (2, 4, "SYMP"), (4, 7, "SYMP")]
    assert repair.repaired_spans == [1, 2]
    assert [(p.position, p.kind) for p in repair.problems] == [(2, "scheme"), (5, "spelling"), (6, "spelling")]


def test_repair_iob1_to_iob2_is_not_a_problem_but_iob2_orphan_is():
    tags = ["I-ORG", "O", "I-PER", "B-PER"]
    assert repair_tags(tags, "IOB1", target="IOB2").problems == []
    assert repair_tags(tags, "IOB1", target="IOB2").tags == ["B-ORG", "O", "B-PER", "B-PER"]
    problems = validate_tags(tags, "IOB2")
    assert [p.position for p in problems] == [0, 2]


def test_validate_iobes_missing_end():
    assert [p.position for p in validate_tags(["B-X", "I-X", "O", "B-Y"], "IOBES")] == [1, 3]
    assert validate_tags(["B-X", "E-X", "O", "S-Y"], "IOBES") == []


def test_detect_scheme():
    assert detect_scheme([["I-ORG", "O", "I-PER", "I-PER", "B-PER"]]) == "IOB1"
    assert detect_scheme([["B-ORG", "O", "I-PER"], ["B-A"], ["B-A"]]) == "IOB2"
    assert detect_scheme([["S-A", "B-A", "E-A"]]) == "IOBES"
    assert detect_scheme([["B-A", "M-A", "E-A"]]) == "BMES"


def test_convert_scheme_and_count():
    tags = ["B-A", "M-A", "E-A", "S-B"]
    assert convert_scheme(tags, "IOB2") == ["B-A", "I-A", "I-A", "B-B"]
    assert count_entities([tags, None, ["O"]]) == {"A": 1, "B": 1}


def test_resolve_overlaps_policies():
    spans = [(0, 2, "A"), (1, 5, "B"), (4, 6, "C"), (1, 5, "D"), (7, 8, "E")]
    kept, dropped = resolve_overlaps(spans, "longest")
    assert kept == [1, 4] and dropped == [(0, 1), (2, 1), (3, 1)]
    kept, dropped = resolve_overlaps(spans, "earliest")
    assert kept == [0, 2, 4] and dropped == [(1, 0), (3, 0)]
    with pytest.raises(ValueError, match="overlaps"):
        resolve_overlaps(spans, "error")
    with pytest.raises(ValueError, match="unknown overlap policy"):
        resolve_overlaps(spans, "random")


# ---- property tests -------------------------------------------------------------------------------
TYPES = st.sampled_from(["A", "B", "Test_Value"])


@st.composite
def token_spans(draw):
    n = draw(st.integers(0, 12))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=8, unique=True)))
    spans = []
    for start, end in zip(cuts, cuts[1:]):
        if draw(st.booleans()):
            spans.append((start, end, draw(TYPES)))
    return n, spans


@given(token_spans(), st.sampled_from(SCHEMES))
def test_property_spans_tags_round_trip(data, scheme):
    n, spans = data
    tags = spans_to_tags(n, spans, scheme)
    assert len(tags) == n
    assert tags_to_spans(tags) == spans
    assert validate_tags(tags, scheme) == []
    for target in SCHEMES:
        assert tags_to_spans(convert_scheme(tags, target)) == spans


RAW_TAG = st.one_of(
    st.sampled_from(["O", "B-A", "I-A", "E-A", "S-A", "M-B", "i-A", "O-B", "b_A", "T-A", "A", "o", "B-", ""]),
    st.text(max_size=4),
)


@settings(max_examples=300)
@given(st.lists(RAW_TAG, max_size=10), st.sampled_from(SCHEMES), st.sampled_from(SCHEMES))
def test_property_repair_never_crashes_except_value_error(tags, scheme, target):
    try:
        repair = repair_tags(tags, scheme, target)
    except ValueError as error:
        assert "position" in str(error)
        return
    assert len(repair.tags) == len(tags)
    assert tags_to_spans(repair.tags) == repair.spans
    assert validate_tags(repair.tags, target) == []
    assert repair_tags(tags, scheme, target).tags == repair.tags  # deterministic, input not mutated


@given(
    st.lists(st.tuples(st.integers(0, 20), st.integers(1, 6)), max_size=12), st.sampled_from(["longest", "earliest"])
)
def test_property_resolve_overlaps_partitions_and_is_flat(raw, policy):
    spans = [(start, start + length, "X") for start, length in raw]
    kept, dropped = resolve_overlaps(spans, policy)
    assert sorted(kept + [d for d, _ in dropped]) == list(range(len(spans)))
    positions = [p for i in kept for p in range(spans[i][0], spans[i][1])]
    assert len(positions) == len(set(positions))
    for index, blocking in dropped:
        assert blocking in kept
        assert spans[index][0] < spans[blocking][1] and spans[blocking][0] < spans[index][1]
