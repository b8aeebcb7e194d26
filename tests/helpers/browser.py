"""Debian's headless Chromium for tests (the dashboard's and the browser-security tests).

``make chromium`` installs it; when it is missing the browser tests fail (CI must run them), they never skip.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["ARTIFACTS", "CHROMIUM", "chromium", "dump_dom", "screenshot"]

CHROMIUM = "/usr/bin/chromium"


def chromium(*args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with ``args`` from a fresh profile (no cookies, no cache, no proxy, no background
    networking: this machine reaches nothing else)."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make chromium` (installs Debian's chromium)"
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        return subprocess.run(
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
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(url: str, *flags: str, budget_ms: int = 5000, timeout: float = 90.0) -> str:
    """The DOM of ``url`` once its scripts have had ``budget_ms`` of virtual time (navigations included)."""
    return chromium(f"--virtual-time-budget={budget_ms}", *flags, "--dump-dom", url, timeout=timeout).stdout


ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
"""Where browser tests keep their screenshots (ignored by git; CI keeps them as artefacts)."""


def screenshot(url: str, name: str, *, width: int = 1400, height: int = 2200) -> Path:
    """A screenshot of ``url`` in ``test-artifacts/name``, replacing an older one; fails unless it shows something."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    shot.unlink(missing_ok=True)
    chromium(f"--window-size={width},{height}", "--hide-scrollbars", f"--screenshot={shot}", url)
    assert shot.stat().st_size > 10_000, f"{url}: the screenshot is nearly empty"
    return shot
