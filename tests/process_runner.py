"""Runs ``tests/process_models.py`` (a case, a start method) in a subprocess against a loopback endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from instrument.testing import SegmentEndpoint

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve().parent / "process_models.py"


def run_case(case: str, method: str, endpoint: SegmentEndpoint) -> subprocess.CompletedProcess[str]:
    """Run one case to its end (it must print ``done``); the caller then counts what the endpoint received."""
    env = {**os.environ, "ENDPOINT": endpoint.url, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("INSTRUMENT_STRICT", None)  # production behaviour: dropped and reported, not raised
    done = subprocess.run(
        [sys.executable, str(SCRIPT), case, method], env=env, capture_output=True, text=True, timeout=150, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "done", done.stderr[-3000:]
    return done


def wrong_user_messages(endpoint: SegmentEndpoint) -> list[dict[str, object]]:
    """The received messages sent under another user than the one their task was submitted under."""
    return [m for m in endpoint.messages if m.get("userId") != m["properties"]["expected"]]
