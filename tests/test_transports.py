"""In-process transports: the console transport writes what it can, one message at a time."""

from __future__ import annotations

import io
import json
from pathlib import Path

import instrument
from instrument import ConsoleTransport, EventName, Track, analytics_scope
from instrument.transports._base import EncodedBatch


class Events(EventName):
    NOTE_WRITTEN = "Note Written"


class Note(Track, event=Events.NOTE_WRITTEN):
    text: str


def test_a_lone_surrogate_in_one_message_does_not_fail_the_console_batch(tmp_path: Path) -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8")  # strict: a lone surrogate cannot be written as is
    path = tmp_path / "events.jsonl"
    client = instrument.configure(transport=ConsoleTransport(stream=stream, path=path), batch_size=10)
    try:
        with analytics_scope(user_id="u\udc80"):
            instrument.track(Note(text="bad \udc80 text"))
        with analytics_scope(user_id="u2"):
            instrument.track(Note(text="fine é"))
        assert instrument.flush(5.0)
        stats = instrument.stats()
    finally:
        client.shutdown(1.0)

    assert (stats.sent, stats.dropped_total) == (2, 0)
    stream.flush()
    lines = raw.getvalue().decode("utf-8").splitlines()
    assert len(lines) == 2
    assert "\\udc80" in lines[0]
    assert "fine" in lines[1]
    written = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [m["properties"]["text"] for m in written] == ["bad \udc80 text", "fine é"]


def test_a_transport_without_a_spool_has_nowhere_to_spill() -> None:
    batch = EncodedBatch([b'{"messageId":"m1"}'], ["m1"])
    for transport in (
        ConsoleTransport(stream=io.StringIO()),
        instrument.SegmentTransport("wk", host="http://127.0.0.1:9"),
    ):
        assert transport.spills is False
        assert transport.spill(batch) is False
