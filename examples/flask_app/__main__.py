"""Serve the example: ``python -m examples.flask_app``."""

from __future__ import annotations

import instrument

from .app import app

if __name__ == "__main__":
    instrument.configure()  # SEGMENT_WRITE_KEY, else events are validated and dropped (warned once)
    app.run(host="127.0.0.1", port=5000)
