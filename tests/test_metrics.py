"""Metrics against numbers worked out by hand, `compute_metrics` on fake Trainer outputs, the local
`evaluate` module, and the pictures.

The hand example (two sentences, 8 tokens) used throughout:

    position   0       1       2  3          4          | 0  1       2
    gold       B-DRUG  I-DRUG  O  B-DISEASE  I-DISEASE  | O  B-DRUG  O
    pred       B-DRUG  I-DRUG  O  I-DISEASE  I-DISEASE  | O  B-DRUG  B-DISEASE

Gold entities: DRUG[0:2], DISEASE[3:5], DRUG[s2 1:2]  -> 3 (DRUG 2, DISEASE 1).
The predicted DISEASE at 3-4 starts with a stray `I-`.
"""
import json
import socket

import numpy as np
import pytest
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from transformers import EvalPrediction

from mamba_ner.metrics import (
    SEQEVAL_METRIC_PATH,
    build_compute_metrics,
    decode_predictions,
    entity_scores,
    format_report,
    save_metrics_json,
    score_all,
    sort_tags,
    token_scores,
)
from mamba_ner.plotting import confusion_counts, plot_confusion_matrix, save_all_plots

GOLD = [["B-DRUG", "I-DRUG", "O", "B-DISEASE", "I-DISEASE"], ["O", "B-DRUG", "O"]]
PRED = [["B-DRUG", "I-DRUG", "O", "I-DISEASE", "I-DISEASE"], ["O", "B-DRUG", "B-DISEASE"]]
ID2LABEL = {0: "O", 1: "B-DRUG", 2: "I-DRUG", 3: "B-DISEASE", 4: "I-DISEASE"}
LABEL2ID = {v: k for k, v in ID2LABEL.items()}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def approx(x):
    return pytest.approx(x, abs=1e-12)


def test_entity_default_mode_counts_the_stray_i_tag_as_an_entity():
    # conlleval rules: `O I-DISEASE` opens a DISEASE entity, so the prediction at 3-4 matches gold.
    # Predicted: DRUG[0:2], DISEASE[3:5], DRUG[s2 1], DISEASE[s2 2] -> 4, correct 3.
    # micro P = 3/4, R = 3/3, F1 = 2 * .75 * 1 / 1.75 = 6/7
    # DRUG:    P = 2/2, R = 2/2, F1 = 1
    # DISEASE: P = 1/2, R = 1/1, F1 = 2 * .5 * 1 / 1.5 = 2/3
    # macro P = (1 + .5)/2 = .75, R = 1, F1 = (1 + 2/3)/2 = 5/6
    # weighted (supports DRUG 2, DISEASE 1): P = (2*1 + 1*.5)/3 = 5/6, F1 = (2 + 2/3)/3 = 8/9
    s = entity_scores(GOLD, PRED)
    assert (s["mode"], s["scheme"]) == ("default", None)
    assert (s["support"], s["predicted"], s["correct"]) == (3, 4, 3)
    assert (s["precision"], s["recall"], s["f1"]) == (approx(3 / 4), approx(1.0), approx(6 / 7))
    assert (s["macro_precision"], s["macro_recall"], s["macro_f1"]) == (approx(0.75), approx(1.0), approx(5 / 6))
    assert (s["weighted_precision"], s["weighted_f1"]) == (approx(5 / 6), approx(8 / 9))
    assert list(s["per_type"]) == ["DISEASE", "DRUG"]
    assert s["per_type"]["DISEASE"] == {"precision": approx(0.5), "recall": approx(1.0), "f1": approx(2 / 3),
                                        "support": 1, "predicted": 2, "correct": 1}
    assert s["per_type"]["DRUG"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2, "predicted": 2, "correct": 2}


def test_entity_strict_mode_drops_the_stray_i_tag():
    # Strict IOB2: `I-DISEASE I-DISEASE` without a `B-` is no entity.
    # Predicted: DRUG[0:2], DRUG[s2 1], DISEASE[s2 2] -> 3, correct 2 (both DRUG).
    # micro P = 2/3, R = 2/3, F1 = 2/3
    # DRUG: 1, 1, 1.  DISEASE: P = 0/1, R = 0/1, F1 = 0.  macro P = R = F1 = .5
    s = entity_scores(GOLD, PRED, mode="strict", scheme="IOB2")
    assert (s["mode"], s["scheme"]) == ("strict", "IOB2")
    assert (s["support"], s["predicted"], s["correct"]) == (3, 3, 2)
    assert (s["precision"], s["recall"], s["f1"]) == (approx(2 / 3), approx(2 / 3), approx(2 / 3))
    assert (s["macro_precision"], s["macro_recall"], s["macro_f1"]) == (approx(0.5), approx(0.5), approx(0.5))
    assert s["per_type"]["DISEASE"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 1, "correct": 0}


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_entity_scores_agree_with_seqeval_classification_report(mode):
    gold = GOLD + [["B-PER", "I-PER", "O", "B-LOC", "O"], ["I-LOC", "O", "B-PER", "B-PER", "I-LOC"]]
    pred = PRED + [["B-PER", "I-LOC", "O", "B-LOC", "I-LOC"], ["I-LOC", "O", "B-PER", "I-PER", "I-LOC"]]
    ours = entity_scores(gold, pred, mode=mode)
    theirs = classification_report(gold, pred, output_dict=True, zero_division=0,
                                   **({"mode": "strict", "scheme": IOB2} if mode == "strict" else {}))
    for type_, row in ours["per_type"].items():
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == (
            approx(theirs[type_]["precision"]), approx(theirs[type_]["recall"]),
            approx(theirs[type_]["f1-score"]), theirs[type_]["support"])
    for avg, prefix in (("micro avg", ""), ("macro avg", "macro_"), ("weighted avg", "weighted_")):
        assert ours[f"{prefix}precision"] == approx(theirs[avg]["precision"])
        assert ours[f"{prefix}recall"] == approx(theirs[avg]["recall"])
        assert ours[f"{prefix}f1"] == approx(theirs[avg]["f1-score"])


def test_entity_scores_without_any_entity_are_zero_not_nan():
    s = entity_scores([["O", "O"]], [["O", "O"]], mode="strict")
    assert s["f1"] == 0.0 and s["macro_f1"] == 0.0 and s["per_type"] == {}


def test_entity_scores_input_errors():
    with pytest.raises(ValueError, match="mode must be 'default' or 'strict', got 'lenient'"):
        entity_scores(GOLD, PRED, mode="lenient")
    with pytest.raises(ValueError, match="scheme must be one of"):
        entity_scores(GOLD, PRED, mode="strict", scheme="BIO")
    with pytest.raises(ValueError, match="y_true has 2 sentences but y_pred has 1"):
        entity_scores(GOLD, PRED[:1])
    with pytest.raises(ValueError, match="sentence 1: 3 gold tags but 2 predicted tags"):
        entity_scores(GOLD, [PRED[0], PRED[1][:2]])


def test_token_scores_by_hand():
    # tag        gold  pred  correct   P      R      F1
    # O          3     2     2         1      2/3    .8
    # B-DISEASE  1     1     0         0      0      0
    # I-DISEASE  1     2     1         1/2    1      2/3
    # B-DRUG     2     2     2         1      1      1
    # I-DRUG     1     1     1         1      1      1
    # accuracy = micro P = R = F1 = 6/8 = .75
    # macro P = 3.5/5 = .7, R = (2/3 + 3)/5 = 11/15, F1 = (.8 + 2/3 + 2)/5 = 52/75
    # weighted (supports 3,1,1,2,1 over 8): P = 6.5/8, R = 6/8, F1 = (2.4 + 2/3 + 3)/8 = 91/120
    s = token_scores(GOLD, PRED)
    assert list(s["per_tag"]) == ["O", "B-DISEASE", "I-DISEASE", "B-DRUG", "I-DRUG"]
    assert s["per_tag"]["O"] == {"precision": 1.0, "recall": approx(2 / 3), "f1": approx(0.8), "support": 3, "predicted": 2}
    assert s["per_tag"]["B-DISEASE"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 1}
    assert s["per_tag"]["I-DISEASE"] == {"precision": 0.5, "recall": 1.0, "f1": approx(2 / 3), "support": 1, "predicted": 2}
    assert (s["accuracy"], s["support"]) == (0.75, 8)
    assert (s["micro_precision"], s["micro_recall"], s["micro_f1"]) == (0.75, 0.75, approx(0.75))
    assert (s["macro_precision"], s["macro_recall"], s["macro_f1"]) == (approx(0.7), approx(11 / 15), approx(52 / 75))
    assert (s["weighted_precision"], s["weighted_recall"], s["weighted_f1"]) == (
        approx(6.5 / 8), approx(0.75), approx(91 / 120))


def test_token_scores_with_labels():
    # An unseen tag listed in labels gets zeros and counts in the macro average:
    # macro F1 = (.8 + 0 + 2/3 + 1 + 1 + 0) / 6 = 52/90.
    labels = ["O", "B-DRUG", "I-DRUG", "B-DISEASE", "I-DISEASE", "B-SYMP"]
    s = token_scores(GOLD, PRED, labels=labels)
    assert list(s["per_tag"]) == labels
    assert s["per_tag"]["B-SYMP"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 0}
    assert s["macro_f1"] == approx(52 / 90) and s["micro_f1"] == approx(0.75)
    with pytest.raises(ValueError, match=r"tags \['B-DISEASE', 'I-DISEASE'\] occur in the data but are not in labels"):
        token_scores(GOLD, PRED, labels=["O", "B-DRUG", "I-DRUG"])
    with pytest.raises(ValueError, match="labels has duplicates"):
        token_scores(GOLD, PRED, labels=labels + ["O"])


def test_sort_tags():
    assert sort_tags(["I-B", "B-B", "O", "S-A", "B-A", "weird", "E-A"]) == ["O", "B-A", "E-A", "S-A", "B-B", "I-B", "weird"]


def _padded_batches():
    """Two eval batches of different lengths, concatenated and padded with -100 as Trainer does.

    Row 0 labels only some positions (a special token and a second sub-word are -100); row 2 is
    an extra sentence with no labels at all. Predictions are -100 only where nothing is decoded.
    """
    ignore = -100
    gold0 = [LABEL2ID[t] for t in GOLD[0]]
    pred0 = [LABEL2ID[t] for t in PRED[0]]
    gold1 = [LABEL2ID[t] for t in GOLD[1]]
    pred1 = [LABEL2ID[t] for t in PRED[1]]
    # Row 0: [CLS] t0 t1 t2 sub t3 t4 [SEP]; the model decodes a (then ignored) tag on the sub-word.
    labels = np.full((3, 9), ignore)
    preds = np.full((3, 9), ignore)
    labels[0, [1, 2, 3, 5, 6]] = gold0
    preds[0, [1, 2, 3, 5, 6]] = pred0
    preds[0, 4] = LABEL2ID["I-DRUG"]
    labels[1, :3] = gold1
    preds[1, :3] = pred1
    preds[2, :2] = 0  # a row without labels
    return preds, labels


@pytest.mark.parametrize("form", ["array", "tuple", "tuple with emissions"])
def test_compute_metrics_on_padded_trainer_output(form):
    preds, labels = _padded_batches()
    if form == "tuple":
        predictions = (preds,)
    elif form == "tuple with emissions":
        predictions = (np.random.default_rng(0).normal(size=(3, 9, 5)).astype(np.float32), preds)
    else:
        predictions = preds
    metrics = build_compute_metrics(ID2LABEL)(EvalPrediction(predictions=predictions, label_ids=labels))
    # The same numbers as the hand-worked tests above.
    assert metrics["f1"] == approx(6 / 7) and metrics["precision"] == approx(0.75) and metrics["recall"] == 1.0
    assert metrics["macro_f1"] == approx(5 / 6)
    assert metrics["f1_DISEASE"] == approx(2 / 3) and metrics["f1_DRUG"] == 1.0
    assert metrics["strict_f1"] == approx(2 / 3) and metrics["strict_macro_f1"] == approx(0.5)
    assert metrics["accuracy"] == 0.75 and metrics["token_micro_f1"] == approx(0.75)
    assert metrics["token_macro_f1"] == approx(52 / 75)
    assert all(isinstance(v, float) for v in metrics.values())


def test_compute_metrics_options_and_string_keys():
    preds, labels = _padded_batches()
    compute = build_compute_metrics({str(k): v for k, v in ID2LABEL.items()}, strict_too=False, token_level=False)
    metrics = compute(EvalPrediction(predictions=preds, label_ids=labels))
    assert sorted(metrics) == sorted(["precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1",
                                      "f1_DISEASE", "f1_DRUG"])


def test_decode_predictions_keeps_rows_and_pads_short_predictions():
    preds, labels = _padded_batches()
    y_true, y_pred = decode_predictions(preds[:, :7], labels, ID2LABEL)  # predictions padded to a shorter width
    assert y_true == GOLD + [[]] and y_pred == PRED + [[]]


def test_compute_metrics_refuses_emissions_and_bad_predictions():
    preds, labels = _padded_batches()
    compute = build_compute_metrics(ID2LABEL)
    emissions = np.zeros((3, 9, 5), dtype=np.float32)
    for predictions in (emissions, (emissions,)):
        with pytest.raises(ValueError, match="argmax of the emissions is not allowed"):
            compute(EvalPrediction(predictions=predictions, label_ids=labels))
    with pytest.raises(ValueError, match="cannot tell which holds the tag ids"):
        compute(EvalPrediction(predictions=(preds, preds), label_ids=labels))
    with pytest.raises(ValueError, match="non-integral"):
        compute(EvalPrediction(predictions=preds + 0.5, label_ids=labels))
    holes = preds.copy()
    holes[1, 0] = -100
    with pytest.raises(ValueError, match="1 labelled positions have no predicted tag"):
        compute(EvalPrediction(predictions=holes, label_ids=labels))
    unknown = preds.copy()
    unknown[1, 0] = 7
    with pytest.raises(ValueError, match=r"tag ids \[7\] are not in id2label"):
        compute(EvalPrediction(predictions=unknown, label_ids=labels))


def test_format_report_and_json(tmp_path):
    scores = score_all(GOLD, PRED)
    report = format_report(scores)
    assert "Entity level, seqeval default mode (conlleval rules)" in report
    assert "Entity level, seqeval strict mode (IOB2)" in report
    assert "Token level, every tag including O" in report
    strict_at, token_at = report.index("Entity level, seqeval strict"), report.index("Token level")
    default_block, strict_block, token_block = report[:strict_at], report[strict_at:token_at], report[token_at:]
    assert "micro avg" in default_block and "85.71" in default_block  # 6/7
    assert "66.67" in strict_block
    assert "69.33" in token_block  # token macro F1 52/75
    assert format_report(scores["token"]) == token_block

    path = save_metrics_json(scores, tmp_path / "sub" / "metrics.json")
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert loaded["entity"]["f1"] == approx(6 / 7)
    assert loaded["entity_strict"]["per_type"]["DISEASE"]["predicted"] == 1
    assert loaded["token"]["per_tag"]["O"]["support"] == 3


def test_local_evaluate_module_loads_offline(monkeypatch):
    # Offline by every switch (conftest already sets HF_HUB_OFFLINE=1), and any socket use fails.
    import evaluate
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)

    def no_network(*args, **kwargs):
        raise AssertionError("evaluate.load(path) tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    metric = evaluate.load(SEQEVAL_METRIC_PATH)
    default = metric.compute(predictions=PRED, references=GOLD)
    strict = metric.compute(predictions=PRED, references=GOLD, mode="strict", scheme="IOB2")
    assert default["overall_f1"] == approx(6 / 7) and default["DISEASE"]["precision"] == 0.5
    assert default["DRUG"]["number"] == 2 and default["overall_accuracy"] == 0.75
    assert strict["overall_f1"] == approx(2 / 3) and strict["DISEASE"]["f1"] == 0.0
    assert metric.compute(predictions=[["O"]], references=[["O"]])["overall_f1"] == 0.0
    with pytest.raises(ValueError, match="mode must be None, 'default' or 'strict'"):
        metric.compute(predictions=PRED, references=GOLD, mode="lenient")


def _is_png(path):
    data = path.read_bytes()
    return path.stat().st_size > 0 and data[:8] == PNG_SIGNATURE


def test_plots_are_written_as_png(tmp_path):
    log_history = [
        {"loss": 1.5, "grad_norm": 3.0, "learning_rate": 1e-3, "epoch": 0.5, "step": 5},
        {"loss": 1.1, "epoch": 1.0, "step": 10},
        {"eval_loss": 1.2, "eval_f1": 0.4, "eval_strict_f1": 0.3, "epoch": 1.0, "step": 10},
        {"loss": 0.7, "epoch": 2.0, "step": 20},
        {"eval_loss": 0.9, "eval_f1": 0.6, "eval_strict_f1": 0.5, "epoch": 2.0, "step": 20},
        {"train_runtime": 3.0, "train_loss": 1.1, "epoch": 2.0, "step": 20},
    ]
    scores = score_all(GOLD, PRED)
    paths = save_all_plots(log_history, scores, GOLD, PRED, list(ID2LABEL.values()), tmp_path / "ckpt")
    assert [p.name for p in paths] == ["training_curves.png", "per_type_f1.png", "confusion_matrix.png"]
    assert all(_is_png(p) for p in paths)
    # Without a log history (evaluation only) and with no entity at all, the other pictures still come.
    paths = save_all_plots(None, score_all([["O"]], [["O"]]), [["O"]], [["O"]], None, tmp_path / "empty")
    assert [p.name for p in paths] == ["per_type_f1.png", "confusion_matrix.png"] and all(_is_png(p) for p in paths)


def test_confusion_matrix_with_31_tags(tmp_path):
    types = [f"T{i:02d}" for i in range(15)]
    labels = ["O"] + [f"{prefix}-{t}" for t in types for prefix in "BI"]
    rng = np.random.default_rng(0)
    gold = [[str(tag) for tag in rng.choice(labels, size=20)] for _ in range(30)]
    pred = [[tag if rng.random() < 0.8 else str(rng.choice(labels)) for tag in sentence] for sentence in gold]
    counts = confusion_counts(gold, pred, labels)
    assert counts.shape == (31, 31) and counts.sum() == 600
    assert counts.trace() == sum(g == p for gs, ps in zip(gold, pred) for g, p in zip(gs, ps))
    assert _is_png(plot_confusion_matrix(gold, pred, labels, tmp_path / "cm.png"))
    with pytest.raises(ValueError, match=r"tags \['B-T00'.*not in labels"):
        confusion_counts(gold, pred, labels[:1])


def test_confusion_counts_by_hand():
    # Rows gold, columns predicted, in the order O, B-DISEASE, I-DISEASE, B-DRUG, I-DRUG:
    # gold O is predicted O twice and B-DISEASE once; gold B-DISEASE is predicted I-DISEASE.
    counts = confusion_counts(GOLD, PRED, sort_tags(ID2LABEL.values()))
    assert counts.tolist() == [[2, 1, 0, 0, 0],
                               [0, 0, 1, 0, 0],
                               [0, 0, 1, 0, 0],
                               [0, 0, 0, 2, 0],
                               [0, 0, 0, 0, 1]]


@pytest.mark.parametrize("drop_logits", [True, False])
def test_compute_metrics_inside_a_real_trainer(tmp_path, drop_logits):
    # A stand-in tagger whose "Viterbi" output is its input ids, so the hand example goes through
    # Trainer.evaluate unchanged: batches of one sentence are padded with -100 across batches.
    from dataclasses import dataclass

    import torch
    from transformers import PretrainedConfig, PreTrainedModel, Trainer, TrainingArguments
    from transformers.modeling_outputs import ModelOutput

    @dataclass
    class Output(ModelOutput):
        loss: torch.Tensor = None
        logits: torch.Tensor = None
        predictions: torch.Tensor = None

    class EchoTagger(PreTrainedModel):
        config_class = PretrainedConfig

        def __init__(self, config):
            super().__init__(config)
            self.scale = torch.nn.Parameter(torch.ones(()))
            self.post_init()

        def forward(self, input_ids, attention_mask, labels=None):
            logits = torch.nn.functional.one_hot(input_ids, len(ID2LABEL)).float() * self.scale  # (b, l, tags)
            predictions = input_ids.masked_fill(attention_mask == 0, -100)  # (b, l)
            loss = (logits.sum() * 0).reshape(())
            return Output(loss=loss, logits=logits, predictions=predictions)

    config = PretrainedConfig(id2label=ID2LABEL, label2id=LABEL2ID)
    if drop_logits:
        config.keys_to_ignore_at_inference = ["logits"]
    rows = [{"input_ids": torch.tensor([LABEL2ID[t] for t in pred]), "labels": torch.tensor([LABEL2ID[t] for t in gold])}
            for gold, pred in zip(GOLD, PRED)]

    def collate(batch):
        return {"input_ids": torch.stack([b["input_ids"] for b in batch]), "labels": torch.stack([b["labels"] for b in batch]),
                "attention_mask": torch.ones(len(batch), len(batch[0]["labels"]), dtype=torch.long)}

    args = TrainingArguments(str(tmp_path), per_device_eval_batch_size=1, report_to=[], use_cpu=True)
    trainer = Trainer(model=EchoTagger(config), args=args, eval_dataset=rows, data_collator=collate,
                      compute_metrics=build_compute_metrics(ID2LABEL))
    metrics = trainer.evaluate()
    assert metrics["eval_f1"] == approx(6 / 7) and metrics["eval_strict_f1"] == approx(2 / 3)
    assert metrics["eval_accuracy"] == 0.75


def test_compute_metrics_recodes_iobes_tags_before_scoring():
    from mamba_ner.metrics import recode_sequences

    gold = [["B-DRUG", "E-DRUG", "O", "S-DISEASE"], ["O", "S-DRUG", "O"]]
    pred = [["B-DRUG", "E-DRUG", "O", "O"], ["O", "S-DRUG", "S-DISEASE"]]
    assert recode_sequences(gold, "IOB2") == [["B-DRUG", "I-DRUG", "O", "B-DISEASE"], ["O", "B-DRUG", "O"]]
    labels = ["O", "B-DRUG", "I-DRUG", "E-DRUG", "S-DRUG", "B-DISEASE", "I-DISEASE", "E-DISEASE", "S-DISEASE"]
    id2label = dict(enumerate(labels))
    ids = {label: i for i, label in enumerate(labels)}
    width = max(len(row) for row in gold)
    label_ids = np.full((2, width), -100)
    predictions = np.full((2, width), -100)
    for r, (g, p) in enumerate(zip(gold, pred)):
        label_ids[r, :len(g)] = [ids[t] for t in g]
        predictions[r, :len(p)] = [ids[t] for t in p]
    recoded = build_compute_metrics(id2label, recode="IOB2")(EvalPrediction(predictions=predictions, label_ids=label_ids))
    as_is = build_compute_metrics(id2label, strict_too=False)(EvalPrediction(predictions=predictions, label_ids=label_ids))
    # entities are the same either way: 2 of 3 gold found, 2 of 3 predicted right
    assert recoded["f1"] == as_is["f1"] == approx(2 / 3)
    # tokens are counted as IOB2 tags: 5 of 7 tokens right (the missed DISEASE and the extra one)
    assert recoded["accuracy"] == approx(5 / 7) == as_is["accuracy"]
    assert recoded["token_macro_f1"] != as_is["token_macro_f1"]  # B-/I- against B-/E-/S- label sets
    expected = build_compute_metrics(dict(enumerate(["O", "B-DRUG", "I-DRUG", "B-DISEASE"])))
    iob2 = {"O": 0, "B-DRUG": 1, "I-DRUG": 2, "B-DISEASE": 3}
    for r, (g, p) in enumerate(zip(recode_sequences(gold, "IOB2"), recode_sequences(pred, "IOB2"))):
        label_ids[r, :len(g)] = [iob2[t] for t in g]
        predictions[r, :len(p)] = [iob2[t] for t in p]
    assert recoded == approx(expected(EvalPrediction(predictions=predictions, label_ids=label_ids)))
