"""Document context: sentences joined into documents for the model, scores cut back into sentences."""
import json
from pathlib import Path

import pytest

from mamba_ner.data import Sentence, read_conll
from mamba_ner.data.bio import tags_to_spans
from mamba_ner.data.features import build_dataset, join_documents, labels_for_types, split_rows
from mamba_ner.training import main as train_main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample_data" / "conll" / "sample.conll"


def sentence(doc_id, index, tokens, tags, offsets=None):
    return Sentence(tokens=tokens, tags=tags, doc_id=doc_id, index=index, offsets=offsets, source=f"f:{doc_id}{index}")


def test_join_documents_joins_consecutive_sentences_of_a_document():
    labels = labels_for_types(["PER"])
    dataset = build_dataset([
        sentence("a", 0, ["Ann", "ran"], ["B-PER", "O"]),
        sentence("a", 1, ["Bo", "Li", "sat"], ["B-PER", "I-PER", "O"]),
        sentence("b", 0, ["x"], ["O"]),
        sentence("a", 2, ["y", "Cy"], ["O", "B-PER"]),  # "a" again after "b": a new row, nothing reordered
    ], labels)
    joined = join_documents(dataset)
    assert joined["tokens"] == [["Ann", "ran", "Bo", "Li", "sat"], ["x"], ["y", "Cy"]]
    assert joined["sentence_lengths"] == [[2, 3], [1], [2]]
    assert joined["doc_id"] == ["a", "b", "a"]
    names = joined.features["ner_tags"].feature.names
    assert [[names[i] for i in row] for row in joined["ner_tags"]] == [
        ["B-PER", "O", "B-PER", "I-PER", "O"], ["O"], ["O", "B-PER"]]
    assert joined["source"] == ["f:a0", "f:b0", "f:a2"]
    assert joined["offsets"] == [None, None, None]


def test_a_separator_between_sentences_is_tagged_o_and_cut_out_again():
    labels = labels_for_types(["PER"])
    dataset = build_dataset([
        sentence("a", 0, ["Ann", "ran"], ["B-PER", "O"]),
        sentence("a", 1, ["Bo"], ["B-PER"]),
        sentence("b", 0, ["x"], ["O"]),
    ], labels)
    joined = join_documents(dataset, separator="[SEP]")
    assert joined["tokens"] == [["Ann", "ran", "[SEP]", "Bo"], ["x"]]
    names = joined.features["ner_tags"].feature.names
    assert [names[i] for i in joined["ner_tags"][0]] == ["B-PER", "O", "O", "B-PER"]
    assert split_rows(joined["tokens"], joined["sentence_lengths"], gap=1) == [["Ann", "ran"], ["Bo"], ["x"]]
    with pytest.raises(ValueError, match="row 0 has 4 items but its sentences have 3 words"):
        split_rows(joined["tokens"], joined["sentence_lengths"])
    no_outside = build_dataset([sentence("a", 0, ["Ann"], ["B-PER"]), sentence("a", 1, ["Bo"], ["B-PER"])],
                               ["B-PER", "I-PER"])
    with pytest.raises(ValueError, match="tagged O, which the label list"):
        join_documents(no_outside, separator="[SEP]")


def test_join_documents_concatenates_offsets_and_unlabelled_rows():
    dataset = build_dataset([
        sentence("d", 0, ["ab", "c"], None, [(0, 2), (3, 4)]),
        sentence("d", 1, ["e"], None, [(6, 7)]),
    ], None)
    joined = join_documents(dataset)
    assert "ner_tags" not in joined.column_names
    assert joined["offsets"] == [[[0, 2], [3, 4], [6, 7]]]


def test_split_rows_restores_sentences_and_refuses_a_mismatch():
    rows = [["B-PER", "O", "B-PER", "I-PER", "O"], ["O"]]
    assert split_rows(rows, [[2, 3], [1]]) == [["B-PER", "O"], ["B-PER", "I-PER", "O"], ["O"]]
    with pytest.raises(ValueError, match="row 1 has 1 items but its sentences have 2 words"):
        split_rows(rows, [[2, 3], [2]])


@pytest.mark.parametrize("separator", [None, "[SEP]"], ids=["joined", "separator"])
def test_training_with_document_context_scores_every_sentence(tmp_path, capsys, separator):
    sentences, _ = read_conll([SAMPLE])
    documents = len({s.doc_id for s in sentences})
    assert 1 < documents < len(sentences)  # the sample has documents of several sentences
    gold_entities = sum(len(tags_to_spans(s.tags)) for s in sentences)
    out = tmp_path / "run"
    code = train_main([
        "--data_format", "conll", "--train_files", str(SAMPLE), "--validation_files", str(SAMPLE),
        "--test_files", str(SAMPLE), "--output_dir", str(out), "--document_context",
        "--train_window", "12", "--train_window_context", "3",
        "--hidden_size", "16", "--num_hidden_layers", "1", "--state_size", "4",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "2", "--max_steps", "3",
        "--report_to", "none", "--do_train", "--do_eval", "--use_cpu", "--disable_tqdm", "true",
        "--make_plots", "false", "--seed", "3",
        "--train_sampling_strategy", "group_by_length",  # transformers 5 would length-group evaluation too
        *(["--document_separator", separator] if separator else []),
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"=== test ({len(sentences)} sentences) ===" in printed
    scores = json.loads((out / "test_scores.json").read_text())
    assert scores["entity"]["support"] == gold_entities
    assert scores["token"]["support"] == sum(len(s.tokens) for s in sentences)
    config = json.loads((out / "model" / "config.json").read_text())  # recorded for `mamba-ner predict`
    assert config["document_context"] is True and config["document_separator"] == separator


def test_a_separator_without_document_context_is_refused(tmp_path, capsys):
    code = train_main(["--data_format", "conll", "--train_files", str(SAMPLE), "--output_dir", str(tmp_path / "run"),
                       "--document_separator", "[SEP]", "--do_train", "--use_cpu", "--report_to", "none"])
    assert code == 1
    assert "--document_separator only applies with --document_context" in capsys.readouterr().err


def test_eval_window_scores_documents_tagged_in_windows(tmp_path, capsys):
    """--eval_window: the reported scores are those of documents tagged in windows (checked against tag_words
    with the saved checkpoint), the one-pass F1 is reported beside, and the window is recorded for predict."""
    from transformers import AutoTokenizer

    from mamba_ner import MambaCrfForTokenClassification
    from mamba_ner.metrics import score_all
    from mamba_ner.predict import tag_words

    sentences, _ = read_conll([SAMPLE])
    out = tmp_path / "run"
    code = train_main([
        "--data_format", "conll", "--train_files", str(SAMPLE), "--validation_files", str(SAMPLE),
        "--test_files", str(SAMPLE), "--output_dir", str(out), "--document_context", "--eval_window", "10",
        "--hidden_size", "16", "--num_hidden_layers", "1", "--state_size", "4",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "2", "--max_steps", "3",
        "--report_to", "none", "--do_train", "--do_eval", "--use_cpu", "--disable_tqdm", "true",
        "--make_plots", "false", "--seed", "3", "--train_sampling_strategy", "group_by_length",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "(tagged in windows of 10 tokens; in one pass: entity F1" in printed
    scores = json.loads((out / "test_scores.json").read_text())
    assert scores["entity"]["support"] == sum(len(tags_to_spans(s.tags)) for s in sentences)
    assert scores["token"]["support"] == sum(len(s.tokens) for s in sentences)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test"]["eval_window"] == 10 and 0 <= summary["test"]["one_pass_f1"] <= 1
    assert json.loads((out / "model" / "config.json").read_text())["tagging_window"] == 10
    assert "| eval_window | 10 |" in (out / "README.md").read_text(encoding="utf-8")  # the model card says so

    model = MambaCrfForTokenClassification.from_pretrained(out / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    documents = {}
    for s in sentences:
        documents.setdefault(s.doc_id, []).append(s)
    assert max(sum(len(s.tokens) for s in group) for group in documents.values()) > 10  # windows are used
    y_true, y_pred, differ = [], [], 0
    for group in documents.values():
        words = [w for s in group for w in s.tokens]
        tags = [t for t, _ in tag_words(model, tokenizer, [words], max_length=10)[0]]
        differ += tags != [t for t, _ in tag_words(model, tokenizer, [words])[0]]
        for s in group:
            y_true.append(s.tags)
            y_pred.append(tags[: len(s.tokens)])
            tags = tags[len(s.tokens):]
    expected = score_all(y_true, y_pred)
    assert differ, "windows of 10 tag some document differently from one pass (else this test shows nothing)"
    assert scores["entity"]["f1"] == pytest.approx(expected["entity"]["f1"])
    assert scores["token"]["micro_f1"] == pytest.approx(expected["token"]["micro_f1"])


def test_eval_window_below_8_tokens_is_refused(tmp_path, capsys):
    code = train_main(["--data_format", "conll", "--train_files", str(SAMPLE), "--output_dir", str(tmp_path / "run"),
                       "--eval_window", "4", "--do_train", "--use_cpu", "--report_to", "none",
                       "--hidden_size", "16", "--num_hidden_layers", "1", "--state_size", "4"])
    assert code == 1
    assert "--eval_window must be at least 8 tokens, got 4" in capsys.readouterr().err
