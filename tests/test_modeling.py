"""The model: config validation, Auto registration, padding invariance, fast vs reference scan,
layout compatibility with `transformers.MambaModel`, loading a Mamba LM checkpoint as backbone."""
import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForTokenClassification,
    MambaConfig,
    MambaForCausalLM,
    MambaModel,
)

from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification, MambaCrfModel
from mamba_ner.scan import SCAN_ENV_VAR

LABELS = ["O", "B-DISE", "I-DISE", "B-BODY", "I-BODY"]


def tiny_config(**overrides):
    kwargs = dict(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, state_size=8,
        id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)},
        hidden_dropout_prob=0.0, classifier_dropout=0.0,
    )
    kwargs.update(overrides)
    return MambaCrfConfig(**kwargs)


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return MambaCrfForTokenClassification(tiny_config(**overrides)).eval()


# ------------------------------------------------------------------ config
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"hidden_size": 0}, "hidden_size must be a positive integer"),
        ({"num_hidden_layers": 2.5}, "num_hidden_layers must be a positive integer"),
        ({"tagging_scheme": "BILOU"}, "tagging_scheme must be one of"),
        ({"hidden_dropout_prob": 1.5}, r"hidden_dropout_prob must be in \[0, 1\)"),
        ({"classifier_dropout": -0.1}, r"classifier_dropout must be in \[0, 1\)"),
        ({"time_step_rank": 0}, "time_step_rank must be a positive integer or 'auto'"),
        ({"time_step_min": 0.5, "time_step_max": 0.1}, "time_step_min and time_step_max"),
        ({"time_step_init_scheme": "zeros"}, "time_step_init_scheme must be"),
        ({"hidden_act": "gelu"}, "hidden_act must be 'silu'"),
        ({"bidirectional": "yes"}, "bidirectional must be True or False"),
        ({"id2label": {0: "O", 2: "B-X"}}, "id2label keys must be 0..num_labels-1"),
        ({"id2label": {0: "O", 1: "O"}}, "id2label has duplicate labels"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**kwargs)


def test_config_resolves_auto_and_aliases():
    cfg = tiny_config(tagging_scheme="IOB2", hidden_size=40)
    assert cfg.time_step_rank == 3 and cfg.intermediate_size == 80 and cfg.tagging_scheme == "BIO"
    assert tiny_config(tagging_scheme=None).tagging_scheme == "none"
    assert tiny_config(tagging_scheme="bioes").tagging_scheme == "IOBES"


def test_model_rejects_labels_outside_the_scheme():
    with pytest.raises(ValueError, match="label 'S-X' is not valid"):
        MambaCrfForTokenClassification(tiny_config(id2label={0: "O", 1: "S-X"}, label2id={"O": 0, "S-X": 1}))


# ------------------------------------------------------------------ auto classes
def test_auto_classes_give_this_package():
    cfg = AutoConfig.for_model("mamba-crf", vocab_size=99, hidden_size=32, num_hidden_layers=1, state_size=4)
    assert isinstance(cfg, MambaCrfConfig)
    assert isinstance(AutoModel.from_config(cfg), MambaCrfModel)
    assert isinstance(AutoModelForTokenClassification.from_config(cfg), MambaCrfForTokenClassification)


# ------------------------------------------------------------------ outputs
def test_forward_outputs_loss_logits_predictions_and_gradients():
    model = tiny_model().train()
    ids = torch.randint(0, 99, (2, 6))
    labels = torch.tensor([[-100, 1, 2, 0, 3, -100], [-100, 0, 0, 3, 4, -100]])
    mask = torch.ones(2, 6, dtype=torch.long)
    out = model(ids, attention_mask=mask, labels=labels)
    assert out.logits.shape == (2, 6, len(LABELS))
    assert out.predictions is None  # no Viterbi while training unless asked
    assert torch.isfinite(out.loss) and out.loss > 0
    out.loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
    model.eval()
    with torch.no_grad():
        pred = model(ids, attention_mask=mask, labels=labels).predictions
    assert pred.shape == (2, 6)
    assert (pred[labels == -100] == -100).all() and (pred[labels != -100] >= 0).all()
    tuple_out = model(ids, attention_mask=mask, labels=labels, return_dict=False)
    assert torch.equal(tuple_out[0], model(ids, attention_mask=mask, labels=labels).loss)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_bfloat16_weights_forward_and_backward(bidirectional):
    """A model cast to bfloat16 runs (the residual stream stays float32 and is cast for the classifier)
    and tags like the float32 model on a padded batch."""
    model = tiny_model(bidirectional=bidirectional)
    half = tiny_model(bidirectional=bidirectional).to(torch.bfloat16)
    half.load_state_dict(model.state_dict())
    ids = torch.randint(0, 99, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 8:] = 0
    mask[2, :3] = 0
    with torch.no_grad():
        full_out, half_out = model(ids, attention_mask=mask), half(ids, attention_mask=mask)
    assert half_out.logits.dtype == torch.bfloat16
    real = mask.bool()
    scale = full_out.logits[real].abs().max()
    assert (half_out.logits.float() - full_out.logits)[real].abs().max() < 0.02 * scale
    labels = torch.where(real, torch.tensor([0, 1, 2, 0, 3, 4, 0, 1, 2, 2, 0, 0]).expand(3, 12), -100)
    loss = half.train()(ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in half.parameters() if p.grad is not None)


def test_predictions_follow_the_bio_constraints():
    model = tiny_model(seed=3)
    with torch.no_grad():
        model.classifier.bias[LABELS.index("I-DISE")] = 100.0  # argmax of emissions would be I-DISE everywhere
        pred = model(torch.randint(0, 99, (1, 5))).predictions[0].tolist()
    assert [LABELS[t] for t in pred] == ["B-DISE"] + ["I-DISE"] * 4


# ------------------------------------------------------------------ padding invariance
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_invariance(bidirectional, side):
    # Biases on: with zero biases a leak from padding could go unnoticed.
    model = tiny_model(seed=1, bidirectional=bidirectional, use_bias=True, use_conv_bias=True)
    torch.manual_seed(2)
    sentence = torch.randint(1, 99, (1, 5))
    other = torch.randint(1, 99, (1, 9))
    padded = torch.zeros(1, 9, dtype=torch.long)
    mask = torch.zeros(1, 9, dtype=torch.long)
    span = slice(0, 5) if side == "right" else slice(4, 9)
    padded[0, span] = sentence[0]
    mask[0, span] = 1
    batch = torch.cat([other, padded])
    batch_mask = torch.cat([torch.ones(1, 9, dtype=torch.long), mask])
    with torch.no_grad():
        alone = model(sentence)
        in_batch = model(batch, attention_mask=batch_mask)
    assert torch.allclose(in_batch.logits[1, span], alone.logits[0], atol=1e-5)
    assert in_batch.predictions[1, span].tolist() == alone.predictions[0].tolist()
    assert (in_batch.predictions[1][mask[0] == 0] == -100).all()
    # and the padding content does not matter
    batch[1][mask[0] == 0] = 7
    with torch.no_grad():
        again = model(batch, attention_mask=batch_mask)
    assert torch.allclose(again.logits[1, span], alone.logits[0], atol=1e-5)


def test_backward_direction_sees_the_future():
    model = tiny_model(seed=4, bidirectional=True)
    ids = torch.randint(1, 99, (1, 6))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % 99
    with torch.no_grad():
        a, b = model(ids).logits, model(changed).logits
    assert not torch.allclose(a[0, 0], b[0, 0])  # first position depends on the last token
    uni = tiny_model(seed=4, bidirectional=False)
    with torch.no_grad():
        a, b = uni(ids).logits, uni(changed).logits
    assert torch.allclose(a[0, :-1], b[0, :-1])  # causal: only the last position changes


# ------------------------------------------------------------------ fast path vs reference
@pytest.mark.parametrize("fast_path", ["torch", "auto"])
def test_fast_scan_and_reference_agree_in_outputs_and_gradients(monkeypatch, fast_path):
    model = tiny_model(seed=5).train()
    ids = torch.randint(1, 99, (2, 11))
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[1, 7:] = 0
    labels = torch.randint(0, 5, (2, 11))
    labels[:, 0] = 0
    labels[labels == 2] = 1  # no forbidden transitions needed here; keep it simple
    labels[labels == 4] = 3

    def run(path):
        monkeypatch.setenv(SCAN_ENV_VAR, path)
        model.zero_grad()
        out = model(ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        return out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    ref_logits, ref_grads = run("ref")
    fast_logits, fast_grads = run(fast_path)
    assert torch.allclose(fast_logits, ref_logits, atol=1e-5)
    for name in ref_grads:
        assert torch.allclose(fast_grads[name], ref_grads[name], atol=1e-4, rtol=1e-3), name


# ------------------------------------------------------------------ transformers Mamba compatibility
def test_unidirectional_backbone_equals_transformers_mamba_model():
    torch.manual_seed(6)
    hf_cfg = MambaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, state_size=8, use_cache=False)
    hf = MambaModel(hf_cfg).eval()
    ours = MambaCrfModel(tiny_config(bidirectional=False)).eval()
    ours.load_state_dict(hf.state_dict(), strict=True)  # same names and shapes, nothing left over
    ids = torch.randint(0, 99, (2, 7))
    with torch.no_grad():
        expected = hf(ids, use_cache=False).last_hidden_state
        got = ours(ids).last_hidden_state
    assert torch.allclose(got, expected, atol=1e-5)


def test_loads_a_local_mamba_lm_checkpoint_as_backbone(tmp_path):
    torch.manual_seed(7)
    lm = MambaForCausalLM(MambaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, state_size=8))
    lm.save_pretrained(tmp_path)
    model, info = MambaCrfForTokenClassification.from_pretrained(
        tmp_path, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={l: i for i, l in enumerate(LABELS)}, output_loading_info=True,
    )
    lm_state = lm.state_dict()
    ours = model.state_dict()
    for key, value in lm_state.items():
        if key.startswith("backbone."):
            assert torch.equal(ours[key], value), key
    new = set(info["missing_keys"])
    assert {"classifier.weight", "classifier.bias", "crf.transitions", "crf.start_transitions", "crf.end_transitions"} <= new
    assert "backbone.layers.0.mixer.A_b_log" in new and "backbone.layers.1.mixer.conv1d_b.weight" in new
    assert not any(k.startswith("backbone.") and "_b" not in k for k in new)  # forward direction all loaded
    assert "lm_head.weight" in set(info["unexpected_keys"]) or not info["unexpected_keys"]
    # newly initialised parameters hold sane values (not uninitialised memory)
    for key in new:
        value = ours[key]
        assert torch.isfinite(value).all() and value.abs().max() < 20, key
    a_b = ours["backbone.layers.0.mixer.A_b_log"]
    assert torch.allclose(a_b[0], torch.log(torch.arange(1, 9, dtype=torch.float32)))
    assert model.config.bidirectional and model.config.tagging_scheme == "BIO"
    with torch.no_grad():
        out = model.eval()(torch.randint(0, 99, (1, 5)))
    assert torch.isfinite(out.logits).all()
