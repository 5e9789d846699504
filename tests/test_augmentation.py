"""Mention replacement (`--mention_replacement_prob`): spans found in tokenized rows, swapped for pool mentions."""
import logging
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler

from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification
from mamba_ner.augmentation import MentionReplacement, mention_spans
from mamba_ner.trainer import MambaCrfTrainer
from mamba_ner.training import main as train_main

REPO = Path(__file__).resolve().parents[1]
BIO = ["O", "B-DRUG", "I-DRUG", "B-DISE", "I-DISE"]
IOBES = ["O", "B-X", "I-X", "E-X", "S-X"]
CLS, SEP = 1, 2
IGNORE = -100


def names(row, label_names):
    return [label_names[i] if i >= 0 else None for i in row["labels"]]


def test_spans_are_whole_mentions_only():
    ids = [CLS, 10, 11, 12, 13, 14, 15, SEP]
    labels = [IGNORE, 1, 2, 0, 3, 4, 3, IGNORE]  # DRUG(10 11), O, DISE(13 14), DISE(15) before [SEP]
    assert mention_spans(ids, labels, BIO, {CLS, SEP}) == [(1, 3, "DRUG"), (4, 6, "DISE"), (6, 7, "DISE")]
    # a mention followed by an unlabelled token that is not special (a continuation word piece, a window's
    # context) is not whole: replacing it would leave the rest of its word behind
    assert mention_spans([CLS, 10, 11, 12, SEP], [IGNORE, 1, IGNORE, 0, IGNORE], BIO, {CLS, SEP}) == []
    assert mention_spans([10, 11, 12], [0, 1, IGNORE], BIO, set()) == []
    assert mention_spans([10, 11], [0, 1], BIO, set()) == [(1, 2, "DRUG")]  # the row's end closes it
    # I- of another type ends the mention; a stray I- starts none
    assert mention_spans([10, 11, 12], [1, 4, 0], BIO, set()) == [(0, 1, "DRUG")]


def test_iobes_spans_need_their_end_tag():
    ids = [10, 11, 12, 13, 14, 15]
    labels = [1, 2, 3, 4, 1, 2]  # B I E, S, B I (cut: no E-)
    assert mention_spans(ids, labels, IOBES) == [(0, 3, "X"), (3, 4, "X")]


def rows():
    return [
        {"input_ids": [CLS, 10, 11, 0 + 20, 13, SEP], "attention_mask": [1] * 6, "labels": [IGNORE, 1, 2, 0, 3, IGNORE]},
        {"input_ids": [CLS, 30, 21, 31, 32, 33, SEP], "attention_mask": [1] * 7,
         "labels": [IGNORE, 1, 0, 3, 4, 4, IGNORE]},
        {"input_ids": [CLS, 22, SEP], "attention_mask": [1] * 3, "labels": [IGNORE, 0, IGNORE]},
    ]


def test_probability_one_replaces_every_mention_with_a_pool_mention_of_its_type():
    data = MentionReplacement(rows(), BIO, 1.0, seed=0, special_ids={CLS, SEP})
    assert data.pool == {"DRUG": [(10, 11), (30,)], "DISE": [(13,), (31, 32, 33)]}
    assert data.mention_count == 4 and data.lengths == [6, 7, 3]
    assert "4 replaceable mentions in 3 training rows" in data.report()
    seen = set()
    for _ in range(20):
        row = data[1]
        ids, labels = row["input_ids"], row["labels"]
        assert len(ids) == len(labels) == len(row["attention_mask"]) and all(row["attention_mask"])
        assert ids[0] == CLS and ids[-1] == SEP and labels[0] == labels[-1] == IGNORE
        o_at = labels.index(0)  # the O token between the two mentions stays
        assert ids[o_at] == 21
        drug, dise = tuple(ids[1:o_at]), tuple(ids[o_at + 1:-1])
        assert drug in data.pool["DRUG"] and dise in data.pool["DISE"]
        assert names(row, BIO)[1:o_at] == ["B-DRUG"] + ["I-DRUG"] * (len(drug) - 1)
        assert names(row, BIO)[o_at + 1:-1] == ["B-DISE"] + ["I-DISE"] * (len(dise) - 1)
        seen.add((drug, dise))
    assert len(seen) == 4  # every combination of the two pools turned up in 20 readings
    assert data[2] == rows()[2]  # a row without mentions is returned as it is


def test_probability_zero_changes_nothing_and_draws_are_reproducible():
    plain = MentionReplacement(rows(), BIO, 0.0, special_ids={CLS, SEP})
    assert [plain[i] for i in range(3)] == rows()
    first = MentionReplacement(rows(), BIO, 0.5, seed=7, special_ids={CLS, SEP})
    second = MentionReplacement(rows(), BIO, 0.5, seed=7, special_ids={CLS, SEP})
    assert [first[i % 3] for i in range(30)] == [second[i % 3] for i in range(30)]
    readings = [tuple(first[1]["input_ids"]) for _ in range(20)]
    assert len(set(readings)) > 1  # each reading of a row draws afresh
    with pytest.raises(ValueError, match="between 0 and 1, got 1.5"):
        MentionReplacement(rows(), BIO, 1.5)


def test_iobes_replacements_get_s_and_e_tags():
    data = MentionReplacement([{"input_ids": [10, 11, 12, 13, 14], "labels": [1, 2, 3, 0, 4]}], IOBES, 1.0, seed=1)
    for _ in range(10):
        tags = names(data[0], IOBES)
        o_at = tags.index("O")
        assert tags[:o_at] in (["S-X"], ["B-X", "I-X", "E-X"]) and tags[o_at + 1:] in (["S-X"], ["B-X", "I-X", "E-X"])


def test_length_grouping_uses_the_listed_lengths_without_reading_rows(tmp_path):
    data = MentionReplacement(rows() * 4, BIO, 1.0, special_ids={CLS, SEP})
    model = MambaCrfForTokenClassification(MambaCrfConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=1, state_size=4,
        id2label=dict(enumerate(BIO)), label2id={l: i for i, l in enumerate(BIO)}))
    args = TrainingArguments(output_dir=str(tmp_path), train_sampling_strategy="group_by_length", report_to="none",
                             use_cpu=True, per_device_train_batch_size=4)
    sampler = MambaCrfTrainer(model=model, args=args, train_dataset=data)._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler) and sampler.lengths == data.lengths
    assert sum(data._readings) == 0  # no row was augmented (and its draw spent) just to learn its length
    assert sorted(sampler) == list(range(12))


def test_training_with_mention_replacement(tmp_path, caplog):
    sample = REPO / "examples" / "sample_data" / "rocling"
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="mamba_ner.training"):
        code = train_main([
            "--train_files", str(sample / "train.txt"), "--validation_files", str(sample / "dev.txt"),
            "--output_dir", str(tmp_path / "run"), "--mention_replacement_prob", "0.5",
            "--hidden_size", "16", "--num_hidden_layers", "1", "--state_size", "4", "--max_steps", "3",
            "--per_device_train_batch_size", "8", "--train_sampling_strategy", "group_by_length",
            "--do_train", "--do_eval", "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
            "--make_plots", "false"])
    assert code == 0
    report = [r.getMessage() for r in caplog.records if "mention replacement p=0.5" in r.getMessage()]
    assert len(report) == 1 and "replaceable mentions in 60 training rows" in report[0]
    assert (tmp_path / "run" / "model" / "config.json").exists()
    assert "| mention_replacement_prob | 0.5 |" in (tmp_path / "run" / "README.md").read_text(encoding="utf-8")


def test_mention_replacement_outside_0_1_is_refused(tmp_path, capsys):
    sample = REPO / "examples" / "sample_data" / "rocling" / "train.txt"
    code = train_main(["--train_files", str(sample), "--output_dir", str(tmp_path / "run"),
                       "--mention_replacement_prob", "-0.1", "--do_train", "--use_cpu", "--report_to", "none",
                       "--hidden_size", "16", "--num_hidden_layers", "1", "--state_size", "4"])
    assert code == 1
    assert "--mention_replacement_prob must be in (0, 1], got -0.1" in capsys.readouterr().err
