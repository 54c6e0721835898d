"""Run the `instrument` command (`python -m instrument`) in a subprocess, as a user's shell would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_instrument(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m instrument ARGV`` in ``cwd`` (the repository by default), bounded to 60 s; text output."""
    return subprocess.run(
        [sys.executable, "-m", "instrument", *argv], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
