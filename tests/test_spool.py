"""The durable spool: segments, acks, recovery of dead owners, corruption, the size bound, fork.

The spool's own behaviour is tested on the Spool object (real files, real flock, a real os.fork());
the end-to-end promise (kill -9, SIGTERM, several processes) in real processes against a real
loopback endpoint: see tests/test_spool_processes.py.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instrument import SpoolError, SpoolFullError
from instrument._spool import Spool, encode_batch, read_spool, scan

Batch = list[tuple[str, bytes]]


def make_batch(n: int, tag: str = "e") -> Batch:
    return [(str(uuid.uuid4()), f'{{"event":"{tag}","n":{i}}}'.encode()) for i in range(n)]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def recover_all(spool: Spool) -> list[Batch]:
    got = []
    for handle, batch in spool.recover():
        got.append(batch)
        spool.ack(handle)
    return got


# -- writing and acknowledging -------------------------------------------------------------------


def test_an_acked_batch_is_not_recovered_and_its_segment_goes_at_close(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    handle = spool.append(make_batch(3))
    assert len(segments(tmp_path)) == 1
    spool.ack(handle)
    assert spool.pending() == 0
    spool.close()
    assert segments(tmp_path) == []
    assert recover_all(Spool(tmp_path)) == []


def test_an_unacked_batch_is_recovered_by_the_next_spool_with_its_ids_and_bytes(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    kept, delivered = make_batch(5, "kept"), make_batch(4, "delivered")
    first.append(kept)
    first.ack(first.append(delivered))
    first.close()  # the owner is gone: its lock is free, the unacked batch stays
    assert len(segments(tmp_path)) == 1
    second = Spool(tmp_path)
    assert recover_all(second) == [kept]
    assert second.stats.recovered == 5
    assert segments(tmp_path) == [], "a taken-over segment goes once all of it is acked"
    assert recover_all(Spool(tmp_path)) == [], "nothing is recovered twice"


def test_a_recovered_batch_not_acked_stays_for_the_process_after(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    batch = make_batch(2)
    first.append(batch)
    first.close()
    second = Spool(tmp_path)
    assert [b for _, b in second.recover()] == [batch]
    second.close()  # died before the endpoint acknowledged it
    assert recover_all(Spool(tmp_path)) == [batch]


def test_a_live_owners_segment_is_never_taken_over(tmp_path: Path) -> None:
    owner = Spool(tmp_path)
    owner.append(make_batch(3))
    other = Spool(tmp_path)
    assert recover_all(other) == []
    assert len(segments(tmp_path)) == 1
    assert read_spool(tmp_path) == [], "read_spool only reads segments no live process holds"
    owner.close()
    assert len(read_spool(tmp_path)) == 3


def test_segments_rotate_and_fully_acked_ones_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=2_000)
    handles = [spool.append(make_batch(10)) for _ in range(6)]
    assert len(segments(tmp_path)) >= 3
    for handle in handles[:-1]:
        spool.ack(handle)
    assert len(segments(tmp_path)) == 1, "only the current segment is left"
    spool.close()
    remaining = Spool(tmp_path)
    assert [len(b) for b in recover_all(remaining)] == [10]


def test_acking_twice_or_after_close_does_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    handle = spool.append(make_batch(1))
    spool.ack(handle)
    spool.ack(handle)
    assert spool.stats.acked == 1
    spool.close()
    spool.ack(handle)
    with pytest.raises(SpoolError):
        spool.append(make_batch(1))


# -- the size bound ----------------------------------------------------------------------------


def test_a_batch_that_would_pass_max_bytes_is_refused_counted_and_not_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=3_000)
    spool.append(make_batch(20))
    size = sum(p.stat().st_size for p in segments(tmp_path))
    with pytest.raises(SpoolFullError) as raised:
        spool.append(make_batch(20))
    assert raised.value.count == 20
    assert spool.stats.full == 20
    assert sum(p.stat().st_size for p in segments(tmp_path)) == size


def test_the_bound_counts_other_processes_segments(tmp_path: Path) -> None:
    dead = Spool(tmp_path)
    dead.append(make_batch(20))
    dead.close()
    spool = Spool(tmp_path, max_bytes=3_000)
    with pytest.raises(SpoolFullError):
        spool.append(make_batch(20))


# -- corruption --------------------------------------------------------------------------------


def _spool_with(tmp_path: Path, batches: list[Batch]) -> Path:
    spool = Spool(tmp_path)
    for batch in batches:
        spool.append(batch)
    spool.close()
    (path,) = segments(tmp_path)
    return path


def test_a_torn_tail_is_skipped_reported_and_the_rest_delivered(tmp_path: Path) -> None:
    batches = [make_batch(10, f"b{k}") for k in range(3)]
    path = _spool_with(tmp_path, batches)
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # the writer died in the middle of the last record
    reported: list[Exception] = []
    spool = Spool(tmp_path)
    spool.report = reported.append
    got = recover_all(spool)
    assert [m for b in got for m in b] == [m for b in batches for m in b][:-1]
    assert len(reported) == 1
    assert isinstance(reported[0], SpoolError)
    assert "torn" in str(reported[0])
    assert spool.stats.corrupt_records == 1


def test_a_flipped_byte_loses_only_its_record(tmp_path: Path) -> None:
    batches = [make_batch(10, f"b{k}") for k in range(3)]
    path = _spool_with(tmp_path, batches)
    data = bytearray(path.read_bytes())
    victim = batches[1][4]
    offset = data.find(victim[1])
    data[offset + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    reported: list[Exception] = []
    spool = Spool(tmp_path)
    spool.report = reported.append
    got = [m for b in recover_all(spool) for m in b]
    assert got == [m for b in batches for m in b if m != victim]
    assert spool.stats.corrupt_records == 1
    assert len(reported) == 1


def test_garbage_in_the_spool_directory_is_skipped_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "junk.seg").write_bytes(b"not a segment at all" * 50)
    (tmp_path / "notes.txt").write_text("ignored")
    reported: list[Exception] = []
    spool = Spool(tmp_path)
    spool.report = reported.append
    assert recover_all(spool) == []
    assert len(reported) == 1
    assert (tmp_path / "notes.txt").exists()


@given(
    batches=st.lists(
        st.lists(st.tuples(st.uuids().map(str), st.binary(max_size=200)), min_size=1, max_size=5),
        max_size=5,
    )
)
def test_scan_reads_back_exactly_what_was_encoded(batches: list[Batch]) -> None:
    data = b"".join(encode_batch(seq, batch) for seq, batch in enumerate(batches, 1))
    result = scan(data)
    assert result.skipped_records == 0
    assert [result.batches[seq] for seq in sorted(result.batches)] == batches


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
@given(
    bodies=st.lists(st.binary(min_size=1, max_size=100), min_size=1, max_size=12),
    damage=st.lists(st.tuples(st.integers(min_value=0), st.binary(min_size=1, max_size=20)), max_size=3),
)
def test_any_damage_is_survived_and_every_untouched_record_comes_back(
    bodies: list[bytes], damage: list[tuple[int, bytes]]
) -> None:
    messages = [(f"id-{i}", body) for i, body in enumerate(bodies)]
    records = [encode_batch(i + 1, [message]) for i, message in enumerate(messages)]
    data = bytearray(b"".join(records))
    touched: list[tuple[int, int]] = []
    for where, junk in damage:
        at = where % len(data)
        data[at : at + len(junk)] = junk  # overwrite in place (may extend past the end)
        touched.append((at, at + len(junk)))
    result = scan(bytes(data))  # never raises
    got = [m for seq in sorted(result.batches) for m in result.batches[seq]]
    assert set(got) <= set(messages), "damage never makes up a message"
    start = 0
    for message, record in zip(messages, records, strict=True):
        end = start + len(record)
        if not any(a < end and start < b for a, b in touched):
            assert message in got
        start = end
    if not damage:
        assert got == messages
        assert result.skipped_records == 0


# -- fork, permissions, bad directories ----------------------------------------------------------


def test_a_forked_child_writes_its_own_segment_and_leaves_the_parents_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(make_batch(2, "parent"))
    (parent_segment,) = segments(tmp_path)
    before = parent_segment.read_bytes()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            spool.after_fork()
            spool.append(make_batch(3, "child"))
            # the parent still holds its segment: the child cannot take it over
            code = 0 if recover_all(spool) == [] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent_segment.read_bytes() == before
    assert len(segments(tmp_path)) == 2
    spool.close()
    tags = sorted(body for _, body in read_spool(tmp_path))
    assert sum(b'"child"' in t for t in tags) == 3
    assert sum(b'"parent"' in t for t in tags) == 2


def test_spool_files_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    Spool(directory).append(make_batch(1))
    assert directory.stat().st_mode & 0o777 == 0o700
    (path,) = segments(directory)
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_unwritable_directory_is_a_spool_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpoolError, match="not writable"):
        Spool(blocker / "spool")
