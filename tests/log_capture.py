"""Every log record of every logger, at DEBUG: for tests that prove a secret never reaches a log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

#: Loggers set to DEBUG while capturing (``segment`` and ``urllib3`` log request bodies there).
LOGGERS = ("segment", "instrument", "urllib3", "requests")


class LogCapture(logging.Handler):
    """Keeps every record, and its formatted text, whatever the logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.texts.append(logging.Formatter("%(name)s %(levelname)s %(message)s").format(record))


@contextmanager
def capture_all_logs() -> Iterator[LogCapture]:
    """Put the root logger and ``LOGGERS`` at DEBUG and capture every record until the block ends."""
    handler = LogCapture()
    root = logging.getLogger()
    loggers = [root] + [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
