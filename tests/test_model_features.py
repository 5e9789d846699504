"""Features that need no pretrained weights: hashed token bigrams, word dropout, residual dropout,
and overlapping training windows with the loss on their centres."""
import pytest
import torch

from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification
from mamba_ner.modeling_mamba_crf import BIGRAM_BOUNDARY, BIGRAM_HASH_MULTIPLIER, bigram_ids
from mamba_ner.windows import window_features, window_spans

LABELS = ["O", "B-DISE", "I-DISE"]
PAD, UNK, CLS, SEP = 0, 1, 2, 3


def tiny_model(seed=0, **overrides):
    kwargs = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, state_size=8, bigram_vocab_size=97,
                  pad_token_id=PAD, unk_token_id=UNK, bos_token_id=CLS, eos_token_id=SEP,
                  hidden_dropout_prob=0.0, classifier_dropout=0.0,
                  id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    kwargs.update(overrides)
    torch.manual_seed(seed)
    return MambaCrfForTokenClassification(MambaCrfConfig(**kwargs)).eval()


# ------------------------------------------------------------------ bigram ids
def test_bigram_ids_pair_each_token_with_its_neighbours_and_the_row_boundary():
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    real = torch.tensor([[True, True, True, False], [True, True, False, False]])
    buckets = 10**9  # no wrap-around: the pair can be read back from its id
    got = bigram_ids(ids, real, buckets)  # (b, l, 2)

    def pair(a, b):
        return (a + 1) * BIGRAM_HASH_MULTIPLIER + (b + 1)

    B = BIGRAM_BOUNDARY
    assert got[0, :3].tolist() == [[pair(B, 5), pair(5, 6)], [pair(5, 6), pair(6, 7)], [pair(6, 7), pair(7, B)]]
    assert got[1, :2].tolist() == [[pair(B, 8), pair(8, 9)], [pair(8, 9), pair(9, B)]]
    # padding never enters a real token's pairs, whatever its id
    other_pad = bigram_ids(ids.masked_fill(~real, 42), real, buckets)
    assert torch.equal(other_pad[real], got[real])


def test_bigram_ids_stay_inside_the_table():
    ids = torch.randint(0, 30_000, (4, 50))
    real = torch.ones(4, 50, dtype=torch.bool)
    got = bigram_ids(ids, real, 1024)
    assert got.min() >= 0 and got.max() < 1024


def test_bigram_model_is_padding_invariant_on_both_sides():
    model = tiny_model()
    rows = [torch.tensor([CLS, 11, 12, 13, 14, SEP]), torch.tensor([CLS, 21, 22, SEP])]
    alone = [model(input_ids=row[None]).logits[0] for row in rows]
    for side in ("right", "left"):
        ids = torch.full((2, 6), PAD)
        mask = torch.zeros(2, 6, dtype=torch.long)
        for i, row in enumerate(rows):
            span = slice(0, len(row)) if side == "right" else slice(6 - len(row), 6)
            ids[i, span], mask[i, span] = row, 1
        batch = model(input_ids=ids, attention_mask=mask).logits
        for i, row in enumerate(rows):
            span = slice(0, len(row)) if side == "right" else slice(6 - len(row), 6)
            assert torch.allclose(batch[i, span], alone[i], atol=1e-5), side


def test_bigrams_change_the_emissions_and_get_gradients():
    with_bigrams, without = tiny_model(), tiny_model(bigram_vocab_size=0)
    assert without.backbone.bigram_embeddings is None
    ids = torch.tensor([[CLS, 11, 12, 13, SEP]])
    with torch.no_grad():
        with_bigrams.backbone.bigram_embeddings.weight.zero_()
        plain = with_bigrams(input_ids=ids).logits
        with_bigrams.backbone.bigram_embeddings.weight.normal_()
        assert not torch.allclose(with_bigrams(input_ids=ids).logits, plain)
    with_bigrams.train()
    loss = with_bigrams(input_ids=ids, labels=torch.tensor([[-100, 0, 1, 2, -100]])).loss
    loss.backward()
    grad = with_bigrams.backbone.bigram_embeddings.weight.grad
    assert int((grad.abs().sum(1) > 0).sum()) == 6  # six distinct pairs around five tokens


# ------------------------------------------------------------------ word dropout
def test_word_dropout_replaces_only_real_non_special_tokens_and_only_in_training():
    model = tiny_model(word_dropout_prob=0.5)
    ids = torch.tensor([[CLS] + list(range(10, 40)) + [SEP, PAD, PAD]])
    lengths = torch.tensor([32])
    seen = []
    model.backbone.embeddings.register_forward_hook(lambda module, args, out: seen.append(args[0].clone()))
    model.backbone.embed(ids, lengths)
    assert torch.equal(seen[-1], ids)  # eval: untouched
    model.train()
    torch.manual_seed(0)
    model.backbone.embed(ids, lengths)
    dropped = seen[-1] != ids
    assert seen[-1][dropped].eq(UNK).all()
    assert not dropped[0, [0, 31, 32, 33]].any()  # [CLS], [SEP], padding kept
    assert 5 <= int(dropped.sum()) <= 25  # about half of the 30 words


def test_word_dropout_needs_an_unk_id():
    with pytest.raises(ValueError, match="word_dropout_prob > 0 needs unk_token_id"):
        MambaCrfConfig(word_dropout_prob=0.1)


def test_residual_dropout_is_active_in_training_only():
    model = tiny_model(residual_dropout_prob=0.5)
    ids = torch.tensor([[CLS, 11, 12, 13, SEP]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, model(input_ids=ids).logits)
        model.train()
        assert not torch.equal(model(input_ids=ids, return_predictions=False).logits,
                               model(input_ids=ids, return_predictions=False).logits)


# ------------------------------------------------------------------ windows
@pytest.mark.parametrize("length,window,context", [(1, 4, 2), (8, 4, 2), (9, 4, 2), (23, 5, 3), (100, 7, 0)])
def test_window_centres_tile_the_row_once_with_context_inside_the_row(length, window, context):
    spans = window_spans(length, window, context)
    covered = [i for _, _, centre_start, centre_end in spans for i in range(centre_start, centre_end)]
    assert covered == list(range(length))
    for start, end, centre_start, centre_end in spans:
        assert 0 <= start <= centre_start < centre_end <= end <= length
        if len(spans) > 1:
            assert centre_start - start == min(context, centre_start)
            assert end - centre_end == min(context, length - centre_end)


def test_window_features_keep_labels_on_centres_only_and_every_label_once():
    length = 30
    labels = [i % 3 for i in range(length)]
    labels[0] = labels[-1] = -100  # [CLS] / [SEP]
    batch = {"input_ids": [list(range(100, 100 + length)), [1, 2, 3]],
             "attention_mask": [[1] * length, [1, 1, 1]],
             "labels": [labels, [-100, 0, -100]]}
    out = window_features(batch, window=8, context=3)
    assert len(out["input_ids"]) == 4 + 1  # ceil(30 / 8) windows, the short row unchanged
    assert out["input_ids"][-1] == [1, 2, 3] and out["labels"][-1] == [-100, 0, -100]
    kept = {}
    for ids, row_labels, mask in zip(out["input_ids"][:4], out["labels"][:4], out["attention_mask"][:4]):
        assert len(ids) == len(row_labels) == len(mask) <= 8 + 2 * 3
        for token, label in zip(ids, row_labels):
            if label != -100:
                assert token not in kept  # scored once
                kept[token] = label
    assert kept == {100 + i: label for i, label in enumerate(labels) if label != -100}


# ------------------------------------------------------------------ softmax baseline
def test_softmax_tagger_uses_token_cross_entropy_and_argmax():
    model = tiny_model(use_crf=False, bigram_vocab_size=0)
    ids = torch.tensor([[CLS, 11, 12, 13, SEP, PAD]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])
    labels = torch.tensor([[-100, 1, 2, 0, -100, -100]])
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    expected = torch.nn.functional.cross_entropy(out.logits[0, 1:4], labels[0, 1:4])
    assert torch.allclose(out.loss, expected)
    assert out.predictions[0, 1:4].tolist() == out.logits[0, 1:4].argmax(-1).tolist()
    assert out.predictions[0, [0, 4, 5]].tolist() == [-100, -100, -100]
    assert torch.allclose(model.tag_marginals(out.logits).sum(-1), torch.ones(1, 6))


def test_window_centres_never_begin_inside_an_entity():
    names = ["O", "B-X", "I-X"]
    # entities of 1-6 tokens everywhere, so that nominal cuts at multiples of 5 land inside them
    labels = [-100] + [1, 2, 2, 0, 1, 2, 2, 2, 2, 2, 0, 0, 1, 1, 2, 2, 2, 0, 1, 2, 2, 2, 2, 2, 2, 0] + [-100]
    batch = {"input_ids": [list(range(len(labels)))], "attention_mask": [[1] * len(labels)], "labels": [labels]}
    out = window_features(batch, window=5, context=2, label_names=names)
    kept = {}
    for ids, row in zip(out["input_ids"], out["labels"]):
        chain = [label for label in row if label != -100]
        assert chain and names[chain[0]] != "I-X", row  # a chain starting with I-X is forbidden in BIO
        kept.update({token: label for token, label in zip(ids, row) if label != -100})
    assert kept == {i: label for i, label in enumerate(labels) if label != -100}  # still every label once
    # the CRF scores these chains without touching a forbidden transition
    model = tiny_model()
    model.train()
    width = max(len(ids) for ids in out["input_ids"])
    ids = torch.tensor([row + [PAD] * (width - len(row)) for row in out["input_ids"]]) % 60
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in out["input_ids"]])
    labels_t = torch.tensor([row + [-100] * (width - len(row)) for row in out["labels"]])
    assert model(input_ids=ids, attention_mask=mask, labels=labels_t).loss < 1000  # a forbidden step costs 10,000
