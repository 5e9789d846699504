"""Saved checkpoints load with trust_remote_code in a process where `mamba_ner` cannot be imported."""
import json

import pytest
import torch
from clean_process import run_without_package

from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification
from mamba_ner.modeling_mamba_crf import lexicon_window_hashes, word_hashes

LABELS = ["O", "B-SYMP", "I-SYMP"]

LOADER = """
import json
import sys
import torch
from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification
path = sys.argv[1]
ids = torch.tensor(json.loads(sys.argv[2]))
mask = torch.tensor(json.loads(sys.argv[3]))
config = AutoConfig.from_pretrained(path, trust_remote_code=True)
tagger = AutoModelForTokenClassification.from_pretrained(path, trust_remote_code=True).eval()
encoder = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
with torch.no_grad():
    out = tagger(ids, attention_mask=mask)
    hidden = encoder(ids, attention_mask=mask).last_hidden_state
print(json.dumps({
    "config_class": type(config).__name__, "tagger_class": type(tagger).__name__,
    "encoder_class": type(encoder).__name__, "module": type(tagger).__module__,
    "logits": out.logits.tolist(), "predictions": out.predictions.tolist(), "hidden": hidden.tolist(),
}))
"""


@pytest.mark.parametrize("features", [{}, {"bigram_vocab_size": 37, "word_dropout_prob": 0.1, "unk_token_id": 1,
                                         "residual_dropout_prob": 0.1}, {"lexicon_max_word_length": 3, "lexicon_dropout_prob": 0.2},
                                      {"lexicon_max_word_length": 3, "lexicon_leave_one_out": True},
                                      {"word_vocab_size": 2}, {"ensemble_size": 3, "lexicon_max_word_length": 3}],
                         ids=["plain", "bigrams", "lexicon", "lexicon-counts", "words", "ensemble"])
def test_remote_code_round_trip_without_the_package(tmp_path, features):
    torch.manual_seed(0)
    config = MambaCrfConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, state_size=4, use_bias=True,
        id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)}, **features,
    )
    model = MambaCrfForTokenClassification(config).eval()
    if "lexicon_max_word_length" in features:  # words [5, 6] and [7, 8, 9], which the first row contains
        words = [torch.tensor([[5, 6]]), torch.tensor([[7, 8, 9]])]
        for backbone in model.backbones():  # every tagger of an ensemble
            counts = [torch.tensor([1, 3])] if features.get("lexicon_leave_one_out") else []
            backbone.set_lexicon(torch.cat([dict(lexicon_window_hashes(w, w.shape[1]))[w.shape[1]][:, 0] for w in words]), *counts)
            with torch.no_grad():
                backbone.lexicon_embeddings.weight.normal_()
    if "word_vocab_size" in features:  # ids 10..19 continue a word; the words [5, 12] and [7, 13, 14] are listed
        continuation = torch.zeros(50, dtype=torch.bool)
        continuation[10:20] = True
        token_map = torch.arange(50)
        listed = torch.tensor([[5, 12, 7, 13, 14]])
        hashes, _ = word_hashes(listed, torch.ones_like(listed, dtype=torch.bool), continuation, token_map)
        model.backbone.set_words(hashes[0, [0, 2]], continuation, token_map)
        with torch.no_grad():
            model.backbone.word_embeddings.weight.normal_()
    save_dir = tmp_path / "checkpoint"
    model.save_pretrained(save_dir)

    files = {p.name for p in save_dir.iterdir()}
    assert {"config.json", "model.safetensors", "modeling_mamba_crf.py", "configuration_mamba_crf.py", "crf.py", "scan.py"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in files)
    auto_map = json.loads((save_dir / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_mamba_crf.MambaCrfConfig",
        "AutoModel": "modeling_mamba_crf.MambaCrfModel",
        "AutoModelForTokenClassification": "modeling_mamba_crf.MambaCrfForTokenClassification",
    }

    ids = torch.randint(1, 50, (2, 6))
    ids[0, :5] = torch.tensor([5, 12, 7, 13, 14]) if "word_vocab_size" in features else torch.tensor([5, 6, 7, 8, 9])
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0
    with torch.no_grad():
        expected = model(ids, attention_mask=mask)
        expected_hidden = model.backbone(ids, attention_mask=mask).last_hidden_state

    got = run_without_package(LOADER, [save_dir, json.dumps(ids.tolist()), json.dumps(mask.tolist())], tmp_path)
    assert got["config_class"] == "MambaCrfConfig"
    assert got["tagger_class"] == "MambaCrfForTokenClassification" and got["encoder_class"] == "MambaCrfModel"
    assert got["module"].startswith("transformers_modules"), got["module"]
    assert torch.allclose(torch.tensor(got["logits"]), expected.logits, atol=1e-5)
    assert got["predictions"] == expected.predictions.tolist()
    assert torch.allclose(torch.tensor(got["hidden"]), expected_hidden, atol=1e-5)
