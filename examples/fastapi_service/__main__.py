"""Serve the example with uvicorn: ``python -m examples.fastapi_service [--port 8000]``."""

from __future__ import annotations

import argparse
import os

import uvicorn

import instrument

from .app import app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if os.environ.get("SEGMENT_WRITE_KEY"):
        instrument.configure()
    else:  # no key: print every event instead
        instrument.configure(transport=instrument.ConsoleTransport())
    uvicorn.run(app, host="127.0.0.1", port=args.port)
    instrument.shutdown()


if __name__ == "__main__":
    main()
