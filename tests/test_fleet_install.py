"""The README's install lines work as written (issue 14): the package is on no index, so they install from the
checkout or a wheel built from it, and an unsupported Python gets one clear line instead of pip's "no matching
distribution found for setuptools>=77"."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import stack

README = stack.ROOT / "README.md"


def _install_block() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Use it in your app"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def _python(version: str) -> str | None:
    pyenv = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python"))
    for cand in [*pyenv, Path(f"/usr/bin/python{version}")]:
        if cand.exists():
            return str(cand)
    return shutil.which(f"python{version}")


def test_the_version_check_line_accepts_this_python_and_names_the_range_to_another():
    guard = _install_block()[0]
    assert guard.startswith("python3 -c ")
    code = re.fullmatch(r"python3 -c '(.*)'", guard).group(1)
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stderr == ""
    old = _python("3.8")
    if old is None:
        pytest.skip("no Python 3.8 on this machine to try the refusal with")
    refused = subprocess.run([old, "-c", code], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "otel-openai-scopes needs Python 3.9 or newer, this is 3.8"


def test_the_wheel_line_builds_a_wheel_that_says_which_python_it_needs(tmp_path):
    lines = _install_block()
    assert "python3 -m pip install -e '.[cli]'" in lines
    wheel_line = next(line for line in lines if "pip wheel" in line)
    build = wheel_line.split(" && ")[0].replace("python3", sys.executable, 1).replace("-w dist", f"-w {tmp_path}")
    out = subprocess.run(build.split(), cwd=stack.ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    wheels = list(tmp_path.glob("otel_openai_scopes-*.whl"))
    assert len(wheels) == 1, "the install line's glob must match exactly one wheel"
    with zipfile.ZipFile(wheels[0]) as z:
        meta = next(z.read(n).decode() for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        assert "otel_openai_scopes/data/scope_map.tsv" in z.namelist()
    assert "Requires-Python: >=3.9" in meta
    assert "Provides-Extra: cli" in meta
