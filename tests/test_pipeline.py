"""The CRF token-classification pipeline: Viterbi tags, marginal scores, offsets, remote code."""
import json
import textwrap

import pytest
import torch
from clean_process import run_without_package
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, pipeline

from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification
from mamba_ner.pipeline_mamba_crf import (
    CUSTOM_PIPELINES,
    MambaCrfTokenClassificationPipeline,
    crf_word_tags,
    mamba_crf_pipeline,
)

LABELS = ["O", "B-DISE", "I-DISE", "B-SYMP", "I-SYMP"]
TEXT = "患者有2型糖尿病，伴咳嗽 and fever。血糖 HbA1c 偏高"
STRATEGIES = ("none", "simple", "first", "average", "max")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _fast_tokenizer(model, pre_tokenizer) -> PreTrainedTokenizerFast:
    backend = Tokenizer(model)
    backend.pre_tokenizer = pre_tokenizer
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=64,  # a limit the pipeline must not apply
    )


def char_tokenizer(texts) -> PreTrainedTokenizerFast:
    """Character-level tokenizer like the package's: each non-space character is a token and a word."""
    chars = sorted({c for text in texts for c in text if not c.isspace()})
    vocab = {token: i for i, token in enumerate(SPECIALS + chars)}
    split = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), behavior="isolated")])
    return _fast_tokenizer(models.WordLevel(vocab, unk_token="[UNK]"), split)


def wordpiece_tokenizer() -> PreTrainedTokenizerFast:
    """Words split into sub-words (`diab ##etes`), to tell the word-level strategies apart."""
    pieces = ["patient", "has", "diab", "##etes", "and", "cough", "##ing", "fe", "##ver", "."]
    vocab = {token: i for i, token in enumerate(SPECIALS + pieces)}
    return _fast_tokenizer(models.WordPiece(vocab, unk_token="[UNK]"), pre_tokenizers.BertPreTokenizer())


def tiny_model(vocab_size: int, seed: int = 0, **config) -> MambaCrfForTokenClassification:
    torch.manual_seed(seed)
    config = MambaCrfConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, state_size=4,
        id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)}, **config,
    )
    return MambaCrfForTokenClassification(config).eval()


@pytest.fixture(scope="module")
def tokenizer():
    return char_tokenizer([TEXT])


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_model(len(tokenizer))


def _emissions_and_mask(model, tokenizer, text):
    encoding = tokenizer(text, return_tensors="pt", return_special_tokens_mask=True)
    with torch.no_grad():
        emissions = model(encoding["input_ids"], attention_mask=encoding["attention_mask"]).logits
    return emissions, (encoding["special_tokens_mask"] == 0), encoding


def _approx(results):
    """Entities with scores compared to 1e-5 (batching changes float rounding)."""
    if results and isinstance(results[0], list):
        return [_approx(r) for r in results]
    return [{**e, "score": pytest.approx(e["score"], abs=1e-5)} for e in results]


def _check_entities(entities, text, key="entity_group"):
    for entity in entities:
        assert text[entity["start"] : entity["end"]] == entity["word"], entity
        assert 0.0 < entity["score"] <= 1.0 and isinstance(entity["score"], float), entity
        assert entity[key].split("-")[-1] in {"DISE", "SYMP"}, entity
    starts_ends = [(e["start"], e["end"]) for e in entities]
    assert starts_ends == sorted(starts_ends) and all(a[1] <= b[0] for a, b in zip(starts_ends, starts_ends[1:]))


def test_tags_follow_the_constrained_viterbi_path_not_the_argmax(tokenizer):
    model = tiny_model(len(tokenizer))
    with torch.no_grad():
        model.classifier.bias[LABELS.index("I-DISE")] = 4.0  # argmax says I-DISE almost everywhere
        model.classifier.bias[LABELS.index("B-SYMP")] = 3.5
    emissions, mask, _ = _emissions_and_mask(model, tokenizer, TEXT)
    argmax = emissions[0][mask[0]].argmax(-1)
    viterbi = model.crf.decode(emissions, mask)[0][mask[0]]
    assert LABELS[int(argmax[0])] == "I-DISE" and not torch.equal(argmax, viterbi)  # BIO-invalid argmax

    tokens = MambaCrfTokenClassificationPipeline(model=model, tokenizer=tokenizer)(TEXT, ignore_labels=[])
    tags = [token["entity"] for token in tokens]
    assert tags == [LABELS[int(t)] for t in viterbi]
    for previous, tag in zip(["O"] + tags, tags):  # valid IOB2: I-X only after B-X / I-X
        assert not tag.startswith("I-") or previous[2:] == tag[2:]
    marginals = model.tag_marginals(emissions, mask)[0][mask[0]]
    expected = marginals.gather(1, viterbi.unsqueeze(1)).squeeze(1)
    assert torch.allclose(torch.tensor([t["score"] for t in tokens]), expected, atol=1e-6)
    assert [t["word"] for t in tokens] == [c for c in TEXT if not c.isspace()]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_gives_exact_offsets_into_chinese_text(model, tokenizer, strategy):
    entities = mamba_crf_pipeline(model, tokenizer=tokenizer, aggregation_strategy=strategy)(TEXT)
    assert entities, "the tiny random model tags something"
    _check_entities(entities, TEXT, key="entity" if strategy == "none" else "entity_group")


def test_character_tokenizer_makes_all_grouping_strategies_agree(model, tokenizer):
    results = {s: mamba_crf_pipeline(model, tokenizer=tokenizer, aggregation_strategy=s)(TEXT) for s in STRATEGIES[1:]}
    assert all(result == results["simple"] for result in results.values())
    tokens = mamba_crf_pipeline(model, tokenizer=tokenizer)(TEXT)
    covered = {i for e in results["simple"] for i in range(e["start"], e["end"]) if not TEXT[i].isspace()}
    assert covered == {t["start"] for t in tokens}


def test_word_strategies_decode_one_position_per_word():
    tokenizer = wordpiece_tokenizer()
    text = "patient has diabetes and coughing fever."
    assert tokenizer.tokenize(text) == ["patient", "has", "diab", "##etes", "and", "cough", "##ing", "fe", "##ver", "."]
    model = tiny_model(len(tokenizer), seed=3)
    emissions, mask, encoding = _emissions_and_mask(model, tokenizer, text)
    word_ids = torch.tensor([[-1 if w is None else w for w in encoding.word_ids(0)]])
    word_starts = [0, 8, 12, 21, 25, 34, 39]
    for strategy in ("first", "average", "max"):
        entities = mamba_crf_pipeline(model, tokenizer=tokenizer, aggregation_strategy=strategy)(text)
        _check_entities(entities, text)
        for entity in entities:  # whole words only
            assert entity["start"] in word_starts and (entity["end"] == len(text) or text[entity["end"]] in " .")
        tags, scores = crf_word_tags(model.crf, emissions, mask, word_ids, pooling=strategy)
        first_tokens = [i for i, w in enumerate(encoding.word_ids(0)) if w is not None and (i == 0 or encoding.word_ids(0)[i - 1] != w)]
        pooled = {"first": lambda e: e[0], "average": lambda e: e.mean(0), "max": lambda e: e.max(0).values}[strategy]
        words = [emissions[0][[i for i, w in enumerate(encoding.word_ids(0)) if w == word]] for word in range(7)]
        word_emissions = torch.stack([pooled(e) for e in words]).unsqueeze(0)  # (1, 7, k)
        assert tags[0][first_tokens].tolist() == model.crf.decode(word_emissions)[0].tolist()
        expected = model.crf.marginals(word_emissions)[0].gather(1, tags[0][first_tokens].unsqueeze(1)).squeeze(1)
        assert torch.allclose(scores[0][first_tokens], expected, atol=1e-6)
        assert tags[0][4] == tags[0][3] and scores[0][4] == scores[0][3]  # ##etes shares diab's tag


def test_batches_match_single_texts_and_no_truncation(model, tokenizer):
    long_text = TEXT * 6  # 200+ tokens, beyond the tokenizer's model_max_length of 64
    texts = [TEXT, long_text, TEXT[:7]]
    tagger = mamba_crf_pipeline(model, tokenizer=tokenizer, aggregation_strategy="simple")
    batched = tagger(texts, batch_size=3)
    assert batched == _approx([tagger(text) for text in texts])
    tokens = mamba_crf_pipeline(model, tokenizer=tokenizer)(long_text, ignore_labels=[])
    assert len(tokens) == sum(not c.isspace() for c in long_text) and tokens[-1]["end"] == len(long_text)


def test_windows_cover_the_text(model, tokenizer):
    long_text = TEXT * 4
    tagger = mamba_crf_pipeline(model, tokenizer=tokenizer, aggregation_strategy="simple")
    windowed = tagger(long_text, max_length=24, stride=6)
    _check_entities(windowed, long_text)
    tokens = mamba_crf_pipeline(model, tokenizer=tokenizer, aggregation_strategy="none")(long_text, max_length=24, stride=6, ignore_labels=[])
    assert [t["start"] for t in tokens] == [i for i, c in enumerate(long_text) if not c.isspace()]  # each token once
    assert tagger(TEXT, max_length=200) == tagger(TEXT)  # one window = one pass
    with pytest.raises(ValueError, match="stride needs max_length"):
        tagger(TEXT, stride=4)
    with pytest.raises(ValueError, match="stride < max_length"):
        tagger(TEXT, max_length=8, stride=8)


@pytest.mark.parametrize("kind", ["char", "wordpiece"])
def test_offsets_with_the_package_tokenizers(kind):
    from mamba_ner.tokenization import build_tokenizer

    text = "患者 HbA1c 偏高，诊断为2型糖尿病 (type 2 diabetes)。"
    tokenizer = build_tokenizer([text, "diabetes type patient"], kind=kind)
    model = tiny_model(len(tokenizer), seed=1)
    with torch.no_grad():
        model.classifier.bias[LABELS.index("B-DISE")] = 1.0
    tokens = mamba_crf_pipeline(model, tokenizer=tokenizer)(text, ignore_labels=[])
    chinese = [t["word"] for t in tokens if t["start"] < text.index("H")]
    assert chinese == ["患", "者"]  # one token per Chinese character, offsets into the raw string
    for strategy in STRATEGIES:
        entities = mamba_crf_pipeline(model, tokenizer=tokenizer, aggregation_strategy=strategy)(text)
        assert entities
        _check_entities(entities, text, key="entity" if strategy == "none" else "entity_group")


def test_pre_split_words(model, tokenizer):
    words = ["患者", "有", "糖尿病"]
    (entities,) = mamba_crf_pipeline(model, tokenizer=tokenizer, aggregation_strategy="first")(words, is_split_into_words=True)
    _check_entities(entities, "患者 有 糖尿病")
    assert {(e["start"], e["end"]) for e in entities} <= {(0, 2), (0, 4), (0, 8), (3, 4), (3, 8), (5, 8)}  # whole words


def test_a_model_without_crf_is_refused(tokenizer):
    from transformers import BertConfig, BertForTokenClassification

    bert = BertForTokenClassification(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    with pytest.raises(ValueError, match="needs a model with a CRF head"):
        MambaCrfTokenClassificationPipeline(model=bert, tokenizer=tokenizer)


REMOTE = textwrap.dedent(
    """
    import json, sys
    from transformers import pipeline
    path, text = sys.argv[1], sys.argv[2]
    tagger = pipeline("token-classification", model=path, trust_remote_code=True, aggregation_strategy="simple")
    out = {"simple": tagger(text)}
    for strategy in ("none", "first", "average", "max"):
        out[strategy] = tagger(text, aggregation_strategy=strategy)
    inferred = pipeline(model=path, trust_remote_code=True)  # the task comes from config.custom_pipelines
    out["classes"] = [type(tagger).__name__, type(tagger).__module__, type(tagger.model).__module__, type(inferred).__name__]
    print(json.dumps(out, ensure_ascii=False))
    """
)


def test_checkpoint_pipeline_with_remote_code_without_the_package(model, tokenizer, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    assert (checkpoint / "pipeline_mamba_crf.py").is_file()
    assert json.loads((checkpoint / "config.json").read_text())["custom_pipelines"] == CUSTOM_PIPELINES

    got = run_without_package(REMOTE, [checkpoint, TEXT], tmp_path)
    name, module, model_module, inferred = got.pop("classes")
    assert name == inferred == "MambaCrfTokenClassificationPipeline"
    assert module.startswith("transformers_modules") and model_module.startswith("transformers_modules")
    for strategy in STRATEGIES:
        local = mamba_crf_pipeline(model, tokenizer=tokenizer, aggregation_strategy=strategy)(TEXT)
        assert _approx(local) == got[strategy]


def test_local_pipeline_with_trust_remote_code(model, tokenizer, tmp_path):
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    tagger = pipeline("token-classification", model=str(tmp_path), trust_remote_code=True, aggregation_strategy="simple")
    assert type(tagger).__name__ == "MambaCrfTokenClassificationPipeline"
    assert tagger(TEXT) == mamba_crf_pipeline(str(tmp_path), aggregation_strategy="simple")(TEXT)
