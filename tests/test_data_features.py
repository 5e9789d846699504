"""Features: label list, DatasetDict columns, save/load/parquet, splits, duplicate removal."""

import pytest
from datasets import ClassLabel, Dataset, load_from_disk

from mamba_ner.data import ConversionReport, Sentence, read_brat, read_rocling
from mamba_ner.data.features import (
    build_dataset_dict,
    label_list_from,
    labels_for_types,
    remove_duplicates,
    split_sentences,
)


def _sentences(n, docs=1):
    return [
        Sentence([f"w{i}", "x"], ["B-A", "O"] if i % 2 else ["O", "B-B"], f"d{i % docs}", i // docs, source=f"f:{i}")
        for i in range(n)
    ]


def test_label_list_order_and_schemes():
    sentences = [Sentence(["a", "b"], ["B-SYMP", "I-SYMP"], "d", 0), Sentence(["c"], ["B-BODY"], "d", 1)]
    assert label_list_from(sentences) == ["O", "B-BODY", "I-BODY", "B-SYMP", "I-SYMP"]
    assert label_list_from({"train": sentences, "test": [Sentence(["z"], ["S-Test_Value"], "d", 0)]}, "IOBES")[-4:] == [
        "B-Test_Value",
        "I-Test_Value",
        "E-Test_Value",
        "S-Test_Value",
    ]
    assert label_list_from([["O", "B-X"], None]) == ["O", "B-X", "I-X"]
    assert labels_for_types(["B", "A"], "BMES") == ["O", "B-B", "M-B", "E-B", "S-B", "B-A", "M-A", "E-A", "S-A"]


def test_dataset_dict_columns_from_rocling_and_brat(fixtures_dir, tmp_path):
    rocling, _ = read_rocling(fixtures_dir / "data" / "rocling" / "basic_lf.txt")
    brat, _ = read_brat(fixtures_dir / "data" / "brat" / "zh")
    labels = label_list_from(rocling + brat)
    dataset = build_dataset_dict({"train": rocling, "test": brat}, labels)
    train, test = dataset["train"], dataset["test"]
    assert train.features["ner_tags"].feature.names == labels
    assert isinstance(train.features["ner_tags"].feature, ClassLabel)
    assert set(train.column_names) == {"tokens", "ner_tags", "doc_id", "sentence_index", "offsets", "source"}
    row = train[0]
    assert row["tokens"][:2] == ["頭", "痛"] and [labels[i] for i in row["ner_tags"][:2]] == ["B-SYMP", "I-SYMP"]
    assert row["offsets"] is None and row["doc_id"] == "basic_lf" and row["sentence_index"] == 0
    assert test[0]["offsets"][:2] == [[0, 1], [1, 2]]
    dataset.save_to_disk(tmp_path / "dd")
    again = load_from_disk(str(tmp_path / "dd"))
    assert again["test"].features["ner_tags"].feature.names == labels and again["test"][0] == test[0]
    test.to_parquet(tmp_path / "test.parquet")
    from_parquet = Dataset.from_parquet(str(tmp_path / "test.parquet"))
    assert from_parquet.features["ner_tags"].feature.names == labels and from_parquet[0] == test[0]


def test_unknown_tag_and_unlabelled_split():
    with pytest.raises(ValueError, match=r"f:1: tag 'B-A' is not in the label list"):
        build_dataset_dict({"train": _sentences(2)}, ["O", "B-B", "I-B"])
    unlabelled = [Sentence(["a"], None, "d", 0)]
    dataset = build_dataset_dict({"train": _sentences(2), "test": unlabelled})
    assert "ner_tags" not in dataset["test"].column_names and "ner_tags" in dataset["train"].column_names
    with pytest.raises(ValueError, match="mixes labelled and unlabelled"):
        build_dataset_dict({"train": _sentences(2) + unlabelled})


def test_split_by_ratio_matches_datasets_train_test_split():
    sentences = _sentences(97)
    splits = split_sentences(sentences, {"train": 0.9, "validation": 0.1}, seed=42)
    reference = Dataset.from_dict({"i": list(range(97))}).train_test_split(test_size=0.1, seed=42)
    assert sorted(int(s.source[2:]) for s in splits["validation"]) == sorted(reference["test"]["i"])
    assert len(splits["train"]) + len(splits["validation"]) == 97
    assert splits["train"] == sorted(splits["train"], key=lambda s: int(s.source[2:]))  # original order kept
    assert split_sentences(sentences, {"train": 0.9, "validation": 0.1}, seed=42) == splits


def test_split_three_ways_and_by_document():
    sentences = _sentences(60, docs=6)
    splits = split_sentences(sentences, seed=1, by_document=True)
    assert sum(len(v) for v in splits.values()) == 60
    docs = {name: {s.doc_id for s in v} for name, v in splits.items()}
    assert docs["train"].isdisjoint(docs["test"]) and docs["train"].isdisjoint(docs["validation"])
    assert len(docs["validation"]) == 1 and len(docs["test"]) == 1
    with pytest.raises(ValueError, match="sum to 1"):
        split_sentences(sentences, {"train": 0.5, "test": 0.2})


def test_remove_duplicates_updates_report():
    train = _sentences(4)
    test = [Sentence(["w1", "x"], ["O", "O"], "t", 0)]
    report = ConversionReport()
    report.entity_read("A", 2), report.entity_kept("A", 2), report.entity_read("B", 2), report.entity_kept("B", 2)
    kept = remove_duplicates(train, {"test": test}, report)
    assert [s.tokens[0] for s in kept] == ["w0", "w2", "w3"]
    report.check()
    assert report.totals["kept"] == 3 and report.reasons("dropped") == {"sentence removed: also in test": 1}
    assert report.reasons("removed") == {"train sentence also in test": 1}
    assert remove_duplicates(train, [test]) == kept


def test_recode_tags_iob2_to_iobes_and_back():
    from mamba_ner.data.features import recode_tags

    sentences = {
        "train": [Sentence(["a", "b", "c", "d"], ["B-X", "I-X", "O", "B-Y"], "d", 0),
                  Sentence(["e", "f", "g"], ["O", "I-X", "I-X"], "d", 1)],  # not well-formed IOB2
        "test": [Sentence(["h", "i"], ["B-Y", "B-Y"], "d", 0)],
    }
    dataset = build_dataset_dict(sentences)
    recoded, counts = recode_tags(dataset, "bioes")
    names = recoded["train"].features["ner_tags"].feature.names
    assert names == ["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "I-Y", "E-Y", "S-Y"]
    tags = {split: [[names[i] for i in row] for row in recoded[split]["ner_tags"]] for split in recoded}
    assert tags["train"] == [["B-X", "E-X", "O", "S-Y"], ["O", "B-X", "E-X"]]
    assert tags["test"] == [["S-Y", "S-Y"]]
    assert counts == {"train": {"rows": 2, "entities": 3, "repaired": 1}, "test": {"rows": 1, "entities": 2, "repaired": 0}}
    assert recoded["train"].column_names == dataset["train"].column_names
    assert recoded["train"]["tokens"] == dataset["train"]["tokens"]
    back, back_counts = recode_tags(recoded, "IOB2")
    back_names = back["train"].features["ner_tags"].feature.names
    assert back_names == ["O", "B-X", "I-X", "B-Y", "I-Y"]
    assert [[back_names[i] for i in row] for row in back["train"]["ner_tags"]] == [["B-X", "I-X", "O", "B-Y"], ["O", "B-X", "I-X"]]
    assert back_counts["train"]["repaired"] == 0


def test_recode_tags_keeps_unlabelled_splits_and_refuses_unknown_schemes():
    from mamba_ner.data.features import recode_tags

    dataset = build_dataset_dict({"train": [Sentence(["a"], ["B-X"], "d", 0)]})
    unlabelled = build_dataset_dict({"train": [Sentence(["a"], None, "d", 0)]}, ["O"])
    dataset["predict"] = unlabelled["train"].remove_columns([c for c in unlabelled["train"].column_names if c == "ner_tags"])
    recoded, counts = recode_tags(dataset, "IOBES")
    assert "ner_tags" not in recoded["predict"].column_names and set(counts) == {"train"}
    with pytest.raises(ValueError, match="unknown tag scheme"):
        recode_tags(dataset, "XYZ")
