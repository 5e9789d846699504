"""`MambaCrfTrainer` counts the real and padded tokens of the training batches and times evaluation."""
import torch
from datasets import Dataset
from transformers import DataCollatorForTokenClassification, TrainingArguments

from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification
from mamba_ner.tokenization import build_tokenizer
from mamba_ner.trainer import MambaCrfTrainer

LABELS = ["O", "B-X", "I-X"]


def test_trainer_counts_real_tokens_padding_and_evaluation_time(tmp_path):
    texts = ["甲乙", "丙丁戊己庚", "辛", "壬癸子"]  # with [CLS]/[SEP]: 4, 7, 3, 5 tokens
    tokenizer = build_tokenizer(texts, kind="char")
    enc = tokenizer([list(t) for t in texts], is_split_into_words=True)
    labels = [[-100] + [0] * len(t) + [-100] for t in texts]
    data = Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})
    torch.manual_seed(0)
    model = MambaCrfForTokenClassification(MambaCrfConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, state_size=4,
        id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)}))
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, num_train_epochs=2,
                             train_sampling_strategy="sequential", eval_strategy="epoch", save_strategy="no",
                             report_to="none", use_cpu=True, disable_tqdm=True, per_device_eval_batch_size=4)
    trainer = MambaCrfTrainer(model=model, args=args, train_dataset=data, eval_dataset=data,
                              data_collator=DataCollatorForTokenClassification(tokenizer))
    result = trainer.train()
    throughput = trainer.throughput(result.metrics["train_runtime"])

    assert throughput["train_real_tokens"] == 2 * (4 + 7 + 3 + 5)  # two epochs
    padded = 2 * (2 * 7 + 2 * 5)  # batches [4, 7] -> 2 x 7, [3, 5] -> 2 x 5
    assert abs(throughput["train_padding_share"] - (1 - 38 / padded)) < 1e-4
    assert trainer.evaluation_seconds > 0  # two evaluations ran inside train()
    loop_seconds = result.metrics["train_runtime"] - trainer.evaluation_seconds
    assert 0 < loop_seconds < result.metrics["train_runtime"]
    expected = 2 * 19 / loop_seconds
    assert abs(throughput["train_real_tokens_per_second"] - expected) <= 0.01 * expected


def test_prediction_rows_follow_the_dataset_order_when_training_groups_by_length(tmp_path):
    texts = ["甲", "乙丙丁戊己庚辛", "壬癸", "子丑寅卯", "辰巳午未申酉戌亥", "天"] * 3
    tokenizer = build_tokenizer(texts, kind="char")
    enc = tokenizer([list(t) for t in texts], is_split_into_words=True)
    data = Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                              "labels": [[-100] + [0] * len(t) + [-100] for t in texts]})
    model = MambaCrfForTokenClassification(MambaCrfConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, state_size=4,
        id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)}))
    args = TrainingArguments(output_dir=str(tmp_path), train_sampling_strategy="group_by_length", report_to="none",
                             use_cpu=True, disable_tqdm=True, per_device_eval_batch_size=4)
    trainer = MambaCrfTrainer(model=model, args=args, data_collator=DataCollatorForTokenClassification(tokenizer))
    label_ids = trainer.predict(data).label_ids
    assert [int((row != -100).sum()) for row in label_ids] == [len(t) for t in texts]
