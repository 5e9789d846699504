"""Issue 12: formats found by themselves, span JSON, bad inputs refused in one line, safe resume,
deterministic tokenizers, CoNLL files kept as they were by predict, honest model cards, help texts.

Bad inputs are the small files in tests/fixtures/usability; models are tiny (hidden 16, 1 layer)."""
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from mamba_ner.cli import main as cli_main
from mamba_ner.commandline import UsageError, normalize_spelling, parse_dataclasses, run_command
from mamba_ner.data import read_files
from mamba_ner.data.convert import main as convert_main
from mamba_ner.data.detect import detect_format
from mamba_ner.data.records import DataFormatError
from mamba_ner.data.rocling import read_rocling
from mamba_ner.data.spanjson import read_spanjson
from mamba_ner.evaluation import main as evaluate_main
from mamba_ner.predict import parse_args as predict_parse_args
from mamba_ner.tokenization import build_tokenizer
from mamba_ner.training import build_parser, parse_args
from mamba_ner.training import main as train_main

REPO = Path(__file__).resolve().parents[1]
FIX = Path(__file__).resolve().parent / "fixtures" / "usability"
CONLL_SAMPLE = REPO / "examples" / "sample_data" / "conll" / "sample.conll"


def tiny(output_dir, *extra, train=CONLL_SAMPLE):
    return ["--train_files", str(train), "--validation_split_ratio", "0", "--output_dir", str(output_dir),
            "--hidden_size", "16", "--num_hidden_layers", "1", "--state_size", "4", "--tokenizer_kind", "wordpiece",
            "--per_device_train_batch_size", "4", "--learning_rate", "5e-3", "--seed", "3", "--report_to", "none",
            "--do_train", "--use_cpu", "--dataloader_num_workers", "0", "--disable_tqdm", "true", "--make_plots", "false",
            "--save_strategy", "steps", "--save_steps", "2", "--max_steps", "5", *extra]


# ------------------------------------------------------------------------------ formats
@pytest.mark.parametrize("name, expected", [
    ("chars_named.json", "rocling"),        # a char-per-line file named .json
    ("healthner_named.txt", "rocling"),     # HealthNER JSON lines named .txt
    ("cmeee.json", "spanjson"),
    ("spans.jsonl", "spanjson"),
    ("iob1_pos.conll", "conll"),
    ("resume_bmes.char", "rocling"),
    ("weibo.txt", "conll"),
    ("conll_folder", "conll"),
])
def test_formats_are_detected_from_content(name, expected):
    assert detect_format(FIX / name)[0] == expected


def test_extension_never_forces_a_wrong_reader():
    sentences, _ = read_files(None, [FIX / "chars_named.json"])
    assert [s.tokens for s in sentences] == [list("患者高血壓"), list("頭痛")]
    assert sentences[0].tags == ["O", "O", "B-DISE", "I-DISE", "I-DISE"]
    sentences, _ = read_files(None, [FIX / "healthner_named.txt"])
    assert [s.tags for s in sentences] == [["B-SYMP", "I-SYMP", "O", "O"], ["B-SYMP", "I-SYMP"]]
    from mamba_ner.predict import detect_format as predict_detect

    assert predict_detect(FIX / "healthner_named.txt") == "rocling"  # predict no longer takes it for raw text


def test_bmes_alias_and_folders():
    sentences, _ = read_files("bmes", [FIX / "resume_bmes.char"])
    assert sentences[0].tags == ["B-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "B-LOC"]
    sentences, report = read_files(None, [FIX / "conll_folder"])
    assert len(sentences) == 3 and report.counts["files"] == 2
    sentences, _ = read_files("conll", [FIX / "conll_folder"])  # a forced format takes folders too
    assert len(sentences) == 3


def test_span_json_inclusive_ends_and_nested_entities_flattened_with_counts():
    sentences, report = read_spanjson(FIX / "cmeee.json")
    assert sentences[0].tokens == list("患者有糖尿病性肾病。")
    assert sentences[0].tags == ["O", "O", "O", "B-dis", "I-dis", "I-dis", "I-dis", "I-dis", "I-dis", "O"]
    assert sentences[1].tags[:2] == ["B-sym", "I-sym"] and set(sentences[2].tags) == {"O"}
    report.check()
    assert report.totals["read"] == 4 and report.totals["kept"] == 2 and report.totals["dropped"] == 2
    assert report.reasons("dropped") == {"nested inside a longer kept entity": 2}
    assert any("inclusive" in note for note in report.notes)
    assert [s.doc_id for s in sentences] == ["cmeee#0", "cmeee#1", "cmeee#2"]


def test_span_json_lines_exclusive_ends_and_convert(tmp_path):
    sentences, report = read_files(None, [FIX / "spans.jsonl"])
    assert sentences[0].tokens == ["Maria", "Santos", "visited", "Porto", "."]
    assert sentences[0].tags == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    assert sentences[1].tags == ["B-ORG", "O", "B-PER", "O"]
    assert any("exclusive" in note for note in report.notes)
    assert convert_main([str(FIX / "cmeee.json"), "--output", str(tmp_path / "out")]) == 0
    saved = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert saved["totals"]["dropped"] == 2


def test_weibo_segmentation_digits_detected_and_stripped():
    sentences, report = read_files(None, [FIX / "weibo.txt"])
    assert report.reasons("warning")["tokens carry a segmentation digit"] == 1
    assert "--strip_segmentation_digits" in report.items_for("warning")[0].detail
    sentences, report = read_files(None, [FIX / "weibo.txt"], per_format={"conll": {"strip_segmentation_digits": True}})
    assert sentences[0].tokens == list("科技全方位") and sentences[0].tags[:2] == ["B-PER.NAM", "I-PER.NAM"]


def test_multi_character_tokens_in_a_char_per_line_file_are_warned():
    _, report = read_rocling(FIX / "multichar.txt")
    (item,) = report.items_for("warning")
    assert item.location.endswith("multichar.txt:3") and item.detail == "ab"


# ------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("name, found", [("empty.conll", "an empty file"), ("blank_lines.txt", "only blank lines"),
                                         ("empty_folder", "an empty folder")])
def test_empty_input_is_refused_with_the_file(name, found, tmp_path, capsys):
    assert convert_main([str(FIX / name), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert str(FIX / name) in err and found in err and "expected" in err and err.count("\n") == 1
    for fmt in ("conll", "rocling", "brat"):  # forced readers: no IsADirectoryError, no silent success
        assert convert_main(["--format", fmt, str(FIX / name), "--output", str(tmp_path / fmt)]) == 1
    assert not (tmp_path / "out").exists()


def test_a_long_line_is_not_a_character(tmp_path, capsys):
    path = tmp_path / "plain.txt"
    path.write_text("患" * 200_000 + "\n", encoding="utf-8")
    assert convert_main(["--format", "rocling", str(path), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{path}:1" in err and "200000-character token" in err
    assert convert_main([str(path), "--output", str(tmp_path / "out")]) == 1  # detected as plain text: refused
    assert "plain text" in capsys.readouterr().err


def test_training_refuses_zero_steps_unlabelled_data_and_missing_files(tmp_path, capsys):
    assert train_main(tiny(tmp_path / "zero", "--max_steps", "0")) == 1
    assert "would train nothing" in capsys.readouterr().err and not (tmp_path / "zero" / "model").exists()
    unlabelled = tmp_path / "raw.txt"
    unlabelled.write_text("患\n者\n\n頭\n", encoding="utf-8")
    assert train_main(tiny(tmp_path / "u", train=unlabelled)) == 1
    assert "unlabelled" in capsys.readouterr().err
    assert train_main(tiny(tmp_path / "m", train=tmp_path / "missing.conll")) == 1
    err = capsys.readouterr().err
    assert "missing.conll: no such file or folder" in err and "Traceback" not in err and err.count("\n") == 1
    with pytest.raises(FileNotFoundError):
        train_main([*tiny(tmp_path / "m", train=tmp_path / "missing.conll"), "--debug"])


def test_missing_model_folder_is_one_line(tmp_path, capsys):
    assert evaluate_main(["--model", str(tmp_path / "nope"), "--files", str(CONLL_SAMPLE)]) == 1
    assert "no such model folder" in capsys.readouterr().err
    assert cli_main(["predict", "--model", str(tmp_path / "nope"), str(CONLL_SAMPLE)]) == 1
    err = capsys.readouterr().err
    assert "no such model folder" in err and "Repo id" not in err


# ------------------------------------------------------------------------------ configs and help
def test_json_config_with_command_line_overrides(tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"train_files": ["a.conll"], "output_dir": str(tmp_path / "o"), "max_steps": 5,
                                  "learning_rate": 0.002, "do_train": True, "hidden_size": 32}))
    model_args, data_args, training_args, _ = parse_args([str(config), "--max_steps", "20", "--hidden-size", "64"])
    assert training_args.max_steps == 20 and model_args.hidden_size == 64  # the command line wins
    assert training_args.learning_rate == 0.002 and data_args.train_files == ["a.conll"] and training_args.do_train


def test_unknown_config_keys_are_named_with_close_matches(capsys):
    assert train_main([str(FIX / "unknown_key.json")]) == 1
    err = capsys.readouterr().err
    assert "unknown_key.json" in err and "'learning_rte'" in err and "learning_rate" in err
    with pytest.raises(UsageError, match="--learning_rate"):
        parse_args(["--output_dir", "x", "--learning_rte", "1"])


def test_spellings_are_interchangeable():
    from mamba_ner.evaluation import build_parser as evaluate_parser

    parser = evaluate_parser()
    args = parser.parse_args(normalize_spelling(["--model", "m", "--data-format", "conll", "--files", "a"], parser))
    assert args.data_format == "conll"
    assert parse_args(["--output_dir", "x", "--data-format", "bmes"])[1].data_format == "bmes"
    assert predict_parse_args(["--model", "m", "--data_format", "conll", "a.txt"])[0].format == "conll"


def test_help_texts(capsys):
    text = build_parser().format_help()
    no_bidirectional = text[text.index("--no_bidirectional"):][:300]
    assert "off" in no_bidirectional.split("--bidirectional")[0] + no_bidirectional[:120]
    assert "Not directly used" not in text and "resume from" in text
    max_length = text[text.index("--max_length"):].split("\n  --")[0]
    assert max_length.count("default") == 1, max_length
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["train", "--help"])
    assert exit_info.value.code == 0 and "usage: mamba-ner train" in capsys.readouterr().out
    assert cli_main([]) == 2 and "give a command" in capsys.readouterr().err
    args, inputs, html = predict_parse_args(["--model", "m", "--html", "notes.txt"])  # --html takes no value
    assert html is True and inputs == ["notes.txt"]


def test_run_command_keeps_tracebacks_for_bugs():
    def buggy(argv):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_command(buggy, [], "x")
    assert run_command(lambda argv: (_ for _ in ()).throw(DataFormatError("f.txt", 3, "a tag")), [], "x") == 1


def test_makefile_documents_a_cpu_wheel_index():
    result = subprocess.run(["make", "-n", "-B", "/tmp/never-made/.installed", "TORCH_INDEX=https://download.pytorch.org/whl/cpu",
                             "VENV=/tmp/never-made"], cwd=REPO, capture_output=True, text=True)
    assert "--index-url https://download.pytorch.org/whl/cpu" in result.stdout, result.stdout + result.stderr
    plain = subprocess.run(["make", "-n", "-B", "/tmp/never-made/.installed", "VENV=/tmp/never-made"], cwd=REPO,
                           capture_output=True, text=True)
    assert "--index-url" not in plain.stdout  # CI never depends on an index this machine cannot reach
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "TORCH_INDEX" in readme and "bmes" in readme and "mamba-ner train" in readme


# ------------------------------------------------------------------------------ tokenizer and resume
BUILD = """
import sys
from mamba_ner.data import read_files
from mamba_ner.tokenization import build_tokenizer
sentences, _ = read_files("conll", [sys.argv[1]])
build_tokenizer([s.tokens for s in sentences], kind="wordpiece").save_pretrained(sys.argv[2])
"""


def test_tokenizer_built_twice_gives_identical_files(tmp_path):
    sentences, _ = read_files("conll", [CONLL_SAMPLE])
    build_tokenizer([s.tokens for s in sentences], kind="wordpiece").save_pretrained(tmp_path / "a")
    env = dict(os.environ, PYTHONHASHSEED="12345", OMP_NUM_THREADS="1")  # another process, other hash seeds
    subprocess.run([sys.executable, "-c", BUILD, str(CONLL_SAMPLE), str(tmp_path / "b")], env=env, check=True, timeout=300)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir()) and "tokenizer.json" in names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted 5-step run, and the same run stopped by Ctrl-C at step 3 then resumed."""
    root = tmp_path_factory.mktemp("resume")
    assert train_main(tiny(root / "whole")) == 0

    original = transformers.trainer_callback.CallbackHandler.on_step_end

    def interrupt(self, args, state, control):
        if state.global_step == 3:  # checkpoint-2 is saved, step 3 is not
            raise KeyboardInterrupt
        return original(self, args, state, control)

    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(stderr):
        patch.setattr(transformers.trainer_callback.CallbackHandler, "on_step_end", interrupt)
        code = train_main(tiny(root / "stopped"))
    return root, (code, stderr.getvalue())


def test_interrupted_run_names_its_last_checkpoint(runs):
    root, (code, stderr) = runs
    assert code == 130
    (line,) = [line for line in stderr.splitlines() if line.startswith("interrupted")]
    assert f"last checkpoint: {root / 'stopped' / 'checkpoint-2'}" in line and "resume with:" in line
    assert (root / "stopped" / "checkpoint-2").is_dir() and not (root / "stopped" / "model").exists()


def test_resume_gives_the_weights_of_an_uninterrupted_run(runs, caplog, capsys):
    root, _ = runs
    with caplog.at_level("INFO"):
        assert train_main(tiny(root / "stopped")) == 0  # the same command resumes
    assert "resuming from checkpoint-2 (--overwrite_output_dir starts afresh)" in caplog.text
    assert "tokenizer loaded from" in caplog.text
    state = json.loads((root / "stopped" / "trainer_state.json").read_text())
    assert state["global_step"] == 5
    a, b = load_file(root / "whole" / "model.safetensors"), load_file(root / "stopped" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_interrupt_message(tmp_path):
    from mamba_ner.resume import interrupted_message

    (tmp_path / "checkpoint-4").mkdir()
    line = interrupted_message(tmp_path, 5, ["--output_dir", str(tmp_path), "--overwrite_output_dir"])
    assert "checkpoint-4" in line and f"--resume_from_checkpoint {tmp_path / 'checkpoint-4'}" in line
    assert "\n" not in line


def test_resume_with_other_labels_is_refused(runs, tmp_path, capsys):
    root, _ = runs
    other = tmp_path / "other.conll"
    other.write_text("Acme B-COMPANY\nhired O\n\nTom B-PER\n", encoding="utf-8")
    assert train_main(tiny(root / "whole", train=other)) == 1
    err = capsys.readouterr().err
    assert "labels differ" in err and "B-COMPANY" in err and "--overwrite_output_dir" in err


def test_resume_with_other_model_sizes_is_refused(runs, capsys):
    root, _ = runs
    assert train_main([*tiny(root / "whole"), "--hidden_size", "32"]) == 1
    err = capsys.readouterr().err
    assert "hidden_size 16 in the checkpoint, 32 asked" in err and "Traceback" not in err


def test_card_of_an_english_run_says_english(runs):
    root, _ = runs
    card = (root / "whole" / "model" / "README.md").read_text(encoding="utf-8")
    front = card.split("---")[1]
    assert "- en" in front and "- zh" not in front and "medical" not in front
    assert "Chinese" not in card and "clinical" not in card and "sample.conll" in card
    assert "custom" not in card


def test_evaluate_writes_beside_the_model_folder(runs, capsys):
    root, _ = runs
    model_dir = root / "whole" / "model"
    assert evaluate_main(["--model", str(model_dir), "--files", str(CONLL_SAMPLE), "--no_plots"]) == 0
    assert (root / "whole" / "model_eval" / "test_scores.json").is_file()
    from mamba_ner.hub import validate_checkpoint_dir

    assert validate_checkpoint_dir(model_dir).errors == []


def test_predict_keeps_every_conll_line_and_column(runs, tmp_path):
    root, _ = runs
    out = tmp_path / "tagged"
    assert cli_main(["predict", "--model", str(root / "whole" / "model"), str(FIX / "iob1_pos.conll"),
                     "--output", str(out), "--device", "cpu"]) == 0
    source = (FIX / "iob1_pos.conll").read_text(encoding="utf-8").splitlines()
    tagged = (out / "iob1_pos.conll").read_text(encoding="utf-8").splitlines()
    assert len(tagged) == len(source)
    for before, after in zip(source, tagged):
        if not before.strip() or before.startswith("-DOCSTART-"):
            assert after == before
        else:
            head, _, predicted = after.rpartition(" ")
            assert head == before and (predicted == "O" or predicted[:2] in ("B-", "I-"))
