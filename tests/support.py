"""What only the tests need: a clear reason when a real part is missing, and the browser's settings.

Processes, databases and the sandbox server live in ``devtools``, shared with
the benchmarks.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

from devtools.processes import ROOT

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ARTIFACTS = ROOT / "tests" / "artifacts"


def need(ok: bool, reason: str) -> None:
    """Skip with a visible reason locally; under CI=true a missing part is a failure."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}: CI must provide it (see .ci/run)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).exists():
            return candidate
    return None


# How long a browser test waits for what a user would see, and how Debian's
# chromium is started (the flags keep it off this machine's closed network).
BROWSER_WAIT_MS = 20_000
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# What a shell keeps in the environment that settings never read.
_KEEP = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "VIRTUAL_ENV"}


def settings_under(monkeypatch, env: dict[str, str]) -> dict:
    """Run ``project/settings.py`` afresh with exactly ``env`` in the environment; its module globals.

    In-process (``runpy``), so a settings test costs milliseconds, not a
    Django start-up.  ``ImproperlyConfigured`` propagates.
    """
    for name in list(os.environ):
        if name not in _KEEP:
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "project" / "settings.py"))
