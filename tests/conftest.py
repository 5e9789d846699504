"""Shared test setup: never touch the network, and find the shared real data when present."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# Without a GPU, the Triton CRF kernels (crf_triton.py) are tested in Triton's interpreter on CPU
# tensors. The flag is read when the kernels are defined, i.e. when mamba_ner.crf is first imported,
# so it is set here, before any test module imports the package. Nothing else changes: `auto` never
# picks Triton for CPU tensors.
if "TRITON_INTERPRET" not in os.environ:
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests check behaviour, not speed: no per-example deadline (on a loaded 2-core machine a
# 200 ms deadline failed tests that were correct).
settings.register_profile("mamba-ner", deadline=None)
settings.load_profile("mamba-ner")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MAMBA_NER_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def shared_data():
    """Path to ../shared/data; skips the test with a clear message when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set MAMBA_NER_SHARED_DATA to point at it)")
    return SHARED_DATA


@pytest.fixture
def fixtures_dir():
    return FIXTURES


@pytest.fixture(params=["torch", "cpp"])
def fast_scan(request):
    """The two fast CPU paths of the selective scan (the C++ one skips where it cannot compile)."""
    from mamba_ner.scan import cpu_kernel_available, selective_scan_cpp, selective_scan_torch

    if request.param == "cpp":
        if not cpu_kernel_available():
            pytest.skip("the C++ kernel could not be compiled here")
        return selective_scan_cpp
    return selective_scan_torch
