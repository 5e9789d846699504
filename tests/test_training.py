"""End to end with the Trainer: train a tiny model on the bundled sample, save, reload through
trust_remote_code in a clean process, resume from a checkpoint, and run on two CPU processes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from clean_process import run_without_package
from safetensors.torch import load_file

from mamba_ner.training import main as train_main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample_data" / "rocling"


def tiny_args(output_dir, *extra):
    return [
        "--data_format", "rocling",
        "--train_files", str(SAMPLE / "train.txt"),
        "--validation_files", str(SAMPLE / "dev.txt"),
        "--test_files", str(SAMPLE / "test.txt"),
        "--output_dir", str(output_dir),
        "--hidden_size", "16", "--num_hidden_layers", "1", "--state_size", "4",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
        "--learning_rate", "5e-3", "--seed", "7", "--report_to", "none",
        "--do_train", "--do_eval", "--use_cpu", "--dataloader_num_workers", "0",
        "--disable_tqdm", "true",
        *extra,
    ]


RELOAD = """
import json, sys
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer
path, sentences = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForTokenClassification.from_pretrained(path, trust_remote_code=True).eval()
# without trust_remote_code AutoTokenizer also loads (after asking about the config's custom code)
tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
enc = tokenizer([list(s) for s in sentences], is_split_into_words=True, padding=True, return_tensors="pt")
with torch.no_grad():
    print(json.dumps(model(**enc).predictions.tolist()))
"""


def predictions_here(path, sentences):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    enc = tokenizer([list(s) for s in sentences], is_split_into_words=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).predictions.tolist()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if not SAMPLE.is_dir():
        pytest.fail(f"the bundled sample {SAMPLE} is missing")
    out = tmp_path_factory.mktemp("run") / "model"
    assert train_main(tiny_args(out, "--max_steps", "6", "--eval_strategy", "steps", "--eval_steps", "3",
                                "--save_strategy", "steps", "--save_steps", "3", "--logging_steps", "1",
                                "--do_predict")) == 0
    return out


def test_training_writes_checkpoint_scores_and_pictures(trained):
    files = {p.name for p in trained.iterdir()}
    assert {"config.json", "model.safetensors", "validation_scores.json", "test_scores.json", "summary.json"} <= files
    exported = {p.name for p in (trained / "model").iterdir()}  # the shareable checkpoint
    assert {"config.json", "model.safetensors", "modeling_mamba_crf.py", "crf.py", "scan.py", "tokenizer.json",
            "README.md"} <= exported
    assert not exported & {"training_args.bin", "trainer_state.json", "optimizer.pt"}
    from mamba_ner.hub import validate_checkpoint_dir

    assert validate_checkpoint_dir(trained / "model").errors == []
    scores = json.loads((trained / "test_scores.json").read_text())
    assert 0.0 <= scores["entity"]["f1"] <= 1.0 and "entity_strict" in scores and "token" in scores
    machine = json.loads((trained / "summary.json").read_text())["train"]["machine"]
    assert machine.rsplit("; scan kernel ", 1)[1] in {"avx512", "generic-avx2", "generic", "none"}
    pngs = list((trained / "plots").rglob("*.png"))
    assert len(pngs) >= 3 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    state = json.loads((trained / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert any("eval_f1" in entry for entry in state["log_history"])  # scored with the Viterbi predictions


def test_checkpoint_reloads_with_trust_remote_code_in_a_clean_process(trained, tmp_path):
    sentences = ["患者有高血壓和糖尿病", "頭痛"]
    got = run_without_package(RELOAD, [trained / "model", json.dumps(sentences, ensure_ascii=False)], tmp_path)
    assert got == predictions_here(trained / "model", sentences)


def test_resume_continues_the_same_run(trained, tmp_path):
    # Resume the 6-step run from its step-3 checkpoint: same step count and the same final weights
    # as the uninterrupted run (optimizer, scheduler and RNG state restored).
    resumed = tmp_path / "resumed"
    assert train_main(tiny_args(resumed, "--max_steps", "6", "--save_strategy", "steps", "--save_steps", "3",
                                "--eval_strategy", "steps", "--eval_steps", "3", "--logging_steps", "1",
                                "--resume_from_checkpoint", str(trained / "checkpoint-3"))) == 0
    state = json.loads((resumed / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    a, b = load_file(trained / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_two_cpu_processes_with_gloo(tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(REPO / "examples" / "run_ner.py"),
           *tiny_args(out, "--max_steps", "2", "--ddp_backend", "gloo", "--save_strategy", "no", "--make_plots", "false")]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "world size 2" in result.stderr, result.stderr[-2000:]
    assert (out / "model.safetensors").exists()


def test_label_scheme_iobes_learns_iobes_tags_and_scores_in_iob2(tmp_path):
    out = tmp_path / "iobes"
    assert train_main(tiny_args(out, "--max_steps", "4", "--label_scheme", "IOBES", "--do_predict")) == 0
    config = json.loads((out / "config.json").read_text())
    labels = set(config["id2label"].values())
    assert config["tagging_scheme"] == "IOBES" and {"E-BODY", "S-BODY"} <= labels
    summary = json.loads((out / "summary.json").read_text())
    for split in ("validation", "test"):
        scores = json.loads((out / f"{split}_scores.json").read_text())
        tags = set(scores["token"]["per_tag"])
        assert tags and all(tag == "O" or tag[:2] in ("B-", "I-") for tag in tags), tags
        assert summary[split]["f1"] == scores["entity"]["f1"]
    # the checkpoint tags with its IOBES labels, constrained: no E-/I- without an open entity
    predictions = predictions_here(out, ["頭痛發燒三天", "胃食道逆流"])
    id2label = {int(k): v for k, v in config["id2label"].items()}
    for row in predictions:
        tags = [id2label[i] for i in row[1:-1]]
        for previous, tag in zip(["O", *tags], tags):
            if tag[:2] in ("I-", "E-"):
                assert previous[:2] in ("B-", "I-") and previous[2:] == tag[2:], tags


def test_label_scheme_refuses_other_schemes(tmp_path, capsys):
    assert train_main(tiny_args(tmp_path / "x", "--max_steps", "1", "--label_scheme", "BMES")) != 0
    assert "--label_scheme must be IOB2 or IOBES" in capsys.readouterr().err
