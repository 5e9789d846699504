"""The kernels' portable vector code: what machines without AVX-512 compile (and any build without
-march=native). On an AVX-512 machine the default build takes the intrinsics path, so the portable one
is built here with the second flag set of `scan_cpu_kernel` (-O3, no -march) and must pass the same
scan and conv tests in a separate process. The build is cached per flags like the default one.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mamba_ner.scan import cpu_kernel_available

ROOT = Path(__file__).resolve().parents[1]

RUNNER = """
import sys
import pytest
import mamba_ner.scan_cpu_kernel as kernel
kernel._FLAG_SETS = (["-O3", "-fopenmp"],)  # the portable flag set alone
ops = kernel.load_cpu_kernel()
assert ops is not None, "the portable build did not compile"
print("simd:", ops.simd())
assert ops.simd() == "generic", ops.simd()
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "tests/test_scan.py", "tests/test_scan_direction.py"]))
"""


def test_portable_build_passes_the_scan_tests():
    if not cpu_kernel_available():
        pytest.skip("the C++ kernel could not be compiled here")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    result = subprocess.run([sys.executable, "-c", RUNNER], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=1200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "simd: generic" in output and " passed" in output
