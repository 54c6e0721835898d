"""In-process transports: the console transport writes what it can, one message at a time."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import instrument
from instrument import ConsoleTransport, EventName, Track, analytics_scope
from instrument.transports._base import EncodedBatch, batches_of


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


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=60), max_size=40),
    limit=st.integers(min_value=60, max_value=400),
    refused=st.sets(st.integers(min_value=0, max_value=39)),
)
def test_batches_keep_every_message_in_order_each_under_the_limit(
    sizes: list[int], limit: int, refused: set[int]
) -> None:
    # Every message that could be encoded is in exactly one batch, in order, with its id; each batch's
    # joined bytes (messages and commas) stay within the limit; the rest went to `failed`, in order.
    items = list(range(len(sizes)))
    failed: list[int] = []

    def wire(i: int) -> tuple[bytes, str]:
        if i in refused:
            raise ValueError("refused")
        return b"x" * sizes[i], f"id-{i}"

    batches = list(batches_of(items, limit, wire, lambda item, error: failed.append(item)))
    kept = [i for i in items if i not in refused]
    assert failed == [i for i in items if i in refused]
    assert [mid for batch in batches for mid in batch.ids] == [f"id-{i}" for i in kept]
    assert [len(m) for batch in batches for m in batch.messages] == [sizes[i] for i in kept]
    for batch in batches:
        assert len(batch) >= 1
        assert batch.size <= limit or len(batch) == 1
        assert batch.size == sum(len(m) for m in batch.messages) + len(batch) - 1
    # As few batches as cutting in order allows: no batch could have taken the next batch's first message.
    for batch, after in itertools.pairwise(batches):
        assert batch.size + 1 + len(after.messages[0]) > limit
