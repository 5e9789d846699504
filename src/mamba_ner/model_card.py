"""Model cards for `mamba-crf` checkpoints, filled from the checkpoint folder and the training run.

`build_model_card` reads `config.json` (label set, sizes) and the safetensors header (parameter
count) of a saved checkpoint, turns the entity-level scores of the evaluation into
`huggingface_hub.EvalResult`s (so the card carries a `model-index` the Hub shows as results), and
renders the packaged template `mamba_ner/templates/mamba_crf_card_template.md` with
`ModelCard.from_template`. Everything happens offline: nothing here touches the network.
`write_model_card` saves the card as the folder's `README.md`, which
`mamba_ner.hub.validate_checkpoint_dir` requires before an upload.

Evaluation results are the dictionary the training run produced. Any of these spellings work, so the
`"entity"` part of `mamba_ner.metrics.score_all`, the output of `Trainer.evaluate`, of `evaluate`'s
seqeval and of `seqeval.classification_report(..., output_dict=True)` can be passed unchanged:
    {"mode": "strict", "scheme": "IOB2", "precision": 0.81, "recall": 0.79, "f1": 0.80,
     "per_type": {"DISE": {"precision": ..., "recall": ..., "f1": ..., "support": 120}}}
    {"eval_overall_precision": ..., "eval_overall_recall": ..., "eval_overall_f1": ...}
    {"micro avg": {"precision": ..., "recall": ..., "f1-score": ..., "support": ...}, ...}
Nested dictionaries with precision/recall/F1 (`{"DISE": {"precision": ..., "number": 120}}`, or the
same under `"per_type"`) become the per-type table.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import re
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

logger = logging.getLogger(__name__)

# Shipped inside the package (setup.cfg package_data), so a wheel / non-editable install finds it too.
DEFAULT_TEMPLATE = Path(__file__).resolve().parent / "templates" / "mamba_crf_card_template.md"
DEFAULT_EXAMPLE_TEXT = "患者三天前出现发热、咳嗽，诊断为社区获得性肺炎。"
BASE_TAGS = ("token-classification", "ner", "mamba", "crf", "mamba-ner")

_SCORE_PREFIXES = ("eval_", "test_", "predict_", "validation_")
_OVERALL_KEYS = {
    "precision": ("precision", "Entity precision (micro)"),
    "recall": ("recall", "Entity recall (micro)"),
    "f1": ("f1", "Entity F1 (micro)"),
    "accuracy": ("accuracy", "Token accuracy"),
}
_AVERAGE_ROWS = ("micro avg", "macro avg", "weighted avg", "samples avg")
_LANGUAGE_NAMES = {"zh": "Chinese", "en": "English"}


def _read_config(checkpoint_dir: Path) -> dict:
    config_path = checkpoint_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: no config.json; save the model with save_pretrained first")
    with config_path.open(encoding="utf-8") as f:
        return json.load(f)


def _labels(config: dict, config_path: Path) -> list[tuple[int, str]]:
    """`id2label` of the config as a sorted list of (id, tag); JSON stores the ids as strings."""
    id2label = config.get("id2label")
    if not id2label:
        raise ValueError(f"{config_path}: no id2label; the card lists the tag set, so the config needs one")
    return sorted((int(i), str(label)) for i, label in id2label.items())


def _entity_types(labels: list[tuple[int, str]]) -> list[str]:
    """`B-DISE`, `I-DISE`, `S-DRUG` -> ["DISE", "DRUG"], in first-seen order."""
    types: dict[str, None] = {}
    for _, label in labels:
        match = re.fullmatch(r"[BIESLU][-_](.+)", label)
        if match:
            types[match.group(1)] = None
    return list(types)


def _safetensors_num_parameters(checkpoint_dir: Path) -> int | None:
    """Count parameters from the safetensors headers alone (no torch, no loading); None if absent."""
    index_path = checkpoint_dir / "model.safetensors.index.json"
    if index_path.is_file():
        with index_path.open(encoding="utf-8") as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    elif (checkpoint_dir / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        return None
    total = 0
    for name in files:
        with (checkpoint_dir / name).open("rb") as f:
            (header_size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_size))
        total += sum(math.prod(t["shape"]) for key, t in header.items() if key != "__metadata__")
    return total


def _architecture_rows(config: dict, num_parameters: int | None) -> list[tuple[str, str]]:
    rows = []
    for key, name in (
        ("hidden_size", "hidden size (`d_model`)"),
        ("num_hidden_layers", "layers"),
        ("state_size", "SSM state size"),
        ("expand", "expansion factor"),
        ("conv_kernel", "convolution width"),
        ("vocab_size", "vocabulary size"),
    ):
        if key in config:
            rows.append((name, str(config[key])))
    if "bidirectional" in config:
        rows.append(("directions", "2 (left-to-right and right-to-left)" if config["bidirectional"] else "1"))
    if config.get("lexicon_size"):
        source = config.get("lexicon_source")
        rows.append(("lexicon", f"{config['lexicon_size']:,} words" + (f" (`{source}`)" if source else "")))
    if config.get("ensemble_size", 1) > 1:
        rows.append(("taggers", f"{config['ensemble_size']} (an ensemble: own encoders, mean emissions, one CRF)"))
    if num_parameters is not None:
        rows.append(("parameters", f"{num_parameters:,} ({num_parameters / 1e6:.2f} M)"))
    return rows


def _score_name(key: str) -> str:
    for prefix in _SCORE_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    return key.removeprefix("overall_")


def _fraction(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"eval_results[{key!r}] = {value!r}: expected a fraction in [0, 1] (not a percentage)")
    return float(value)


def _split_eval_results(eval_results: Mapping) -> tuple[dict[str, float], list[dict]]:
    """Overall micro scores {"precision", "recall", "f1"[, "accuracy"]} and per-type rows."""
    overall: dict[str, float] = {}
    per_type: list[dict] = []
    items = [(k, v) for k, v in eval_results.items() if k != "per_type"]
    items += list(eval_results.get("per_type", {}).items())
    for key, value in items:
        name = _score_name(str(key))
        if isinstance(value, Mapping):
            scores = {k: v for k, v in value.items() if k in ("precision", "recall", "f1", "f1-score")}
            if len(scores) < 3:
                continue
            row = {
                "type": name,
                "precision": _fraction(value["precision"], f"{key}.precision"),
                "recall": _fraction(value["recall"], f"{key}.recall"),
                "f1": _fraction(value.get("f1", value.get("f1-score")), f"{key}.f1"),
                "support": value.get("number", value.get("support", "")),
            }
            if name == "micro avg":
                for metric in ("precision", "recall", "f1"):
                    overall.setdefault(metric, row[metric])
            elif name not in _AVERAGE_ROWS:
                per_type.append(row)
        elif name in _OVERALL_KEYS:
            overall[name] = _fraction(value, str(key))
    missing = [m for m in ("precision", "recall", "f1") if m not in overall]
    if missing:
        raise ValueError(
            f"eval_results has no entity-level {', '.join(missing)}: expected keys like 'f1', 'eval_overall_f1' "
            f"or a 'micro avg' entry; got {sorted(map(str, eval_results))}"
        )
    return overall, per_type


def _scoring_mode(eval_results: Mapping | None) -> str | None:
    """`"strict, IOB2"` or `"default mode"` from the `mode`/`scheme` keys of `mamba_ner.metrics` scores."""
    mode = (eval_results or {}).get("mode")
    if mode is None:
        return None
    scheme = eval_results.get("scheme")
    return f"{mode}, {scheme}" if scheme else f"{mode} mode"


def _framework_versions() -> str:
    versions = []
    for package in ("mamba-ner", "transformers", "torch", "tokenizers", "huggingface_hub"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(versions)


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def build_model_card(
    checkpoint_dir: str | Path,
    eval_results: Mapping | None,
    dataset_name: str,
    language: Sequence[str] = ("zh",),
    license: str = "apache-2.0",
    training_summary: Mapping | None = None,
    *,
    model_id: str | None = None,
    dataset_id: str | None = None,
    eval_split: str = "test",
    dataset_config: str | None = None,
    eval_mode: str | None = None,
    training_data: str | None = None,
    intended_use: str | None = None,
    base_model: str | None = None,
    tags: Sequence[str] | None = None,
    example_text: str = DEFAULT_EXAMPLE_TEXT,
    domain: str | None = "medical",
    template_path: str | Path = DEFAULT_TEMPLATE,
) -> ModelCard:
    """Build the model card of a saved `mamba-crf` checkpoint. Offline; writes nothing.

    Args:
        checkpoint_dir: Folder written by `save_pretrained` (needs `config.json` with `id2label`).
        eval_results: Entity-level seqeval scores of the run (see the module docstring for the
            accepted spellings), as fractions in [0, 1]; `None` when the model was not evaluated.
        dataset_name: Readable name of the corpus, e.g. `"CMeEE-V2"`.
        language: ISO 639-1 codes of the text the model was trained on.
        license: License id of the weights (Hub metadata).
        training_summary: Settings and statistics of the run (learning rate, epochs, batch size,
            seed, number of training sentences, run time...), shown as a table.
        model_id: Hub repo id (title and loading example); defaults to the folder name.
        dataset_id: Hub dataset id when the corpus is on the Hub (goes into `datasets`); without
            it the `model-index` uses a slug of `dataset_name` as dataset type.
        eval_split, dataset_config: Which split / configuration the scores were measured on.
        eval_mode: How seqeval scored (shown in the card), e.g. `"strict, IOB2"`; by default read
            from the `mode` and `scheme` keys of `eval_results` when present.
        training_data: One paragraph on the training data; a default names `dataset_name`.
        intended_use: One paragraph on intended uses; a default fits Chinese medical NER.
        base_model: Hub id of the Mamba checkpoint the backbone started from, if any.
        tags: Extra Hub tags besides `token-classification, ner, mamba, crf, mamba-ner`; default
            the domain (`["medical"]`), or none.
        example_text: Sentence of the loading example.
        domain: What kind of text the model was trained on (`"medical"`, `"news"`, ...), used in
            the summary, the intended uses and the limitations (the clinical warnings only for
            `"medical"`); `None` for neutral wording. `card_facts` derives it from a run.
        template_path: Jinja template with YAML front matter.

    Returns:
        A `huggingface_hub.ModelCard`; `card.data` holds the metadata, `str(card)` the Markdown.
    """
    checkpoint_dir = Path(checkpoint_dir)
    template_path = Path(template_path)
    if not template_path.is_file():
        raise FileNotFoundError(f"{template_path}: model card template not found (pass template_path=...)")
    config = _read_config(checkpoint_dir)
    labels = _labels(config, checkpoint_dir / "config.json")
    entity_types = _entity_types(labels)
    model_id = model_id or checkpoint_dir.resolve().name
    language = [language] if isinstance(language, str) else list(language)
    dataset_type = dataset_id or re.sub(r"[^a-z0-9]+", "-", dataset_name.lower()).strip("-")

    overall, per_type = _split_eval_results(eval_results) if eval_results else ({}, [])
    eval_result_objects = [
        EvalResult(
            task_type="token-classification",
            task_name="Named Entity Recognition",
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_config=dataset_config,
            dataset_split=eval_split,
            metric_type=_OVERALL_KEYS[metric][0],
            metric_name=_OVERALL_KEYS[metric][1],
            metric_value=round(value, 4),
        )
        for metric, value in overall.items()
    ]
    card_data = ModelCardData(
        language=language,
        license=license,
        library_name="transformers",
        pipeline_tag="token-classification",
        tags=[*BASE_TAGS, *(tags if tags is not None else [domain] if domain else [])],
        datasets=[dataset_id] if dataset_id else None,
        metrics=["seqeval"] if overall else None,
        base_model=base_model,
        model_name=model_id,
        eval_results=eval_result_objects or None,
    )

    languages = ", ".join(_LANGUAGE_NAMES.get(code, code) for code in language)
    text_kind = " ".join(part for part in (languages, domain) if part) + " text" if (languages or domain) else "text"
    direction = "bidirectional " if config.get("bidirectional") else ""
    summary = f"A {direction}Mamba + CRF named-entity tagger for {text_kind}, trained on {dataset_name}."
    if "f1" in overall:
        summary += f" Entity-level micro F1 on the {eval_split} split: {overall['f1']:.4f}."
    types_text = ", ".join(entity_types) if entity_types else "the entity types of its tag set"
    card = ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_id=model_id,
        model_summary=summary,
        architecture={
            "model_type": config.get("model_type", "mamba-crf"),
            "bidirectional": bool(config.get("bidirectional")),
            "tagging_scheme": config.get("tagging_scheme", "BIO"),
            "rows": _architecture_rows(config, _safetensors_num_parameters(checkpoint_dir)),
        },
        labels=labels,
        entity_types=entity_types,
        intended_use=intended_use or _intended_use(text_kind, types_text, domain),
        example_text=example_text.replace("\\", "\\\\").replace('"', '\\"'),
        domain=domain,
        dataset_name=dataset_name,
        holds_training_entities=_holds_training_entities(config),
        lexicon_counts=bool(config.get("lexicon_leave_one_out")),
        eval_split=eval_split,
        dataset_config=dataset_config,
        eval_mode=eval_mode or _scoring_mode(eval_results),
        eval_rows=[(_OVERALL_KEYS[m][1], f"{v:.4f}") for m, v in overall.items()],
        per_type_rows=[
            {**row, **{m: f"{row[m]:.4f}" for m in ("precision", "recall", "f1")}} for row in per_type
        ],
        training_data=training_data
        or f"Trained with `mamba-ner` on the training split of {dataset_name}, "
        + (f"the backbone initialised from `{base_model}`." if base_model else "from randomly initialised weights."),
        training_rows=[(str(k), _format_value(v)) for k, v in (training_summary or {}).items()],
        framework_versions=_framework_versions(),
    )
    return card


def _holds_training_entities(config: dict) -> bool:
    from .lexicon import uses_train_entities

    return bool(config.get("lexicon_size")) and uses_train_entities(config.get("lexicon_source"))


def _intended_use(text_kind: str, types_text: str, domain: str | None) -> str:
    if domain == "medical":
        return (f"Research and prototyping of named-entity recognition in {text_kind}: finding mentions of "
                f"{types_text} in clinical notes, case reports or medical literature, for example to pre-annotate "
                "a corpus for human review or to compare Mamba encoders with Transformer encoders.")
    return (f"Research and prototyping of named-entity recognition in {text_kind}: finding mentions of {types_text}, "
            "for example to pre-annotate a corpus for human review or to compare Mamba encoders with Transformer encoders.")


_MEDICAL_PROTOCOLS = {"healthner", "rocling22", "ruijin"}
_PROTOCOL_DOMAINS = {"conll03": "news"}
_ENGLISH_WORDS = {"the", "of", "and", "to", "in", "a", "is", "for", "on", "that", "was", "with"}


def guess_language(token_lists: Sequence[Sequence[str]]) -> list[str]:
    """`["zh"]` for mostly CJK text, `["en"]` for Latin text full of English function words, else `[]`."""
    from .data.text import is_cjk_text

    sample = [token for tokens in token_lists[:2000] for token in tokens]
    if not sample:
        return []
    cjk = sum(1 for token in sample if is_cjk_text(token))
    if cjk >= 0.3 * len(sample):
        return ["zh"]
    english = sum(1 for token in sample if token.lower() in _ENGLISH_WORDS)
    return ["en"] if english >= 0.03 * len(sample) else []


def card_facts(token_lists: Sequence[Sequence[str]], tag_lists=None, *, protocol: str | None = None,
               language: str | None = None, domain: str | None = None, dataset_name: str | None = None,
               data_files: Sequence[str] = ()) -> dict:
    """Language, domain, example sentence and dataset name of a model card, from the run's data.

    Explicit values (the user's options) win; otherwise the language is guessed from the text
    (`guess_language`), the domain from the benchmark protocol (none for other data), the example
    is the first sentence with an entity (else the first), and the dataset is named after the
    protocol or the training files.

    Returns:
        keyword arguments for `build_model_card`: `language`, `domain`, `example_text`, `dataset_name`.
    """
    languages = [code for code in (language or "").split(",") if code and code != "auto"] or guess_language(token_lists)
    if domain in (None, "auto"):
        domain = "medical" if protocol in _MEDICAL_PROTOCOLS else _PROTOCOL_DOMAINS.get(protocol)
    elif domain == "none":
        domain = None
    example = None
    for index, tokens in enumerate(token_lists[:5000]):
        if tag_lists is None or any(tag != "O" for tag in tag_lists[index]):
            example = tokens
            break
    if example is None and token_lists:
        example = token_lists[0]
    joiner = "" if example and all(len(token) == 1 for token in example) else " "
    example_text = joiner.join(list(example or [])[:60]) or DEFAULT_EXAMPLE_TEXT
    if not dataset_name:
        dataset_name = protocol or (", ".join(Path(f).name for f in data_files) if data_files else "the training data")
    return {"language": languages, "domain": domain, "example_text": example_text, "dataset_name": dataset_name}


def write_model_card(checkpoint_dir: str | Path, *args, **kwargs) -> Path:
    """Build the card (same arguments as `build_model_card`) and save it as `checkpoint_dir/README.md`.

    Returns:
        The path of the written `README.md`.
    """
    card = build_model_card(checkpoint_dir, *args, **kwargs)
    path = Path(checkpoint_dir) / "README.md"
    card.save(path)
    logger.info("model card written to %s", path)
    return path
