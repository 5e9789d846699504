"""The hand-made sample corpora in examples/sample_data: readable without repairs, labelled with
every ROCLING type, and exactly what build_samples.py writes."""

import filecmp
import importlib.util
from pathlib import Path

import pytest

from mamba_ner.data import read_files

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "sample_data"
ROCLING_TYPES = {"BODY", "SYMP", "INST", "EXAM", "CHEM", "DISE", "DRUG", "SUPP", "TREAT", "TIME"}


@pytest.mark.parametrize(
    "fmt, paths",
    [
        ("rocling", ["rocling/train.txt"]),
        ("rocling", ["rocling/dev.txt"]),
        ("rocling", ["rocling/test.txt"]),
        ("brat", ["brat"]),
        ("conll", ["conll/sample.conll"]),
    ],
)
def test_samples_read_cleanly(fmt, paths):
    sentences, report = read_files(fmt, [SAMPLES / p for p in paths])
    report.check()
    assert sentences and report.totals["read"] == report.totals["kept"] > 0
    assert report.totals["dropped"] == report.totals["repaired"] == 0
    assert not report.items_for("warning")


def test_rocling_sample_size_and_types():
    sizes, types = {}, {}
    for name in ("train", "dev", "test"):
        sentences, report = read_files("rocling", [SAMPLES / "rocling" / f"{name}.txt"])
        sizes[name], types[name] = len(sentences), set(report.read)
    assert sum(sizes.values()) >= 60 and sizes["train"] >= 40
    assert types["train"] == ROCLING_TYPES
    assert types["dev"] <= ROCLING_TYPES and types["test"] <= ROCLING_TYPES


def test_files_are_what_the_script_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("build_samples", SAMPLES / "build_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    shipped = sorted(
        p.relative_to(SAMPLES)
        for p in SAMPLES.rglob("*")
        if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts
    )
    assert written == shipped
    assert all(filecmp.cmp(tmp_path / p, SAMPLES / p, shallow=False) for p in written)
