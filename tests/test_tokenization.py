"""Tokenizer building (char / wordpiece / auto), save + AutoTokenizer reload offline, label alignment."""

import pytest
from datasets import ClassLabel, Dataset, Features, List, Value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from mamba_ner.tokenization import MODEL_MAX_LENGTH, build_tokenizer, choose_kind, tokenize_and_align_labels

CHINESE = ["頭痛可以吃普拿疼嗎？", "血糖過高要做糖化血色素檢查。", "HBA1C 控制在7.5%"]
ENGLISH = ["Maria Santos visited Lisbon .", "Acme Corp hired Tom Jan .", "Lisbon talks ended in Lisbon ."]


@pytest.fixture(scope="module")
def char_tokenizer():
    return build_tokenizer(CHINESE, kind="char")


@pytest.fixture(scope="module")
def word_tokenizer():
    return build_tokenizer([s.split() for s in ENGLISH], kind="wordpiece", vocab_size=200)


def test_char_tokenizer_one_token_per_character(char_tokenizer):
    encoding = char_tokenizer(["頭痛", "HBA1C", "鬱"], is_split_into_words=True)
    assert encoding.tokens() == ["[CLS]", "頭", "痛", "H", "B", "A", "1", "C", "[UNK]", "[SEP]"]
    assert encoding.word_ids() == [None, 0, 0, 1, 1, 1, 1, 1, 2, None]
    assert char_tokenizer("頭 痛").tokens() == ["[CLS]", "頭", "痛", "[SEP]"]
    assert char_tokenizer.model_max_length == MODEL_MAX_LENGTH
    assert [char_tokenizer.convert_tokens_to_ids(t) for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]] == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_wordpiece_tokenizer_and_unknowns(word_tokenizer):
    encoding = word_tokenizer(["Maria", "Lisboa", "visited", "😀"], is_split_into_words=True)
    tokens, word_ids = encoding.tokens(), encoding.word_ids()
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and tokens[1] == "Maria"
    assert set(word_ids[1:-1]) == {0, 1, 2, 3}  # an unseen word decomposes, an unseen character is [UNK]
    assert tokens[word_ids.index(3)] == "[UNK]"
    assert word_tokenizer("").tokens() == ["[CLS]", "[SEP]"]


def test_auto_kind():
    assert choose_kind(CHINESE) == "char" and choose_kind(ENGLISH) == "wordpiece"
    tokenizer = build_tokenizer([list("頭痛")], kind="auto")
    assert tokenizer(["頭痛"], is_split_into_words=True).tokens() == ["[CLS]", "頭", "痛", "[SEP]"]
    with pytest.raises(ValueError, match="kind must be one of"):
        build_tokenizer(CHINESE, kind="bpe")


@pytest.mark.parametrize("which", ["char_tokenizer", "word_tokenizer"])
def test_save_and_reload_with_auto_tokenizer(which, request, tmp_path):
    tokenizer = request.getfixturevalue(which)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    words = ["Maria", "頭痛", "visited", "鬱"]
    assert reloaded(words, is_split_into_words=True).tokens() == tokenizer(words, is_split_into_words=True).tokens()
    assert reloaded.model_max_length == MODEL_MAX_LENGTH and reloaded.pad_token == "[PAD]"
    assert reloaded.is_fast


def test_min_frequency_and_vocab_size():
    tokenizer = build_tokenizer(["aab", "ab", "c"], kind="char", min_frequency=2)
    assert tokenizer("abc").tokens() == ["[CLS]", "a", "b", "[UNK]", "[SEP]"]
    small = build_tokenizer(["aaabbc"], kind="char", vocab_size=6)
    assert small("abc").tokens() == ["[CLS]", "a", "[UNK]", "[UNK]", "[SEP]"]


def test_align_labels_in_dataset_map(word_tokenizer):
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    features = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=names))})
    dataset = Dataset.from_dict(
        {"tokens": [["Maria", "Lisboa", "."], ["Tom"]], "ner_tags": [[1, 3, 0], [1]]}, features=features
    )
    mapped = dataset.map(
        lambda b: tokenize_and_align_labels(b, word_tokenizer), batched=True, remove_columns=dataset.column_names
    )
    row = mapped[0]
    word_ids = word_tokenizer(["Maria", "Lisboa", "."], is_split_into_words=True).word_ids()
    expected, previous = [], None
    for w in word_ids:
        expected.append(-100 if w is None or w == previous else [1, 3, 0][w])
        previous = w
    assert row["labels"] == expected and row["labels"][0] == -100 and row["labels"][-1] == -100
    assert word_ids.count(1) > 1  # "Lisboa" is split, so non-first pieces were masked
    all_pieces = tokenize_and_align_labels(dataset[:1], word_tokenizer, label_all_subwords=True, label_names=names)
    lisboa = [label for label, w in zip(all_pieces["labels"][0], word_ids) if w == 1]
    assert lisboa == [3] + [4] * (len(lisboa) - 1)


def test_align_single_example_truncation_and_word_ids(char_tokenizer):
    out = tokenize_and_align_labels(
        {"tokens": list("頭痛可以"), "ner_tags": [1, 2, 0, 0]}, char_tokenizer, max_length=4, keep_word_ids=True
    )
    assert out["labels"] == [-100, 1, 2, -100] and out["word_ids"] == [None, 0, 1, None]
    assert len(out["input_ids"]) == 4
    unlabelled = tokenize_and_align_labels({"tokens": [["頭"]]}, char_tokenizer)
    assert "labels" not in unlabelled and len(unlabelled["input_ids"][0]) == 3


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc", "Zl", "Zp")), min_size=1, max_size=5),
        min_size=1,
        max_size=6,
    )
)
def test_property_any_visible_word_gets_exactly_one_label(char_tokenizer, words):
    labels = list(range(len(words)))
    out = tokenize_and_align_labels({"tokens": [words], "ner_tags": [labels]}, char_tokenizer)
    assert [label for label in out["labels"][0] if label != -100] == labels
