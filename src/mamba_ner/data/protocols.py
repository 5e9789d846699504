"""The benchmark protocols of BENCHMARKS.md as DatasetDicts, built from `../shared/data`.

    dataset, report = load_protocol("ruijin", "../shared/data")

| name        | train                                            | validation            | test                      |
|-------------|--------------------------------------------------|-----------------------|---------------------------|
| `healthner` | ROCLING22 truth + ROCLING23 truth FT/SM/WA        | 10% of train, seed 42 | HealthNER test.json       |
| `rocling22` | HealthNER test.json + ROCLING23 truth FT/SM/WA    | 10% of train, seed 42 | ROCLING22 truth           |
| `ruijin`    | 363 docs sorted by name, index % 10 not in {0, 1} | index % 10 == 1       | index % 10 == 0           |
| `conll03`   | eng.train                                        | eng.testa             | eng.testb                 |

Train sentences whose tokens also occur in the test set are removed from train *before* the
validation split is drawn (so validation holds none either); the report itemises each one and
moves its entities from kept to dropped. The 10% validation split is
`features.split_sentences(..., {"train": 0.9, "validation": 0.1}, seed=42)`, i.e. the sentences
`Dataset.train_test_split(test_size=0.1, seed=42)` would pick. Tags are IOB2; the label list is
fixed from the protocol's entity types ("O", then B-/I- per type in sorted order).
"""

from __future__ import annotations

from pathlib import Path

from datasets import DatasetDict

from .brat import read_brat_documents
from .conll import read_conll
from .features import build_dataset_dict, labels_for_types, remove_duplicates, split_sentences
from .records import Sentence
from .report import ConversionReport
from .rocling import read_rocling

ROCLING_TYPES = ("BODY", "CHEM", "DISE", "DRUG", "EXAM", "INST", "SUPP", "SYMP", "TIME", "TREAT")
RUIJIN_TYPES = (
    "Amount",
    "Anatomy",
    "Disease",
    "Drug",
    "Duration",
    "Frequency",
    "Level",
    "Method",
    "Operation",
    "Reason",
    "SideEff",
    "Symptom",
    "Test",
    "Test_Value",
    "Treatment",
)
CONLL_TYPES = ("LOC", "MISC", "ORG", "PER")
ROCLING22_TRUTH = "rocling2022/ROCLING22_CHNER_truth.txt"
ROCLING23_TRUTH = [f"rocling2023/MultiNER-Health_truth_{genre}.txt" for genre in ("FT", "SM", "WA")]
HEALTHNER_TEST = "healthner/test.json"
PROTOCOLS = ("healthner", "rocling22", "ruijin", "conll03")


def load_protocol(
    name: str, data_dir: str | Path, *, seed: int = 42, brat_split: str = "sentence", max_chars: int | None = 512
) -> tuple[DatasetDict, ConversionReport]:
    """Build the `train` / `validation` / `test` DatasetDict of a benchmark protocol.

    Args:
        name (`str`): `"healthner"`, `"rocling22"`, `"ruijin"` or `"conll03"`.
        data_dir: the folder holding `rocling2022/`, `rocling2023/`, `healthner/`, `ruijin-brat/`, `conll2003/`.
        seed (`int`): seed of the 10% validation split (ROCLING protocols).
        brat_split, max_chars: how Ruijin documents are cut (see `read_brat_documents`).

    Returns:
        `(dataset, report)`; `report` covers every file read plus the duplicate removal.
    """
    data_dir = Path(data_dir)
    report = ConversionReport()
    if name in ("healthner", "rocling22"):
        pool_files = [ROCLING22_TRUTH, *ROCLING23_TRUTH] if name == "healthner" else [HEALTHNER_TEST, *ROCLING23_TRUTH]
        test_file = HEALTHNER_TEST if name == "healthner" else ROCLING22_TRUTH
        pool = _read(read_rocling, [data_dir / f for f in pool_files], report)
        test = _read(read_rocling, [data_dir / test_file], report)
        pool = remove_duplicates(pool, {"test": test}, report)
        splits = split_sentences(pool, {"train": 0.9, "validation": 0.1}, seed=seed)
        splits["test"] = test
        types = ROCLING_TYPES
    elif name == "ruijin":
        documents, brat_report = read_brat_documents(
            data_dir / "ruijin-brat" / "train", split=brat_split, max_chars=max_chars
        )
        report.update(brat_report)
        by_part: dict[str, list[Sentence]] = {"train": [], "validation": [], "test": []}
        for index, document in enumerate(documents):  # already sorted by file name
            part = "test" if index % 10 == 0 else "validation" if index % 10 == 1 else "train"
            by_part[part] += document.sentences
        by_part["train"] = remove_duplicates(by_part["train"], {"test": by_part["test"]}, report)
        splits, types = by_part, RUIJIN_TYPES
    elif name == "conll03":
        folder = data_dir / "conll2003"
        splits = {
            part: _read(read_conll, [folder / file], report)
            for part, file in (("train", "eng.train"), ("validation", "eng.testa"), ("test", "eng.testb"))
        }
        splits["train"] = remove_duplicates(splits["train"], {"test": splits["test"]}, report)
        types = CONLL_TYPES
    else:
        raise ValueError(f"unknown protocol {name!r}; expected one of {PROTOCOLS}")
    report.note(
        f"protocol {name}: " + ", ".join(f"{part} {len(sentences)} sentences" for part, sentences in splits.items())
    )
    report.check()
    return build_dataset_dict(splits, labels_for_types(types)), report


def _read(reader, paths, report: ConversionReport) -> list[Sentence]:
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (see BENCHMARKS.md for the expected layout of the data folder)")
    sentences, file_report = reader(paths)
    report.update(file_report)
    return sentences
