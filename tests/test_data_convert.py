"""`mamba-ner convert`: outputs, options per format, errors, and the CLI dispatcher."""

import json

import pytest
from datasets import load_from_disk
from transformers import AutoTokenizer

from mamba_ner.cli import main as cli_main
from mamba_ner.data.convert import main


@pytest.fixture
def data(fixtures_dir):
    return fixtures_dir / "data"


def test_rocling_with_test_file_parquet_and_tokenizer(data, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(
        [
            "--format",
            "rocling",
            str(data / "rocling" / "basic_lf.txt"),
            str(data / "rocling" / "healthner.json"),
            "--test",
            str(data / "rocling" / "quirks_crlf_space_separator.txt"),
            "--dedup",
            "--parquet",
            "--tokenizer",
            "char",
            "--output",
            str(out),
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "splits: train 6, test 5" in printed and "entities: read 17" in printed
    dataset = load_from_disk(str(out))
    labels = json.loads((out / "labels.json").read_text())
    assert dataset["train"].features["ner_tags"].feature.names == labels and labels[0] == "O"
    report = json.loads((out / "report.json").read_text())
    assert report["totals"] == {"read": 17, "kept": 17, "dropped": 0, "repaired": 4, "merged": 0}
    assert report["reasons"]["removed"] == {}
    assert (out / "train.parquet").is_file() and (out / "test.parquet").is_file()
    tokenizer = AutoTokenizer.from_pretrained(str(out / "tokenizer"))
    assert tokenizer(["頭痛"], is_split_into_words=True).tokens() == ["[CLS]", "頭", "痛", "[SEP]"]


def test_dedup_removes_train_sentences_found_in_test(data, tmp_path, capsys):
    train = [str(data / "rocling" / "basic_lf.txt"), str(data / "rocling" / "quirks_crlf_space_separator.txt")]
    assert (
        main(
            [
                "--format",
                "rocling",
                *train,
                "--test",
                str(data / "rocling" / "healthner.json"),
                "--dedup",
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["reasons"]["removed"] == {"train sentence also in test": 3}
    assert report["totals"]["dropped"] == 5 and report["totals"]["kept"] == 12  # 5 entities of train moved to dropped
    assert len(load_from_disk(str(tmp_path / "o"))["train"]) == 5
    assert (
        main(
            [
                "--format",
                "rocling",
                train[0],
                "--test",
                str(data / "rocling" / "healthner.json"),
                "--dedup",
                "--output",
                str(tmp_path / "e"),
            ]
        )
        == 0
    )
    assert list(load_from_disk(str(tmp_path / "e"))) == ["test"]  # the empty train split is not written
    assert "split 'train' is empty" in capsys.readouterr().out


def test_brat_by_document_ratios(data, tmp_path, capsys):
    args = [
        "--format",
        "brat",
        str(data / "brat" / "zh"),
        str(data / "brat" / "en"),
        "--split-ratios",
        "train=0.34,test=0.66",
        "--by-document",
        "--output",
        str(tmp_path / "b"),
    ]
    assert main(args) == 0
    dataset = load_from_disk(str(tmp_path / "b"))
    assert sorted(dataset) == ["test", "train"]
    assert {d for split in dataset.values() for d in split["doc_id"]} == {"guideline", "visit", "trial"}
    assert len(set(dataset["train"]["doc_id"])) == 1
    assert "nested inside a longer kept entity" in capsys.readouterr().out


def test_conll_options_and_scheme(data, tmp_path, capsys):
    args = [
        "--format",
        "conll",
        str(data / "conll" / "iob1_docstart.txt"),
        "--scheme",
        "IOBES",
        "--tag-column",
        "3",
        "--output",
        str(tmp_path / "c"),
    ]
    assert main(args) == 0
    train = load_from_disk(str(tmp_path / "c"))["train"]
    names = train.features["ner_tags"].feature.names
    assert [names[i] for i in train[2]["ner_tags"]] == ["S-LOC", "S-LOC", "O", "O", "O"]
    assert train[2]["doc_id"] == "iob1_docstart#1"


def test_malformed_input_exit_status_and_message(data, tmp_path, capsys):
    status = main(["--format", "rocling", str(data / "rocling" / "bad_columns.txt"), "--output", str(tmp_path / "x")])
    assert status == 1
    assert "bad_columns.txt:2: expected a line 'char tag' (2 columns)" in capsys.readouterr().err
    assert (
        main(
            [
                "--format",
                "rocling",
                str(data / "rocling" / "bad_columns.txt"),
                "--on-error",
                "skip",
                "--output",
                str(tmp_path / "y"),
            ]
        )
        == 0
    )
    assert "skipped 1" in capsys.readouterr().out


def test_bad_arguments(data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--format", "rocling", "--output", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(
            [
                "--format",
                "rocling",
                str(data / "rocling" / "basic_lf.txt"),
                "--split-ratios",
                "train:1",
                "--output",
                str(tmp_path),
            ]
        )
    assert (
        main(
            [
                "--format",
                "rocling",
                str(data / "rocling" / "basic_lf.txt"),
                "--split-ratios",
                "train=0.5,test=0.1",
                "--output",
                str(tmp_path / "r"),
            ]
        )
        == 1
    )
    assert "sum to 1" in capsys.readouterr().err


def test_cli_dispatches_convert(data, tmp_path, capsys):
    assert (
        cli_main(["convert", "--format", "conll", str(data / "conll" / "iobes.txt"), "--output", str(tmp_path / "d")])
        == 0
    )
    assert "entities: read 3" in capsys.readouterr().out
