"""Masked-token pretraining on a tiny corpus: the checkpoint, its loading as a tagger and as a remote
`AutoModel`, the masking, the loss going down, and fine-tuning from it with `run_ner`'s `main`."""
import json
from pathlib import Path

import pytest
import torch
from clean_process import run_without_package
from safetensors.torch import load_file
from transformers import AutoTokenizer

from mamba_ner import MambaCrfForMaskedLM, MambaCrfForTokenClassification
from mamba_ner.pretraining import main as pretrain_main
from mamba_ner.pretraining import masking_collator, read_texts, split_texts
from mamba_ner.tokenization import build_tokenizer

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample_data" / "rocling"
LABELS = ["O", "B-SYMP", "I-SYMP"]
# A few hundred characters in a fixed order: every masked character follows from its neighbours.
CORPUS = ["患者三天前出現發燒與咳嗽，醫師開立抗生素治療。"[start:] + "患者三天前出現發燒與咳嗽，醫師開立抗生素治療。"[:start]
          for start in range(0, 24, 2)] * 2


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Pretrain hidden 32, 2 layers, bigrams, a lexicon and residual dropout on, for 60 steps; return the output folder."""
    root = tmp_path_factory.mktemp("pretrain")
    (root / "corpus.txt").write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    (root / "words.txt").write_text("發燒\n咳嗽\n抗生素\n", encoding="utf-8")
    output_dir = root / "out"
    assert pretrain_main([
        "--train_files", str(root / "corpus.txt"), "--output_dir", str(output_dir),
        "--hidden_size", "32", "--num_hidden_layers", "2", "--state_size", "4", "--bigram_vocab_size", "64",
        "--residual_dropout_prob", "0.1", "--word_dropout_prob", "0.2", "--max_seq_length", "32",
        "--lexicon", str(root / "words.txt"), "--lexicon_max_word_length", "3", "--lexicon_dropout_prob", "0.1",
        "--validation_split_ratio", "0.1", "--per_device_train_batch_size", "8", "--max_steps", "60",
        "--learning_rate", "1e-2", "--warmup_steps", "0", "--logging_first_step", "true", "--logging_steps", "10",
        "--seed", "3", "--report_to", "none", "--use_cpu", "--dataloader_num_workers", "0",
        "--dataloader_pin_memory", "false", "--disable_tqdm", "true", "--save_strategy", "no",
    ]) == 0
    return output_dir


def test_pretraining_writes_a_checkpoint(pretrained):
    files = {p.name for p in pretrained.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "modeling_mamba_crf.py", "scan.py", "crf.py"} <= files
    config = json.loads((pretrained / "config.json").read_text())
    assert config["auto_map"]["AutoModelForMaskedLM"] == "modeling_mamba_crf.MambaCrfForMaskedLM"
    assert config["auto_map"]["AutoModel"] == "modeling_mamba_crf.MambaCrfModel"
    assert config["word_dropout_prob"] == 0.0  # masking hides tokens already; word dropout stays off
    assert config["bigram_vocab_size"] == 64 and config["residual_dropout_prob"] == 0.1
    assert config["lexicon_size"] == 3 and config["lexicon_max_word_length"] == 3 and config["lexicon_dropout_prob"] == 0.1
    assert load_file(pretrained / "model.safetensors")["backbone.lexicon"].shape == (3,)
    assert config["vocab_size"] == len(AutoTokenizer.from_pretrained(pretrained))
    scores = json.loads((pretrained / "eval_results.json").read_text())
    assert {"eval_loss", "eval_masked_accuracy"} <= set(scores)


def test_loss_goes_down_on_a_repetitive_corpus(pretrained):
    history = json.loads((pretrained / "trainer_state.json").read_text())["log_history"]
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert len(losses) >= 4
    # first step: about log(vocabulary) (~3.3 here); the text repeats one sentence, so context gives every token
    assert losses[-1] < 0.4 * losses[0], losses
    scores = json.loads((pretrained / "eval_results.json").read_text())
    assert scores["eval_masked_accuracy"] > 0.5, scores  # chance is ~1/27


def test_checkpoint_loads_as_tagger_with_the_pretrained_backbone(pretrained):
    tagger, info = MambaCrfForTokenClassification.from_pretrained(
        pretrained, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)}, output_loading_info=True)
    assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias", "crf.start_transitions",
                                         "crf.end_transitions", "crf.transitions"}
    assert all(key.startswith("lm_head.") for key in info["unexpected_keys"])
    saved = load_file(pretrained / "model.safetensors")
    backbone = {f"backbone.{name}": value for name, value in tagger.backbone.state_dict().items()}
    assert backbone.keys() <= saved.keys()
    for name, value in backbone.items():
        assert torch.equal(value, saved[name]), name
    lm = MambaCrfForMaskedLM.from_pretrained(pretrained)
    assert lm.lm_head.decoder.weight is lm.backbone.embeddings.weight  # tied by default


ENCODER = """
import json, sys
import torch
from transformers import AutoModel, AutoModelForMaskedLM
path, ids, mask = sys.argv[1], torch.tensor(json.loads(sys.argv[2])), torch.tensor(json.loads(sys.argv[3]))
encoder = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
lm = AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=True).eval()
with torch.no_grad():
    hidden = encoder(ids, attention_mask=mask).last_hidden_state
    logits = lm(ids, attention_mask=mask).logits
print(json.dumps({"encoder": type(encoder).__name__, "lm": type(lm).__name__, "hidden": hidden.tolist(),
                  "logits": logits.tolist()}))
"""


def test_checkpoint_loads_as_remote_automodel_without_the_package(pretrained, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(pretrained)
    enc = tokenizer(["患者發燒", "醫師開立抗生素治療"], padding=True, return_tensors="pt")
    lm = MambaCrfForMaskedLM.from_pretrained(pretrained).eval()
    with torch.no_grad():
        expected_hidden = lm.backbone(**enc).last_hidden_state
        expected_logits = lm(**enc).logits
    got = run_without_package(ENCODER, [pretrained, json.dumps(enc["input_ids"].tolist()),
                                        json.dumps(enc["attention_mask"].tolist())], tmp_path)
    assert got["encoder"] == "MambaCrfModel" and got["lm"] == "MambaCrfForMaskedLM"
    assert torch.allclose(torch.tensor(got["hidden"]), expected_hidden, atol=1e-5)
    assert torch.allclose(torch.tensor(got["logits"]), expected_logits, atol=1e-4)


def test_masking_never_touches_padding_or_special_tokens():
    tokenizer = build_tokenizer(CORPUS, kind="char")
    texts = ["患者發燒", "醫師開立X抗生素治療", "咳", "患者三天前出現發燒與咳嗽"]  # X is not in the vocabulary: [UNK]
    examples = [{"input_ids": tokenizer(text)["input_ids"]} for text in texts]
    never = set(tokenizer.all_special_ids)  # [PAD] [UNK] [CLS] [SEP] [MASK]
    for seed in range(20):
        batch = masking_collator(tokenizer, mlm_probability=1.0, seed=seed)(examples)
        for row, example in enumerate(examples):
            original = example["input_ids"]
            labels, inputs = batch["labels"][row], batch["input_ids"][row]
            assert (labels[len(original):] == -100).all() and (inputs[len(original):] == tokenizer.pad_token_id).all()
            assert (batch["attention_mask"][row, len(original):] == 0).all()
            for position, token in enumerate(original):
                if token in never:
                    assert labels[position] == -100 and inputs[position] == token
                else:  # probability 1: every real token is chosen, and its label is the original id
                    assert labels[position] == token


def test_masking_follows_bert_80_10_10():
    tokenizer = build_tokenizer(CORPUS, kind="char")
    example = {"input_ids": tokenizer("".join(CORPUS))["input_ids"]}
    batch = masking_collator(tokenizer, mlm_probability=0.15, seed=0)([example] * 8)
    chosen = batch["labels"] != -100
    share_chosen = chosen.float().mean().item()
    share_masked = (batch["input_ids"][chosen] == tokenizer.mask_token_id).float().mean().item()
    assert 0.12 < share_chosen < 0.18 and 0.72 < share_masked < 0.88


def test_read_texts_plain_and_labelled(tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("患者發燒。\n\n  醫師開立抗生素。  \n", encoding="utf-8")
    assert read_texts([str(plain)]) == ["患者發燒。", "醫師開立抗生素。"]
    labelled = read_texts([str(SAMPLE / "train.txt")])  # rocling, detected: the tags are dropped
    assert labelled and all(isinstance(text, str) and text for text in labelled)
    assert labelled == read_texts([str(SAMPLE / "train.txt")], "rocling")
    parts = split_texts([str(i) for i in range(100)], 0.05, seed=1)
    assert len(parts["validation"]) == 5 and not set(parts["validation"]) & set(parts["train"])


def test_fine_tune_from_the_pretrained_checkpoint(pretrained, tmp_path):
    from mamba_ner.training import main as train_main

    output_dir = tmp_path / "ner"
    assert train_main([
        "--data_format", "rocling", "--train_files", str(SAMPLE / "train.txt"),
        "--validation_files", str(SAMPLE / "dev.txt"), "--model_name_or_path", str(pretrained),
        "--output_dir", str(output_dir), "--per_device_train_batch_size", "8", "--max_steps", "2",
        "--report_to", "none", "--use_cpu", "--do_train", "--do_eval", "--disable_tqdm", "true",
        "--make_plots", "false", "--dataloader_num_workers", "0", "--dataloader_pin_memory", "false",
        "--save_strategy", "no",
    ]) == 0
    pretrained_tokenizer = AutoTokenizer.from_pretrained(pretrained)
    tuned_tokenizer = AutoTokenizer.from_pretrained(output_dir / "model")
    assert tuned_tokenizer.get_vocab() == pretrained_tokenizer.get_vocab()  # the sample's new characters are [UNK]
    config = json.loads((output_dir / "model" / "config.json").read_text())
    assert config["vocab_size"] == len(pretrained_tokenizer) and config["bigram_vocab_size"] == 64
    assert config["lexicon_size"] == 3  # the pretrained lexicon comes along
    tuned = load_file(output_dir / "model" / "model.safetensors")
    assert torch.equal(tuned["backbone.lexicon"], load_file(pretrained / "model.safetensors")["backbone.lexicon"])
    assert "AutoModelForMaskedLM" not in config["auto_map"]
    assert len(config["id2label"]) > 2


def test_cli_pretrain_without_text_is_a_one_line_error(tmp_path, capsys):
    from mamba_ner.cli import main as cli_main

    assert cli_main(["pretrain", "--output_dir", str(tmp_path / "out"), "--use_cpu"]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--train_files" in error and "--protocol" in error
