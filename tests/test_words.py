"""Whole-word embeddings for sub-word / character input: hashes inside the model, the word list, training."""
import pytest
import torch

from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification
from mamba_ner.modeling_mamba_crf import word_hashes
from mamba_ner.tokenization import build_tokenizer
from mamba_ner.training import ModelArguments, get_model
from mamba_ner.words import build_word_list, word_tables

LABELS = ["O", "B-LOC", "I-LOC"]
SENTENCES = [["Paris", "is", "in", "France", "."], ["PARIS", "hosted", "1998", "games"], ["Lyon", "is", "big"]]


@pytest.fixture(scope="module")
def char_tokenizer():  # every word becomes its first character and "##" characters, as conll03's config
    return build_tokenizer(SENTENCES + [["2006"]], kind="wordpiece", vocab_size=1)


def hashes_of(tokenizer, words):
    encoding = tokenizer(words, is_split_into_words=True, add_special_tokens=False, return_tensors="pt")
    ids = encoding["input_ids"]
    continuation, token_map = word_tables(tokenizer)
    hashes, first = word_hashes(ids, torch.ones_like(ids, dtype=torch.bool), continuation, token_map)
    return ids, hashes[0], first[0], encoding.word_ids(0)


def test_every_position_of_a_word_gets_the_word_hash_and_case_and_digits_are_normalised(char_tokenizer):
    ids, hashes, first, word_ids = hashes_of(char_tokenizer, ["Paris", "is", "PARIS", "1998", "2006", "is"])
    by_word = {}
    for position, word in enumerate(word_ids):
        by_word.setdefault(word, set()).add(hashes[position].item())
        assert word_ids[first[position]] == word and (first[position] == 0 or word_ids[first[position] - 1] != word)
    assert all(len(values) == 1 for values in by_word.values())  # one hash per word
    value = {word: next(iter(values)) for word, values in by_word.items()}
    assert value[0] == value[2]  # Paris = PARIS
    assert value[3] == value[4]  # 1998 = 2006 (digits as 0)
    assert value[1] == value[5] and len({value[0], value[1], value[3]}) == 3


def test_word_hashes_ignore_padding_and_what_follows_a_row(char_tokenizer):
    ids, hashes, _, _ = hashes_of(char_tokenizer, ["Paris", "is"])
    continuation, token_map = word_tables(char_tokenizer)
    padded = torch.cat([ids, torch.tensor([[ids[0, 1].item()] * 3])], dim=1)  # continuation pieces as padding
    real = torch.arange(padded.shape[1])[None, :] < ids.shape[1]
    got, _ = word_hashes(padded, real, continuation, token_map)
    assert torch.equal(got[0, : ids.shape[1]], hashes) and (got[0, ids.shape[1]:] == -1).all()


def test_word_list_counts_words_as_the_model_sees_them(char_tokenizer):
    hashes, continuation, token_map, report = build_word_list(SENTENCES, char_tokenizer, min_count=2)
    # distinct model words: paris (x2), is (x2), in, france, ".", hosted, 0000, games, lyon, big
    assert (report.words, report.kept, report.rare) == (10, 2, 8)
    assert report.kept + report.rare == report.words and "kept 2" in str(report)
    _, sentence_hashes, _, _ = hashes_of(char_tokenizer, ["PARIS", "is", "big"])
    assert torch.isin(sentence_hashes, hashes).tolist() == [True] * 7 + [False] * 3
    with pytest.raises(ValueError, match="min_count must be at least 1"):
        build_word_list(SENTENCES, char_tokenizer, min_count=0)


def tiny_model(tokenizer, word_dropout=0.0):
    config = MambaCrfConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, state_size=4,
                            id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)},
                            word_dropout_prob=word_dropout, unk_token_id=tokenizer.unk_token_id)
    return MambaCrfForTokenClassification(config)


def test_word_embeddings_change_emissions_learn_and_survive_save_and_load(char_tokenizer, tmp_path):
    torch.manual_seed(0)
    model = tiny_model(char_tokenizer).eval()
    enc = char_tokenizer([["Paris", "is", "big"]], is_split_into_words=True, return_tensors="pt")
    before = model(**enc).logits
    model.backbone.set_words(*build_word_list(SENTENCES, char_tokenizer, min_count=1)[:3])
    assert model.config.word_vocab_size == 10
    with torch.no_grad():
        model.backbone.word_embeddings.weight.normal_()
    after = model(**enc).logits
    assert not torch.allclose(before, after)
    model(**enc, labels=torch.zeros_like(enc["input_ids"])).loss.backward()
    assert model.backbone.word_embeddings.weight.grad.abs().sum() > 0
    model.save_pretrained(tmp_path / "ckpt")
    loaded = MambaCrfForTokenClassification.from_pretrained(tmp_path / "ckpt").eval()
    assert torch.equal(loaded.backbone.word_list, model.backbone.word_list)
    assert torch.equal(loaded.backbone.word_token_map, model.backbone.word_token_map)
    assert torch.allclose(loaded(**enc).logits, after, atol=1e-6)
    # padding invariance: the same sentence in a batch with a longer one
    batch = char_tokenizer([["Paris", "is", "big"], ["France", "hosted", "1998", "games"]], is_split_into_words=True,
                           padding=True, return_tensors="pt")
    assert torch.allclose(loaded(**batch).logits[0, : after.shape[1]], after[0], atol=1e-5)


def test_word_dropout_drops_whole_words(char_tokenizer):
    torch.manual_seed(1)
    model = tiny_model(char_tokenizer)
    model.backbone.set_words(*build_word_list(SENTENCES, char_tokenizer, min_count=1)[:3])
    ids, _, first, word_ids = hashes_of(char_tokenizer, ["Paris", "is", "in", "France"] * 20)
    real = torch.ones_like(ids, dtype=torch.bool)
    kept = model.backbone.word_indices(ids, real)
    assert (kept > 0).all()
    dropped = model.backbone.word_indices(ids, real, drop=0.5)
    for position in range(ids.shape[1]):  # a word is dropped at all its positions or none
        assert (dropped[0, position] == 0) == (dropped[0, first[position]] == 0)
    assert 0.2 < (dropped == 0).float().mean() < 0.8


def test_training_builds_the_model_with_a_word_list(char_tokenizer):
    args = ModelArguments(hidden_size=16, num_hidden_layers=1, state_size=4, word_min_count=2)
    model = get_model(args, LABELS, char_tokenizer, train_tokens=SENTENCES)
    assert model.config.word_vocab_size == 2 and model.backbone.word_embeddings.weight.shape == (3, 16)
    with pytest.raises(ValueError, match="needs the training text"):
        get_model(args, LABELS, char_tokenizer)


def test_a_larger_tokenizer_needs_a_new_word_list(char_tokenizer, tmp_path):
    args = ModelArguments(hidden_size=16, num_hidden_layers=1, state_size=4, word_min_count=1)
    get_model(args, LABELS, char_tokenizer, train_tokens=SENTENCES).save_pretrained(tmp_path / "ckpt")
    larger = build_tokenizer(SENTENCES + [["2006", "Zürich", "Köln"]], kind="wordpiece", vocab_size=1)
    assert len(larger) > len(char_tokenizer)
    with pytest.raises(ValueError, match="give --word_min_count to rebuild it"):
        get_model(ModelArguments(model_name_or_path=str(tmp_path / "ckpt")), LABELS, larger)
    model = get_model(ModelArguments(model_name_or_path=str(tmp_path / "ckpt"), word_min_count=1), LABELS, larger,
                      train_tokens=SENTENCES)
    assert model.backbone.word_token_map.shape == (len(larger),)
