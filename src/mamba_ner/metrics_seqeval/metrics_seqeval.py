"""seqeval as a local `evaluate` metric, so that scoring works without the Hugging Face Hub.

`evaluate.load("seqeval")` fetches its script from the Hub; this directory can be loaded by path
instead (`evaluate.load(mamba_ner.metrics.SEQEVAL_METRIC_PATH)`), offline. `evaluate` copies this
file into its module cache, so it imports only `datasets`, `evaluate` and `seqeval`, never
`mamba_ner`. The output has the keys of the Hub metric: per type `precision`, `recall`, `f1`,
`number`, then `overall_precision`, `overall_recall`, `overall_f1`, `overall_accuracy`.
"""
import warnings

import datasets
import evaluate
import seqeval.scheme
from seqeval.metrics import accuracy_score, classification_report

_DESCRIPTION = """\
Entity-level precision, recall and F1 (exact match, per type and micro-averaged) computed with
seqeval. `mode="default"` (or None) follows conlleval; `mode="strict"` only counts entities that
follow `scheme` (IOB2 unless another is given).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[str]]`): predicted tags, one list per sentence.
    references (`list[list[str]]`): gold tags, one list per sentence.
    mode (`str`, *optional*): None or "default" (conlleval rules), or "strict".
    scheme (`str`, *optional*): "IOB1", "IOB2", "IOE1", "IOE2", "IOBES" or "BILOU"; used in
        strict mode, where it defaults to "IOB2".
    suffix (`bool`, *optional*, defaults to False): the B/I tag follows the type ("PER-B").
    sample_weight (`list[float]`, *optional*): a weight per sentence.
    zero_division (`0`, `1` or `"warn"`, *optional*, defaults to 0): value of an undefined ratio.
Returns:
    `dict`: `{TYPE: {"precision", "recall", "f1", "number"}, "overall_precision", "overall_recall",
    "overall_f1", "overall_accuracy"}`.
Example:
    >>> metric = evaluate.load(path_to_this_directory)
    >>> metric.compute(predictions=[["O", "I-PER"]], references=[["O", "B-PER"]], mode="strict")["overall_f1"]
    0.0
"""

_CITATION = """\
@misc{seqeval,
  title={{seqeval}: A Python framework for sequence labeling evaluation},
  url={https://github.com/chakki-works/seqeval},
  author={Hiroki Nakayama},
  year={2018},
}
"""

_SCHEMES = ("IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU")


class MetricsSeqeval(evaluate.Metric):
    def _info(self):
        tags = datasets.Sequence(datasets.Value("string", id="label"), id="sequence")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": tags, "references": tags}),
            homepage="https://github.com/chakki-works/seqeval",
            codebase_urls=["https://github.com/chakki-works/seqeval"],
            reference_urls=["https://github.com/chakki-works/seqeval"],
        )

    def _compute(self, predictions, references, mode=None, scheme=None, suffix=False, sample_weight=None,
                 zero_division=0):
        if mode not in (None, "default", "strict"):
            raise ValueError(f"mode must be None, 'default' or 'strict', got {mode!r}")
        if scheme is not None and scheme not in _SCHEMES:
            raise ValueError(f"scheme must be one of {_SCHEMES}, got {scheme!r}")
        if mode == "strict":
            scheme_class = getattr(seqeval.scheme, scheme or "IOB2")
        else:
            mode, scheme_class = None, None
        with warnings.catch_warnings():  # the macro average of zero types is a mean of nothing; it is dropped
            warnings.filterwarnings("ignore", category=RuntimeWarning)
            report = classification_report(
                y_true=references, y_pred=predictions, suffix=suffix, output_dict=True, mode=mode,
                scheme=scheme_class, sample_weight=sample_weight, zero_division=zero_division,
            )
        report.pop("macro avg", None)
        report.pop("weighted avg", None)
        overall = report.pop("micro avg")
        scores = {
            type_name: {"precision": float(s["precision"]), "recall": float(s["recall"]),
                        "f1": float(s["f1-score"]), "number": int(s["support"])}
            for type_name, s in report.items()
        }
        scores["overall_precision"] = float(overall["precision"])
        scores["overall_recall"] = float(overall["recall"])
        scores["overall_f1"] = float(overall["f1-score"])
        scores["overall_accuracy"] = float(accuracy_score(y_true=references, y_pred=predictions))
        return scores
