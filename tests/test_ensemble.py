"""An ensemble in one checkpoint (`ensemble_size`): independent taggers, one CRF, mean emissions."""
import pytest
import torch

from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification
from mamba_ner.resume import check_model_sizes
from mamba_ner.tokenization import build_tokenizer
from mamba_ner.training import ModelArguments, get_model
from mamba_ner.commandline import UsageError

LABELS = ["O", "B-DISE", "I-DISE"]
SENTENCES = [list("糖尿病患者"), list("高血壓病人"), list("胰島素注射")]


def tiny_config(**kwargs):
    return MambaCrfConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, state_size=4,
                          id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)}, **kwargs)


def batch():
    torch.manual_seed(1)
    ids = torch.randint(5, 40, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    labels = torch.tensor([[-100, 1, 2, 0, 1, 0, -100], [-100, 0, 1, 2, -100, -100, -100]])
    return ids, mask, labels


def each_tagger_emissions(model, ids, mask):
    pairs = [(model.backbone, model.classifier)] + [(m.backbone, m.classifier) for m in model.members]
    return [classifier(backbone(ids, attention_mask=mask).last_hidden_state) for backbone, classifier in pairs]


def test_ensemble_averages_emissions_and_losses_of_independent_taggers():
    torch.manual_seed(0)
    model = MambaCrfForTokenClassification(tiny_config(ensemble_size=3)).eval()
    single = MambaCrfForTokenClassification(tiny_config()).eval()
    assert len(model.members) == 2 and len(model.backbones()) == 3 and len(single.members) == 0
    assert model.num_parameters() > 2.9 * single.num_parameters()
    ids, mask, labels = batch()
    with torch.no_grad():
        out = model(ids, attention_mask=mask, labels=labels)
        each = each_tagger_emissions(model, ids, mask)
    assert not torch.allclose(each[0], each[1]) and not torch.allclose(each[1], each[2])  # own initialisations
    assert torch.allclose(out.logits, torch.stack(each).mean(0), atol=1e-6)
    expected_loss = torch.stack([model.crf(e, labels, mask=mask) for e in each]).mean()
    assert torch.allclose(out.loss, expected_loss, atol=1e-6)
    chain = mask.bool() & (labels != -100)
    assert torch.equal(out.predictions, model.crf.decode(out.logits, mask=chain))


def test_every_tagger_learns_from_its_own_loss():
    torch.manual_seed(0)
    model = MambaCrfForTokenClassification(tiny_config(ensemble_size=2)).train()
    ids, mask, labels = batch()
    model(ids, attention_mask=mask, labels=labels).loss.backward()
    for backbone, classifier in ((model.backbone, model.classifier), (model.members[0].backbone, model.members[0].classifier)):
        assert backbone.embeddings.weight.grad.abs().sum() > 0 and classifier.weight.grad.abs().sum() > 0
    assert model.crf.transitions.grad.abs().sum() > 0


def test_ensemble_checkpoint_reloads_with_its_members(tmp_path):
    torch.manual_seed(0)
    model = MambaCrfForTokenClassification(tiny_config(ensemble_size=2)).eval()
    model.save_pretrained(tmp_path)
    again = MambaCrfForTokenClassification.from_pretrained(tmp_path).eval()
    assert again.config.ensemble_size == 2
    ids, mask, _ = batch()
    with torch.no_grad():
        assert torch.allclose(again(ids, attention_mask=mask).logits, model(ids, attention_mask=mask).logits, atol=1e-6)


def test_get_model_builds_an_ensemble_with_the_lexicon_in_every_tagger(tmp_path):
    tokenizer = build_tokenizer(SENTENCES, kind="char")
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("糖尿病\n高血壓\n胰島素\n", encoding="utf-8")
    args = ModelArguments(hidden_size=16, num_hidden_layers=1, state_size=4, ensemble_size=3, lexicon=str(lexicon))
    model = get_model(args, LABELS, tokenizer)
    assert model.config.ensemble_size == 3 and model.config.lexicon_size == 3
    for backbone in model.backbones():
        assert backbone.lexicon_embeddings is not None and torch.equal(backbone.lexicon, model.backbone.lexicon)


def test_an_ensemble_fine_tuned_from_one_encoder_starts_every_tagger_from_it(tmp_path):
    tokenizer = build_tokenizer(SENTENCES, kind="char")
    single = get_model(ModelArguments(hidden_size=16, num_hidden_layers=1, state_size=4), LABELS, tokenizer)
    single.save_pretrained(tmp_path / "single")
    model = get_model(ModelArguments(model_name_or_path=str(tmp_path / "single"), ensemble_size=2), LABELS, tokenizer)
    assert model.config.ensemble_size == 2
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(model.members[0].backbone.state_dict()[name], value), name
    assert not torch.equal(model.members[0].classifier.weight, model.classifier.weight)
    # without --ensemble_size a checkpoint keeps its own number of taggers; a larger vocabulary reaches all
    model.save_pretrained(tmp_path / "pair")
    larger = build_tokenizer(SENTENCES + [list("新藥")], kind="char")
    again = get_model(ModelArguments(model_name_or_path=str(tmp_path / "pair")), LABELS, larger)
    assert again.config.ensemble_size == 2 and len(larger) > len(tokenizer)
    assert [b.embeddings.num_embeddings for b in again.backbones()] == [len(larger)] * 2


def test_resuming_with_another_ensemble_size_is_refused(tmp_path):
    MambaCrfForTokenClassification(tiny_config(ensemble_size=2)).config.save_pretrained(tmp_path)
    with pytest.raises(UsageError, match="ensemble_size 2 in the checkpoint, 1 asked"):
        check_model_sizes(tmp_path, tiny_config())


def test_ensemble_size_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="ensemble_size must be a positive integer"):
        tiny_config(ensemble_size=0)


def test_run_ner_trains_and_exports_an_ensemble(tmp_path):
    import json

    from safetensors import safe_open
    from test_training import tiny_args

    from mamba_ner.training import main as train_main

    out = tmp_path / "run"
    assert train_main(tiny_args(out, "--max_steps", "2", "--ensemble_size", "2", "--save_strategy", "no",
                                "--overwrite_output_dir", "--make_plots", "false")) == 0
    assert json.loads((out / "model" / "config.json").read_text())["ensemble_size"] == 2
    with safe_open(out / "model" / "model.safetensors", "pt") as weights:
        names = set(weights.keys())
    assert "members.0.classifier.weight" in names and "members.0.backbone.embeddings.weight" in names
    assert json.loads((out / "summary.json").read_text())["test"]["f1"] >= 0


def test_every_model_class_lists_its_encoders():
    from mamba_ner.modeling_mamba_crf import MambaCrfForMaskedLM, MambaCrfModel

    encoder, lm = MambaCrfModel(tiny_config()), MambaCrfForMaskedLM(tiny_config())
    assert encoder.backbones() == [encoder] and lm.backbones() == [lm.backbone]


def test_an_ensemble_with_a_word_list_and_a_lexicon_saves_and_reloads(tmp_path):
    tokenizer = build_tokenizer(SENTENCES, kind="char")
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("糖尿病\n高血壓\n", encoding="utf-8")
    args = ModelArguments(hidden_size=16, num_hidden_layers=1, state_size=4, ensemble_size=2, lexicon=str(lexicon),
                          word_min_count=1)
    model = get_model(args, LABELS, tokenizer, train_tokens=SENTENCES).eval()
    model.save_pretrained(tmp_path / "saved")  # the encoders' tables must not share storage
    again = MambaCrfForTokenClassification.from_pretrained(tmp_path / "saved").eval()
    ids = tokenizer([SENTENCES[0]], is_split_into_words=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(again(ids).logits, model(ids).logits, atol=1e-6)
    for backbone in again.backbones():
        assert torch.equal(backbone.word_list, model.backbone.word_list)
