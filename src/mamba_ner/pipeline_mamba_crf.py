"""A `token-classification` pipeline whose tags come from the CRF, not from an argmax of emissions.

This file travels with saved checkpoints (remote code): it imports only `torch`, `transformers` and
the standard library. `MambaCrfPreTrainedModel.save_pretrained` copies it into the checkpoint and
writes `CUSTOM_PIPELINES` into `config.custom_pipelines`, so that

    pipeline("token-classification", model=checkpoint_dir, trust_remote_code=True, aggregation_strategy="simple")

builds `MambaCrfTokenClassificationPipeline`. With the package installed, `mamba_crf_pipeline(dir)`
(or `pipeline(..., pipeline_class=MambaCrfTokenClassificationPipeline)`) does the same without
remote code.

What differs from `transformers.TokenClassificationPipeline` (everything else is inherited):

* Tags are the constrained Viterbi path (`model.crf.decode`) over the non-special tokens, so a BIO
  model never outputs `O I-X`. Scores are CRF posterior marginals p(tag_i = y_i | x) of the
  predicted tags (`model.crf.marginals`); an entity's score is their mean over its tokens.
* The parent's aggregation code is reused by giving it, for every token, a "scores" row that is
  the marginal at the Viterbi tag and -1 elsewhere: its argmax is always the Viterbi tag, so no
  strategy can override the CRF path with an argmax of its own.
* `aggregation_strategy` chooses the chain the CRF decodes (for a character-level tokenizer, where
  every token is a word, all strategies give the same entities):
    - `"none"` / `"simple"`: one chain position per token; `"none"` returns tokens, `"simple"`
      groups them into entities.
    - `"first"`: one chain position per word (words as the tokenizer's pre-tokenizer, or
      `is_split_into_words`, defines them), scored with the emissions of the word's first token,
      which is how models trained with labels on first sub-words only see words.
    - `"average"` / `"max"`: the same word chain, with the mean / element-wise max of the word's
      token emissions. Every token of a word gets the word's tag and score.
* `word` is the exact substring `text[start:end]` (also for Chinese without spaces), not a
  detokenised string.
* No truncation: the model has no length limit, so a whole document is tagged in one pass.
  `max_length=N` (tokens, with `stride`, default N // 4) tags overlapping windows instead; each
  token keeps the prediction of the window where it lies farthest from an edge.
"""
from __future__ import annotations

import contextlib

import torch
from transformers import TokenClassificationPipeline
from transformers.pipelines.token_classification import AggregationStrategy

# What `config.custom_pipelines` holds in a saved checkpoint (schema of `transformers.pipeline`).
CUSTOM_PIPELINES = {
    "token-classification": {
        "impl": "pipeline_mamba_crf.MambaCrfTokenClassificationPipeline",
        "pt": ["AutoModelForTokenClassification"],
        "tf": [],
        "type": "text",
    }
}

POOLINGS = ("first", "average", "max")
_POOLING_OF_STRATEGY = {
    AggregationStrategy.NONE: None,
    AggregationStrategy.SIMPLE: None,
    AggregationStrategy.FIRST: "first",
    AggregationStrategy.AVERAGE: "average",
    AggregationStrategy.MAX: "max",
}
_NOT_VITERBI = -1.0  # score-table value of every tag off the Viterbi path: below any probability
_PREFIX_ROLE = {"B": "B", "S": "B", "I": "I", "M": "I", "E": "I"}


@contextlib.contextmanager
def _one_thread_on_cpu(device: torch.device):
    """The CRF recursions are thousands of tiny (b, k) steps: on CPU, intra-op threads only add
    synchronisation (Viterbi over 20k positions measured 1.2 s on one thread, 17 s on two threads
    of a loaded 2-core machine). The setting is global, so it is restored right after."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def silence_length_warning(tokenizer) -> None:
    """Mark the tokenizer's "sequence longer than model_max_length ... indexing errors" warning as
    given: it does not apply to a model without position embeddings."""
    given = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(given, dict):
        given["sequence-length-is-longer-than-the-specified-maximum"] = True


def crf_word_tags(crf, emissions: torch.Tensor, token_mask: torch.Tensor, word_ids: torch.Tensor | None = None, pooling: str = "first"):
    """Viterbi tags and their CRF marginal probabilities, over a chain of tokens or of words.

    Args:
        crf: the model's `LinearChainCRF` (`decode(emissions, mask)`, `marginals(emissions, mask)`).
        emissions: (b, l, k) emission scores.
        token_mask: (b, l) bool, true on the tokens to tag (not special tokens, not padding).
        word_ids: (b, l) long, equal on the consecutive tokens of one word; `None`: every token is
            its own word (a token chain).
        pooling: how one emission vector per word is made from its tokens': `"first"`,
            `"average"` or `"max"`.

    Returns:
        `(tags, scores)`, each (b, l): the Viterbi tag id of each masked token's word (-100
        elsewhere) and the marginal probability of that tag at that word (0 elsewhere).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    token_mask = token_mask.bool()
    b, l, k = emissions.shape
    starts = token_mask  # (b, l) first token of each word
    if word_ids is not None:
        previous_ids = torch.nn.functional.pad(word_ids[:, :-1], (1, 0), value=-1)
        previous_mask = torch.nn.functional.pad(token_mask[:, :-1], (1, 0), value=False)
        starts = token_mask & (~previous_mask | (word_ids != previous_ids))
    word_index = starts.long().cumsum(1) - 1  # (b, l) index of the token's word in its row
    n_words = starts.sum(1)  # (b,)

    # Pooled emissions, packed: row r holds word j's vector at position j. Index l is a dump slot.
    source = starts if pooling == "first" else token_mask
    index = torch.where(source, word_index, torch.full_like(word_index, l)).unsqueeze(2).expand(b, l, k)
    buffer = emissions.new_zeros(b, l + 1, k)
    if pooling == "first":
        pooled = buffer.scatter(1, index, emissions)
    else:
        reduce = "mean" if pooling == "average" else "amax"
        pooled = buffer.scatter_reduce(1, index, emissions, reduce=reduce, include_self=False)
    pooled = pooled[:, :l]  # (b, l, k)
    chain = torch.arange(l, device=emissions.device)[None, :] < n_words[:, None]  # (b, l)

    with _one_thread_on_cpu(emissions.device):
        word_tags = crf.decode(pooled, chain)  # (b, l), -100 off the chain
        marginals = crf.marginals(pooled, chain)  # (b, l, k)
    word_scores = marginals.gather(2, word_tags.clamp(min=0).unsqueeze(2)).squeeze(2)  # (b, l)
    at_word = word_index.clamp(min=0)
    tags = torch.where(token_mask, word_tags.gather(1, at_word), torch.full_like(word_tags, -100))
    scores = torch.where(token_mask, word_scores.gather(1, at_word), torch.zeros_like(word_scores))
    return tags, scores


def viterbi_score_table(tags: torch.Tensor, scores: torch.Tensor, num_labels: int):
    """(l, k) numpy table for the parent's aggregation: marginal at the Viterbi tag, -1 elsewhere."""
    table = torch.full((tags.shape[0], num_labels), _NOT_VITERBI, dtype=torch.float32)
    on_chain = tags >= 0
    table[on_chain, tags[on_chain]] = scores[on_chain].float()
    return table.numpy()


class MambaCrfTokenClassificationPipeline(TokenClassificationPipeline):
    """`TokenClassificationPipeline` with CRF Viterbi tags and marginal scores (see the module docstring).

    Extra call/constructor arguments:
        max_length (`int`, *optional*): tag windows of at most this many tokens (default: the
            whole text in one pass).
        stride (`int`, *optional*): tokens shared by consecutive windows (default `max_length // 4`).
    """

    def check_model_type(self, supported_models):
        if getattr(self.model, "crf", None) is None:
            raise ValueError(f"{type(self).__name__} needs a model with a CRF head (`model.crf`), got {type(self.model).__name__}")

    def _sanitize_parameters(self, ignore_labels=None, aggregation_strategy=None, offset_mapping=None,
                             is_split_into_words=False, stride=None, delimiter=None, max_length=None):
        preprocess_params, forward_params, postprocess_params = super()._sanitize_parameters(
            ignore_labels=ignore_labels, aggregation_strategy=aggregation_strategy, offset_mapping=offset_mapping,
            is_split_into_words=is_split_into_words, delimiter=delimiter,
        )
        if "aggregation_strategy" in postprocess_params:
            forward_params["pooling"] = _POOLING_OF_STRATEGY[postprocess_params["aggregation_strategy"]]
        if max_length is not None:
            n_special = self.tokenizer.num_special_tokens_to_add()
            stride = max_length // 4 if stride is None else stride
            if not 0 <= stride < max_length - n_special:
                raise ValueError(f"need 0 <= stride < max_length - {n_special} special tokens, got stride={stride}, max_length={max_length}")
            if not self.tokenizer.is_fast:
                raise ValueError("max_length windows need a fast tokenizer (return_overflowing_tokens)")
            preprocess_params["tokenizer_params"] = {
                "truncation": True, "max_length": max_length, "stride": stride,
                "return_overflowing_tokens": True, "padding": True,
            }
        elif stride is not None:
            raise ValueError("stride needs max_length (the model has no length limit: texts are tagged whole by default)")
        return preprocess_params, forward_params, postprocess_params

    def preprocess(self, sentence, offset_mapping=None, **preprocess_params):
        """As the parent's, without truncation unless `max_length` asks for windows, plus the
        word id of every token (`token_word_ids`, (1, l), -1 on special tokens)."""
        tokenizer_params = dict(preprocess_params.pop("tokenizer_params", {}))
        tokenizer_params.setdefault("truncation", False)
        if not tokenizer_params["truncation"]:
            silence_length_warning(self.tokenizer)
        word_to_chars_map = None
        if preprocess_params["is_split_into_words"]:
            if not isinstance(sentence, list):
                raise ValueError("When `is_split_into_words=True`, `sentence` must be a list of tokens.")
            if not self.tokenizer.is_fast:
                raise ValueError("is_split_into_words=True is only supported with fast tokenizers.")
            words, delimiter = sentence, preprocess_params["delimiter"]
            sentence = delimiter.join(words)
            word_to_chars_map, position = [], 0
            for word in words:
                word_to_chars_map.append((position, position + len(word)))
                position += len(word) + len(delimiter)
            text_to_tokenize = words
            tokenizer_params["is_split_into_words"] = True
        else:
            if not isinstance(sentence, str):
                raise ValueError("When `is_split_into_words=False`, `sentence` must be an untokenized string.")
            text_to_tokenize = sentence

        inputs = self.tokenizer(
            text_to_tokenize, return_tensors="pt", return_special_tokens_mask=True,
            return_offsets_mapping=self.tokenizer.is_fast, **tokenizer_params,
        )
        inputs.pop("overflow_to_sample_mapping", None)
        num_chunks = len(inputs["input_ids"])
        for i in range(num_chunks):
            model_inputs = {key: value[i].unsqueeze(0) for key, value in inputs.items()}
            if self.tokenizer.is_fast:
                ids = [-1 if w is None else w for w in inputs.word_ids(i)]
                model_inputs["token_word_ids"] = torch.tensor([ids], dtype=torch.long)
            else:  # no word information: every token is its own word
                model_inputs["token_word_ids"] = torch.arange(model_inputs["input_ids"].shape[1]).unsqueeze(0)
            if offset_mapping is not None:
                model_inputs["offset_mapping"] = offset_mapping
            model_inputs["sentence"] = sentence if i == 0 else None
            model_inputs["is_last"] = i == num_chunks - 1
            if word_to_chars_map is not None:
                model_inputs["word_ids"] = inputs.word_ids(i)
                model_inputs["word_to_chars_map"] = word_to_chars_map
            yield model_inputs

    def _forward(self, model_inputs, pooling=None):
        """Emissions, then CRF tags and marginals on the model's device (`pooling` None: token chain)."""
        passthrough = {key: model_inputs.pop(key, None) for key in
                       ("special_tokens_mask", "token_word_ids", "offset_mapping", "sentence", "is_last", "word_ids", "word_to_chars_map")}
        output = self.model(**model_inputs, return_predictions=False)
        emissions = output["logits"] if isinstance(output, dict) else output[0]  # (b, l, k)
        attention_mask = model_inputs.get("attention_mask")
        token_mask = ~passthrough["special_tokens_mask"].bool()  # (b, l)
        if attention_mask is not None:
            token_mask &= attention_mask.bool()
        word_ids = passthrough["token_word_ids"] if pooling is not None else None
        tags, tag_scores = crf_word_tags(self.model.crf, emissions, token_mask, word_ids, pooling or "first")
        return {"logits": emissions, "tags": tags, "tag_scores": tag_scores, **passthrough, **model_inputs}

    def postprocess(self, all_outputs, aggregation_strategy=AggregationStrategy.NONE, ignore_labels=None):
        ignore_labels = ["O"] if ignore_labels is None else ignore_labels
        sentence = all_outputs[0]["sentence"]
        word_to_chars_map = all_outputs[0].get("word_to_chars_map")
        num_labels = self.model.config.num_labels
        merged = {}  # token key -> (distance to the window edge, pre-entity)
        for outputs in all_outputs:
            offset_mapping = outputs["offset_mapping"][0] if outputs["offset_mapping"] is not None else None
            table = viterbi_score_table(outputs["tags"][0], outputs["tag_scores"][0], num_labels)
            # SIMPLE here only silences the parent's "no real words" warning; words come from token_word_ids.
            pre_entities = self.gather_pre_entities(
                sentence, outputs["input_ids"][0], table, offset_mapping, outputs["special_tokens_mask"][0].numpy(),
                AggregationStrategy.SIMPLE, word_ids=outputs.get("word_ids"), word_to_chars_map=word_to_chars_map,
            )
            word_ids = outputs["token_word_ids"][0].tolist()
            for position, pre_entity in enumerate(pre_entities):
                pre_entity["word_id"] = word_ids[pre_entity["index"]]
                key = (pre_entity["start"], pre_entity["end"]) if pre_entity["start"] is not None else pre_entity["index"]
                distance = min(position, len(pre_entities) - 1 - position)
                if key not in merged or distance > merged[key][0]:
                    merged[key] = (distance, pre_entity)
        ordered = [pre for _, pre in merged.values()]
        if len(all_outputs) > 1:
            ordered.sort(key=lambda pre: (pre["start"], pre["end"]))
        for i, pre_entity in enumerate(ordered):  # sub-words: the tokenizer's words, not a guess
            pre_entity["is_subword"] = i > 0 and pre_entity["word_id"] >= 0 and pre_entity["word_id"] == ordered[i - 1]["word_id"]

        entities = []
        for entity in self.aggregate(ordered, aggregation_strategy):
            if entity.get("entity", entity.get("entity_group")) in ignore_labels:
                continue
            if entity["start"] is not None:
                entity["word"] = sentence[entity["start"] : entity["end"]]
            entity["score"] = float(entity["score"])
            entities.append(entity)
        return entities

    def get_tag(self, entity_name: str) -> tuple[str, str]:
        """`("B" | "I", type)`: B-/S- start an entity, I-/M-/E- continue it; `-` or `_` separators."""
        if len(entity_name) > 2 and entity_name[1] in "-_" and entity_name[0] in _PREFIX_ROLE:
            return _PREFIX_ROLE[entity_name[0]], entity_name[2:]
        return "I", entity_name

    def group_entities(self, entities: list[dict]) -> list[dict]:
        """The parent's grouping, also closing an entity after an E- or S- tag (IOBES)."""
        groups, current = [], []
        for entity in entities:
            role, entity_type = self.get_tag(entity["entity"])
            if current:
                _, open_type = self.get_tag(current[-1]["entity"])
                closed = current[-1]["entity"][:1] in ("E", "S") and len(current[-1]["entity"]) > 2
                if role == "B" or entity_type != open_type or closed:
                    groups.append(self.group_sub_entities(current))
                    current = []
            current.append(entity)
        if current:
            groups.append(self.group_sub_entities(current))
        return groups

    def group_sub_entities(self, entities: list[dict]) -> dict:
        group = super().group_sub_entities(entities)
        group["entity_group"] = self.get_tag(entities[0]["entity"])[1]
        return group


def mamba_crf_pipeline(model, tokenizer=None, **kwargs) -> MambaCrfTokenClassificationPipeline:
    """`transformers.pipeline("token-classification", ...)` with this class, without remote code.

    Args:
        model: a checkpoint folder / Hub id, or a loaded model.
        tokenizer: a tokenizer or its path (default: the checkpoint's).
        **kwargs: passed to `transformers.pipeline` (`aggregation_strategy`, `device`, `max_length`, ...).
    """
    from transformers import pipeline

    return pipeline("token-classification", model=model, tokenizer=tokenizer, pipeline_class=MambaCrfTokenClassificationPipeline, **kwargs)


__all__ = [
    "CUSTOM_PIPELINES", "MambaCrfTokenClassificationPipeline", "crf_word_tags", "mamba_crf_pipeline",
    "silence_length_warning", "viterbi_score_table",
]
