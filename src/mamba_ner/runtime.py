"""Process-level settings for the package's own command-line programs (training, evaluation, prediction).

`keep_freed_memory`: glibc's allocator hands freed blocks above its mmap threshold back to the kernel
and trims the heap top, so a model step that allocates and frees tensors of a few MiB pays page faults
again on every step (measured on the 2-core benchmark machine, bidirectional model, L=128, batch 32:
14,000-41,000 minor faults and 181-195 ms per inference step; 1-104 faults and 155-157 ms with blocks
kept; training 556 -> 521-536 ms). Keeping them trades that for a resident size that stays at its peak,
which is what a training or tagging process wants. It is what PyTorch's CPU performance guide gets
from jemalloc / tcmalloc, without a preloaded library. Library code never calls it; the programs do,
unless ``MAMBA_NER_KEEP_FREED_MEMORY=0``.

`cpu_name`: the processor's model name, which run summaries and benchmark headers report.
"""
from __future__ import annotations

import ctypes
import logging
import os
import sys

logger = logging.getLogger(__name__)

ENV_VAR = "MAMBA_NER_KEEP_FREED_MEMORY"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's largest mmap threshold on 64-bit (4 MiB * sizeof(long))
TRIM_THRESHOLD = 2**31 - 1  # never trim the heap top in practice


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks (up to 32 MiB each) and not to trim the heap, for this process.

    Returns:
        True when applied; False where it does not apply (not Linux/glibc, opted out with
        ``MAMBA_NER_KEEP_FREED_MEMORY=0``) or glibc refused a value.
    """
    if os.environ.get(ENV_VAR, "1").strip() == "0":
        logger.debug("%s=0: allocator left as it is", ENV_VAR)
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries
        return False
    applied = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    logger.debug("glibc keeps freed blocks up to %d MiB: %s", MMAP_THRESHOLD_MAX >> 20, applied)
    return applied


def cpu_name() -> str:
    """The processor's model name from /proc/cpuinfo (e.g. "AMD EPYC"), else what `platform` knows."""
    import platform

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), name)
    except OSError:
        return name
