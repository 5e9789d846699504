"""`mamba_ner.runtime.keep_freed_memory`: the mallopt calls, the opt-out, and the real call on glibc."""
import ctypes
import subprocess
import sys

import pytest

from mamba_ner import runtime


class FakeLibc:
    def __init__(self, answer=1):
        self.calls, self.answer = [], answer

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return self.answer


@pytest.fixture
def fake_libc(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(runtime.sys, "platform", "linux")
    monkeypatch.setattr(runtime.ctypes, "CDLL", lambda name: libc if name == "libc.so.6" else None)
    monkeypatch.delenv(runtime.ENV_VAR, raising=False)
    return libc


def test_sets_the_mmap_and_trim_thresholds(fake_libc):
    assert runtime.keep_freed_memory() is True
    assert fake_libc.calls == [(-3, 32 << 20), (-1, 2**31 - 1)]


def test_opt_out_and_other_platforms_change_nothing(fake_libc, monkeypatch):
    monkeypatch.setenv(runtime.ENV_VAR, "0")
    assert runtime.keep_freed_memory() is False
    monkeypatch.delenv(runtime.ENV_VAR)
    monkeypatch.setattr(runtime.sys, "platform", "darwin")
    assert runtime.keep_freed_memory() is False
    assert fake_libc.calls == []


def test_refused_value_or_missing_libc_gives_false(fake_libc, monkeypatch):
    fake_libc.answer = 0
    assert runtime.keep_freed_memory() is False

    def no_libc(name):
        raise OSError("libc.so.6: cannot open shared object file")

    monkeypatch.setattr(runtime.ctypes, "CDLL", no_libc)
    assert runtime.keep_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_real_call_on_this_machine():
    try:
        ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        pytest.skip("no glibc here")
    out = subprocess.run([sys.executable, "-c", "from mamba_ner.runtime import keep_freed_memory as k; print(k())"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr[-2000:]
