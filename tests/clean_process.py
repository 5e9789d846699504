"""Run a Python script in a fresh process where `mamba_ner` cannot be imported.

This is how a checkpoint is loaded on a machine without the package: only the code saved with it
(Hugging Face remote code) is available. Used by the remote-code, training and pipeline tests.
"""
import json
import os
import subprocess
import sys
import textwrap

BLOCK_PACKAGE = textwrap.dedent(
    """
    import sys
    class _BlockMambaNer:
        def find_spec(self, name, path=None, target=None):
            if name == "mamba_ner" or name.startswith("mamba_ner."):
                raise ImportError("mamba_ner is blocked in this process")
    sys.meta_path.insert(0, _BlockMambaNer())
    try:
        import mamba_ner  # noqa: F401
        raise SystemExit("mamba_ner should not be importable here")
    except ImportError:
        pass
    """
)


def run_without_package(script: str, args, tmp_path, timeout: int = 300):
    """Run `script` (source text) with `args`; return the JSON printed on its last stdout line."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    path = tmp_path / "clean_process_script.py"
    path.write_text(BLOCK_PACKAGE + textwrap.dedent(script))
    result = subprocess.run([sys.executable, str(path), *map(str, args)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
