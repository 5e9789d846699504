"""`MambaCrfTrainer` counts the real and padded tokens of the training batches and times evaluation, and
keeps an exponential moving average of the weights when asked."""
import torch
from datasets import Dataset
from transformers import DataCollatorForTokenClassification, TrainerCallback, TrainingArguments

from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification
from mamba_ner.tokenization import build_tokenizer
from mamba_ner.trainer import MambaCrfTrainer

LABELS = ["O", "B-X", "I-X"]


def _tiny_model_and_data(texts, tag_of_position=lambda i: 0):
    """A char tokenizer, a dataset of `texts` (tag ids by position, -100 on [CLS]/[SEP]) and a tiny model."""
    tokenizer = build_tokenizer(texts, kind="char")
    enc = tokenizer([list(t) for t in texts], is_split_into_words=True)
    labels = [[-100] + [tag_of_position(i) for i in range(len(t))] + [-100] for t in texts]
    data = Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})
    torch.manual_seed(0)
    model = MambaCrfForTokenClassification(MambaCrfConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, state_size=4,
        id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)}))
    return tokenizer, data, model


def test_trainer_counts_real_tokens_padding_and_evaluation_time(tmp_path):
    texts = ["甲乙", "丙丁戊己庚", "辛", "壬癸子"]  # with [CLS]/[SEP]: 4, 7, 3, 5 tokens
    tokenizer, data, model = _tiny_model_and_data(texts)
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
    # the figure is rounded to 0.1 token/s: exact up to that rounding however long the loop took (a loaded
    # machine stretching it to ~10 s made a 1% relative tolerance smaller than the rounding)
    assert abs(throughput["train_real_tokens_per_second"] - expected) <= 0.05 + 1e-9 * expected


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


def _tiny_run(tmp_path, **trainer_kwargs):
    texts = ["甲乙", "丙丁戊己庚", "辛", "壬癸子"] * 2
    tokenizer, data, model = _tiny_model_and_data(texts, lambda i: i % 3)  # O B-X I-X O ...
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, num_train_epochs=2,
                             learning_rate=0.05, train_sampling_strategy="sequential", eval_strategy="no",
                             save_strategy="epoch", report_to="none", use_cpu=True, disable_tqdm=True)
    trainer = MambaCrfTrainer(model=model, args=args, train_dataset=data,
                              data_collator=DataCollatorForTokenClassification(tokenizer), **trainer_kwargs)
    return trainer


def test_weight_average_follows_the_updates_and_is_what_checkpoints_and_the_model_end_with(tmp_path):
    from safetensors.torch import load_file

    trainer = _tiny_run(tmp_path, ema_decay=0.5)
    average = trainer.weight_average
    history = []  # the raw weights after every optimizer step, seen from a callback added after the average

    class Record(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            history.append([p.detach().clone() for p in model.parameters() if p.requires_grad])

    initial = [p.detach().clone() for p in trainer.model.parameters() if p.requires_grad]
    trainer.add_callback(Record())
    trainer.train()
    assert len(history) == 8 and average.updates == 8  # 8 rows, batch 2, 2 epochs
    expected = initial
    for t, raw in enumerate(history, start=1):
        decay = min(0.5, (1 + t) / (10 + t))
        expected = [decay * e + (1 - decay) * r for e, r in zip(expected, raw)]
    for e, s in zip(expected, average.shadow):
        torch.testing.assert_close(s, e)
    # the raw weights moved away from the average, and the model ends with the average
    assert any(not torch.allclose(r, s) for r, s in zip(history[-1], average.shadow))
    for p, s in zip((p for p in trainer.model.parameters() if p.requires_grad), average.shadow):
        torch.testing.assert_close(p.detach(), s)
    # the last checkpoint holds the averaged weights
    saved = load_file(str(tmp_path / "checkpoint-8" / "model.safetensors"))
    named = dict(trainer.model.named_parameters())
    checked = 0
    for name, tensor in saved.items():
        if name in named:
            torch.testing.assert_close(tensor, named[name].detach())
            checked += 1
    assert checked > 0


def test_weight_average_swaps_back_the_raw_weights_and_rejects_a_bad_decay(tmp_path):
    import pytest

    from mamba_ner.trainer import WeightAverage

    trainer = _tiny_run(tmp_path, ema_decay=0.9)
    average = trainer.weight_average
    average.on_train_begin(trainer.args, trainer.state, trainer.control, model=trainer.model)
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    raw = [p.detach().clone() for p in params]
    average.shadow = [torch.zeros_like(p) for p in params]
    with average.swapped_in():
        assert all(float(p.detach().abs().sum()) == 0.0 for p in params)
    for p, r in zip(params, raw):
        assert torch.equal(p.detach(), r)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="decay"):
            WeightAverage(bad)


def test_training_command_rejects_an_ema_decay_out_of_range(tmp_path, capsys):
    from mamba_ner.training import main

    assert main(["--ema_decay", "1.5", "--output_dir", str(tmp_path), "--do_train"]) == 1
    assert "--ema_decay must be in [0, 1)" in capsys.readouterr().err


def test_adversarial_step_adds_the_gradients_of_the_batch_with_moved_embeddings_and_puts_them_back(tmp_path):
    trainer = _tiny_run(tmp_path, adversarial_epsilon=0.5)
    model = trainer.model
    for module in model.modules():  # both passes of a step read the same network
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    embeddings = model.get_input_embeddings().weight
    before = embeddings.detach().clone()
    params = [p for p in model.parameters() if p.requires_grad]

    def gradients():  # the gradients of one loss of the batch, computed by hand
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        return [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]

    model.train()
    clean = gradients()
    index = next(i for i, p in enumerate(params) if p is embeddings)
    delta = clean[index] * (0.5 / torch.linalg.vector_norm(clean[index]))
    with torch.no_grad():
        embeddings.add_(delta)
    moved = gradients()
    with torch.no_grad():
        embeddings.copy_(before)
    assert torch.linalg.vector_norm(delta) > 0.49 and any(not torch.allclose(c, m) for c, m in zip(clean, moved))

    model.zero_grad(set_to_none=True)
    trainer.current_gradient_accumulation_steps = 1  # set by train()'s loop
    trainer.training_step(model, dict(batch))
    assert torch.equal(embeddings.detach(), before)  # moved back exactly
    for p, c, m in zip(params, clean, moved):
        got = p.grad if p.grad is not None else torch.zeros_like(p)
        torch.testing.assert_close(got, c + m, rtol=1e-4, atol=1e-6)


def test_training_command_rejects_a_negative_adversarial_epsilon(tmp_path, capsys):
    import pytest

    from mamba_ner.training import main

    assert main(["--adversarial_epsilon", "-1", "--output_dir", str(tmp_path), "--do_train"]) == 1
    assert "--adversarial_epsilon must be >= 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="epsilon"):
        _tiny_run(tmp_path, adversarial_epsilon=-0.1)
