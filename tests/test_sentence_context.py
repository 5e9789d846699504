"""--sentence_context: each sentence read with its document's neighbouring sentences, which are not
trained on or scored; training rows read training text only; `mamba-ner predict` reads as training did."""
import json
import logging
from pathlib import Path

import pytest

from mamba_ner.data import Sentence, read_files
from mamba_ner.data.bio import tags_to_spans
from mamba_ner.data.features import add_sentence_context, build_dataset_dict, context_words
from mamba_ner.metrics import score_all
from mamba_ner.predict import main as predict_main
from mamba_ner.tokenization import build_tokenizer, tokenize_and_align_labels
from mamba_ner.training import main as train_main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample_data" / "rocling"


def sentence(doc_id, index, text, tags):
    return Sentence(tokens=list(text), tags=tags, doc_id=doc_id, index=index)


def splits():
    """Document "d" has sentences 0-3 spread over train (0, 2), validation (1) and test (3); "e" is alone."""
    return build_dataset_dict({
        "train": [sentence("d", 0, "ab", ["B-X", "I-X"]), sentence("d", 2, "cde", ["O", "B-Y", "O"]),
                  sentence("e", 0, "fg", ["O", "B-Y"])],
        "validation": [sentence("d", 1, "hi", ["B-X", "O"])],
        "test": [sentence("d", 3, "jk", ["O", "B-X"])],
    })


def test_each_split_reads_its_own_sentences_and_those_of_the_splits_before_it():
    data = add_sentence_context(splits(), 3)
    rows = {name: list(zip(d["tokens"], d["context_before"], d["context_after"])) for name, d in data.items()}
    # training rows skip the validation sentence between them: training never reads validation or test text
    assert rows["train"] == [(list("abcde"), 0, 3), (list("abcde"), 2, 0), (list("fg"), 0, 0)]
    # a validation sentence sees the training sentences around it (cut to 3 words on each side)
    assert rows["validation"] == [(list("abhicde"), 2, 3)]
    # the test sentence reads all three splits; "e" is another document and never read as context of "d"
    assert rows["test"] == [(list("cdejk"), 3, 0)]
    names = data["train"].features["ner_tags"].feature.names
    # context words are tagged O; the sentence keeps its own tags
    assert [names[i] for i in data["train"]["ner_tags"][1]] == ["O", "O", "O", "B-Y", "O"]
    assert [names[i] for i in data["validation"]["ner_tags"][0]] == ["O", "O", "B-X", "O", "O", "O", "O"]


def test_context_words_are_cut_to_the_nearest_words_of_each_side():
    readable = {"d": {0: list("abc"), 5: list("de"), 9: list("fghi")}}
    before, after = context_words([("d", 5), ("d", 0), ("d", 9)], readable, 2)
    assert before == [list("bc"), [], list("de")]
    assert after == [list("fg"), list("de"), []]
    with pytest.raises(ValueError, match="words >= 1"):
        context_words([("d", 0)], readable, 0)


def test_labels_of_context_words_are_ignored():
    data = add_sentence_context(splits(), 3)["validation"]
    tokenizer = build_tokenizer([list("abcdefghijk")], kind="char")
    encoded = tokenize_and_align_labels(data[:], tokenizer)
    words = encoded["input_ids"][0][1:-1]
    assert tokenizer.convert_ids_to_tokens(words) == list("abhicde")
    # [CLS] and the 2 + 3 context words get -100: only h (B-X) and i (O) are trained on and scored
    names = data.features["ner_tags"].feature.names
    assert encoded["labels"][0] == [-100, -100, -100, names.index("B-X"), names.index("O"), -100, -100, -100, -100]


@pytest.mark.parametrize("windows", [[], ["--train_window", "40", "--train_window_context", "6"]],
                         ids=["sentence-rows", "document-windows"])
def test_training_and_predict_read_sentences_with_the_same_context(tmp_path, capsys, caplog, windows):
    """Scores count the sentences' own words only, the context is recorded in the checkpoint, and
    `mamba-ner predict` with that checkpoint reproduces the run's test scores from its own output.
    With --train_window, training reads its documents in windows; evaluation still reads sentences."""
    gold, _ = read_files("rocling", [SAMPLE / "test.txt"])
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="mamba_ner.training"):
        code = train_main([
            "--data_format", "rocling", "--train_files", str(SAMPLE / "train.txt"),
            "--validation_files", str(SAMPLE / "dev.txt"), "--test_files", str(SAMPLE / "test.txt"),
            "--output_dir", str(out), "--sentence_context", "6",
            "--hidden_size", "16", "--num_hidden_layers", "1", "--state_size", "4", "--learning_rate", "5e-3",
            "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4", "--max_steps", "12",
            "--report_to", "none", "--do_train", "--do_eval", "--do_predict", "--use_cpu", "--disable_tqdm", "true",
            "--make_plots", "false", "--seed", "3", *windows,
        ])
    assert code == 0
    assert f"=== test ({len(gold)} sentences) ===" in capsys.readouterr().out
    train, _ = read_files("rocling", [SAMPLE / "train.txt"])
    if windows:
        assert f"sentence context: train {len(train)} sentences read as 1 documents" in caplog.text
    else:
        assert f"sentence context: train {len(train)} sentences, " in caplog.text
    scores = json.loads((out / "test_scores.json").read_text())
    assert scores["token"]["support"] == sum(len(s.tokens) for s in gold)
    assert scores["entity"]["support"] == sum(len(tags_to_spans(s.tags)) for s in gold)
    assert json.loads((out / "model" / "config.json").read_text())["sentence_context"] == 6

    assert predict_main(["--model", str(out / "model"), str(SAMPLE / "test.txt"), "--output", str(tmp_path / "tagged"),
                         "--device", "cpu"]) == 0
    predicted, _ = read_files("conll", [tmp_path / "tagged" / "test.txt"], tag_column=-1)
    assert [s.tokens for s in predicted] == [s.tokens for s in gold]
    again = score_all([s.tags for s in gold], [s.tags for s in predicted])
    assert again["entity"]["f1"] == pytest.approx(scores["entity"]["f1"])
    assert again["token"]["micro_f1"] == pytest.approx(scores["token"]["micro_f1"])


@pytest.mark.parametrize("options, message", [
    (["--sentence_context", "4", "--document_context"], "--sentence_context gives each sentence its neighbours"),
    (["--sentence_context", "-2"], "--sentence_context must be 0 (off) or a number of words, got -2"),
], ids=["with-document-context", "negative"])
def test_sentence_context_refuses_what_it_cannot_do(tmp_path, capsys, options, message):
    code = train_main(["--data_format", "rocling", "--train_files", str(SAMPLE / "train.txt"),
                       "--output_dir", str(tmp_path / "run"), *options, "--do_train", "--use_cpu", "--report_to", "none"])
    assert code == 1
    assert message in capsys.readouterr().err
