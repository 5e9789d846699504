"""Check a checkpoint folder, then push it to the Hugging Face Hub (private unless asked otherwise).

Three steps, each usable alone:

1. `validate_checkpoint_dir(path)`: every file in the folder must be on an allowlist of what a
   model repository needs, and everything the repository needs must be there. Refused: pickle files
   (`*.bin`, `*.pt`, ...), optimizer / scheduler / RNG / Trainer state, `checkpoint-*` and any other
   subfolder, corpora and data sets, symbolic links, any file not on the list.
2. `reload_check(path)`: a fresh Python process in which `mamba_ner` cannot be imported loads the
   folder with `trust_remote_code=True`, as a user without the package would, and tags a probe
   sentence; this process loads the folder through the same Auto classes (which, `mamba_ner` being
   imported here, resolve to the installed package's classes) and the two results must agree. So the
   check proves that the code in the folder is complete and reproduces the package's predictions.
3. `push_checkpoint(...)`: `HfApi.create_repo(private=True, exist_ok=True)`, a refusal when the repo
   already exists and is public but a private upload was asked for, `create_branch` for `revision`,
   and `upload_folder` whose `allow_patterns` are exactly the validated file names.
`upload_checkpoint` runs all three; `hub_upload.py` is its command line. A training output folder
(with `checkpoint-*`, `trainer_state.json`, `training_args.bin`, plots...) is refused as it is:
`export_checkpoint(output_dir, new_dir)` copies only the files that may be uploaded into a new folder.

The allowlist (`ALLOWED_FILES` plus three patterns):
    config.json, generation_config.json        configuration (config.json needs an auto_map)
    <module>.py                                only modules named in auto_map (config and tokenizer)
                                               or custom_pipelines, and the modules they import
                                               with `from .module import name`
    model.safetensors, or model.safetensors.index.json + the shards it lists
    tokenizer.json, tokenizer_config.json, special_tokens_map.json, added_tokens.json,
    vocab.txt, vocab.json, merges.txt          tokenizer (tokenizer_config.json + one vocabulary)
    README.md                                  the model card, with YAML metadata (required)
    .gitattributes
    all_results.json, eval_results.json, train_results.json, validation_results.json, test_results.json
                                               flat metric dictionaries written by the Trainer
    *.png                                      figures for the card
The token comes from `token=`, `HF_TOKEN` or the `hf auth login` file; it is never printed or logged.
"""

from __future__ import annotations

import ast
import inspect
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from huggingface_hub import HfApi, constants, get_token, metadata_load
from transformers.dynamic_module_utils import get_relative_imports

logger = logging.getLogger(__name__)

PACKAGE_NAME = "mamba_ner"
DEFAULT_PROBE_TEXT = "患者三天前出现发热、咳嗽，诊断为社区获得性肺炎。"
REQUIRED_AUTO_MAP = ("AutoConfig", "AutoModelForTokenClassification")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)
RESULT_FILES = (
    "all_results.json", "eval_results.json", "train_results.json", "validation_results.json", "test_results.json"
)
ALLOWED_FILES = frozenset(
    ("config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json", "README.md")
    + (".gitattributes",)
    + TOKENIZER_FILES
    + RESULT_FILES
)
SHARD_PATTERN = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")
TRAINING_STATE_PATTERN = re.compile(
    r"(optimizer|scheduler|scaler)\.(pt|pth|bin|safetensors)|rng_state.*\.pth|random_states.*\.pkl"
    r"|trainer_state\.json|training_args\.(bin|json)"
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
DATA_SUFFIXES = (".txt", ".ann", ".conll", ".conllu", ".bio", ".bmes", ".tsv", ".csv", ".jsonl", ".parquet", ".arrow")
DATA_FILES = ("dataset_dict.json", "dataset_info.json", "state.json")


class CheckpointValidationError(ValueError):
    """The folder is not fit for upload; the message lists every problem found."""


class HubUploadError(RuntimeError):
    """The upload cannot go ahead (no token, offline mode, ...)."""


class ReloadCheckError(HubUploadError):
    """The folder does not load in a clean process, or its predictions differ."""


class RepoVisibilityError(HubUploadError):
    """A private upload was asked for but the repository exists and is public."""


@dataclass
class ValidationResult:
    """Outcome of `validate_checkpoint_dir`.

    Attributes:
        path: The folder checked.
        files: Names (relative to `path`) of the files to upload, sorted; complete only when `ok`.
        errors: One message per problem, each naming the file and what was expected.
    """

    path: Path
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> None:
        if self.errors:
            problems = "\n".join(f"- {message}" for message in self.errors)
            raise CheckpointValidationError(f"{self.path} cannot be uploaded:\n{problems}")


def _refusal(name: str, path: Path) -> str | None:
    """Why `name` (a file or folder directly in the checkpoint folder) may never be uploaded, or None."""
    if path.is_symlink():
        return f"{name}: symbolic link; copy the file itself into the folder"
    if path.is_dir():
        if name.startswith("checkpoint-"):
            return f"{name}/: Trainer checkpoint folder (weights plus optimizer state); upload the final model only"
        return f"{name}/: subfolder; only the files of a flat model folder are uploaded"
    if any(char in name for char in "*?[]"):
        return f"{name}: file name with glob characters (*?[]); rename it"
    if TRAINING_STATE_PATTERN.fullmatch(name):
        return f"{name}: training state (optimizer, scheduler, RNG or Trainer state), not part of a model"
    if name.endswith(PICKLE_SUFFIXES):
        return (
            f"{name}: pickle file, which can run code when loaded; "
            "save weights as safetensors (save_pretrained(..., safe_serialization=True))"
        )
    if name in DATA_FILES or (name.endswith(DATA_SUFFIXES) and name not in TOKENIZER_FILES):
        return f"{name}: data file (corpus, dataset or predictions); training data is never uploaded with a model"
    return None


def _code_references(config: dict, tokenizer_config: dict | None) -> list[tuple[str, object]]:
    """(where, "module.Class") for every class the folder's code must provide: `auto_map` entries of
    both configs (`[slow, fast]` lists for tokenizers) and `custom_pipelines[task]["impl"]`."""
    references = []
    for source, data in (("config.json", config), ("tokenizer_config.json", tokenizer_config or {})):
        auto_map = data.get("auto_map")
        for auto_class, value in (auto_map.items() if isinstance(auto_map, dict) else []):
            for reference in value if isinstance(value, list) else [value]:
                if reference is not None:  # None: a tokenizer without a slow (or fast) class
                    references.append((f"{source}: auto_map[{auto_class!r}]", reference))
    pipelines = config.get("custom_pipelines")
    for task, spec in (pipelines.items() if isinstance(pipelines, dict) else []):
        references.append((f"config.json: custom_pipelines[{task!r}]['impl']", (spec or {}).get("impl")))
    return references


def _referenced_modules(folder: Path, references: list[tuple[str, object]], errors: list[str]) -> list[str]:
    """The `.py` files that the references name; a problem with one becomes an error message."""
    files = []
    for where, reference in references:
        module = reference.rsplit(".", 1)[0] if isinstance(reference, str) and "." in reference else None
        if module is None or "." in module:
            errors.append(f"{where} = {reference!r}; expected 'module.ClassName' with a module file in the folder")
        elif "--" in module:
            errors.append(f"{where} = {reference!r} points to code in another repository; only self-contained "
                          "folders are uploaded")
        elif not (folder / f"{module}.py").is_file():
            errors.append(f"{where} names {module}.py, which is not in the folder (save with the model registered "
                          "for auto classes)")
        else:
            files.append(f"{module}.py")
    return files


def _code_files(folder: Path, references: list[tuple[str, object]], errors: list[str]) -> set[str]:
    """The `.py` files named by `auto_map` / `custom_pipelines` plus their relative imports, recursively.

    Relative imports are found with the rule `transformers` uses to copy remote code
    (`from .module import name`); `from . import module`, deeper relative imports and absolute
    imports of this package are refused, as they fail where the package is not installed.
    """
    pending = _referenced_modules(folder, references, errors)
    found: set[str] = set()
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        try:
            tree = ast.parse((folder / name).read_text(encoding="utf-8"), filename=name)
        except SyntaxError as error:
            errors.append(f"{name}, line {error.lineno}: Python syntax error: {error.msg}")
            continue
        for node in ast.walk(tree):
            flat = isinstance(node, ast.ImportFrom) and node.level == 1 and node.module and "." not in node.module
            if isinstance(node, ast.ImportFrom) and node.level > 0 and not flat:
                errors.append(
                    f"{name}, line {node.lineno}: `from {'.' * node.level}{node.module or ''} import ...` is not "
                    "copied with remote code; write `from .module import name` with a module in the folder"
                )
            imported = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            )
            if any(module == PACKAGE_NAME or module.startswith(PACKAGE_NAME + ".") for module in imported):
                errors.append(
                    f"{name}, line {node.lineno}: imports the {PACKAGE_NAME} package, which is absent where the "
                    "checkpoint is loaded with trust_remote_code; use relative imports (from .module import name)"
                )
        for module in get_relative_imports(folder / name):  # the same rule transformers uses to copy files
            if "." in module:
                continue  # `from ..x` or `from .sub.x`: reported above
            if not (folder / f"{module}.py").is_file():
                errors.append(f"{name}: imports .{module}, but {module}.py is not in the folder")
            else:
                pending.append(f"{module}.py")
    return found


def _check_safetensors(folder: Path, name: str, errors: list[str]) -> None:
    path = folder / name
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            (header_size,) = struct.unpack("<Q", f.read(8))
            if not 0 < header_size <= size - 8:
                raise ValueError("header size out of range")
            header = json.loads(f.read(header_size))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (ValueError, struct.error) as error:
        errors.append(f"{name}: not a valid safetensors file ({error})")


def _check_weights(folder: Path, names: set[str], errors: list[str]) -> set[str]:
    """Validate the safetensors weights; return the weight file names to upload."""
    index_name = "model.safetensors.index.json"
    shards = {name for name in names if SHARD_PATTERN.fullmatch(name)}
    if index_name in names:
        try:
            weight_map = json.loads((folder / index_name).read_text(encoding="utf-8"))["weight_map"]
            listed = set(weight_map.values())
        except (ValueError, KeyError, AttributeError) as error:
            errors.append(f"{index_name}: unreadable shard index ({error!r}); expected a 'weight_map' object")
            return set()
        for shard in sorted(listed - shards):
            errors.append(f"{index_name}: lists {shard}, which is not in the folder")
        for shard in sorted(shards - listed):
            errors.append(f"{shard}: shard not listed in {index_name}")
        if "model.safetensors" in names:
            errors.append("model.safetensors: next to a sharded checkpoint; keep one set of weights")
        weights = {index_name} | (shards & listed)
    elif "model.safetensors" in names:
        for shard in sorted(shards):
            errors.append(f"{shard}: shard without model.safetensors.index.json")
        weights = {"model.safetensors"}
    else:
        errors.append("model.safetensors: missing; save the weights with save_pretrained (safetensors is the default)")
        return set()
    for name in sorted(weights - {index_name}):
        _check_safetensors(folder, name, errors)
    return weights


def _load_json(folder: Path, name: str, errors: list[str]) -> dict | None:
    try:
        data = json.loads((folder / name).read_text(encoding="utf-8"))
    except ValueError as error:
        errors.append(f"{name}: not valid JSON ({error})")
        return None
    if not isinstance(data, dict):
        errors.append(f"{name}: expected a JSON object, got {type(data).__name__}")
        return None
    return data


def validate_checkpoint_dir(path: str | os.PathLike) -> ValidationResult:
    """Check that `path` holds exactly what a `mamba-crf` model repository needs, and nothing else.

    Args:
        path: A folder written by `save_pretrained` (model and tokenizer) plus a model card.

    Returns:
        A `ValidationResult`; `result.raise_for_errors()` turns its errors into a
        `CheckpointValidationError`. Nothing is modified and nothing leaves the machine.
    """
    folder = Path(path)
    result = ValidationResult(path=folder)
    errors = result.errors
    if not folder.is_dir():
        errors.append(f"{folder}: not a folder")
        return result
    entries = sorted(p.name for p in folder.iterdir())
    refused = {name: reason for name in entries if (reason := _refusal(name, folder / name))}
    errors.extend(refused.values())
    names = {name for name in entries if name not in refused}

    config = _load_json(folder, "config.json", errors) if "config.json" in names else None
    if "config.json" not in names:
        errors.append("config.json: missing; save the model with save_pretrained")
    if config is not None:
        auto_map = config.get("auto_map")
        missing = [key for key in REQUIRED_AUTO_MAP if key not in (auto_map if isinstance(auto_map, dict) else {})]
        if missing:
            errors.append(
                f"config.json: auto_map lacks {', '.join(missing)}; register the classes for auto classes "
                "(importing mamba_ner does) before save_pretrained, so the folder loads with trust_remote_code"
            )

    tokenizer_config = None
    if "tokenizer_config.json" in names:
        tokenizer_config = _load_json(folder, "tokenizer_config.json", errors)
    if tokenizer_config is None or not names & {"tokenizer.json", "vocab.txt", "vocab.json"}:
        errors.append(
            "tokenizer: missing; expected tokenizer_config.json and tokenizer.json (or vocab.txt / vocab.json): "
            "save it with tokenizer.save_pretrained(folder)"
        )

    code = _code_files(folder, _code_references(config or {}, tokenizer_config), errors)
    weights = _check_weights(folder, names, errors)

    if "README.md" not in names:
        errors.append("README.md: missing model card; write it with mamba_ner.model_card.write_model_card")
    else:
        try:
            if not metadata_load(folder / "README.md"):
                errors.append("README.md: no YAML metadata block (--- ... ---); write it with write_model_card")
        except Exception as error:  # yaml errors come in several types
            errors.append(f"README.md: unreadable YAML metadata ({error})")

    for name in sorted(names & set(RESULT_FILES)):
        data = _load_json(folder, name, errors)
        if data is not None and any(isinstance(value, (dict, list)) for value in data.values()):
            errors.append(f"{name}: nested values; only flat metric dictionaries are uploaded")
    for name in sorted(n for n in names if n.endswith(".png")):
        with (folder / name).open("rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                errors.append(f"{name}: not a PNG image")

    allowed = {name for name in names if name in ALLOWED_FILES or name.endswith(".png")} | code | weights
    for name in sorted(names - allowed):
        if name.endswith(".py"):
            errors.append(f"{name}: Python file not named in auto_map nor imported by a file that is")
        elif name.endswith(".json"):
            errors.append(f"{name}: JSON file not on the allowlist (datasets, predictions and logs stay local)")
        elif not SHARD_PATTERN.fullmatch(name):  # stray shards were reported by _check_weights
            errors.append(f"{name}: not on the allowlist of files a model repository needs")
    result.files = sorted(allowed & names)
    return result


def export_checkpoint(source: str | os.PathLike, destination: str | os.PathLike) -> ValidationResult:
    """Copy the files of `source` that may be uploaded into `destination` (new or empty); validate it.

    Everything else stays behind (Trainer checkpoints, optimizer and Trainer state, data, logs,
    subfolders) and is logged with the reason. Required files missing from `source` are still
    missing afterwards, so the returned validation reports them.

    Returns:
        The `ValidationResult` of `destination`.
    """
    source, destination = Path(source), Path(destination)
    if not source.is_dir():
        raise CheckpointValidationError(f"{source}: not a folder")
    if destination.exists() and any(destination.iterdir()):
        raise FileExistsError(f"{destination}: not empty; export into a new folder")
    found = validate_checkpoint_dir(source)
    left_out = sorted({path.name for path in source.iterdir()} - set(found.files))  # before `destination` may appear
    destination.mkdir(parents=True, exist_ok=True)
    for name in found.files:
        shutil.copy2(source / name, destination / name)
    logger.info("exported %d files from %s to %s", len(found.files), source, destination)
    for name in left_out:
        reason = next((e for e in found.errors if e.startswith((f"{name}:", f"{name}/:"))), name)
        logger.info("left out %s", reason)
    return validate_checkpoint_dir(destination)


def _predict_probe(checkpoint_dir: str, probe_text: str) -> dict:
    """Load the folder through the Auto classes with trust_remote_code and tag `probe_text`.

    Runs in this process and, as source text, in the clean child process: it must stay
    self-contained (its own imports, no reference to this module).
    """
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir, trust_remote_code=True)
    model = AutoModelForTokenClassification.from_pretrained(checkpoint_dir, trust_remote_code=True).eval()
    encoded = tokenizer(probe_text, return_tensors="pt")
    with torch.no_grad():
        outputs = model(input_ids=encoded["input_ids"], attention_mask=encoded.get("attention_mask"))
    predictions = getattr(outputs, "predictions", None)
    tag_ids = (predictions if predictions is not None else outputs.logits.argmax(-1))[0].tolist()  # (l,)
    return {
        "model_class": f"{type(model).__module__}.{type(model).__name__}",
        "tokens": tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist()),
        "tags": [model.config.id2label[i] if i >= 0 else None for i in tag_ids],
        "logits": outputs.logits[0].tolist(),  # (l, k)
    }


_CHILD_SCRIPT = '''
import json, sys

class _BlockPackage:
    """Make the package unimportable, as on a machine where it is not installed."""
    def find_spec(self, name, path=None, target=None):
        if name == {package!r} or name.startswith({package!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the reload check)")
        return None

sys.meta_path.insert(0, _BlockPackage())
{function}
print("RELOAD_RESULT " + json.dumps(_predict_probe(sys.argv[1], sys.argv[2])))
'''


@dataclass
class ReloadCheckResult:
    """Outcome of `reload_check`: `ok`, a one-line `detail`, and both sides' predictions."""

    ok: bool
    detail: str
    parent: dict | None = None
    child: dict | None = None


def reload_check(
    path: str | os.PathLike, probe_text: str = DEFAULT_PROBE_TEXT, atol: float = 1e-4, timeout: float = 600.0
) -> ReloadCheckResult:
    """Load `path` in a clean process without `mamba_ner` and compare its predictions with this process.

    The child runs `python -I` (no PYTHONPATH, no user site, no current folder on `sys.path`) in an
    empty temporary folder, with an import blocker for `mamba_ner`, offline, without the Hub token,
    and with its own `HF_MODULES_CACHE`, so only the code in the folder can serve `trust_remote_code`.

    Args:
        path: Checkpoint folder.
        probe_text: Sentence to tag.
        atol: Largest allowed absolute difference between the two processes' emission scores.
        timeout: Seconds the child may take.

    Returns:
        A `ReloadCheckResult`; `ok` is True when tokens and tags are equal and logits within `atol`.
    """
    folder = str(Path(path).resolve())
    script = _CHILD_SCRIPT.format(package=PACKAGE_NAME, function=inspect.getsource(_predict_probe))
    with tempfile.TemporaryDirectory(prefix="mamba_ner_reload_") as workdir:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "PYTHONPATH")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_MODULES_CACHE=os.path.join(workdir, "modules"))
        try:
            completed = subprocess.run(
                [sys.executable, "-I", "-c", script, folder, probe_text],
                cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return ReloadCheckResult(False, f"{folder}: the clean process did not finish in {timeout:.0f} s")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RELOAD_RESULT ")]
    if completed.returncode != 0 or not lines:
        stderr_tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
        return ReloadCheckResult(
            False, f"{folder}: loading with trust_remote_code failed in a clean process without "
            f"{PACKAGE_NAME} (exit code {completed.returncode}):\n{stderr_tail}"
        )
    child = json.loads(lines[-1].removeprefix("RELOAD_RESULT "))
    parent = _predict_probe(folder, probe_text)
    if child["model_class"].startswith(PACKAGE_NAME + "."):
        detail = f"the clean process used {child['model_class']}, not the folder's code"
        return ReloadCheckResult(False, detail, parent, child)
    if child["tokens"] != parent["tokens"]:
        return ReloadCheckResult(False, f"tokenization differs: {child['tokens']} vs {parent['tokens']}", parent, child)
    diff = max(
        (abs(a - b) for row_c, row_p in zip(child["logits"], parent["logits"]) for a, b in zip(row_c, row_p)),
        default=0.0,
    )
    if child["tags"] != parent["tags"] or diff > atol:
        return ReloadCheckResult(
            False, f"predictions differ between the folder's code and {PACKAGE_NAME} (largest logit difference "
            f"{diff:.3g}, tolerance {atol:g}): {child['tags']} vs {parent['tags']}", parent, child
        )
    return ReloadCheckResult(True, f"reloaded with {child['model_class']}; tags {child['tags']}", parent, child)


def prepare_upload(
    path: str | os.PathLike, *, check_reload: bool = True, probe_text: str = DEFAULT_PROBE_TEXT
) -> ValidationResult:
    """Validate the folder and (unless `check_reload=False`) run `reload_check`; raise on any problem."""
    validation = validate_checkpoint_dir(path)
    validation.raise_for_errors()
    if check_reload:
        check = reload_check(path, probe_text)
        if not check.ok:
            raise ReloadCheckError(check.detail)
        logger.info("reload check passed: %s", check.detail)
    return validation


def push_checkpoint(
    validation: ValidationResult,
    repo_id: str,
    *,
    private: bool = True,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> str:
    """Upload the files of a passed validation; return the repository (or branch) URL.

    The folder is validated again first and must list the same files. Only those files are sent
    (`allow_patterns` = their exact names).
    """
    again = validate_checkpoint_dir(validation.path)
    again.raise_for_errors()
    if again.files != validation.files:
        raise CheckpointValidationError(f"{validation.path}: the folder changed since it was validated")
    if constants.is_offline_mode():
        raise HubUploadError("HF_HUB_OFFLINE is set: unset it to upload")
    token = token or get_token()
    if not token:
        raise HubUploadError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    api = HfApi(endpoint=endpoint, token=token, library_name="mamba-ner")

    repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
    repo_id = repo_url.repo_id
    if private and api.model_info(repo_id).private is False:
        raise RepoVisibilityError(f"{repo_id} already exists and is public; pass --public (public=True) to push to it")
    if revision is not None and revision != constants.DEFAULT_REVISION:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=validation.path,
        revision=revision,
        commit_message=commit_message or "Upload mamba-crf checkpoint (validated by mamba-ner hub_upload)",
        allow_patterns=list(validation.files),
    )
    logger.info("uploaded %d files to %s: %s", len(validation.files), repo_id, commit.commit_url)
    if revision is not None and revision != constants.DEFAULT_REVISION:
        return f"{repo_url}/tree/{quote(revision, safe='')}"
    return str(repo_url)


def upload_checkpoint(
    path: str | os.PathLike,
    repo_id: str,
    private: bool = True,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    dry_run: bool = False,
    *,
    check_reload: bool = True,
    probe_text: str = DEFAULT_PROBE_TEXT,
    endpoint: str | None = None,
) -> str:
    """Validate, reload-check and upload a checkpoint folder; return the repository URL.

    With `dry_run=True` everything but the upload runs: no request leaves the machine, the files
    are logged, and the URL the repository would have is returned.
    """
    validation = prepare_upload(path, check_reload=check_reload, probe_text=probe_text)
    if dry_run:
        logger.info("dry run, nothing uploaded; would send %s", ", ".join(validation.files))
        return f"{endpoint or constants.ENDPOINT}/{repo_id}"
    return push_checkpoint(
        validation, repo_id, private=private, revision=revision, commit_message=commit_message,
        token=token, endpoint=endpoint,
    )
