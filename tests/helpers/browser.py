"""Debian's headless Chromium for tests, launched as ``tests/test_dashboard.py`` launches it.

``make chromium`` installs it; when it is missing the browser tests fail (CI must run them), they never skip.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["CHROMIUM", "dump_dom"]

CHROMIUM = "/usr/bin/chromium"


def dump_dom(url: str, *flags: str, budget_ms: int = 5000, timeout: float = 90.0) -> str:
    """The DOM of ``url`` once its scripts have had ``budget_ms`` of virtual time (navigations included), from a
    fresh profile: no cookies, no cache, no proxy."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make chromium` (installs Debian's chromium)"
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        done = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--no-proxy-server",
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                *flags,
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return done.stdout
