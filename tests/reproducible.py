"""Runs a module of this repository in a fresh interpreter with the kernels its shipped results were computed
with (``sandbox.common.REPRODUCIBLE_ENV``: torch's dispatch is fixed at import, so it needs a new process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sandbox.common import REPRODUCIBLE_ENV

REPO = Path(__file__).resolve().parents[1]


def run_module_reproducibly(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """``python -m <args>`` from the repository root under ``REPRODUCIBLE_ENV``; fails the test on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env={**os.environ, **REPRODUCIBLE_ENV},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done
