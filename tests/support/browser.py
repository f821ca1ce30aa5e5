"""Headless Chromium for the HTML report's tests: found, or a skip (a failure under CI), and its flags."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: screenshots the browser tests keep (uploaded by CI, looked at by people)
ARTIFACTS = ROOT / "test-artifacts"


def chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed (apt-get install -y chromium); CI must run the browser test")
    if found is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


def browser_flags(tmp_path: Path, size: str) -> list[str]:
    """Headless Chromium with its own profile, nothing fetched, console messages on stderr."""
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
            f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={size}"]
