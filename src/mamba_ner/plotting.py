"""Pictures saved next to a checkpoint: loss and F1 per epoch, per-type F1, tag confusion matrix.

Figures are drawn with matplotlib's object-oriented API on an Agg canvas (`Figure` +
`FigureCanvasAgg`), never through `pyplot`: no window opens, nothing needs a display, and the
backend a user chose for their own session is left alone. All labels are ASCII tag and type
names, so no CJK font is needed.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .metrics import sort_tags

logger = logging.getLogger(__name__)

DPI = 120


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, out_path) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, format="png", dpi=DPI, bbox_inches="tight")
    logger.info("picture written to %s", out_path)
    return out_path


def _series(log_history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    points = [(entry["epoch"], entry[key]) for entry in log_history if key in entry and "epoch" in entry]
    return [p[0] for p in points], [p[1] for p in points]


def plot_training_curves(log_history: Sequence[Mapping[str, Any]], out_path) -> Path:
    """Training loss and validation loss (left), validation F1 (right), against the epoch.

    Args:
        log_history: `Trainer.state.log_history`: training entries carry `loss`, evaluation entries
            `eval_loss`, `eval_f1` (and `eval_strict_f1` when logged), all with `epoch`.
        out_path: where the PNG goes.
    """
    figure = _new_figure(11, 4.2)
    ax_loss, ax_f1 = figure.subplots(1, 2)
    for key, label, style in (("loss", "training loss", "-"), ("eval_loss", "validation loss", "o-")):
        epochs, values = _series(log_history, key)
        if epochs:
            ax_loss.plot(epochs, values, style, label=label, markersize=4)
    for key, label in (("eval_f1", "entity F1 (default)"), ("eval_strict_f1", "entity F1 (strict)"),
                       ("eval_token_macro_f1", "token macro F1")):
        epochs, values = _series(log_history, key)
        if epochs:
            ax_f1.plot(epochs, values, "o-", label=label, markersize=4)
    for ax, title, ylabel in ((ax_loss, "Loss", "loss"), (ax_f1, "Validation F1", "F1")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "nothing logged", ha="center", va="center", transform=ax.transAxes, color="gray")
            logger.warning("plot_training_curves: no %s in the log history", title.lower())
    if ax_f1.lines:
        ax_f1.set_ylim(0, 1)
    return _save(figure, out_path)


def plot_per_type_f1(scores: Mapping[str, Any], out_path) -> Path:
    """Entity F1 per type as bars (default mode, and strict mode beside it when present).

    Args:
        scores: what `mamba_ner.metrics.score_all` returns, or one `entity_scores` dict.
        out_path: where the PNG goes.
    """
    if "per_type" in scores:
        scores = {"entity" if scores["mode"] == "default" else "entity_strict": scores}
    runs = [(scores[key], label) for key, label in (("entity", "default"), ("entity_strict", "strict")) if key in scores]
    types = sorted({t for run, _ in runs for t in run["per_type"]})
    figure = _new_figure(max(6.0, 0.7 * len(types) + 2), 4.5)
    ax = figure.subplots()
    width = 0.8 / max(1, len(runs))
    x = np.arange(len(types))
    for index, (run, label) in enumerate(runs):
        f1 = [run["per_type"].get(t, {}).get("f1", 0.0) for t in types]
        bars = ax.bar(x + (index - (len(runs) - 1) / 2) * width, f1, width, label=f"{label} (micro F1 {run['f1']:.3f})")
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in f1], fontsize=7, padding=1)
    support = runs[0][0]["per_type"] if runs else {}
    ax.set_xticks(x, [f"{t}\n(n={support.get(t, {}).get('support', 0)})" for t in types], rotation=45, ha="right")
    ax.set_ylim(0, 1.25)  # room above the bars for the legend
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("F1")
    ax.set_title("Entity F1 per type")
    ax.grid(axis="y", alpha=0.3)
    if types:
        ax.legend(loc="upper center", ncols=len(runs))
    else:
        ax.text(0.5, 0.5, "no entities", ha="center", va="center", transform=ax.transAxes, color="gray")
    return _save(figure, out_path)


def confusion_counts(y_true, y_pred, labels: Sequence[str]) -> np.ndarray:
    """`(len(labels), len(labels))` counts, rows gold tags, columns predicted tags."""
    index = {tag: i for i, tag in enumerate(labels)}
    gold = [tag for sentence in y_true for tag in sentence]
    pred = [tag for sentence in y_pred for tag in sentence]
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold tags but {len(pred)} predicted tags")
    unlisted = (set(gold) | set(pred)) - set(index)
    if unlisted:
        raise ValueError(f"tags {sorted(map(str, unlisted))} occur in the data but are not in labels {list(labels)}")
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(counts, ([index[t] for t in gold], [index[t] for t in pred]), 1)
    return counts


def plot_confusion_matrix(y_true, y_pred, labels: Sequence[str] | None, out_path) -> Path:
    """Tag-level confusion matrix, each row divided by its gold count; readable up to ~31 tags.

    Args:
        y_true, y_pred (`list[list[str]]`): gold and predicted tags, one list per sentence.
        labels (`list[str]`, *optional*): tag order (for instance the model's `id2label`);
            defaults to every tag seen, ordered by `sort_tags`.
        out_path: where the PNG goes.
    """
    if labels is None:
        labels = sort_tags({tag for sentences in (y_true, y_pred) for sentence in sentences for tag in sentence})
    labels = list(labels)
    counts = confusion_counts(y_true, y_pred, labels)  # (tags, tags)
    support = counts.sum(axis=1)  # (tags,)
    rates = counts / np.maximum(support, 1)[:, None]  # rows without gold tokens stay 0

    n = len(labels)
    side = max(5.0, 0.38 * n + 2.5)
    figure = _new_figure(side + 1.2, side)
    ax = figure.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the gold tag's tokens")
    ax.set_xticks(np.arange(n), labels, rotation=90, fontsize=8)
    ax.set_yticks(np.arange(n), [f"{tag} ({count})" for tag, count in zip(labels, support)], fontsize=8)
    ax.set_xlabel("predicted tag")
    ax.set_ylabel("gold tag (tokens)")
    ax.set_title("Tag confusion matrix, normalised by row")
    font_size = max(4.5, min(8.0, 160 / max(n, 1)))
    for row, col in zip(*np.nonzero(rates >= 0.005)):
        value = rates[row, col]
        ax.text(col, row, f"{value:.2f}".lstrip("0") if value < 1 else "1", ha="center", va="center",
                fontsize=font_size, color="white" if value > 0.5 else "black")
    return _save(figure, out_path)


def save_all_plots(trainer_log_history, scores, y_true, y_pred, labels, out_dir) -> list[Path]:
    """Write `training_curves.png` (skipped when the log history is None), `per_type_f1.png` and
    `confusion_matrix.png` into `out_dir`; returns the paths written."""
    out_dir = Path(out_dir)
    written = []
    if trainer_log_history is not None:
        written.append(plot_training_curves(trainer_log_history, out_dir / "training_curves.png"))
    written.append(plot_per_type_f1(scores, out_dir / "per_type_f1.png"))
    written.append(plot_confusion_matrix(y_true, y_pred, labels, out_dir / "confusion_matrix.png"))
    return written
