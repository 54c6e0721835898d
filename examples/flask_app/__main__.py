"""Serve the example: ``python -m examples.flask_app``."""

from __future__ import annotations

import os

import instrument

from .app import app

if __name__ == "__main__":
    if os.environ.get("SEGMENT_WRITE_KEY"):
        instrument.configure()
    else:  # no key: print every event instead
        instrument.configure(transport=instrument.ConsoleTransport())
    app.run(host="127.0.0.1", port=5000)
