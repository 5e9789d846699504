"""Checkpoint validation, the clean-process reload check and the upload, against a loopback fake Hub.

The upload tests start a small HTTP server on 127.0.0.1 that implements the routes
huggingface_hub 2.4 calls for create_repo, model_info, create_branch, validate-yaml, preupload and
commit, and records every request. The preupload answer makes every file a "regular" (inline,
base64) file, so the commit carries the exact bytes and no LFS/Xet storage is involved. The
huggingface_hub HTTP client is replaced for the test by one that refuses any host but 127.0.0.1.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

# the fake Hub drives the HTTP client of the huggingface_hub this project installs (httpx2, set_client_factory);
# a machine with another huggingface_hub (a lent GPU machine) skips these tests instead of failing to collect
httpx2 = pytest.importorskip("httpx2", reason="needs the huggingface_hub HTTP client the project installs (httpx2)")
huggingface_hub = pytest.importorskip("huggingface_hub")
if not hasattr(huggingface_hub, "set_client_factory"):
    pytest.skip("needs huggingface_hub's set_client_factory (the version the project installs)", allow_module_level=True)
from huggingface_hub import constants, set_client_factory  # noqa: E402
from huggingface_hub.utils import _http
from safetensors.numpy import save_file

import mamba_ner.hub as hub
from mamba_ner.hub import (
    CheckpointValidationError,
    HubUploadError,
    export_checkpoint,
    ReloadCheckError,
    RepoVisibilityError,
    prepare_upload,
    push_checkpoint,
    reload_check,
    upload_checkpoint,
    validate_checkpoint_dir,
)
from mamba_ner.model_card import write_model_card

REPO_ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("hub_upload", REPO_ROOT / "hub_upload.py")
hub_upload = importlib.util.module_from_spec(_spec)  # the script at the repository root
_spec.loader.exec_module(hub_upload)

SECRET = "hf_TestSecretTokenDoNotLeak0123456789"
ID2LABEL = {0: "O", 1: "B-DISE", 2: "I-DISE"}
AUTO_MAP = {
    "AutoConfig": "configuration_mamba_crf.MambaCrfConfig",
    "AutoModel": "modeling_mamba_crf.MambaCrfModel",
    "AutoModelForTokenClassification": "modeling_mamba_crf.MambaCrfForTokenClassification",
}
FAKE_FILES = [
    "README.md",
    "config.json",
    "configuration_mamba_crf.py",
    "crf.py",
    "model.safetensors",
    "modeling_mamba_crf.py",
    "tokenizer.json",
    "tokenizer_config.json",
]


# --------------------------------------------------------------------------- folders


def write_config(folder: Path, **changes) -> None:
    config = {"model_type": "mamba-crf", "hidden_size": 32, "num_hidden_layers": 2, "auto_map": AUTO_MAP}
    config["id2label"] = {str(k): v for k, v in ID2LABEL.items()}
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")


def save_weights(path: Path) -> None:
    save_file({"emissions.weight": np.zeros((3, 4), dtype=np.float32)}, str(path))


@pytest.fixture
def fake_checkpoint(tmp_path) -> Path:
    """A folder that passes validation, with stand-in code files and weights (no real model)."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    write_config(folder)
    (folder / "configuration_mamba_crf.py").write_text("from transformers import PretrainedConfig\n")
    (folder / "modeling_mamba_crf.py").write_text(
        "import torch\nfrom .configuration_mamba_crf import MambaCrfConfig\nfrom .crf import LinearChainCRF\n"
    )
    (folder / "crf.py").write_text("import torch\n")
    save_weights(folder / "model.safetensors")
    (folder / "tokenizer.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
    write_model_card(folder, {"precision": 0.5, "recall": 0.5, "f1": 0.5}, "toy corpus")
    return folder


def build_tiny_checkpoint(folder: Path) -> Path:
    """A real tiny model (hidden 32, 2 layers, vocab 99) with a char-level tokenizer and its card."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification

    chars = sorted(set(hub.DEFAULT_PROBE_TEXT))
    vocab = {"[PAD]": 0, "[UNK]": 1, **{char: i + 2 for i, char in enumerate(chars)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]")
    torch.manual_seed(0)
    config = MambaCrfConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, state_size=8,
        id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()},
    )
    MambaCrfForTokenClassification(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    write_model_card(folder, {"precision": 0.5, "recall": 0.5, "f1": 0.5}, "toy corpus", model_id="someone/tiny")
    return folder


@pytest.fixture(scope="module")
def tiny_checkpoint_source(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny")


@pytest.fixture
def tiny_checkpoint(tiny_checkpoint_source, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_checkpoint_source, tmp_path / "tiny"))


# --------------------------------------------------------------------------- validation


def test_valid_folder_passes_with_exactly_its_files(fake_checkpoint):
    result = validate_checkpoint_dir(fake_checkpoint)
    assert result.errors == []
    assert result.files == FAKE_FILES


def test_optional_files_are_allowed(fake_checkpoint):
    (fake_checkpoint / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    (fake_checkpoint / "eval_results.json").write_text(json.dumps({"eval_f1": 0.5, "epoch": 3.0}))
    (fake_checkpoint / "loss.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    (fake_checkpoint / "special_tokens_map.json").write_text("{}")
    result = validate_checkpoint_dir(fake_checkpoint)
    assert result.errors == []
    assert set(result.files) == set(FAKE_FILES) | {
        ".gitattributes", "eval_results.json", "loss.png", "special_tokens_map.json"
    }


def test_custom_pipeline_code_is_allowed(fake_checkpoint):
    spec = {"impl": "pipeline_mamba_crf.Pipeline", "pt": ["AutoModelForTokenClassification"], "type": "text"}
    pipelines = {"token-classification": spec}
    write_config(fake_checkpoint, custom_pipelines=pipelines)
    (fake_checkpoint / "pipeline_mamba_crf.py").write_text("from transformers import TokenClassificationPipeline\n")
    result = validate_checkpoint_dir(fake_checkpoint)
    assert result.errors == []
    assert "pipeline_mamba_crf.py" in result.files


def test_sharded_weights_pass(fake_checkpoint):
    (fake_checkpoint / "model.safetensors").unlink()
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    for shard in shards:
        save_weights(fake_checkpoint / shard)
    index = {"metadata": {}, "weight_map": {"a": shards[0], "b": shards[1]}}
    (fake_checkpoint / "model.safetensors.index.json").write_text(json.dumps(index))
    result = validate_checkpoint_dir(fake_checkpoint)
    assert result.errors == []
    assert {"model.safetensors.index.json", *shards} <= set(result.files)


def _remove(*names):
    def mutate(folder: Path):
        for name in names:
            (folder / name).unlink()
    return mutate


def _write(name, content: bytes | str = b"x"):
    def mutate(folder: Path):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return mutate


def _config(**changes):
    return lambda folder: write_config(folder, **changes)


def _append_code(name, code):
    def mutate(folder: Path):
        with (folder / name).open("a") as f:
            f.write(code)
    return mutate


def _shard_index(listed, present):
    def mutate(folder: Path):
        (folder / "model.safetensors").unlink()
        for shard in present:
            save_weights(folder / shard)
        weight_map = {f"w{i}": shard for i, shard in enumerate(listed)}
        (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return mutate


def _symlink(folder: Path):
    (folder / "vocab.txt").symlink_to(folder / "tokenizer.json")


SHARD1, SHARD2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
BAD_FOLDERS = {
    "missing-config": (_remove("config.json"), "config.json: missing; save the model with save_pretrained"),
    "config-not-json": (_write("config.json", "{oops"), "config.json: not valid JSON"),
    "no-auto-map": (_config(auto_map=None), "config.json: auto_map lacks AutoConfig, AutoModelForTokenClassification"),
    "auto-map-without-token-classification": (
        _config(auto_map={"AutoConfig": AUTO_MAP["AutoConfig"]}),
        "config.json: auto_map lacks AutoModelForTokenClassification",
    ),
    "auto-map-to-missing-py": (
        _remove("modeling_mamba_crf.py"),
        "config.json: auto_map['AutoModel'] names modeling_mamba_crf.py, which is not in the folder",
    ),
    "auto-map-to-other-repo": (
        _config(auto_map={**AUTO_MAP, "AutoModel": "someone/repo--modeling_x.Model"}),
        "auto_map['AutoModel'] = 'someone/repo--modeling_x.Model' points to code in another repository",
    ),
    "auto-map-not-module-class": (
        _config(auto_map={**AUTO_MAP, "AutoModel": "MambaCrfModel"}),
        "auto_map['AutoModel'] = 'MambaCrfModel'; expected 'module.ClassName'",
    ),
    "custom-pipeline-to-missing-py": (
        _config(custom_pipelines={"token-classification": {"impl": "pipeline_mamba_crf.Pipeline"}}),
        "config.json: custom_pipelines['token-classification']['impl'] names pipeline_mamba_crf.py, which is not",
    ),
    "from-dot-import-module": (
        _append_code("crf.py", "from . import scan\n"),
        "crf.py, line 2: `from . import ...` is not copied with remote code",
    ),
    "relative-import-missing": (
        _remove("crf.py"),
        "modeling_mamba_crf.py: imports .crf, but crf.py is not in the folder",
    ),
    "absolute-import-of-package": (
        _append_code("crf.py", "from mamba_ner.scan import selective_scan\n"),
        "crf.py, line 2: imports the mamba_ner package",
    ),
    "code-syntax-error": (_append_code("crf.py", "def broken(:\n"), "crf.py, line 2: Python syntax error"),
    "unused-python-file": (_write("train_helper.py", "x = 1\n"), "train_helper.py: Python file not named in auto_map"),
    "missing-safetensors": (_remove("model.safetensors"), "model.safetensors: missing"),
    "safetensors-that-is-not": (
        _write("model.safetensors", b"\x80\x04\x95" + b"\0" * 40),
        "model.safetensors: not a valid safetensors file",
    ),
    "pytorch-model-bin": (_write("pytorch_model.bin"), "pytorch_model.bin: pickle file, which can run code"),
    "pt-file": (_write("weights.pt"), "weights.pt: pickle file"),
    "pkl-file": (_write("label_encoder.pkl"), "label_encoder.pkl: pickle file"),
    "ckpt-file": (_write("last.ckpt"), "last.ckpt: pickle file"),
    "optimizer-state": (_write("optimizer.pt"), "optimizer.pt: training state"),
    "scheduler-state": (_write("scheduler.pt"), "scheduler.pt: training state"),
    "rng-state": (_write("rng_state_0.pth"), "rng_state_0.pth: training state"),
    "trainer-state": (_write("trainer_state.json", "{}"), "trainer_state.json: training state"),
    "training-args": (_write("training_args.bin"), "training_args.bin: training state"),
    "trainer-checkpoint-folder": (
        _write("checkpoint-500/optimizer.pt"),
        "checkpoint-500/: Trainer checkpoint folder (weights plus optimizer state)",
    ),
    "other-subfolder": (_write("runs/events.out.tfevents"), "runs/: subfolder; only the files of a flat model folder"),
    "text-corpus": (_write("train.txt", "患 B-DISE\n"), "train.txt: data file"),
    "brat-annotations": (_write("doc1.ann", "T1\tDISE 0 2\t肺炎\n"), "doc1.ann: data file"),
    "jsonl-dataset": (_write("train.jsonl", "{}\n"), "train.jsonl: data file"),
    "parquet-dataset": (_write("train.parquet"), "train.parquet: data file"),
    "arrow-dataset": (_write("data-00000-of-00001.arrow"), "data-00000-of-00001.arrow: data file"),
    "dataset-dict": (_write("dataset_dict.json", '{"splits": ["train"]}'), "dataset_dict.json: data file"),
    "json-dataset": (_write("train.json", "[]"), "train.json: JSON file not on the allowlist"),
    "nested-results": (
        _write("eval_results.json", json.dumps({"eval_f1": 0.5, "predictions": [[0, 1]]})),
        "eval_results.json: nested values",
    ),
    "unknown-file": (_write("notes.md", "todo"), "notes.md: not on the allowlist"),
    "fake-png": (_write("loss.png", b"GIF89a"), "loss.png: not a PNG image"),
    "symlink": (_symlink, "vocab.txt: symbolic link"),
    "missing-tokenizer": (_remove("tokenizer.json", "tokenizer_config.json"), "tokenizer: missing"),
    "tokenizer-config-only": (_remove("tokenizer.json"), "tokenizer: missing"),
    "missing-model-card": (_remove("README.md"), "README.md: missing model card"),
    "card-without-metadata": (_write("README.md", "# A model\n"), "README.md: no YAML metadata block"),
    "shard-listed-but-absent": (
        _shard_index([SHARD1, SHARD2], [SHARD1]),
        f"model.safetensors.index.json: lists {SHARD2}, which is not in the folder",
    ),
    "shard-without-index": (_write(SHARD1), f"{SHARD1}: shard without model.safetensors.index.json"),
}


@pytest.mark.parametrize("mutate, message", BAD_FOLDERS.values(), ids=BAD_FOLDERS.keys())
def test_bad_folder_is_refused_with_a_clear_message(fake_checkpoint, mutate, message):
    mutate(fake_checkpoint)
    result = validate_checkpoint_dir(fake_checkpoint)
    assert not result.ok
    assert any(message in error for error in result.errors), result.errors
    with pytest.raises(CheckpointValidationError, match=re.escape(message)):
        result.raise_for_errors()


def test_every_problem_is_reported_at_once(fake_checkpoint):
    for name in ("optimizer.pt", "train.txt", "pytorch_model.bin"):
        (fake_checkpoint / name).write_bytes(b"x")
    (fake_checkpoint / "README.md").unlink()
    with pytest.raises(CheckpointValidationError) as info:
        validate_checkpoint_dir(fake_checkpoint).raise_for_errors()
    message = str(info.value)
    assert message.startswith(f"{fake_checkpoint} cannot be uploaded:")
    for name in ("optimizer.pt", "train.txt", "pytorch_model.bin", "README.md"):
        assert f"- {name}: " in message


def test_not_a_folder_is_refused(tmp_path):
    result = validate_checkpoint_dir(tmp_path / "absent")
    assert result.errors == [f"{tmp_path / 'absent'}: not a folder"]


def make_training_output(folder: Path) -> None:
    """Add what a Trainer run leaves next to the final model."""
    for name, content in {
        "checkpoint-10/optimizer.pt": b"x", "checkpoint-10/model.safetensors": b"x", "trainer_state.json": "{}",
        "training_args.bin": b"x", "train_results.json": json.dumps({"train_loss": 1.5, "epoch": 3.0}),
        "test_scores.json": json.dumps({"entity": {"f1": 0.5}}), "summary.json": "{}",
        "plots/test/f1.png": b"\x89PNG\r\n\x1a\n", "runs/events.out.tfevents": b"x",
    }.items():
        _write(name, content)(folder)


def test_export_copies_only_the_uploadable_files(fake_checkpoint, tmp_path, caplog):
    make_training_output(fake_checkpoint)
    assert not validate_checkpoint_dir(fake_checkpoint).ok
    caplog.set_level("INFO", logger="mamba_ner.hub")
    result = export_checkpoint(fake_checkpoint, tmp_path / "export")
    assert result.errors == []
    assert result.files == sorted(FAKE_FILES + ["train_results.json"])
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == result.files
    assert "left out checkpoint-10/: Trainer checkpoint folder" in caplog.text
    assert "left out training_args.bin: training state" in caplog.text
    assert "left out test_scores.json: JSON file not on the allowlist" in caplog.text


def test_export_into_a_subfolder_of_the_source(fake_checkpoint, caplog):
    # training.py exports output_dir -> output_dir/model
    caplog.set_level("INFO", logger="mamba_ner.hub")
    result = export_checkpoint(fake_checkpoint, fake_checkpoint / "model")
    assert result.errors == [] and result.files == FAKE_FILES
    assert "left out" not in caplog.text


def test_export_refuses_a_folder_that_is_not_empty(fake_checkpoint, tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "old.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty; export into a new folder"):
        export_checkpoint(fake_checkpoint, tmp_path / "export")


# --------------------------------------------------------------------------- reload check


def test_saved_model_validates_and_reloads_without_the_package(tiny_checkpoint):
    assert validate_checkpoint_dir(tiny_checkpoint).errors == []
    check = reload_check(tiny_checkpoint)
    assert check.ok, check.detail
    assert check.child["model_class"].startswith("transformers_modules.")
    assert check.child["tags"] == check.parent["tags"]
    assert len(check.child["tags"]) == len(hub.DEFAULT_PROBE_TEXT)


def test_reload_check_fails_when_the_folder_code_needs_the_package(tiny_checkpoint):
    # A dynamic import slips past the static check; the clean process must still catch it.
    with (tiny_checkpoint / "crf.py").open("a") as f:
        f.write('\nimport importlib\nimportlib.import_module("mamba_" + "ner")\n')
    assert validate_checkpoint_dir(tiny_checkpoint).errors == []
    check = reload_check(tiny_checkpoint)
    assert not check.ok
    assert "failed in a clean process without mamba_ner" in check.detail
    assert "blocked by the reload check" in check.detail


def test_failed_reload_check_stops_the_upload(fake_checkpoint, monkeypatch):
    monkeypatch.setattr(hub, "reload_check", lambda path, probe_text: hub.ReloadCheckResult(False, "tags differ"))
    with pytest.raises(ReloadCheckError, match="tags differ"):
        upload_checkpoint(fake_checkpoint, "someone/mamba-crf", dry_run=True)


def test_reload_check_fails_when_the_folder_code_predicts_differently(tiny_checkpoint):
    with (tiny_checkpoint / "modeling_mamba_crf.py").open("a") as f:
        f.write(
            "\n_forward = MambaCrfForTokenClassification.forward\n"
            "def _shifted(self, *args, **kwargs):\n"
            "    out = _forward(self, *args, **kwargs)\n"
            "    out.logits = out.logits + 1.0\n"
            "    return out\n"
            "MambaCrfForTokenClassification.forward = _shifted\n"
        )
    check = reload_check(tiny_checkpoint)
    assert not check.ok
    assert "predictions differ between the folder's code and mamba_ner (largest logit difference 1" in check.detail


# --------------------------------------------------------------------------- fake Hub


class FakeHub:
    """Loopback stand-in for the Hub routes huggingface_hub 2.4 uses to create a repo and commit."""

    def __init__(self):
        self.requests: list[dict] = []
        self.repos: dict[str, dict] = {}
        self.commits: list[dict] = []
        hub_state = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                hub_state.handle(self, "GET")

            def do_POST(self):
                hub_state.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def add_repo(self, repo_id, private):
        self.repos[repo_id] = {"private": private, "branches": {"main"}}

    def handle(self, handler, method):
        path = unquote(urlsplit(handler.path).path)
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        ndjson = "ndjson" in (handler.headers.get("Content-Type") or "")
        body = [json.loads(line) for line in raw.splitlines()] if ndjson else json.loads(raw) if raw else None
        self.requests.append(
            {"method": method, "path": path, "body": body, "authorization": handler.headers.get("Authorization")}
        )
        status, answer = self.route(method, path, body)
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def route(self, method, path, body):
        repo = r"/api/models/(?P<repo>[^/]+/[^/]+)"
        if method == "POST" and path == "/api/repos/create":
            repo_id = f"{body['organization']}/{body['name']}"
            answer = {"url": f"{self.url}/{repo_id}"}
            if repo_id in self.repos:
                return 409, {**answer, "error": "You already created this model repo"}
            self.add_repo(repo_id, private=body.get("visibility") == "private")
            return 200, answer
        if method == "POST" and path == "/api/validate-yaml":
            return 200, {"errors": [], "warnings": []}
        if method == "GET" and (match := re.fullmatch(repo + r"(/revision/.+)?", path)):
            if match["repo"] not in self.repos:
                return 404, {"error": "Repository not found"}
            return 200, {"id": match["repo"], "private": self.repos[match["repo"]]["private"], "sha": "0" * 40}
        if method == "POST" and (match := re.fullmatch(repo + r"/branch/(?P<branch>.+)", path)):
            branches = self.repos[match["repo"]]["branches"]
            if match["branch"] in branches:
                return 409, {"error": "Reference already exists"}
            branches.add(match["branch"])
            return 200, {}
        if method == "POST" and (match := re.fullmatch(repo + r"/preupload/(?P<revision>.+)", path)):
            files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in body["files"]]
            return 200, {"files": files}
        if method == "POST" and (match := re.fullmatch(repo + r"/commit/(?P<revision>.+)", path)):
            header = body[0]["value"]
            files = {
                item["value"]["path"]: base64.b64decode(item["value"]["content"])
                for item in body[1:]
                if item["key"] == "file"
            }
            other_keys = [item["key"] for item in body[1:] if item["key"] != "file"]
            self.commits.append(
                {"repo": match["repo"], "revision": match["revision"], "summary": header["summary"],
                 "files": files, "other_operations": other_keys}
            )
            oid = f"{len(self.commits):040x}"
            return 200, {"commitUrl": f"{self.url}/{match['repo']}/commit/{oid}", "commitOid": oid}
        return 404, {"error": f"fake hub: no route for {method} {path}"}

    def routes(self):
        return [(r["method"], r["path"]) for r in self.requests]


@pytest.fixture
def loopback_only():
    """huggingface_hub's HTTP client for the test: any host but 127.0.0.1 fails before connecting."""

    def guard(request):
        if request.url.host != "127.0.0.1":
            raise AssertionError(f"request to a non-loopback host: {request.url}")
        return _http.hf_request_event_hook(request)

    set_client_factory(
        lambda: httpx2.Client(event_hooks={"request": [guard]}, follow_redirects=False, timeout=30, trust_env=False)
    )
    yield
    set_client_factory(_http.default_client_factory)


def test_loopback_guard_stops_requests_to_other_hosts(loopback_only):
    # Offline mode stays on here: were the guard to fail, the request would still not leave.
    with pytest.raises(AssertionError, match="request to a non-loopback host: https://huggingface.co/api/models"):
        hub.HfApi(endpoint="https://huggingface.co").model_info("someone/model")


@pytest.fixture
def fake_hub(monkeypatch, loopback_only):
    """A running fake Hub, offline mode lifted (for huggingface_hub only) and a token in HF_TOKEN."""
    server = FakeHub()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    yield server
    server.close()


@pytest.mark.parametrize("disable_xet", [False, True], ids=["xet-pipeline", "single-commit"])
def test_upload_creates_a_private_repo_and_sends_exactly_the_validated_files(
    fake_checkpoint, fake_hub, monkeypatch, capsys, caplog, disable_xet
):
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", disable_xet)  # both upload_folder code paths
    caplog.set_level("DEBUG")
    caplog.set_level("DEBUG", logger="huggingface_hub")
    url = upload_checkpoint(
        fake_checkpoint, "someone/mamba-crf", commit_message="first model", check_reload=False
    )
    assert url == f"{fake_hub.url}/someone/mamba-crf"

    create = fake_hub.requests[0]
    assert (create["method"], create["path"]) == ("POST", "/api/repos/create")
    assert create["body"]["visibility"] == "private"
    assert {"name": "mamba-crf", "organization": "someone"}.items() <= create["body"].items()
    assert fake_hub.repos["someone/mamba-crf"]["private"] is True

    [commit] = fake_hub.commits
    assert (commit["repo"], commit["revision"], commit["summary"]) == ("someone/mamba-crf", "main", "first model")
    assert sorted(commit["files"]) == FAKE_FILES
    assert commit["other_operations"] == []
    for name, content in commit["files"].items():
        assert content == (fake_checkpoint / name).read_bytes()
    assert {r["path"] for r in fake_hub.requests} <= {
        "/api/repos/create", "/api/models/someone/mamba-crf", "/api/validate-yaml",
        "/api/models/someone/mamba-crf/preupload/main", "/api/models/someone/mamba-crf/commit/main",
    }

    # The token authenticates every request and appears nowhere in output or logs.
    assert all(r["authorization"] == f"Bearer {SECRET}" for r in fake_hub.requests)
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err + caplog.text
    assert "uploaded 8 files to someone/mamba-crf" in caplog.text
    assert any(record.name.startswith("huggingface_hub") for record in caplog.records)  # its debug logs were seen


def test_public_flag_creates_a_public_repo(fake_checkpoint, fake_hub):
    upload_checkpoint(fake_checkpoint, "someone/open-model", private=False, check_reload=False)
    assert fake_hub.requests[0]["body"]["visibility"] == "public"
    assert fake_hub.repos["someone/open-model"]["private"] is False


def test_revision_creates_the_branch_and_commits_to_it(fake_checkpoint, fake_hub):
    url = upload_checkpoint(fake_checkpoint, "someone/mamba-crf", revision="exp-1", check_reload=False)
    assert url == f"{fake_hub.url}/someone/mamba-crf/tree/exp-1"
    assert ("POST", "/api/models/someone/mamba-crf/branch/exp-1") in fake_hub.routes()
    assert fake_hub.commits[0]["revision"] == "exp-1"
    # Second upload to the same branch: the branch exists (409), which is fine.
    upload_checkpoint(fake_checkpoint, "someone/mamba-crf", revision="exp-1", check_reload=False)
    assert [c["revision"] for c in fake_hub.commits] == ["exp-1", "exp-1"]


def test_private_upload_into_an_existing_public_repo_is_refused(fake_checkpoint, fake_hub):
    fake_hub.add_repo("someone/already-public", private=False)
    with pytest.raises(RepoVisibilityError, match="already exists and is public; pass --public"):
        upload_checkpoint(fake_checkpoint, "someone/already-public", check_reload=False)
    assert fake_hub.commits == []


def test_upload_without_a_token_is_refused_before_any_request(fake_checkpoint, fake_hub, monkeypatch):
    monkeypatch.setattr(hub, "get_token", lambda: None)
    with pytest.raises(HubUploadError, match="no Hugging Face token: set HF_TOKEN"):
        upload_checkpoint(fake_checkpoint, "someone/mamba-crf", check_reload=False)
    assert fake_hub.requests == []


def test_refused_folder_sends_nothing(fake_checkpoint, fake_hub):
    (fake_checkpoint / "optimizer.pt").write_bytes(b"x")
    with pytest.raises(CheckpointValidationError, match="optimizer.pt: training state"):
        upload_checkpoint(fake_checkpoint, "someone/mamba-crf", check_reload=False)
    assert fake_hub.requests == []


def test_folder_changed_after_validation_is_refused(fake_checkpoint, fake_hub):
    validation = prepare_upload(fake_checkpoint, check_reload=False)
    (fake_checkpoint / ".gitattributes").write_text("")
    with pytest.raises(CheckpointValidationError, match="changed since it was validated"):
        push_checkpoint(validation, "someone/mamba-crf")
    assert fake_hub.requests == []


# --------------------------------------------------------------------------- the script


def test_script_uploads_a_real_checkpoint_after_the_reload_check(tiny_checkpoint, fake_hub, capsys):
    code = hub_upload.main([str(tiny_checkpoint), "someone/tiny", "--revision", "v1", "--commit-message", "tiny"])
    out = capsys.readouterr().out
    assert code == 0
    url = f"{fake_hub.url}/someone/tiny/tree/v1"
    assert out.strip().endswith(f"uploaded to the private repository someone/tiny, branch v1: {url}")
    [commit] = fake_hub.commits
    expected = sorted(
        ["README.md", "config.json", "configuration_mamba_crf.py", "crf.py", "model.safetensors",
         "modeling_mamba_crf.py", "scan.py", "tokenizer.json", "tokenizer_config.json"]
    )
    assert sorted(commit["files"]) == sorted(validate_checkpoint_dir(tiny_checkpoint).files)
    assert set(expected) <= set(commit["files"])
    assert fake_hub.requests[0]["body"]["visibility"] == "private"
    assert SECRET not in out


def test_script_dry_run_lists_files_and_sends_nothing(fake_checkpoint, fake_hub, capsys):
    code = hub_upload.main([str(fake_checkpoint), "someone/mamba-crf", "--dry-run", "--skip-reload-check"])
    out = capsys.readouterr().out
    assert code == 0
    for name in FAKE_FILES:
        assert f"  {name}  (" in out
    assert "dry run: nothing was uploaded; these files would go to the private repository someone/mamba-crf" in out
    assert fake_hub.requests == []


def test_script_exports_a_training_output_folder_then_checks_it(fake_checkpoint, tmp_path, capsys):
    make_training_output(fake_checkpoint)
    export = tmp_path / "export"
    argv = [str(fake_checkpoint), "someone/m", "--export-to", str(export), "--dry-run", "--skip-reload-check"]
    assert hub_upload.main(argv) == 0
    out = capsys.readouterr().out
    assert f"{len(FAKE_FILES) + 1} files validated in {export}:" in out
    assert "training_args.bin" not in out


def test_script_refuses_a_bad_folder(fake_checkpoint, capsys):
    (fake_checkpoint / "training_args.bin").write_bytes(b"x")
    assert hub_upload.main([str(fake_checkpoint), "someone/mamba-crf", "--dry-run", "--skip-reload-check"]) == 1
    assert "training_args.bin: training state" in capsys.readouterr().err


def test_script_runs_from_the_repository_root(fake_checkpoint):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env["HF_HUB_OFFLINE"] = "1"
    completed = subprocess.run(
        [sys.executable, "hub_upload.py", str(fake_checkpoint), "someone/m", "--dry-run", "--skip-reload-check"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert "dry run: nothing was uploaded" in completed.stdout
    assert "  model.safetensors  (" in completed.stdout
