"""The test suite's sessions (nox), at both ends of what we support, each lane in its own virtual environment:

    .venv      the newest Python we claim (3.13) with the newest openai (3.x, httpx2)
    .venv-old  the oldest Python we claim (3.9) with openai 1.35.7, the release the affected users ran
               (needs httpx<0.28, pinned here only)

``bash scripts/test.sh`` installs nox and runs the default sessions: ``prepare`` (Debian's prometheus,
alertmanager and chromium when missing; the Collector and Jaeger built into the cache outside the repo, instant
once built), ``lint`` (ruff on every Python file, mypy --strict on src/), ``tests-3.13`` and ``tests-3.9``.
``bash scripts/test.sh --quick`` runs ``quick-3.13``: the quick tier (unit and integration, not slow) on the newest
lane; ``-s quick-3.9`` on the old one. Arguments after ``--`` go to pytest (``nox -s tests-3.9 -- -m cli -x``).

The lanes keep the same directories a developer uses (``.venv/bin/python -m pytest ...``): nox runs the commands,
the lanes are made here (``python -m venv`` + pip) and reinstalled only when pyproject.toml or a lane's pins
change (``nox -s venvs`` reinstalls both). Interpreters come from pyenv's versions directory first (a pyenv
shim on PATH answers for every version but runs only the selected ones), then ``pythonX.Y`` on PATH; under
CI=true a missing one fails the run, elsewhere the session is skipped with a warning.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
nox.options.sessions = ["prepare", "lint", "tests-3.13", "tests-3.9"]
nox.options.default_venv_backend = "none"

#: version -> (directory, pip arguments beyond the package with its test extra)
LANES = {
    "3.13": (".venv", ["--upgrade", "openai"]),
    "3.9": (".venv-old", ["openai==1.35.7", "httpx<0.28"]),
}
#: the quick tier (tests/support/tiers.py): unit and integration, without the tests that take seconds each
QUICK = "(unit or integration) and not slow"


def _version_of(python: str) -> str | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def pick_python(version: str) -> str | None:
    """An interpreter of ``version`` that runs: pyenv's own install (newest patch) first, then PATH."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    installed = sorted(glob.glob(f"{pyenv}/{version}.*/bin/python"),
                       key=lambda p: [int(x) for x in Path(p).parts[-3].split(".") if x.isdigit()], reverse=True)
    for candidate in [*installed, shutil.which(f"python{version}")]:
        if candidate and _version_of(candidate) == version:
            return candidate
    return None


def _lane_key(version: str) -> str:
    pins = " ".join(LANES[version][1])
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + pins.encode()).hexdigest()


def lane(session: nox.Session, version: str, refresh: bool = False) -> str:
    """The lane's python, its virtual environment made or brought up to date first."""
    directory, pins = LANES[version]
    venv = ROOT / directory
    python = venv / "bin" / "python"
    if python.exists() and _version_of(str(python)) != version:
        session.log(f"{directory} is not Python {version}: recreating")
        shutil.rmtree(venv)
    stamp = venv / ".lane-stamp"
    if python.exists() and not refresh and stamp.exists() and stamp.read_text() == _lane_key(version):
        return str(python)
    base = pick_python(version)
    if base is None:
        message = f"Python {version} not found (pyenv install {version}, or put python{version} on PATH)"
        if os.environ.get("CI"):
            session.error(message + ": CI is set, and the supported range must be tested at both ends")
        session.skip(message)
    if not python.exists():
        session.run(base, "-m", "venv", str(venv), external=True)
    session.run(str(python), "-m", "pip", "install", "-q", "--upgrade", "pip", external=True, silent=True)
    session.run(str(python), "-m", "pip", "install", "-q", "-e", ".[test]", *pins, external=True, silent=True)
    session.run(str(python), "-c", "import sys, openai; print('Python %d.%d.%d,' % sys.version_info[:3], "
                "'openai', openai.__version__)", external=True)
    stamp.write_text(_lane_key(version))
    return str(python)


def pytest(session: nox.Session, python: str, *selection: str) -> None:
    session.run(python, "-m", "pytest", "-q", *selection, *session.posargs, external=True)


@nox.session
def prepare(session: nox.Session) -> None:
    """What the tests run against: Debian's tools, the Collector and Jaeger (scripts/stack.sh build)."""
    env = {"PYTHONPATH": str(ROOT)}
    session.run(sys.executable, "-m", "tests.support.debian", "chromium", external=True, env=env)
    session.run("bash", "scripts/stack.sh", "build", external=True)


@nox.session
def venvs(session: nox.Session) -> None:
    """(Re)install both lanes: the newest openai again, the pins of pyproject.toml."""
    for version in LANES:
        lane(session, version, refresh=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on every Python file of the repository, mypy --strict on the runtime and tools."""
    python = lane(session, "3.13")
    session.run(python, "-m", "ruff", "check", ".", external=True)
    session.run(python, "-m", "mypy", "--strict", "src", external=True)


def _lane_sessions(version: str) -> None:
    @nox.session(name=f"tests-{version}")
    def tests(session: nox.Session) -> None:
        pytest(session, lane(session, version))

    @nox.session(name=f"quick-{version}")
    def quick(session: nox.Session) -> None:
        pytest(session, lane(session, version), "-m", QUICK)

    tests.__doc__ = f"Every tier on Python {version} ({LANES[version][0]})."
    quick.__doc__ = f"The quick tier on Python {version}: {QUICK}."


for _version in LANES:
    _lane_sessions(_version)
