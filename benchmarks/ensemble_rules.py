"""Score an ensemble checkpoint with other ways of combining its taggers than the mean of their emissions.

    python benchmarks/ensemble_rules.py rocling22 outputs/r22_ens4_l6 [--splits validation test] [--data-dir ../shared/data]

An ensemble (`--ensemble_size K`) decodes the mean of its K taggers' emissions with its one CRF (`mean`, what
`run_ner.py` reports). Also scored, from the same emissions (each row run once through every tagger):
- `marginals`: the mean of each tagger's CRF posterior marginals, decoded by Viterbi over their logarithms
  with only the tagging scheme's constraints (posterior decoding);
- `mean-marginals`: the marginals of the mean emissions, decoded the same way;
- `vote-N`: each tagger's own Viterbi path; an entity (span and type) is kept when N or more taggers
  predict it, the most voted first, overlaps dropped;
- `tagger-i`: tagger i alone.
Entity P / R / F1 as the protocol runs report them (seqeval default mode, one row per sentence; checkpoints
trained with `--document_context` are not handled).
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from seqeval.metrics import f1_score, precision_score, recall_score  # noqa: E402
from torch import nn  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from mamba_ner import MambaCrfForTokenClassification  # noqa: E402
from mamba_ner.crf import _viterbi, pack_by_mask, unpack_by_order  # noqa: E402
from mamba_ner.data.bio import spans_to_tags, tags_to_spans  # noqa: E402
from mamba_ner.data.protocols import load_protocol  # noqa: E402
from mamba_ner.predict import _entity_labels, tag_words  # noqa: E402


class StackedTaggers(nn.Module):
    """The ensemble's taggers side by side: `logits` are their K emissions concatenated, (b, l, K * k),
    computed once per batch (the rules below re-read them from the cache)."""

    def __init__(self, model: MambaCrfForTokenClassification):
        super().__init__()
        self.model, self.config, self.cache = model, model.config, {}

    def forward(self, input_ids, attention_mask, return_predictions=False):
        key = (tuple(input_ids.shape), hash(input_ids.cpu().numpy().tobytes()))
        if key not in self.cache:
            m = self.model
            taggers = ((m.backbone, m.classifier), *((x.backbone, x.classifier) for x in m.members))
            emissions = [head(body(input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state)
                         for body, head in taggers]
            self.cache[key] = type("Output", (), {"logits": torch.cat(emissions, -1)})()
        return self.cache[key]


class Rule:
    """Stands in for the CRF that `tag_words` decodes with: splits the stacked emissions, combines them."""

    def __init__(self, crf, labels: list[str], name: str):
        self.crf, self.labels, self.name = crf, labels, name

    def _constrained_viterbi(self, scores, chain):
        start, end, trans = self.crf._penalties(scores.device, torch.float32)  # 0 / FORBIDDEN: the scheme only
        packed_mask, order, packed = pack_by_mask(chain, scores.float())
        return unpack_by_order(_viterbi(packed, packed_mask, start, end, trans, -100), order, -100)

    def _vote(self, paths, chain, need):
        out = torch.full(chain.shape, -100, dtype=torch.long)
        index = {label: i for i, label in enumerate(self.labels)}
        for r in range(chain.shape[0]):
            n = int(chain[r].sum())
            votes = Counter(span for path in paths for span in tags_to_spans([self.labels[t] for t in path[r, :n].tolist()]))
            kept, used = [], [False] * n
            for (start, end, label), count in sorted(votes.items(), key=lambda item: (-item[1], item[0])):
                if count >= need and not any(used[start:end]):
                    kept.append((start, end, label))
                    used[start:end] = [True] * (end - start)
            out[r, :n] = torch.tensor([index[tag] for tag in spans_to_tags(n, kept)], dtype=torch.long)
        return out

    def decode(self, pooled, chain):
        b, l, stacked = pooled.shape
        k = len(self.labels)
        each = pooled.view(b, l, stacked // k, k).unbind(2)
        crf, name = self.crf, self.name
        if name == "mean":
            return crf.decode(torch.stack(each).mean(0), chain)
        if name == "marginals":
            mean = torch.stack([crf.marginals(e, chain) for e in each]).mean(0)
            return self._constrained_viterbi(mean.clamp_min(1e-9).log(), chain)
        if name == "mean-marginals":
            return self._constrained_viterbi(crf.marginals(torch.stack(each).mean(0), chain).clamp_min(1e-9).log(), chain)
        if name.startswith("vote-"):
            return self._vote([crf.decode(e, chain) for e in each], chain, int(name[5:]))
        if name.startswith("tagger-"):
            return crf.decode(each[int(name[7:])], chain)
        raise ValueError(name)

    def marginals(self, pooled, chain):  # tag_words' scores; not used here
        return pooled.new_zeros(*pooled.shape[:2], len(self.labels))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocol")
    parser.add_argument("checkpoint")
    parser.add_argument("--splits", nargs="+", default=["validation", "test"])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    model = MambaCrfForTokenClassification.from_pretrained(args.checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    size = getattr(model.config, "ensemble_size", 1)
    if size < 2:
        raise SystemExit(f"{args.checkpoint}: not an ensemble (ensemble_size {size})")
    labels = _entity_labels(model)
    dataset, _ = load_protocol(args.protocol, args.data_dir)
    stacked = StackedTaggers(model)
    rules = ["mean", "marginals", "mean-marginals", f"vote-{size // 2}", f"vote-{size // 2 + 1}",
             *(f"tagger-{i}" for i in range(size))]
    print(f"{args.checkpoint}: {size} taggers; entity P / R / F1")
    print("| split | rule | P | R | F1 |\n|---|---|---:|---:|---:|")
    for split in args.splits:
        rows = dataset[split]
        names = rows.features["ner_tags"].feature.names
        gold = [[names[t] for t in row] for row in rows["ner_tags"]]
        for name in rules:
            stacked.crf = Rule(model.crf, labels, name)
            predicted = [[tag for tag, _ in row] for row in tag_words(stacked, tokenizer, rows["tokens"], batch_size=64)]
            print(f"| {split} | {name} | {100 * precision_score(gold, predicted):.2f} | "
                  f"{100 * recall_score(gold, predicted):.2f} | {100 * f1_score(gold, predicted):.2f} |", flush=True)
        stacked.cache.clear()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
