"""NER scores: entity level with `seqeval`, the thesis' token-level report, and `compute_metrics`.

Entity level. The entities are read from the tags by `seqeval` itself: `get_entities` in the
default mode (the rules of `conlleval`, so a stray `I-X` after `O` opens an entity) and
`seqeval.scheme.Entities` in strict mode (an entity must follow the scheme, IOB2 by default, so
the same stray `I-X` is no entity at all). This module then counts gold, predicted and correct
entities per type, which seqeval's reports do not expose, and derives precision/recall/F1 from
those counts the way seqeval does (0 where a ratio is undefined); the tests check the numbers
against `seqeval.metrics.classification_report`.

Token level. The thesis reports precision/recall/F1 per tag over every token, `O` included, with
micro, macro and weighted averages (what scikit-learn's `classification_report` prints for the
flattened tags). scikit-learn is not a dependency of this package for three counts per tag, so
`token_scores` computes them directly. With every tag counted, micro P = micro R = micro F1 =
accuracy.

Trainer. `build_compute_metrics(id2label)` returns the `compute_metrics` callable. It scores the
model's Viterbi tag ids (its `predictions` output), never an argmax of the emissions.

`evaluate.load("seqeval")` needs the Hub; `evaluate.load(SEQEVAL_METRIC_PATH)` loads the same
metric from the directory shipped with this package and works offline.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import seqeval.scheme
from seqeval.metrics.sequence_labeling import get_entities

logger = logging.getLogger(__name__)

SEQEVAL_METRIC_PATH = str(Path(__file__).resolve().parent / "metrics_seqeval")
IGNORE_INDEX = -100
SCHEMES = ("IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU")
_PREFIX_ORDER = {prefix: rank for rank, prefix in enumerate("BIESLU")}

Tags = Sequence[Sequence[str]]


def sort_tags(tags) -> list[str]:
    """`O` first, then by entity type, `B-` before `I-` (then E, S, L, U); unparsable tags last."""

    def key(tag: str):
        if tag == "O":
            return (0, "", 0, "")
        prefix, sep, type_ = tag.partition("-")
        if sep and len(prefix) == 1 and prefix in _PREFIX_ORDER:
            return (1, type_, _PREFIX_ORDER[prefix], "")
        return (2, "", 0, tag)

    return sorted(set(tags), key=key)


def _check_lengths(y_true: Tags, y_pred: Tags) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} sentences but y_pred has {len(y_pred)}")
    for index, (gold, pred) in enumerate(zip(y_true, y_pred)):
        if len(gold) != len(pred):
            raise ValueError(f"sentence {index}: {len(gold)} gold tags but {len(pred)} predicted tags")


def _prf(correct: int, predicted: int, gold: int) -> tuple[float, float, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _averages(rows: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Macro (unweighted mean over rows) and weighted (by gold support) precision/recall/F1."""
    out = {}
    total_support = sum(row["support"] for row in rows.values())
    for name in ("precision", "recall", "f1"):
        values = [row[name] for row in rows.values()]
        out[f"macro_{name}"] = float(np.mean(values)) if values else 0.0
        weighted = sum(row[name] * row["support"] for row in rows.values())
        out[f"weighted_{name}"] = weighted / total_support if total_support else 0.0
    return out


def _entity_set(sentences: Tags, mode: str, scheme: str) -> set[tuple[str, int, int, int]]:
    """Entities as (type, sentence, start, end) with `end` exclusive, read by seqeval."""
    if mode == "strict":
        found = seqeval.scheme.Entities([list(s) for s in sentences], getattr(seqeval.scheme, scheme))
        return {(e.tag, e.sent_id, e.start, e.end) for sentence in found.entities for e in sentence}
    return {
        (type_, index, start, end + 1)
        for index, sentence in enumerate(sentences)
        for type_, start, end in get_entities(list(sentence))
    }


def entity_scores(y_true: Tags, y_pred: Tags, mode: str = "default", scheme: str = "IOB2") -> dict:
    """Exact-match entity scores with seqeval.

    Args:
        y_true, y_pred (`list[list[str]]`): gold and predicted tags, one list per sentence.
        mode (`str`, *optional*, defaults to `"default"`): `"default"` reads entities with the
            rules of `conlleval` (seqeval's default); `"strict"` only accepts entities that follow
            `scheme`.
        scheme (`str`, *optional*, defaults to `"IOB2"`): tagging scheme for strict mode (ignored
            in default mode, whose rules read IOB1/IOB2/IOE/IOBES tags alike).

    Returns:
        `dict`: `mode`, `scheme` (None in default mode), micro `precision`/`recall`/`f1`, the
        totals `support` (gold entities), `predicted`, `correct`, `macro_*` and `weighted_*`
        averages over the types seen in either list, and `per_type[TYPE]` with `precision`,
        `recall`, `f1`, `support`, `predicted`, `correct`. Types are sorted by name.
    """
    if mode not in ("default", "strict"):
        raise ValueError(f"mode must be 'default' or 'strict', got {mode!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    _check_lengths(y_true, y_pred)
    gold = _entity_set(y_true, mode, scheme)
    pred = _entity_set(y_pred, mode, scheme)
    correct = gold & pred

    gold_n = Counter(e[0] for e in gold)
    pred_n = Counter(e[0] for e in pred)
    correct_n = Counter(e[0] for e in correct)
    per_type = {}
    for type_ in sorted(set(gold_n) | set(pred_n)):
        precision, recall, f1 = _prf(correct_n[type_], pred_n[type_], gold_n[type_])
        per_type[type_] = {
            "precision": precision, "recall": recall, "f1": f1,
            "support": gold_n[type_], "predicted": pred_n[type_], "correct": correct_n[type_],
        }
    precision, recall, f1 = _prf(len(correct), len(pred), len(gold))
    return {
        "mode": mode,
        "scheme": scheme if mode == "strict" else None,
        "precision": precision, "recall": recall, "f1": f1,
        "support": len(gold), "predicted": len(pred), "correct": len(correct),
        **_averages(per_type),
        "per_type": per_type,
    }


def token_scores(y_true: Tags, y_pred: Tags, labels: Sequence[str] | None = None) -> dict:
    """The thesis' token-level report: precision/recall/F1 per tag over every token, `O` included.

    Args:
        y_true, y_pred (`list[list[str]]`): gold and predicted tags, one list per sentence.
        labels (`list[str]`, *optional*): tags to report, in this order. Defaults to every tag seen
            in either list, ordered by `sort_tags`. A tag listed but never seen gets a row of zeros
            that counts in the macro average (as in scikit-learn); a tag seen but not listed is an
            error, so that no token is left out silently.

    Returns:
        `dict`: `accuracy`, `support` (tokens), `micro_*`, `macro_*`, `weighted_*` precision/
        recall/F1, and `per_tag[TAG]` with `precision`, `recall`, `f1`, `support`, `predicted`.
    """
    _check_lengths(y_true, y_pred)
    gold_flat = [tag for sentence in y_true for tag in sentence]
    pred_flat = [tag for sentence in y_pred for tag in sentence]
    seen = set(gold_flat) | set(pred_flat)
    if labels is None:
        labels = sort_tags(seen)
    else:
        labels = list(labels)
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels has duplicates: {labels}")
        unlisted = seen - set(labels)
        if unlisted:
            raise ValueError(f"tags {sorted(map(str, unlisted))} occur in the data but are not in labels {labels}")

    gold_n = Counter(gold_flat)
    pred_n = Counter(pred_flat)
    correct_n = Counter(g for g, p in zip(gold_flat, pred_flat) if g == p)
    per_tag = {}
    for tag in labels:
        precision, recall, f1 = _prf(correct_n[tag], pred_n[tag], gold_n[tag])
        per_tag[tag] = {"precision": precision, "recall": recall, "f1": f1,
                        "support": gold_n[tag], "predicted": pred_n[tag]}
    total_correct = sum(correct_n.values())
    micro_p, micro_r, micro_f1 = _prf(total_correct, len(pred_flat), len(gold_flat))
    return {
        "accuracy": total_correct / len(gold_flat) if gold_flat else 0.0,
        "support": len(gold_flat),
        "micro_precision": micro_p, "micro_recall": micro_r, "micro_f1": micro_f1,
        **_averages(per_tag),
        "per_tag": per_tag,
    }


def score_all(y_true: Tags, y_pred: Tags, strict_too: bool = True, token_level: bool = True,
              scheme: str = "IOB2") -> dict:
    """`{"entity": default mode, "entity_strict": strict mode, "token": token level}` (the last two optional)."""
    scores = {"entity": entity_scores(y_true, y_pred, mode="default")}
    if strict_too:
        scores["entity_strict"] = entity_scores(y_true, y_pred, mode="strict", scheme=scheme)
    if token_level:
        scores["token"] = token_scores(y_true, y_pred)
    return scores


def flatten_scores(scores: Mapping[str, Any]) -> dict[str, float]:
    """The flat dict of floats that `Trainer` logs (it adds the `eval_` prefix itself)."""
    entity = scores["entity"]
    flat = {key: entity[key] for key in ("precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1")}
    flat.update({f"f1_{type_}": row["f1"] for type_, row in entity["per_type"].items()})
    if "entity_strict" in scores:
        strict = scores["entity_strict"]
        flat.update({f"strict_{key}": strict[key] for key in ("precision", "recall", "f1", "macro_f1")})
    if "token" in scores:
        token = scores["token"]
        flat["accuracy"] = token["accuracy"]
        flat.update({f"token_{key}": token[key] for key in
                     ("micro_f1", "macro_precision", "macro_recall", "macro_f1", "weighted_f1")})
    return {key: float(value) for key, value in flat.items()}


def select_tag_ids(predictions) -> np.ndarray:
    """The `(batch, seq)` Viterbi tag ids out of `EvalPrediction.predictions` (an array or a tuple)."""
    candidates = [np.asarray(p) for p in predictions] if isinstance(predictions, tuple) else [np.asarray(predictions)]
    tag_ids = [c for c in candidates if c.ndim == 2]
    if not tag_ids:
        shapes = [c.shape for c in candidates]
        if any(c.ndim == 3 for c in candidates):
            raise ValueError(
                f"compute_metrics got arrays of shapes {shapes}: (batch, seq, num_tags) emission scores, not "
                "Viterbi tag ids. Scoring an argmax of the emissions is not allowed (it ignores the CRF). Drop "
                "the emissions with `config.keys_to_ignore_at_inference = ['logits']` (or "
                "`Trainer.evaluate(ignore_keys=['logits'])`) so that the model's `predictions` output arrives.")
        raise ValueError(f"compute_metrics expected a (batch, seq) array of tag ids, got shapes {shapes}")
    if len(tag_ids) > 1:
        raise ValueError(f"compute_metrics got {len(tag_ids)} (batch, seq) arrays {[t.shape for t in tag_ids]}; "
                         "cannot tell which holds the tag ids: pass only the model's `predictions` output")
    ids = tag_ids[0]
    if not np.issubdtype(ids.dtype, np.integer):
        if not (np.all(np.isfinite(ids)) and np.all(ids == np.round(ids))):
            raise ValueError(f"compute_metrics expected integer tag ids, got non-integral {ids.dtype} values")
    return ids.astype(np.int64)


def decode_predictions(predictions, label_ids, id2label: Mapping[int, str]) -> tuple[list[list[str]], list[list[str]]]:
    """Tag strings for every labelled position (labels != -100), gold and predicted.

    Args:
        predictions: `(batch, seq)` tag ids, -100 where there is no tag, or a tuple holding them.
        label_ids: `(batch, seq)` gold tag ids, -100 where a position is not scored.
        id2label (`dict[int, str]`): the model's `config.id2label` (string keys are accepted).

    Returns:
        `(y_true, y_pred)`, one list of tags per row (empty for a row without labels), so that
        row `i` still matches example `i` of the evaluated dataset.
    """
    id2label = {int(k): v for k, v in id2label.items()}
    pred = select_tag_ids(predictions)
    if isinstance(label_ids, tuple) and len(label_ids) == 1:
        label_ids = label_ids[0]
    gold = np.asarray(label_ids).astype(np.int64)
    if gold.ndim != 2 or pred.shape[0] != gold.shape[0]:
        raise ValueError(f"predictions {pred.shape} and labels {gold.shape} must both be (batch, seq) with the same batch")
    if pred.shape[1] < gold.shape[1]:  # padded separately across batches: pad the shorter one
        pred = np.pad(pred, ((0, 0), (0, gold.shape[1] - pred.shape[1])), constant_values=IGNORE_INDEX)
    pred = pred[:, : gold.shape[1]]

    mask = gold != IGNORE_INDEX  # (batch, seq)
    missing = int(np.sum(mask & (pred == IGNORE_INDEX)))
    if missing:
        raise ValueError(f"{missing} labelled positions have no predicted tag (-100): the model must decode a tag "
                         "wherever labels != -100")
    unknown = sorted(set(np.unique(gold[mask]).tolist() + np.unique(pred[mask]).tolist()) - set(id2label))
    if unknown:
        raise ValueError(f"tag ids {unknown} are not in id2label {id2label}")

    y_true, y_pred = [], []
    for gold_row, pred_row, row_mask in zip(gold, pred, mask):
        y_true.append([id2label[i] for i in gold_row[row_mask].tolist()])
        y_pred.append([id2label[i] for i in pred_row[row_mask].tolist()])
    return y_true, y_pred


def recode_sequences(sequences: Tags, scheme: str) -> list[list[str]]:
    """Tag sequences re-encoded in `scheme` (entities read with conlleval's lenient rule, so entity
    scores do not change; token-level scores then count the tags of `scheme`)."""
    from .data.bio import convert_scheme

    return [convert_scheme(tags, scheme) for tags in sequences]


def build_compute_metrics(id2label: Mapping[int, str], strict_too: bool = True, token_level: bool = True,
                          scheme: str = "IOB2", recode: str | None = None) -> Callable[[Any], dict[str, float]]:
    """`compute_metrics` for `transformers.Trainer`, scoring the model's Viterbi tag ids.

    The returned callable takes an `EvalPrediction` whose `predictions` are the model's
    `predictions` output (`(batch, seq)` tag ids, alone or in a tuple; set
    `config.keys_to_ignore_at_inference = ["logits"]`) and returns a flat dict of floats:
    `precision`, `recall`, `f1` (entity micro, default mode; use `metric_for_best_model="f1"`),
    `macro_*`, `f1_<TYPE>` for each type seen in the gold or predicted tags, and with `strict_too` `strict_precision`/`strict_recall`/`strict_f1`/
    `strict_macro_f1`, with `token_level` `accuracy` and `token_micro_f1`/`token_macro_*`/
    `token_weighted_f1`. With `recode` (e.g. `"IOB2"` for a model that learns IOBES tags) the gold and
    predicted tags are re-encoded in that scheme first (`recode_sequences`), so the scores compare with
    those of models that learn the data's own scheme.
    """
    id2label = {int(k): v for k, v in id2label.items()}

    def compute_metrics(eval_pred) -> dict[str, float]:
        y_true, y_pred = decode_predictions(eval_pred.predictions, eval_pred.label_ids, id2label)
        if recode:
            y_true, y_pred = recode_sequences(y_true, recode), recode_sequences(y_pred, recode)
        return flatten_scores(score_all(y_true, y_pred, strict_too=strict_too, token_level=token_level, scheme=scheme))

    return compute_metrics


def _table(title: str, header: Sequence[str], rows: Sequence[tuple], footer: Sequence[tuple]) -> str:
    """Rows are (name, *percentages, *counts); percentages print with two decimals."""
    width = max([len(str(r[0])) for r in [*rows, *footer]] + [12])
    fmt_head = f"{{:<{width}}}" + "".join(f"{{:>{max(10, len(h) + 2)}}}" for h in header)
    lines = [title, fmt_head.format("", *header).rstrip()]

    def line(row):
        cells = [f"{v * 100:.2f}" if isinstance(v, float) else ("" if v is None else str(v)) for v in row[1:]]
        return fmt_head.format(str(row[0]), *cells).rstrip()

    lines += [line(r) for r in rows] + [""] + [line(r) for r in footer]
    return "\n".join(lines)


def _entity_table(scores: Mapping[str, Any]) -> str:
    mode = "default mode (conlleval rules)" if scores["mode"] == "default" else f"strict mode ({scores['scheme']})"
    header = ("P (%)", "R (%)", "F1 (%)", "gold", "pred", "correct")
    rows = [(t, r["precision"], r["recall"], r["f1"], r["support"], r["predicted"], r["correct"])
            for t, r in scores["per_type"].items()]
    footer = [("micro avg", scores["precision"], scores["recall"], scores["f1"],
               scores["support"], scores["predicted"], scores["correct"])]
    footer += [(f"{avg} avg", scores[f"{avg}_precision"], scores[f"{avg}_recall"], scores[f"{avg}_f1"],
                scores["support"], None, None) for avg in ("macro", "weighted")]
    return _table(f"Entity level, seqeval {mode}", header, rows, footer)


def _token_table(scores: Mapping[str, Any]) -> str:
    header = ("P (%)", "R (%)", "F1 (%)", "gold", "pred")
    rows = [(t, r["precision"], r["recall"], r["f1"], r["support"], r["predicted"]) for t, r in scores["per_tag"].items()]
    footer = [("accuracy", None, None, scores["accuracy"], scores["support"], None)]
    footer += [(f"{avg} avg", scores[f"{avg}_precision"], scores[f"{avg}_recall"], scores[f"{avg}_f1"],
                scores["support"], None) for avg in ("micro", "macro", "weighted")]
    return _table("Token level, every tag including O", header, rows, footer)


def format_report(scores: Mapping[str, Any]) -> str:
    """A readable table per level: entity default mode, entity strict mode, token level.

    Accepts what `score_all` returns, or a single `entity_scores` / `token_scores` dict.
    """
    if "per_type" in scores:
        scores = {"entity" if scores["mode"] == "default" else "entity_strict": scores}
    elif "per_tag" in scores:
        scores = {"token": scores}
    parts = [_entity_table(scores[key]) for key in ("entity", "entity_strict") if key in scores]
    if "token" in scores:
        parts.append(_token_table(scores["token"]))
    return "\n\n".join(parts)


def _to_builtin(value):
    if isinstance(value, Mapping):
        return {str(k): _to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_builtin(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_metrics_json(scores: Mapping[str, Any], path) -> Path:
    """Write `scores` as indented UTF-8 JSON (numpy numbers become plain numbers); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_to_builtin(scores), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("metrics written to %s", path)
    return path
