"""In-process transports: memory (tests) and console/file (the demo and local development)."""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any, TextIO

from instrument.transports._base import Message, Transport


class MemoryTransport(Transport):
    """Keeps every message it is given, in order, in ``.messages`` (thread-safe). With ``records=True``
    it also keeps each message's record class (``.record_classes``, aligned with ``.messages``): what
    the testing kit needs to say which destinations an event goes to."""

    def __init__(self, *, records: bool = False) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self._classes: list[type] = []
        self.accepts_records = records

    def send_records(self, pairs: list[tuple[Any, Message]]) -> None:
        """Store the messages and their record classes."""
        with self._lock:
            self._messages.extend(m for _, m in pairs)
            self._classes.extend(type(r) for r, _ in pairs)
        self._report.sent(len(pairs))

    @property
    def record_classes(self) -> list[type]:
        """The record class of each stored message (``records=True``; else empty)."""
        with self._lock:
            return list(self._classes)

    def send(self, messages: list[Message]) -> None:
        """Store the messages."""
        with self._lock:
            self._messages.extend(messages)
        self._report.sent(len(messages))

    @property
    def messages(self) -> list[Message]:
        """A copy of the stored messages."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        """Forget the stored messages."""
        with self._lock:
            self._messages.clear()
            self._classes.clear()

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._messages = []
        self._classes = []


class ConsoleTransport(Transport):
    """Prints one readable line per message to ``stream`` (stdout by default) and, when ``path`` is
    given, appends each message as a JSON line to that file. Raises OSError if ``path`` cannot be opened.
    """

    def __init__(self, stream: TextIO | None = None, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self._stream = stream
        self._path = os.fspath(path) if path is not None else None
        self._lock = threading.Lock()
        if self._path is not None:
            parent = os.path.dirname(self._path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            with open(self._path, "a", encoding="utf-8"):
                pass

    def send(self, messages: list[Message]) -> None:
        """Print and (optionally) append the messages."""
        stream = self._stream or sys.stdout
        with self._lock:
            for message in messages:
                line = _describe(message) + "\n"
                try:
                    stream.write(line)
                except UnicodeEncodeError:
                    # A lone surrogate (or a character the stream's encoding lacks) in one message:
                    # write it escaped rather than fail the whole batch.
                    stream.write(line.encode("ascii", "backslashreplace").decode("ascii"))
            stream.flush()
            if self._path is not None:
                with open(self._path, "a", encoding="utf-8") as out:
                    for message in messages:
                        out.write(json.dumps(message, sort_keys=True) + "\n")
        self._report.sent(len(messages))

    def after_fork(self) -> None:
        self._lock = threading.Lock()


_SHOWN = 60  # characters of a long value shown on the console (the file has everything)


def _short(values: dict[str, object]) -> str:
    shown = {
        k: (v if not isinstance(v, str) or len(v) <= _SHOWN else f"{v[:_SHOWN]}... ({len(v)} chars)")
        for k, v in values.items()
    }
    return json.dumps(shown)


def _describe(message: Message) -> str:
    who = f"userId={message['userId']}" if "userId" in message else f"anonymousId={message.get('anonymousId')}"
    kind = message.get("type")
    if kind == "identify":
        return f"[analytics] identify {who} traits={_short(message['traits'])}"
    if kind == "group":
        return f"[analytics] group {message.get('groupId')!r} {who} traits={_short(message.get('traits', {}))}"
    if kind == "alias":
        return f"[analytics] alias {message.get('previousId')!r} -> {who}"
    if kind in ("page", "screen"):
        return f"[analytics] {kind} {message.get('name')!r} {who} properties={_short(message.get('properties', {}))}"
    return f"[analytics] track {message.get('event')!r} {who} properties={_short(message.get('properties', {}))}"
