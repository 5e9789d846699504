"""(Bidirectional) Mamba encoder + linear-chain CRF for token classification.

This file travels with saved checkpoints (remote code): it imports only `torch`, `transformers` and
its siblings through relative imports.

Glossary of dimensions:
    b    batch size                 l    sequence length
    d    hidden_size (d_model)      d_in intermediate_size = expand * d
    n    state_size                 r    time_step_rank (rank of Δ's projection)
    k    number of tags

Layout. Parameter names follow `transformers.MambaModel` (`embeddings`, `layers.{i}.norm`,
`layers.{i}.mixer.{in_proj,conv1d,x_proj,dt_proj,A_log,D,out_proj}`, `norm_f`), so a published
`state-spaces/mamba-*-hf` checkpoint loads into the forward direction. With `bidirectional=True`
each mixer adds a right-to-left direction (`conv1d_b`, `x_proj_b`, `dt_proj_b`, `A_b_log`, `D_b`)
that shares `in_proj`, the gate and `out_proj` with the forward one (as in Vision Mamba): the
projections, which dominate the cost on CPU, are paid once.

Padding. Before the first block the real tokens of every row are packed to the front (a no-op for
right-padded batches), so the causal convolution and scan never see padding before a real token.
The backward direction reads each row right to left over its real tokens only (`lengths`; see
`scan.reverse_within_length`), so a sentence gets the same hidden states alone or inside a padded
batch, in both directions. Its conv and scan walk memory backwards instead of flipping copies, and
its scan also adds the forward direction's output, averages and applies the gate, so a
bidirectional layer makes no extra pass over (b, l, d_in) tensors for the combination.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import ModelOutput, logging

from .configuration_mamba_crf import MambaCrfConfig
from .crf import LinearChainCRF, pack_by_mask, unpack_by_order
from .scan import causal_conv1d, selective_scan

try:  # transformers >= 5: init functions that skip weights already loaded from a checkpoint
    from transformers import initialization as init
except ImportError:  # transformers 4.x
    from torch.nn import init

logger = logging.get_logger(__name__)

GENERIC_LABEL_PREFIX = "LABEL_"  # what PretrainedConfig invents when no labels are given


BIGRAM_HASH_MULTIPLIER = 1_000_003  # a prime above any vocabulary size
BIGRAM_BOUNDARY = -1  # the neighbour of a row's first and last real token


def bigram_ids(input_ids: torch.LongTensor, real: torch.Tensor, buckets: int) -> torch.LongTensor:
    """Hashed ids of the token pairs around every position.

    input_ids: (b, l); real: (b, l) bool, true on each row's real tokens, which come first ->
    (b, l, 2): bucket of the pair (t-1, t) and of the pair (t, t+1); a neighbour outside the row
    is `BIGRAM_BOUNDARY`. Pair (t, t+1) is the same bucket as the pair (t'-1, t') with t' = t+1.
    """
    ids = input_ids.masked_fill(~real, BIGRAM_BOUNDARY)  # (b, l)
    boundary = ids.new_full((ids.shape[0], 1), BIGRAM_BOUNDARY)
    padded = torch.cat([boundary, ids, boundary], dim=1)  # (b, l + 2)
    pairs = (padded[:, :-1] + 1) * BIGRAM_HASH_MULTIPLIER + (padded[:, 1:] + 1)  # (b, l + 1): pair (t-1, t) at t
    buckets_of_pairs = pairs % buckets
    return torch.stack([buckets_of_pairs[:, :-1], buckets_of_pairs[:, 1:]], dim=-1)  # (b, l, 2)


# Two polynomial hashes of a token window, each modulo a prime below 2**31, packed into one int64: with
# ~3e5 lexicon words a random window collides with one of them with probability ~1e-13.
LEXICON_HASH_PRIMES = (2_147_483_647, 2_147_483_629)
LEXICON_HASH_MULTIPLIERS = (1_000_003, 999_983)  # ids stay below 2**20: every product fits in int64


def lexicon_window_hashes(input_ids: torch.LongTensor, max_length: int):
    """Hashes of the token windows starting at every position: yields (n, (b, l) int64) for n = 2..max_length.

    The window of length n starting at t is input_ids[t : t + n]; positions past the row's end count
    as id -1, so a window that runs off the row never equals a lexicon word's hash (whose ids are >= 0).
    """
    b, l = input_ids.shape
    (p1, p2), (m1, m2) = LEXICON_HASH_PRIMES, LEXICON_HASH_MULTIPLIERS
    h1 = torch.zeros_like(input_ids)
    h2 = torch.zeros_like(input_ids)
    outside = input_ids.new_full((b, max_length), -1)
    padded = torch.cat([input_ids, outside], dim=1)
    for n in range(1, max_length + 1):
        token = padded[:, n - 1 : n - 1 + l] + 1  # the n-th token of each window, 0 outside the row
        h1 = (h1 * m1 + token) % p1
        h2 = (h2 * m2 + token) % p2
        if n >= 2:
            yield n, h1 * LEXICON_HASH_PRIMES[1] + h2


# `lexicon_counts` of a dictionary word: never left out by `lexicon_leave_one_out`
LEXICON_DICTIONARY_COUNT = 2 ** 62


def lexicon_features(input_ids: torch.LongTensor, real: torch.Tensor, lexicon: torch.LongTensor,
                     max_length: int, drop: float = 0.0, counts: torch.LongTensor | None = None,
                     gold: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Lexicon-match features of every position.

    input_ids: (b, l); real: (b, l) bool, true on each row's real tokens, which come first; lexicon:
    (w,) sorted window hashes of the lexicon words -> (b, l, 2 * max_length - 1) float 0/1: for
    n = 2..max_length "a word of n tokens starts here", then the same for "ends here", then "strictly
    inside a word". `drop`: share of the matches (word occurrences) left out, each with all its flags.
    `counts` (w,) and `gold` ((b, l) bool "a gold entity starts here", (b, l) bool "... continues
    here"): leave one out, i.e. a match that is exactly a gold entity of its row is left out when the
    word was tagged as an entity in no other training document (`counts`: in how many it was; a row
    is one document or a window of one).
    """
    b, l = input_ids.shape
    real = real.expand(b, l)  # (1, l) when every row is full
    ids = input_ids.masked_fill(~real, -2)  # padding matches no word

    def later(x, k):  # x moved k positions to the right
        return torch.cat([x.new_zeros(b, min(k, l)), x[:, : max(l - k, 0)]], dim=1)

    def earlier(x, k):  # x moved k positions to the left
        return torch.cat([x[:, min(k, l):], x.new_zeros(b, min(k, l))], dim=1)

    leave_one_out = counts is not None and gold is not None
    if leave_one_out:
        begins, continues = gold
        spans = begins  # at n: a gold entity starts at t and continues through t + n - 1
    starts, ends = [], []
    inside = torch.zeros_like(real)
    for n, hashes in lexicon_window_hashes(ids, max_length):
        if leave_one_out:
            spans = spans & earlier(continues, n - 1)
        found = torch.zeros_like(real)
        if lexicon.numel():
            slot = torch.searchsorted(lexicon, hashes).clamp_(max=lexicon.numel() - 1)
            found = lexicon[slot] == hashes  # (b, l): a word of length n starts at t
            if leave_one_out:
                entity = spans & ~earlier(continues, n)  # a gold entity of exactly n tokens starts at t
                found &= ~(entity & (counts[slot] <= 1))  # this row's entity, tagged in no other document
            if drop > 0:
                found &= torch.rand(found.shape, device=found.device) >= drop
        starts.append(found)
        ends.append(later(found, n - 1))  # ... ends at t + n - 1
        for k in range(1, n - 1):
            inside |= later(found, k)
    return torch.stack(starts + ends + [inside], dim=-1).float()


def entity_tag_masks(labels: torch.LongTensor, config) -> tuple[torch.Tensor, torch.Tensor]:
    """(b, l) bool "a gold entity starts here" (`B-`, `S-`) and "... continues here" (`I-`, `M-`, `E-`)
    of gold tag ids (-100 is neither)."""
    names = [config.id2label[i] for i in range(config.num_labels)]
    begin = [i for i, name in enumerate(names) if name[:2] in ("B-", "S-")]
    cont = [i for i, name in enumerate(names) if name[:2] in ("I-", "M-", "E-")]
    return (torch.isin(labels, torch.tensor(begin, dtype=labels.dtype, device=labels.device)),
            torch.isin(labels, torch.tensor(cont, dtype=labels.dtype, device=labels.device)))


# Whole-word ids for sub-word or character input: each word (a token that does not continue the one
# before it, then its continuation pieces) is hashed inside the model and looked up in a list of the
# training text's words stored in the checkpoint.
WORD_HASH_PRIME = 2_147_483_647
WORD_HASH_MULTIPLIER = 1_000_003
WORD_MAX_TOKENS = 32  # tokens of a word that enter its hash
# multiplier ** k mod prime for k < WORD_MAX_TOKENS, then 0: tokens past WORD_MAX_TOKENS add nothing
_WORD_HASH_POWERS = tuple(pow(WORD_HASH_MULTIPLIER, k, WORD_HASH_PRIME) for k in range(WORD_MAX_TOKENS)) + (0,)


def word_hashes(input_ids: torch.LongTensor, real: torch.Tensor, continuation: torch.Tensor,
                token_map: torch.LongTensor) -> tuple[torch.LongTensor, torch.LongTensor]:
    """The hash of the whole word around every position, and the position where that word starts.

    input_ids: (b, l); real: (b, l) bool, true on each row's real tokens, which come first;
    continuation: (vocab,) bool, true for tokens that continue the word before them (WordPiece's
    "##" pieces); token_map: (vocab,) the id each token counts as (its lower-cased, digit-normalised
    form) -> ((b, l) int64 in [0, WORD_HASH_PRIME), -1 on padding; (b, l) start positions). Every
    position of a word gets the same hash, made from its first WORD_MAX_TOKENS tokens.
    """
    b, l = input_ids.shape
    real = real.expand(b, l)
    ids = input_ids.masked_fill(~real, 0)
    positions = torch.arange(l, device=input_ids.device).expand(b, l)
    starts = ~continuation[ids] | ~real | (positions == 0)
    first = torch.where(starts, positions, 0).cummax(dim=1).values
    offset = (positions - first).clamp_(max=WORD_MAX_TOKENS)
    power = torch.tensor(_WORD_HASH_POWERS, dtype=torch.long, device=input_ids.device)[offset]
    terms = (token_map[ids] + 1) * power % WORD_HASH_PRIME
    word = starts.long().cumsum(dim=1) - 1  # (b, l) index of each position's word in its row
    sums = torch.zeros_like(terms).scatter_add_(1, word, terms)
    return (sums.gather(1, word) % WORD_HASH_PRIME).masked_fill_(~real, -1), first


class MambaCrfRMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class SSMDirection:
    """Names of the per-direction parameters of a mixer (forward: no suffix, backward: `_b`)."""

    def __init__(self, suffix: str):
        self.conv1d, self.x_proj, self.dt_proj = f"conv1d{suffix}", f"x_proj{suffix}", f"dt_proj{suffix}"
        self.A_log, self.D = ("A_log", "D") if not suffix else (f"A{suffix}_log", f"D{suffix}")


FORWARD, BACKWARD = SSMDirection(""), SSMDirection("_b")


class MambaCrfMixer(nn.Module):
    """Selective-SSM mixer with an optional second (right-to-left) direction."""

    def __init__(self, config: MambaCrfConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.hidden_size = config.hidden_size
        self.intermediate_size = d_in = config.intermediate_size
        self.ssm_state_size = n = config.state_size
        self.time_step_rank = r = config.time_step_rank
        self.conv_kernel_size = config.conv_kernel
        self.bidirectional = config.bidirectional

        self.in_proj = nn.Linear(config.hidden_size, 2 * d_in, bias=config.use_bias)
        self.out_proj = nn.Linear(d_in, config.hidden_size, bias=config.use_bias)
        self.out_proj._mamba_role = "out_proj"
        self.directions = [FORWARD, BACKWARD] if config.bidirectional else [FORWARD]
        for names in self.directions:
            conv = nn.Conv1d(d_in, d_in, config.conv_kernel, groups=d_in, padding=config.conv_kernel - 1, bias=config.use_conv_bias)
            dt_proj = nn.Linear(r, d_in, bias=True)
            dt_proj._mamba_role = "dt_proj"
            setattr(self, names.conv1d, conv)
            setattr(self, names.x_proj, nn.Linear(d_in, r + 2 * n, bias=False))
            setattr(self, names.dt_proj, dt_proj)
            setattr(self, names.A_log, nn.Parameter(torch.empty(d_in, n)))
            setattr(self, names.D, nn.Parameter(torch.empty(d_in)))

    def _ssm(self, x: torch.Tensor, names: SSMDirection, reverse: bool = False, lengths: torch.Tensor | None = None,
             **combine) -> torch.Tensor:
        """Conv + selective scan of one direction. x: (b, d_in, l) -> (b, d_in, l), in memory order.

        `reverse`/`lengths`: read right to left over each row's first `lengths[b]` tokens (None: all);
        `combine`: `z`, `y_add`, `out_scale` of `selective_scan` (out = out_scale (y + y_add) silu(z)).
        """
        conv = getattr(self, names.conv1d)
        x = causal_conv1d(x, conv.weight.squeeze(1), conv.bias, activation="silu", reverse=reverse,
                          lengths=lengths)  # (b, d_in, l)
        x_dbl = getattr(self, names.x_proj)(x.transpose(1, 2))  # (b, l, r + 2n)
        dt, B, C = torch.split(x_dbl, [self.time_step_rank, self.ssm_state_size, self.ssm_state_size], dim=-1)
        dt_proj = getattr(self, names.dt_proj)
        dt = F.linear(dt, dt_proj.weight).transpose(1, 2)  # (b, d_in, l); bias added inside the scan
        A = -torch.exp(getattr(self, names.A_log).float())  # (d_in, n)
        return selective_scan(
            x, dt, A, B.transpose(1, 2), C.transpose(1, 2), getattr(self, names.D).float(),
            delta_bias=dt_proj.bias.float(), delta_softplus=True, reverse=reverse, lengths=lengths, **combine,
        )  # (b, d_in, l)

    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """hidden_states: (b, l, d), real tokens packed to the front of each row; lengths: (b,) real
        tokens per row, None when no row is padded -> (b, l, d)."""
        # in_proj's two halves as two products: x and the gate come out contiguous, and in training their
        # gradients need no concatenation (the kernels read both as (b, d_in, l) views, without copies)
        d_in, weight, bias = self.intermediate_size, self.in_proj.weight, self.in_proj.bias
        x, gate = (
            F.linear(hidden_states, weight[half], None if bias is None else bias[half]).transpose(1, 2)
            for half in (slice(0, d_in), slice(d_in, 2 * d_in))
        )  # (b, d_in, l) each
        if self.bidirectional:  # y = (y_forward + y_backward) / 2 * silu(gate), combined in the second scan
            y_forward = self._ssm(x, FORWARD)
            y = self._ssm(x, BACKWARD, reverse=True, lengths=lengths, z=gate, y_add=y_forward, out_scale=0.5)
        else:
            y = self._ssm(x, FORWARD, z=gate)  # (b, d_in, l)
        return self.out_proj(y.transpose(1, 2).to(hidden_states.dtype))  # (b, l, d)


class MambaCrfBlock(nn.Module):
    def __init__(self, config: MambaCrfConfig, layer_idx: int):
        super().__init__()
        self.residual_in_fp32 = config.residual_in_fp32
        self.norm = MambaCrfRMSNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.mixer = MambaCrfMixer(config, layer_idx=layer_idx)
        self.dropout = nn.Dropout(getattr(config, "residual_dropout_prob", 0.0))

    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        residual = hidden_states
        hidden_states = self.dropout(self.mixer(self.norm(hidden_states.to(self.norm.weight.dtype)), lengths))
        if self.residual_in_fp32:
            residual = residual.to(torch.float32)
        return residual + hidden_states


class MambaCrfPreTrainedModel(PreTrainedModel):
    config_class = MambaCrfConfig
    base_model_prefix = "backbone"
    _no_split_modules = ["MambaCrfBlock"]
    main_input_name = "input_ids"

    AUTO_MAP = {
        "AutoConfig": "configuration_mamba_crf.MambaCrfConfig",
        "AutoModel": "modeling_mamba_crf.MambaCrfModel",
        "AutoModelForTokenClassification": "modeling_mamba_crf.MambaCrfForTokenClassification",
    }

    @torch.no_grad()
    def _init_weights(self, module):
        config = self.config
        role = getattr(module, "_mamba_role", None)
        if isinstance(module, nn.Linear) and role == "dt_proj":
            dt_init_std = config.time_step_rank**-0.5 * config.time_step_scale
            if config.time_step_init_scheme == "constant":
                init.constant_(module.weight, dt_init_std)
            else:
                init.uniform_(module.weight, -dt_init_std, dt_init_std)
            dt = torch.exp(
                torch.rand(module.out_features, dtype=torch.float32)
                * (math.log(config.time_step_max) - math.log(config.time_step_min))
                + math.log(config.time_step_min)
            ).clamp(min=config.time_step_floor)
            inv_dt = dt + torch.log(-torch.expm1(-dt))  # inverse of softplus
            init.copy_(module.bias, inv_dt.to(module.bias.device, module.bias.dtype))
        elif isinstance(module, (nn.Linear, nn.Conv1d)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if role == "out_proj" and config.rescale_prenorm_residual:
                init.copy_(module.weight, module.weight / math.sqrt(config.num_hidden_layers))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=config.initializer_range)
        elif isinstance(module, MambaCrfRMSNorm):
            init.ones_(module.weight)
        elif isinstance(module, MambaCrfMixer):
            # S4D-real initialisation of A; D = 1.
            A = torch.arange(1, module.ssm_state_size + 1, dtype=torch.float32)[None, :].expand(module.intermediate_size, -1)
            for names in module.directions:
                A_log = getattr(module, names.A_log)
                init.copy_(A_log, torch.log(A).to(A_log.device, A_log.dtype))
                init.ones_(getattr(module, names.D))
        elif isinstance(module, LinearChainCRF):
            for param in (module.start_transitions, module.end_transitions, module.transitions):
                init.uniform_(param, -0.1, 0.1)

    def backbones(self) -> list[MambaCrfModel]:
        """The encoder of every tagger: one, except in an ensemble (set lexicons and word lists on all)."""
        return [self.base_model]

    def save_pretrained(self, save_directory, *args, **kwargs):
        # `save_pretrained` only records the saved class in `auto_map`; list them all (AUTO_MAP) so that
        # AutoConfig, AutoModel and AutoModelForTokenClassification (+ AutoModelForMaskedLM for a masked
        # LM) all load the folder remotely.
        # Entries of this file's other model classes go (a tagger fine-tuned from a masked-LM checkpoint
        # must not offer AutoModelForMaskedLM).
        kept = {key: value for key, value in (getattr(self.config, "auto_map", None) or {}).items()
                if not str(value).startswith("modeling_mamba_crf.")}
        self.config.auto_map = {**kept, **self.AUTO_MAP}
        if hasattr(self, "crf"):
            # A tagger ships its CRF pipeline: this relative import also makes `save_pretrained`
            # (and remote loading) copy pipeline_mamba_crf.py beside this file.
            from .pipeline_mamba_crf import CUSTOM_PIPELINES

            self.config.custom_pipelines = {**(getattr(self.config, "custom_pipelines", None) or {}), **CUSTOM_PIPELINES}
        return super().save_pretrained(save_directory, *args, **kwargs)


class MambaCrfModel(MambaCrfPreTrainedModel):
    """The (bidirectional) Mamba encoder: embeddings -> blocks -> final RMSNorm."""

    def __init__(self, config: MambaCrfConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=None)
        bigram_buckets = getattr(config, "bigram_vocab_size", 0)
        self.bigram_embeddings = nn.Embedding(bigram_buckets, config.hidden_size) if bigram_buckets else None
        self.lexicon_embeddings = None
        if getattr(config, "lexicon_size", 0):
            self._add_lexicon(config.lexicon_size)
        self.word_embeddings = None
        if getattr(config, "word_vocab_size", 0):
            self._add_words(config.word_vocab_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layers = nn.ModuleList([MambaCrfBlock(config, layer_idx=i) for i in range(config.num_hidden_layers)])
        self.norm_f = MambaCrfRMSNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings

    def _add_lexicon(self, size: int):
        features = 2 * self.config.lexicon_max_word_length - 1
        self.lexicon_embeddings = nn.Embedding(features, self.config.hidden_size)  # one vector per feature
        self.register_buffer("lexicon", torch.zeros(size, dtype=torch.long), persistent=True)
        if getattr(self.config, "lexicon_leave_one_out", False):
            self.register_buffer("lexicon_counts", torch.zeros(size, dtype=torch.long), persistent=True)

    def set_lexicon(self, hashes: torch.LongTensor, counts: torch.LongTensor | None = None):
        """Store a lexicon (window hashes, see `mamba_ner.lexicon`) and add its feature embeddings.

        `counts`: one per hash, in how many training documents the word was tagged as an entity
        (`LEXICON_DICTIONARY_COUNT` for a dictionary word); needed with `config.lexicon_leave_one_out`.
        A hash given twice keeps its largest count. Replaces a lexicon already there; the feature
        embeddings are kept when the model already has them.
        """
        hashes = torch.as_tensor(hashes, dtype=torch.long).flatten()
        leave_one_out = getattr(self.config, "lexicon_leave_one_out", False)
        if leave_one_out != (counts is not None):
            raise ValueError("give the words' training counts exactly when config.lexicon_leave_one_out is set")
        hashes, where = torch.unique(hashes, return_inverse=True)  # sorted
        if not hashes.numel():
            raise ValueError("the lexicon is empty: no word of 2..lexicon_max_word_length tokens")
        device = self.embeddings.weight.device
        if self.lexicon_embeddings is None:
            self._add_lexicon(hashes.numel())
            self._init_weights(self.lexicon_embeddings)
            self.lexicon_embeddings.to(device)
        self.lexicon = hashes.to(device)
        if leave_one_out:
            counts = torch.as_tensor(counts, dtype=torch.long).flatten()
            if counts.shape != where.shape:
                raise ValueError(f"one count per lexicon hash: {counts.numel()} counts for {where.numel()} hashes")
            merged = torch.zeros_like(hashes).scatter_reduce(0, where, counts, reduce="amax")
            self.register_buffer("lexicon_counts", merged.to(device), persistent=True)
        elif "lexicon_counts" in self._buffers:
            del self._buffers["lexicon_counts"]
        self.config.lexicon_size = hashes.numel()

    def _add_words(self, size: int):
        self.word_embeddings = nn.Embedding(size + 1, self.config.hidden_size)  # row 0: a word not in the list
        self.register_buffer("word_list", torch.zeros(size, dtype=torch.long), persistent=True)
        self.register_buffer("word_continuation", torch.zeros(self.config.vocab_size, dtype=torch.bool), persistent=True)
        self.register_buffer("word_token_map", torch.arange(self.config.vocab_size), persistent=True)

    def set_words(self, hashes: torch.LongTensor, continuation: torch.Tensor, token_map: torch.LongTensor):
        """Store a word list (hashes from `word_hashes`, see `mamba_ner.words`) and add the word embeddings.

        continuation / token_map: (vocab,) tables of `word_hashes`. Replaces a list already there; the
        embeddings are kept when their number of rows still fits, otherwise made anew.
        """
        hashes = torch.unique(torch.as_tensor(hashes, dtype=torch.long).flatten())  # sorted
        if not hashes.numel():
            raise ValueError("the word list is empty")
        if continuation.shape != (self.config.vocab_size,) or token_map.shape != (self.config.vocab_size,):
            raise ValueError(f"the word tables must have one entry per vocabulary id ({self.config.vocab_size}), "
                             f"got {tuple(continuation.shape)} and {tuple(token_map.shape)}")
        device = self.embeddings.weight.device
        if self.word_embeddings is None or self.word_embeddings.num_embeddings != hashes.numel() + 1:
            self._add_words(hashes.numel())
            self._init_weights(self.word_embeddings)
            self.word_embeddings.to(device)
        self.word_list = hashes.to(device)
        # own copies: the encoders of an ensemble must not share storage (safetensors refuses)
        self.word_continuation = continuation.to(device=device, dtype=torch.bool, copy=True)
        self.word_token_map = token_map.to(device=device, dtype=torch.long, copy=True)
        self.config.word_vocab_size = hashes.numel()

    def word_indices(self, input_ids: torch.LongTensor, real: torch.Tensor, drop: float = 0.0) -> torch.LongTensor:
        """(b, l) row of `word_embeddings` for every position: 1 + the word's place in `word_list`, 0 if absent.

        With `drop` > 0, that share of the words (all positions of a word alike) get 0 as well.
        """
        hashes, first = word_hashes(input_ids, real, self.word_continuation, self.word_token_map)
        slot = torch.searchsorted(self.word_list, hashes).clamp_(max=self.word_list.numel() - 1)
        index = torch.where(self.word_list[slot] == hashes, slot + 1, 0)
        if drop > 0:
            dropped = (torch.rand(hashes.shape, device=hashes.device) < drop).gather(1, first)
            index = index.masked_fill(dropped, 0)
        return index

    def embed(self, input_ids: torch.LongTensor, lengths: torch.Tensor | None = None,
              entity_labels: torch.LongTensor | None = None) -> torch.Tensor:
        """Token embeddings (+ hashed bigram embeddings, + lexicon features, + whole-word embeddings) of rows
        whose real tokens come first.

        input_ids: (b, l); lengths: (b,) real tokens per row (None: all) -> (b, l, d). In training,
        `word_dropout_prob` of the real, non-special tokens are first replaced by `unk_token_id`, and
        `lexicon_dropout_prob` of the lexicon matches are left out; with `lexicon_leave_one_out` and
        `entity_labels` (b, l) (gold tag ids, -100 off the chain), each row's own gold entities are
        flagged only when tagged elsewhere in training too.
        """
        config = self.config
        b, l = input_ids.shape
        positions = torch.arange(l, device=input_ids.device)
        real = positions[None, :] < (lengths[:, None] if lengths is not None else l)  # (b, l)
        word_dropout = getattr(config, "word_dropout_prob", 0.0)
        if self.training and word_dropout > 0:
            special = [t for t in (config.pad_token_id, config.bos_token_id, config.eos_token_id) if t is not None]
            droppable = real & ~torch.isin(input_ids, torch.tensor(special, device=input_ids.device))
            dropped = droppable & (torch.rand(b, l, device=input_ids.device) < word_dropout)
        if self.lexicon_embeddings is not None:  # from the ids before word dropout
            drop = getattr(config, "lexicon_dropout_prob", 0.0) if self.training else 0.0
            gold = None
            if self.training and entity_labels is not None and getattr(config, "lexicon_leave_one_out", False):
                gold = entity_tag_masks(entity_labels, config)
            features = lexicon_features(input_ids, real, self.lexicon, config.lexicon_max_word_length, drop,
                                        getattr(self, "lexicon_counts", None), gold)
        if self.word_embeddings is not None:  # from the ids before word dropout; whole words dropped alike
            words = self.word_indices(input_ids, real, drop=word_dropout if self.training else 0.0)
        if self.training and word_dropout > 0:
            input_ids = input_ids.masked_fill(dropped, config.unk_token_id)
        hidden_states = self.embeddings(input_ids)  # (b, l, d)
        if self.lexicon_embeddings is not None:
            hidden_states = hidden_states + features.to(hidden_states.dtype) @ self.lexicon_embeddings.weight
        if self.word_embeddings is not None:
            hidden_states = hidden_states + self.word_embeddings(words)
        if self.bigram_embeddings is not None:
            hidden_states = hidden_states + self.bigram_embeddings(bigram_ids(input_ids, real, self.bigram_embeddings.num_embeddings)).sum(2)
        return hidden_states

    def set_input_embeddings(self, new_embeddings):
        self.embeddings = new_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        entity_labels: torch.LongTensor | None = None,
        **kwargs,
    ):
        """Encode; returns `BaseModelOutput(last_hidden_state (b, l, d), hidden_states)`.

        `attention_mask` (b, l) may pad on either side; padded positions come back as zeros.
        `entity_labels` (b, l): the gold tags, used in training by `config.lexicon_leave_one_out` only.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        output_hidden_states = output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        inputs = input_ids if inputs_embeds is None else inputs_embeds  # (b, l) or (b, l, d)
        b, l = inputs.shape[:2]

        order = lengths = mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask.bool()  # (b, l)
            lengths = mask.sum(1)  # (b,) real tokens per row
            positions = torch.arange(l, device=mask.device)
            if not bool((mask == (positions[None, :] < lengths[:, None])).all()):  # not right-padded: pack
                _, order, inputs = pack_by_mask(mask, inputs)
                if entity_labels is not None:
                    entity_labels = pack_by_mask(mask, entity_labels)[2]
        if inputs_embeds is None:
            hidden_states = self.embed(inputs, lengths, entity_labels)  # (b, l, d)
        else:
            hidden_states = inputs

        hidden_states = self.dropout(hidden_states)
        all_hidden_states = () if output_hidden_states else None
        for layer in self.layers:
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            hidden_states = layer(hidden_states, lengths)
        hidden_states = self.norm_f(hidden_states)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)

        if mask is not None:
            if order is not None:
                hidden_states = unpack_by_order(hidden_states, order, 0.0)
                if output_hidden_states:
                    all_hidden_states = tuple(unpack_by_order(h, order, 0.0) for h in all_hidden_states)
            hidden_states = hidden_states * mask.unsqueeze(-1).to(hidden_states.dtype)
        if not return_dict:
            return tuple(v for v in (hidden_states, all_hidden_states) if v is not None)
        return BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden_states)


@dataclass
class MambaCrfTokenClassifierOutput(ModelOutput):
    """
    Args:
        loss: mean CRF negative log-likelihood of `labels` (when given).
        logits: (b, l, k) emission scores (not probabilities; decode with the CRF, not argmax).
        predictions: (b, l) Viterbi tag ids, -100 where there is no tag (padding, labels == -100).
        hidden_states: per-layer hidden states when asked for.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    predictions: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


def _crf_labels_and_scheme(config) -> tuple[list[str], str]:
    labels = [config.id2label[i] for i in range(config.num_labels)]
    scheme = config.tagging_scheme
    if scheme != "none" and all(label.startswith(GENERIC_LABEL_PREFIX) for label in labels):
        # PretrainedConfig's placeholder names carry no scheme: constrain nothing.
        scheme = "none"
    return labels, scheme


class MambaCrfEnsembleMember(nn.Module):
    """A further tagger of an ensemble (`config.ensemble_size` > 1): its own encoder and emission layer."""

    def __init__(self, config: MambaCrfConfig):
        super().__init__()
        self.backbone = MambaCrfModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)


class MambaCrfForTokenClassification(MambaCrfPreTrainedModel):
    """Mamba encoder -> dropout -> linear emissions -> CRF (NLL loss, Viterbi predictions).

    With `config.ensemble_size` = K > 1, K - 1 more encoders with their own emission layers (`members`)
    sit beside the first (`backbone`, `classifier`); each tagger's emissions get a CRF loss of their
    own (the loss is their mean) and `logits` are the mean of the K emissions, decoded by the one CRF.
    """

    def __init__(self, config: MambaCrfConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.backbone = MambaCrfModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.members = nn.ModuleList(MambaCrfEnsembleMember(config) for _ in range(getattr(config, "ensemble_size", 1) - 1))
        labels, scheme = _crf_labels_and_scheme(config)
        self.crf = LinearChainCRF(config.num_labels, labels, scheme)
        self.post_init()

    def backbones(self) -> list[MambaCrfModel]:
        """The encoder of every tagger: `backbone`, then the ensemble members'."""
        return [self.backbone, *(member.backbone for member in self.members)]

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        return_predictions: bool | None = None,
        **kwargs,
    ):
        """
        Args:
            input_ids: (b, l) token ids.
            attention_mask: (b, l) 1 for real tokens.
            labels: (b, l) gold tag ids; -100 on positions outside the CRF chain (special tokens,
                non-first sub-words, padding).
            return_predictions: run Viterbi; defaults to `not self.training`.

        Returns:
            `MambaCrfTokenClassifierOutput` with `loss` (given labels), `logits` (b, l, k) and
            `predictions` (b, l) (-100 off the chain). With labels, the chain is the positions
            whose label is not -100; without, every position of `attention_mask`. An ensemble's
            `loss` is the mean of its taggers' losses and `logits` the mean of their emissions;
            `hidden_states` are the first tagger's.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        each, outputs = [], None  # every tagger's (b, l, k) emissions; the first tagger's outputs
        for backbone, classifier in ((self.backbone, self.classifier), *((m.backbone, m.classifier) for m in self.members)):
            tagger_outputs = backbone(
                input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                output_hidden_states=output_hidden_states, return_dict=True, entity_labels=labels,
            )
            if outputs is None:
                outputs = tagger_outputs
            hidden = tagger_outputs.last_hidden_state  # float32 when residual_in_fp32, whatever the weights' dtype
            each.append(classifier(self.dropout(hidden.to(classifier.weight.dtype))))

        use_crf = getattr(self.config, "use_crf", True)
        loss = None
        if labels is not None:
            if use_crf:
                losses = [self.crf(emissions, labels, mask=attention_mask) for emissions in each]
            else:  # softmax tagger: token cross-entropy (-100 ignored)
                on_chain = labels if attention_mask is None else labels.masked_fill(~attention_mask.bool(), -100)
                losses = [F.cross_entropy(emissions.float().flatten(0, 1), on_chain.flatten(), ignore_index=-100)
                          for emissions in each]
            loss = losses[0] if len(losses) == 1 else torch.stack(losses).mean()
        emissions = each[0] if len(each) == 1 else torch.stack(each).mean(0)
        predictions = None
        if return_predictions if return_predictions is not None else not self.training:
            chain = attention_mask.bool() if attention_mask is not None else torch.ones(emissions.shape[:2], dtype=torch.bool, device=emissions.device)
            if labels is not None:
                chain = chain & (labels != -100)
            if use_crf:
                predictions = self.crf.decode(emissions, mask=chain)
            else:
                predictions = emissions.argmax(-1).masked_fill(~chain, -100)
        if not return_dict:
            return tuple(v for v in (loss, emissions, predictions, outputs.hidden_states) if v is not None)
        return MambaCrfTokenClassifierOutput(loss=loss, logits=emissions, predictions=predictions, hidden_states=outputs.hidden_states)

    def tag_marginals(self, emissions: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """CRF posterior probability of each tag at each position, (b, l, k) (softmax without a CRF)."""
        if not getattr(self.config, "use_crf", True):
            return emissions.float().softmax(-1)
        return self.crf.marginals(emissions, mask)


@dataclass
class MambaCrfMaskedLMOutput(ModelOutput):
    """
    Args:
        loss: mean cross-entropy over the positions whose label is not -100 (when labels are given).
        logits: (b, l, vocab_size) scores of every position; computed only without labels.
        predictions: (b, l) arg-max token id at each labelled position, -100 elsewhere (with labels).
        hidden_states: per-layer hidden states when asked for.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    predictions: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class MambaCrfLMHead(nn.Module):
    """BERT's prediction head: dense -> GELU -> norm -> scores over the vocabulary."""

    def __init__(self, config: MambaCrfConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = MambaCrfRMSNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """(..., d) -> (..., vocab_size)."""
        return self.decoder(self.norm(F.gelu(self.dense(hidden_states))))


class MambaCrfForMaskedLM(MambaCrfPreTrainedModel):
    """Mamba encoder -> LM head: masked-token prediction, to pretrain the backbone on unlabelled text.

    The encoder is `self.backbone` as in `MambaCrfForTokenClassification`, so a checkpoint of this
    model loads into the tagger (backbone kept, classifier and CRF newly initialised) and as `AutoModel`.
    The decoder's weight is the input embedding matrix when `config.tie_word_embeddings`.
    """

    AUTO_MAP = {**MambaCrfPreTrainedModel.AUTO_MAP, "AutoModelForMaskedLM": "modeling_mamba_crf.MambaCrfForMaskedLM"}
    _tied_weights_keys = {"lm_head.decoder.weight": "backbone.embeddings.weight"}

    def __init__(self, config: MambaCrfConfig):
        super().__init__(config)
        self.backbone = MambaCrfModel(config)
        self.lm_head = MambaCrfLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings):
        self.lm_head.decoder = new_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        """
        Args:
            input_ids: (b, l) token ids, some replaced by the mask token (or a random token).
            attention_mask: (b, l) 1 for real tokens.
            labels: (b, l) the original id at each position to predict, -100 elsewhere (what
                `transformers.DataCollatorForLanguageModeling` makes).

        Returns:
            `MambaCrfMaskedLMOutput`. With labels the vocabulary scores are computed only at the
            labelled positions (a 15% share: the head costs as much as the encoder at a vocabulary of
            a few thousand), giving `loss` and `predictions`; without labels, `logits` (b, l, vocab_size).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.backbone(
            input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states, return_dict=True,
        )
        hidden = outputs.last_hidden_state.to(self.lm_head.dense.weight.dtype)  # (b, l, d)
        loss = logits = predictions = None
        if labels is None:
            logits = self.lm_head(hidden)  # (b, l, vocab_size)
        else:
            selected = labels != -100  # (b, l)
            if attention_mask is not None:
                selected = selected & attention_mask.bool()
            scores = self.lm_head(hidden[selected]).float()  # (m, vocab_size)
            targets = labels[selected]  # (m,)
            loss = F.cross_entropy(scores, targets) if targets.numel() else scores.sum() * 0.0
            predictions = labels.new_full(labels.shape, -100).masked_scatter(selected, scores.argmax(-1))  # (b, l)
        if not return_dict:
            return tuple(v for v in (loss, logits, predictions, outputs.hidden_states) if v is not None)
        return MambaCrfMaskedLMOutput(loss=loss, logits=logits, predictions=predictions, hidden_states=outputs.hidden_states)


__all__ = [
    "MambaCrfModel",
    "MambaCrfForMaskedLM",
    "MambaCrfForTokenClassification",
    "MambaCrfMaskedLMOutput",
    "MambaCrfPreTrainedModel",
    "MambaCrfTokenClassifierOutput",
]
