"""`mamba_ner.predict`: whole documents in one pass, windows, brat / CoNLL / text files, the CLI."""
import copy
import re

import pytest
import torch

from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification
from mamba_ner.data import read_files
from mamba_ner.data.brat import read_brat_documents
from mamba_ner.predict import (
    PredictOptions,
    detect_format,
    main,
    predict_brat_folder,
    predict_conll_file,
    predict_text_file,
    tag_texts,
    tag_words,
)
from mamba_ner.tokenization import build_tokenizer

LABELS = ["O", "B-DISE", "I-DISE", "B-SYMP", "I-SYMP"]
CORPUS = "患者有2型糖尿病史十年，伴咳嗽、发热三天。血糖偏高，尿酸正常。The patient has diabetes and a cough."


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer([CORPUS], kind="char")


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = MambaCrfConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, state_size=4, pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)},
    )
    model = MambaCrfForTokenClassification(config).eval()
    with torch.no_grad():  # a random tagger that still produces entities of both types
        model.classifier.bias[LABELS.index("B-DISE")] = 0.5
        model.classifier.bias[LABELS.index("I-SYMP")] = 0.5
    return model


class ForwardCounter:
    """Counts forward calls of a model and records the input lengths."""

    def __init__(self, model):
        self.lengths = []
        self.handle = model.register_forward_hook(lambda module, args, kwargs, output: self.lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _check_spans(text, spans):
    previous_end = 0
    for start, end, entity_type, score in spans:
        assert previous_end <= start < end <= len(text) and entity_type in ("DISE", "SYMP") and 0 < score <= 1
        assert text[start] not in " \n" and text[end - 1] not in " \n"
        previous_end = end


def test_tag_texts_spans_are_exact_character_offsets(model, tokenizer):
    english = "The patient has diabetes, and a bad cough."
    texts = [CORPUS, "糖尿病", "", "  \n ", english]
    spans = tag_texts(model, tokenizer, texts, batch_size=2)
    assert spans[2] == spans[3] == [] and spans[0] and spans[4]
    for text, text_spans in zip(texts, spans):
        _check_spans(text, text_spans)
    # Text with CJK is tagged per character (Latin letters too); other text per word.
    word_bounds = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", english)]
    starts, ends = {s for s, _ in word_bounds}, {e for _, e in word_bounds}
    assert all(s in starts and e in ends for s, e, _, _ in spans[4])
    assert spans == tag_texts(model, tokenizer, texts, batch_size=1)  # batching does not change anything


def test_word_tags_match_the_models_viterbi_and_marginals(model, tokenizer):
    words = list("患者有糖尿病史")
    (tagged,) = tag_words(model, tokenizer, [words])
    encoding = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        emissions = model(encoding["input_ids"]).logits
    mask = torch.zeros_like(encoding["input_ids"], dtype=torch.bool)
    mask[0, 1:-1] = True
    viterbi = model.crf.decode(emissions, mask)[0, 1:-1]
    marginals = model.tag_marginals(emissions, mask)[0, 1:-1]
    assert [tag for tag, _ in tagged] == [LABELS[int(t)] for t in viterbi]
    assert torch.allclose(torch.tensor([score for _, score in tagged]), marginals.gather(1, viterbi.unsqueeze(1)).squeeze(1), atol=1e-6)


def test_a_20000_character_document_is_tagged_in_one_forward_pass(model, tokenizer):
    text = (CORPUS[:31] + "\n") * 625  # 20,000 characters (19,375 of them characters to tag)
    with ForwardCounter(model) as counter:
        (spans,) = tag_texts(model, tokenizer, [text])
    assert counter.lengths == [sum(not c.isspace() for c in text) + 2]  # one call: the whole text plus [CLS]/[SEP]
    _check_spans(text, spans)
    starts = {start // 2000 for start, *_ in spans}
    assert starts == set(range(10)) and spans[-1][1] > len(text) - 100  # entities all along the document, up to its end


def test_windows_tag_every_word_and_one_window_equals_one_pass(model, tokenizer):
    text = CORPUS * 8
    with ForwardCounter(model) as counter:
        windowed = tag_texts(model, tokenizer, [text], max_length=64, stride=16)
    assert len(counter.lengths) > 1 and max(counter.lengths) <= 64
    _check_spans(text, windowed[0])
    words = [[c for c in CORPUS * 3 if not c.isspace()]]
    (tags,) = tag_words(model, tokenizer, words, max_length=40, stride=10)
    assert len(tags) == len(words[0]) and all(score > 0 for _, score in tags)
    assert tag_texts(model, tokenizer, [CORPUS], max_length=500) == tag_texts(model, tokenizer, [CORPUS])
    with pytest.raises(ValueError, match="stride"):
        tag_texts(model, tokenizer, [CORPUS], max_length=10, stride=9)


@pytest.mark.parametrize("long_entities", [False, True])
def test_brat_folder_round_trip(model, tokenizer, tmp_path, long_entities):
    if long_entities:  # entities running over line breaks are written as fragments and read back whole
        model = copy.deepcopy(model)
        with torch.no_grad():
            model.classifier.bias[LABELS.index("I-DISE")] = 6.0
    source = tmp_path / "brat"
    (source / "sub").mkdir(parents=True)
    # CRLF is kept byte-exactly (only with short entities: write_brat leaves the CR inside a fragment).
    documents = {"a": "患者有2型糖尿病史十年，\n伴咳嗽、发热三天。", "sub/b": "血糖偏高，\n尿酸正常。" if long_entities else "血糖偏高，\r\n尿酸正常。"}
    for name, text in documents.items():
        (source / f"{name}.txt").write_bytes(text.encode("utf-8"))
    (source / "a.ann").write_text("T1\tDISE 5 8\t糖尿病\n", encoding="utf-8")  # gold is ignored

    out = tmp_path / "out"
    written = predict_brat_folder(model, tokenizer, source, out, PredictOptions(html=True))
    assert sorted(p.relative_to(out).as_posix() for p in written) == ["a.ann", "sub/b.ann"]
    assert (out / "annotation.conf").read_text().startswith("[entities]\nDISE\nSYMP\n")
    assert "DISE\tbgColor:#" in (out / "visual.conf").read_text()
    expected = tag_texts(model, tokenizer, list(documents.values()))
    for (name, text), spans in zip(documents.items(), expected):
        assert spans and (out / f"{name}.txt").read_bytes() == text.encode("utf-8")  # copied byte-exactly (CRLF kept)
        (document,), report = read_brat_documents(out / f"{name}.txt", split="document")
        assert [(e.start, e.end, e.type) for e in document.entities] == [s[:3] for s in spans]
        ann = (out / f"{name}.ann").read_text(encoding="utf-8")
        assert ann.count("AnnotatorNotes") == len(spans) and "score 0." in ann
        assert (out / f"{name}.html").read_text(encoding="utf-8").count('<mark class="entity"') == len(spans)
        over_lines = [s for s in spans if "\n" in text[s[0] : s[1]]]
        assert sum(len(e.fragments) > 1 for e in document.entities) == len(over_lines)
        assert bool(over_lines) == long_entities


def test_text_file_is_tagged_whole(model, tokenizer, tmp_path):
    path = tmp_path / "note.txt"
    path.write_text(CORPUS + "\n" + CORPUS, encoding="utf-8")
    ann = predict_text_file(model, tokenizer, path, tmp_path / "out")
    assert ann == tmp_path / "out" / "note.ann" and (tmp_path / "out" / "note.txt").read_text(encoding="utf-8") == path.read_text(encoding="utf-8")
    (document,), _ = read_brat_documents(ann, split="document")
    assert [(e.start, e.end, e.type) for e in document.entities] == [s[:3] for s in tag_texts(model, tokenizer, [path.read_text(encoding="utf-8")])[0]]


CONLL = """-DOCSTART- -X- O O

患 B-SYMP
者 I-SYMP
有 O
糖 B-DISE
尿 I-DISE
病 I-DISE

咳 B-SYMP
嗽 I-SYMP

-DOCSTART- -X- O O

发 O
热 B-SYMP
"""


def test_conll_file_gets_a_predicted_column(model, tokenizer, tmp_path):
    path = tmp_path / "dev.conll"
    path.write_text(CONLL, encoding="utf-8")
    out = predict_conll_file(model, tokenizer, path, tmp_path / "out", "conll", PredictOptions(html=True))
    gold, _ = read_files("conll", [path])
    predicted, _ = read_files("conll", [out], tag_column=-1)
    regold, _ = read_files("conll", [out], tag_column=1)
    assert [s.tokens for s in predicted] == [s.tokens for s in gold] and [s.tags for s in regold] == [s.tags for s in gold]
    assert [s.tags for s in predicted] == [[t for t, _ in tags] for tags in tag_words(model, tokenizer, [s.tokens for s in gold])]
    assert out.read_text(encoding="utf-8").count("-DOCSTART-") == 2
    assert out.with_name("dev.conll.html").is_file()


@pytest.fixture
def tagged_sequences(monkeypatch):
    """The word lists of every `tag_words` call that `mamba_ner.predict` makes (one list per call)."""
    import mamba_ner.predict as predict_module

    calls = []

    def recording_tag_words(model, tokenizer, word_lists, **kwargs):
        calls.append(word_lists)
        return tag_words(model, tokenizer, word_lists, **kwargs)

    monkeypatch.setattr(predict_module, "tag_words", recording_tag_words)
    return calls


@pytest.mark.parametrize("separator", [None, "[SEP]"], ids=["joined", "separator"])
def test_conll_file_tagged_with_document_context(model, tokenizer, tmp_path, tagged_sequences, separator):
    path = tmp_path / "dev.conll"
    path.write_text(CONLL, encoding="utf-8")
    options = PredictOptions(document_context=True, document_separator=separator)
    out = predict_conll_file(model, tokenizer, path, tmp_path / "out", "conll", options)
    gold, _ = read_files("conll", [path])
    between = [separator] if separator else []
    predicted, _ = read_files("conll", [out], tag_column=-1)
    documents = {}
    for sentence in gold:
        documents.setdefault(sentence.doc_id, []).append(sentence)
    assert 1 < len(documents) < len(gold)  # some document holds several sentences
    assert tagged_sequences == [[[w for i, s in enumerate(group) for w in (between if i else []) + s.tokens]
                                 for group in documents.values()]]  # one per document, in one call
    expected = []
    for group in documents.values():  # each document tagged as one sequence, then cut into its sentences
        words = [w for i, s in enumerate(group) for w in (between if i else []) + s.tokens]
        tags = [t for t, _ in tag_words(model, tokenizer, [words])[0]]
        for s in group:
            expected.append(tags[: len(s.tokens)])
            tags = tags[len(s.tokens) + len(between):]
    assert [s.tokens for s in predicted] == [s.tokens for s in gold]
    assert [s.tags for s in predicted] == expected


def test_command_line_reads_documents_as_the_model_was_trained(model, tokenizer, tmp_path, tagged_sequences):
    checkpoint = tmp_path / "checkpoint"
    model.config.document_context, model.config.document_separator = True, "[SEP]"
    try:
        model.save_pretrained(checkpoint)
    finally:
        del model.config.document_context, model.config.document_separator
    tokenizer.save_pretrained(checkpoint)
    path = tmp_path / "dev.conll"
    path.write_text(CONLL, encoding="utf-8")
    gold, _ = read_files("conll", [path])
    documents = len({s.doc_id for s in gold})
    assert main(["--model", str(checkpoint), str(path), "--output", str(tmp_path / "a"), "--device", "cpu"]) == 0
    assert len(tagged_sequences[-1]) == documents and any("[SEP]" in words for words in tagged_sequences[-1])
    assert main(["--model", str(checkpoint), str(path), "--output", str(tmp_path / "b"), "--device", "cpu",
                 "--document_context", "false"]) == 0
    assert tagged_sequences[-1] == [s.tokens for s in gold]


def test_unlabelled_char_per_line_file(model, tokenizer, tmp_path):
    path = tmp_path / "test.txt"
    path.write_text("患\n者\n有\n糖\n尿\n病\n\n发\n热\n", encoding="utf-8")
    assert detect_format(path) == "rocling"
    out = predict_conll_file(model, tokenizer, path, tmp_path / "out", "rocling")
    lines = out.read_text(encoding="utf-8").split("\n")
    assert [len(line.split()) for line in lines if line] == [2] * 8 and lines[6] == ""
    predicted, _ = read_files("conll", [out], tag_column=-1)
    assert [s.tokens for s in predicted] == [list("患者有糖尿病"), list("发热")]


def test_detect_format(tmp_path):
    (tmp_path / "brat").mkdir()
    (tmp_path / "brat" / "d.txt").write_text("abc", encoding="utf-8")  # an empty folder is an error (test_usability)
    (tmp_path / "brat" / "d.ann").write_text("", encoding="utf-8")
    cases = {"doc.txt": "患者有糖尿病。\n第二行。", "eng.conll": "EU B-ORG\nrejects O\n", "words.tsv": "EU\tNNP\tB-ORG\n",
             "x.json": '{"character": ["a"]}\n', "chars.dat": "-DOCSTART- O\n\n患 O\n", "tags.dat": "EU B-ORG\nrejects O\n", "pair.txt": "abc", "pair.ann": ""}
    for name, content in cases.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    got = {name: detect_format(tmp_path / name) for name in ("brat", "doc.txt", "eng.conll", "words.tsv", "x.json", "pair.txt", "chars.dat", "tags.dat")}
    assert got == {"brat": "brat", "doc.txt": "text", "eng.conll": "conll", "words.tsv": "conll", "x.json": "rocling", "pair.txt": "brat",
                   "chars.dat": "conll", "tags.dat": "conll"}


def test_command_line(model, tokenizer, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    (tmp_path / "brat").mkdir()
    (tmp_path / "brat" / "d1.txt").write_text(CORPUS, encoding="utf-8")
    (tmp_path / "note.txt").write_text(CORPUS, encoding="utf-8")
    (tmp_path / "dev.conll").write_text(CONLL, encoding="utf-8")
    inputs = [str(tmp_path / name) for name in ("brat", "note.txt", "dev.conll")]
    out = tmp_path / "out"
    assert main(["--model", str(checkpoint), *inputs, "--output", str(out), "--device", "cpu", "--html", "--batch-size", "4"]) == 0
    for name in ("brat/d1.ann", "brat/d1.txt", "brat/d1.html", "note.ann", "note.html", "dev.conll", "dev.conll.html"):
        assert (out / name).is_file(), name
    assert (out / "note.ann").read_text(encoding="utf-8") == (out / "brat" / "d1.ann").read_text(encoding="utf-8")
    assert main(["--model", str(checkpoint), str(tmp_path / "missing.txt"), "--output", str(out)]) == 1
    for path in (tmp_path / "note.txt", tmp_path / "dev.conll"):  # one line at the command boundary
        assert main(["--model", str(checkpoint), str(path), "--output", str(tmp_path)]) == 1
        with pytest.raises(ValueError, match="would overwrite the input"):  # --debug: the exception itself
            main(["--model", str(checkpoint), str(path), "--output", str(tmp_path), "--debug"])
    with pytest.raises(ValueError, match="would overwrite the input"):
        predict_brat_folder(model, tokenizer, tmp_path / "brat", tmp_path / "brat")


@pytest.mark.realdata
@pytest.mark.slow
def test_longest_ruijin_document_in_one_pass(shared_data, model, tokenizer, tmp_path):
    folder = shared_data / "ruijin-brat" / "train"
    longest = max(folder.glob("*.txt"), key=lambda p: p.stat().st_size)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / longest.name).write_bytes(longest.read_bytes())
    with ForwardCounter(model) as counter:
        (ann,) = predict_brat_folder(model, tokenizer, tmp_path / "in", tmp_path / "out")
    text = longest.read_text(encoding="utf-8")
    assert counter.lengths == [sum(not c.isspace() for c in text) + 2] and len(text) > 15_000
    (document,), _ = read_brat_documents(ann.with_suffix(".txt"), split="document")
    assert document.text == text and document.entities and max(e.end for e in document.entities) > len(text) - 1000


def test_command_line_tags_in_the_window_the_model_was_scored_with(model, tokenizer, tmp_path, monkeypatch):
    import mamba_ner.predict as predict_module

    windows = []

    def recording_tag_words(model, tokenizer, word_lists, **kwargs):
        windows.append(kwargs.get("max_length"))
        return tag_words(model, tokenizer, word_lists, **kwargs)

    monkeypatch.setattr(predict_module, "tag_words", recording_tag_words)
    checkpoint = tmp_path / "checkpoint"
    model.config.tagging_window = 16  # what `--eval_window 16` records in training
    try:
        model.save_pretrained(checkpoint)
    finally:
        del model.config.tagging_window
    tokenizer.save_pretrained(checkpoint)
    path = tmp_path / "dev.conll"
    path.write_text(CONLL, encoding="utf-8")
    for extra, expected in (([], 16), (["--max_length", "0"], None), (["--max_length", "32"], 32)):
        windows.clear()
        out = tmp_path / f"out{len(extra)}{expected}"
        assert main(["--model", str(checkpoint), str(path), "--output", str(out), "--device", "cpu", *extra]) == 0
        assert windows and set(windows) == {expected}, extra
