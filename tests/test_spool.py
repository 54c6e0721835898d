"""The durable spool: segments, acks, recovery of dead owners, corruption, the size bound, fork.

The spool's own behaviour is tested on the Spool object (real files, real flock, a real os.fork());
the end-to-end promise (kill -9, SIGTERM, several processes) in real processes against a real
loopback endpoint: see tests/test_spool_processes.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import instrument
from instrument import ConfigurationError, EventName, Spool, SpoolError, SpoolFullError, Track, analytics_scope
from instrument._spool import encode_batch, read_spool, scan
from instrument.testing import SegmentEndpoint
from instrument.transports._base import EncodedBatch

Batch = list[tuple[str, bytes]]


class Events(EventName):
    BEAT_SENT = "Beat Sent"


class Beat(Track, event=Events.BEAT_SENT):
    n: int


def make_batch(n: int, tag: str = "e") -> Batch:
    return [(str(uuid.uuid4()), f'{{"event":"{tag}","n":{i}}}'.encode()) for i in range(n)]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def recover_all(spool: Spool) -> list[Batch]:
    got = []
    for batch in spool.recover():
        assert batch.recovered
        got.append(list(zip(batch.ids, batch.messages, strict=True)))
        spool.ack(batch.handle)
    return got


# -- writing and acknowledging -------------------------------------------------------------------


def test_an_acked_batch_is_not_recovered_and_its_segment_goes_at_close(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    handle = spool.write(make_batch(3))
    assert len(segments(tmp_path)) == 1
    spool.ack(handle)
    assert spool.pending() == 0
    spool.close()
    assert segments(tmp_path) == []
    assert recover_all(Spool(tmp_path)) == []


def test_an_unacked_batch_is_recovered_by_the_next_spool_with_its_ids_and_bytes(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    kept, delivered = make_batch(5, "kept"), make_batch(4, "delivered")
    first.write(kept)
    first.ack(first.write(delivered))
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
    first.write(batch)
    first.close()
    second = Spool(tmp_path)
    assert [list(zip(b.ids, b.messages, strict=True)) for b in second.recover()] == [batch]
    second.close()  # died before the endpoint acknowledged it
    assert recover_all(Spool(tmp_path)) == [batch]


def test_a_live_owners_segment_is_never_taken_over(tmp_path: Path) -> None:
    owner = Spool(tmp_path)
    owner.write(make_batch(3))
    other = Spool(tmp_path)
    assert recover_all(other) == []
    assert len(segments(tmp_path)) == 1
    assert read_spool(tmp_path) == [], "read_spool only reads segments no live process holds"
    owner.close()
    assert len(read_spool(tmp_path)) == 3


def test_segments_rotate_and_fully_acked_ones_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=2_000)
    handles = [spool.write(make_batch(10)) for _ in range(6)]
    assert len(segments(tmp_path)) >= 3
    for handle in handles[:-1]:
        spool.ack(handle)
    assert len(segments(tmp_path)) == 1, "only the current segment is left"
    spool.close()
    remaining = Spool(tmp_path)
    assert [len(b) for b in recover_all(remaining)] == [10]


def test_acking_twice_or_after_close_does_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    handle = spool.write(make_batch(1))
    spool.ack(handle)
    spool.ack(handle)
    assert spool.stats.acked == 1
    spool.close()
    spool.ack(handle)
    with pytest.raises(SpoolError):
        spool.write(make_batch(1))


# -- the size bound ----------------------------------------------------------------------------


def test_a_batch_that_would_pass_max_bytes_is_refused_counted_and_not_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=3_000)
    spool.write(make_batch(20))
    size = sum(p.stat().st_size for p in segments(tmp_path))
    with pytest.raises(SpoolFullError) as raised:
        spool.write(make_batch(20))
    assert raised.value.count == 20
    assert sum(p.stat().st_size for p in segments(tmp_path)) == size


def test_append_never_raises_a_batch_it_cannot_keep_is_counted_and_reported(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=3_000)
    reported: list[Exception] = []
    spool.report = reported.append
    kept = make_batch(20)
    assert spool.append(EncodedBatch([m for _, m in kept], [i for i, _ in kept])) is not None
    refused = make_batch(20)
    assert spool.append(EncodedBatch([m for _, m in refused], [i for i, _ in refused])) is None
    assert spool.stats.unspooled == 20
    assert spool.stats.appended == 20
    assert len(reported) == 1
    assert isinstance(reported[0], SpoolFullError)


def test_the_bound_counts_other_processes_segments(tmp_path: Path) -> None:
    dead = Spool(tmp_path)
    dead.write(make_batch(20))
    dead.close()
    spool = Spool(tmp_path, max_bytes=3_000)
    with pytest.raises(SpoolFullError):
        spool.write(make_batch(20))


# -- corruption --------------------------------------------------------------------------------


def _spool_with(tmp_path: Path, batches: list[Batch]) -> Path:
    spool = Spool(tmp_path)
    for batch in batches:
        spool.write(batch)
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
    spool.write(make_batch(2, "parent"))
    (parent_segment,) = segments(tmp_path)
    before = parent_segment.read_bytes()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            spool.after_fork()
            spool.write(make_batch(3, "child"))
            # the parent still holds its segment: the child cannot take it over
            code = 0 if recover_all(spool) == [] and spool.stats.appended == 3 else 2
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
    Spool(directory).write(make_batch(1))
    assert directory.stat().st_mode & 0o777 == 0o700
    (path,) = segments(directory)
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_unwritable_directory_is_a_spool_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpoolError, match="not writable"):
        Spool(blocker / "spool")


def read_spool_now(directory: Path) -> list[tuple[str, bytes]]:
    """Every unacknowledged message in the spool's segments, the live owner's too (a test's look inside)."""
    found = []
    for path in segments(directory):
        result = scan(path.read_bytes())
        found += [m for seq, batch in result.batches.items() if seq not in result.acked for m in batch]
    return found


# -- real processes, a real endpoint ---------------------------------------------------------------

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The child's flush interval, and how long it waits after recording: the documented window is one
#: flush interval after track() returns; it waits ten, for a loaded machine.
INTERVAL = 0.1
WINDOW = 10 * INTERVAL

CHILD_HEAD = f"""
import json, os, signal, sys, time
import instrument
from instrument import EventName, Track, analytics_scope

class Events(EventName):
    BEAT_SENT = "Beat Sent"

class Beat(Track, event=Events.BEAT_SENT):
    n: int

URL, SPOOL, TAG, COUNT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
INTERVAL, WINDOW = {INTERVAL}, {WINDOW}

def record():
    with analytics_scope(user_id=TAG):
        for n in range(COUNT):
            assert instrument.track(Beat(n=n)).ok
"""

RECORD_THEN_WAIT = """
instrument.configure("wk-spool", host=URL, spool=SPOOL, flush_interval=INTERVAL, timeout=0.5, on_error=lambda e: None)
record()
time.sleep(WINDOW)  # the documented window, not delivery: the endpoint is down
print("recorded", os.getpid(), flush=True)
time.sleep(120)  # until killed
"""

DELIVER = """
instrument.configure("wk-spool", host=URL, spool=SPOOL, flush_interval=INTERVAL, timeout=2.0)
delivered = instrument.flush(30.0)
print(json.dumps({"delivered": delivered, "recovered": instrument.stats().recovered}), flush=True)
"""


def child(tmp_path: Path, body: str, url: str, spool: Path, tag: str = "p1", count: int = 0) -> subprocess.Popen[str]:
    script = tmp_path / f"child-{uuid.uuid4().hex[:8]}.py"
    script.write_text(CHILD_HEAD + body)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("INSTRUMENT_STRICT", None)
    return subprocess.Popen(
        [sys.executable, str(script), url, str(spool), tag, str(count)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


_lines: dict[int, queue.Queue[str]] = {}


def read_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The child's next stdout line, or fail (killing it) after ``timeout``; read by a thread, so
    lines that arrive together are never left waiting in a buffer."""
    lines = _lines.get(proc.pid)
    if lines is None:
        lines = _lines[proc.pid] = queue.Queue()
        stream = proc.stdout
        assert stream is not None

        def pump(into: queue.Queue[str] = lines) -> None:
            with stream:
                for line in stream:
                    into.put(line)
            into.put("")  # end of output

        threading.Thread(target=pump, daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        pytest.fail(f"the child said nothing within {timeout} s; stderr: {proc.communicate(timeout=10)[1]}")
    if not line:
        proc.wait(10)
        assert proc.stderr is not None
        pytest.fail(f"the child exited ({proc.returncode}); stderr: {proc.stderr.read()}")
    return line


def kill(proc: subprocess.Popen[str], signum: int) -> None:
    proc.send_signal(signum)
    try:
        proc.wait(timeout=20)
    finally:
        if proc.returncode is None:  # pragma: no cover - a test failure path
            proc.kill()
    assert proc.returncode == -signum
    for stream in (proc.stdin, proc.stderr):  # stdout is the line reader's
        if stream is not None:
            stream.close()


def deliver(tmp_path: Path, url: str, spool: Path) -> dict[str, object]:
    proc = child(tmp_path, DELIVER, url, spool)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def assert_delivered_once(endpoint: SegmentEndpoint, spooled: list[tuple[str, bytes]], tags: dict[str, int]) -> None:
    ids = endpoint.message_ids
    assert len(ids) == len(set(ids)), "no message was sent twice"
    assert sorted(ids) == sorted(message_id for message_id, _ in spooled), "sent with their original messageIds"
    by_tag: dict[str, list[int]] = {}
    for message in endpoint.messages:
        by_tag.setdefault(message["userId"], []).append(message["properties"]["n"])
    assert {tag: sorted(ns) for tag, ns in by_tag.items()} == {tag: list(range(n)) for tag, n in tags.items()}


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("signum", "handler"),
    [(signal.SIGKILL, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=["kill-9", "sigterm", "sigterm-with-handler"],
)
def test_events_of_a_killed_process_are_delivered_once_by_the_next_one(
    tmp_path: Path, endpoint: SegmentEndpoint, spool_dir: Path, signum: int, handler: bool
) -> None:
    endpoint.stop()  # connection refused on the same port until the next process
    body = RECORD_THEN_WAIT
    if handler:  # it tries to deliver for 0.5 s, then dies by SIGTERM all the same
        body = body.replace("record()\n", "instrument.install_sigterm_handler(timeout=0.5)\nrecord()\n")
    proc = child(tmp_path, body, endpoint.url, spool_dir, "p1", 1000)
    assert read_line(proc).startswith("recorded")
    kill(proc, signum)
    spooled = read_spool(spool_dir)
    assert len(spooled) == 1000
    endpoint.start()

    result = deliver(tmp_path, endpoint.url, spool_dir)

    assert result == {"delivered": True, "recovered": 1000}
    assert_delivered_once(endpoint, spooled, {"p1": 1000})
    assert segments(spool_dir) == [], "every acknowledged batch is removed"


@pytest.mark.timeout(90)
def test_events_of_a_process_that_called_os_exit_are_delivered_by_the_next_one(
    tmp_path: Path, endpoint: SegmentEndpoint, spool_dir: Path
) -> None:
    endpoint.stop()
    body = RECORD_THEN_WAIT.replace("time.sleep(120)  # until killed", "os._exit(0)  # no atexit, no flush")
    proc = child(tmp_path, body, endpoint.url, spool_dir, "p1", 600)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    spooled = read_spool(spool_dir)
    endpoint.start()

    result = deliver(tmp_path, endpoint.url, spool_dir)

    assert result == {"delivered": True, "recovered": 600}
    assert_delivered_once(endpoint, spooled, {"p1": 600})


@pytest.mark.timeout(90)
def test_sigterm_with_the_handler_delivers_and_leaves_an_empty_spool(
    tmp_path: Path, endpoint: SegmentEndpoint, spool_dir: Path
) -> None:
    body = RECORD_THEN_WAIT.replace(
        "record()\n", "instrument.install_sigterm_handler(timeout=20.0)\nrecord()\n"
    ).replace("flush_interval=INTERVAL", "flush_interval=60.0")  # nothing is sent before the signal
    proc = child(tmp_path, body, endpoint.url, spool_dir, "p1", 1000)
    assert read_line(proc).startswith("recorded")
    kill(proc, signal.SIGTERM)

    assert endpoint.unique_message_ids == endpoint.message_count == 1000
    assert read_spool(spool_dir) == [], "everything delivered was acknowledged before the process died"


@pytest.mark.timeout(90)
def test_a_long_outage_does_not_leave_accepted_events_off_disk(
    tmp_path: Path, endpoint: SegmentEndpoint, spool_dir: Path
) -> None:
    # More events than the sender holds in memory (10,000): without a spool the worker would wait
    # for room, leaving the rest in the dispatcher's queue, accepted but not on disk.
    endpoint.stop()
    body = RECORD_THEN_WAIT.replace(
        "record()\n",
        "with analytics_scope(user_id=TAG):\n"
        "    for n in range(COUNT):\n"
        "        assert instrument.track(Beat(n=n)).ok\n"
        "        if n % 2000 == 1999:\n"
        "            time.sleep(INTERVAL)  # paced: the dispatcher's queue never fills\n",
    )
    proc = child(tmp_path, body, endpoint.url, spool_dir, "long", 14_000)
    assert read_line(proc, timeout=60).startswith("recorded")
    kill(proc, signal.SIGKILL)
    spooled = read_spool(spool_dir)
    assert len(spooled) == 14_000
    endpoint.start()

    result = deliver(tmp_path, endpoint.url, spool_dir)

    assert result == {"delivered": True, "recovered": 14_000}
    assert_delivered_once(endpoint, spooled, {"long": 14_000})


@pytest.mark.timeout(90)
def test_processes_sharing_a_spool_forked_or_not_are_all_recovered_once(
    tmp_path: Path, endpoint: SegmentEndpoint, spool_dir: Path
) -> None:
    forking = RECORD_THEN_WAIT.replace(
        "record()\n",
        "pid = os.fork()\nTAG = TAG + ('-child' if pid == 0 else '-parent')\nrecord()\n",
    )
    endpoint.stop()
    procs = [child(tmp_path, forking, endpoint.url, spool_dir, "a", 500)]
    procs.append(child(tmp_path, RECORD_THEN_WAIT, endpoint.url, spool_dir, "b", 700))
    lines = [read_line(procs[0]), read_line(procs[0])]
    assert all(line.startswith("recorded ") for line in lines), lines
    pids = [int(line.split()[1]) for line in lines]
    assert read_line(procs[1]).startswith("recorded")
    assert len(segments(spool_dir)) == 3, "one segment per process, the forked child's its own"
    forked = next(pid for pid in pids if pid != procs[0].pid)
    os.kill(forked, signal.SIGKILL)
    kill(procs[0], signal.SIGKILL)
    kill(procs[1], signal.SIGKILL)
    spooled = read_spool(spool_dir)
    endpoint.start()

    result = deliver(tmp_path, endpoint.url, spool_dir)

    assert result == {"delivered": True, "recovered": 1700}
    assert_delivered_once(endpoint, spooled, {"a-parent": 500, "a-child": 500, "b": 700})
    assert segments(spool_dir) == []


@pytest.mark.timeout(90)
def test_a_corrupt_record_is_skipped_and_reported_and_the_rest_delivered(
    tmp_path: Path, endpoint: SegmentEndpoint, spool_dir: Path, configure: Callable[..., Any], errors: list[Any]
) -> None:
    endpoint.stop()
    proc = child(tmp_path, RECORD_THEN_WAIT, endpoint.url, spool_dir, "p1", 300)
    assert read_line(proc).startswith("recorded")
    kill(proc, signal.SIGKILL)
    (path,) = segments(spool_dir)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x55  # one flipped byte in the middle of some record
    path.write_bytes(bytes(data[:-5]))  # and a torn tail
    spooled = read_spool(spool_dir)
    assert len(spooled) == 298
    endpoint.start()

    configure(spool=spool_dir, timeout=2.0)
    assert instrument.flush(30.0)

    assert sorted(endpoint.message_ids) == sorted(message_id for message_id, _ in spooled)
    assert instrument.stats().recovered == 298
    (error,) = [e for e in errors if isinstance(e, SpoolError)]
    assert "skipped 2 corrupt or torn record span(s)" in str(error)


def test_a_full_spool_sends_without_keeping_and_counts_and_reports(
    endpoint: SegmentEndpoint, spool_dir: Path, configure: Callable[..., Any], errors: list[Any]
) -> None:
    endpoint.stop()
    client = configure(spool=spool_dir, spool_max_bytes=20_000, batch_size=50, flush_interval=30.0)
    with analytics_scope(user_id="full"):
        for n in range(400):
            assert instrument.track(Beat(n=n)).ok
    assert not instrument.flush(0.5)  # hands everything to the sender; the endpoint is down

    unspooled = client.spool.stats.unspooled
    assert 0 < unspooled < 400
    assert unspooled % 50 == 0, "whole batches, the newest"
    full = [e for e in errors if isinstance(e, SpoolFullError)]
    assert sum(e.count for e in full) == unspooled
    assert sum(p.stat().st_size for p in segments(spool_dir)) <= 20_000
    assert len(read_spool_now(spool_dir)) == 400 - unspooled

    endpoint.start()  # the process lived: every event is delivered, kept or not
    assert instrument.flush(30.0)
    assert endpoint.unique_message_ids == 400


def test_without_a_spool_nothing_is_written(
    endpoint: SegmentEndpoint, tmp_path: Path, configure: Callable[..., Any]
) -> None:
    configure()
    with analytics_scope(user_id="plain"):
        assert instrument.track(Beat(n=1)).ok
    assert instrument.flush(10.0)
    assert list(tmp_path.iterdir()) == []


def test_delivered_events_leave_an_empty_spool(
    endpoint: SegmentEndpoint, spool_dir: Path, configure: Callable[..., Any]
) -> None:
    configure(spool=spool_dir)
    with analytics_scope(user_id="ok"):
        for n in range(250):
            assert instrument.track(Beat(n=n)).ok
    assert instrument.flush(10.0)
    assert endpoint.unique_message_ids == 250
    instrument.shutdown(5.0)
    assert segments(spool_dir) == []
    assert read_spool(spool_dir) == []


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"spool": 5}, "spool must be a directory path or a Spool"),
        ({"spool": "x", "spool_max_bytes": 0}, "spool_max_bytes must be a positive int"),
        ({"spool": "x", "spool_max_bytes": True}, "spool_max_bytes must be a positive int"),
        ({"spool": "x", "transport": instrument.MemoryTransport()}, "spool applies to the Segment transport"),
    ],
)
def test_configure_refuses_a_bad_spool(tmp_path: Path, options: dict[str, Any], match: str) -> None:
    if options.get("spool") == "x":
        options["spool"] = tmp_path / "s"
    write_key = None if "transport" in options else "wk"
    with pytest.raises(ConfigurationError, match=match):
        instrument.configure(write_key, **options)


def test_configure_refuses_an_unwritable_spool(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigurationError, match="not writable"):
        instrument.configure("wk", spool=tmp_path / "file" / "spool")


@pytest.mark.timeout(90)
def test_what_was_acknowledged_before_the_kill_is_not_sent_again(
    tmp_path: Path, endpoint: SegmentEndpoint, spool_dir: Path
) -> None:
    body = """
instrument.configure("wk-spool", host=URL, spool=SPOOL, flush_interval=INTERVAL, timeout=0.5, on_error=lambda e: None)
record()
assert instrument.flush(20.0)
print("delivered", flush=True)
sys.stdin.readline()  # the endpoint goes down
TAG = "after"
record()
time.sleep(WINDOW)
print("recorded", flush=True)
time.sleep(120)
"""
    proc = child(tmp_path, body, endpoint.url, spool_dir, "before", 400)
    assert read_line(proc).startswith("delivered")
    endpoint.stop()
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert read_line(proc).startswith("recorded")
    kill(proc, signal.SIGKILL)
    spooled = read_spool(spool_dir)
    assert len(spooled) == 400
    endpoint.start()

    result = deliver(tmp_path, endpoint.url, spool_dir)

    assert result == {"delivered": True, "recovered": 400}
    ids = endpoint.message_ids
    assert len(ids) == len(set(ids)) == 800
    assert sorted(m["properties"]["n"] for m in endpoint.messages if m["userId"] == "after") == list(range(400))


def test_a_segment_being_recovered_is_not_taken_by_a_second_recoverer(tmp_path: Path) -> None:
    dead = Spool(tmp_path)
    batch = make_batch(3)
    dead.write(batch)
    dead.close()
    first, second = Spool(tmp_path), Spool(tmp_path)
    taken = list(first.recover())  # taken over, not yet acknowledged
    assert [list(zip(b.ids, b.messages, strict=True)) for b in taken] == [batch]
    assert list(second.recover()) == []
    for b in taken:
        first.ack(b.handle)
    assert list(second.recover()) == []
    assert segments(tmp_path) == []


def test_with_fsync_every_batch_is_kept_and_recovered(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync=True, segment_bytes=1_000)
    batches = [make_batch(5, f"s{k}") for k in range(4)]
    for batch in batches:
        spool.write(batch)
    spool.close()
    assert recover_all(Spool(tmp_path)) == batches


def test_a_disk_that_refuses_a_write_is_reported_and_the_batch_goes_on(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    reported: list[Exception] = []
    spool.report = reported.append
    assert spool.write(make_batch(1)) is not None
    (path,) = segments(tmp_path)
    segment = spool._current
    assert segment is not None
    os.close(segment.fd)
    segment.fd = os.open(path, os.O_RDONLY)  # the disk refuses writes from now on
    batch = make_batch(3)
    assert spool.append(EncodedBatch([m for _, m in batch], [i for i, _ in batch])) is None
    assert spool.stats.unspooled == 3
    assert len(reported) == 1
    assert isinstance(reported[0], SpoolError)
    assert "write" in str(reported[0])


# -- a spool that cannot be turned against its host ----------------------------------------------


def dead_segment(directory: Path, *, torn: bool = True) -> bytes:
    """The bytes of a segment a dead process left (with a torn tail: recovery would cut it)."""
    spool = Spool(directory)
    spool.write(make_batch(3, "planted"))
    spool.close()
    (path,) = segments(directory)
    data = path.read_bytes() + (b"\xf7IS\x01torn" if torn else b"")
    path.unlink()
    return data


@pytest.mark.parametrize("suffix", [".seg", ".tmp"])
def test_a_planted_symlink_is_never_followed_and_its_target_stays_untouched(
    tmp_path: Path, reported: list[Any], suffix: str
) -> None:
    spool_dir, outside = tmp_path / "spool", tmp_path / "outside"
    outside.mkdir()
    target = outside / "precious"
    target.write_bytes(dead_segment(spool_dir))  # a segment's bytes: read through the link, they would be sent
    before = target.read_bytes()
    os.utime(target, (1_000_000, 1_000_000))
    link = spool_dir / f"1-planted{suffix}"
    link.symlink_to(target)
    os.utime(link, (1, 1), follow_symlinks=False)  # an old temporary: cleanup would remove (and open) it

    spool = Spool(spool_dir)
    spool.report = reported.append
    assert spool.adopt_orphans() == 0
    assert recover_all(spool) == []
    spool.write(make_batch(1))
    assert read_spool(spool_dir) == []

    assert os.stat(target).st_atime == 1_000_000, "the target is never read"
    assert target.read_bytes() == before, "the target is not truncated, appended to or acked"
    assert link.is_symlink()
    if suffix == ".seg":
        assert spool.stats.refused_entries == 1
        (error,) = reported
        assert isinstance(error, SpoolError)
        assert error.path == str(link)
        assert "symbolic link" in str(error)
        spool.adopt_orphans()
        assert len(reported) == 1, "each planted entry is reported once"


@pytest.mark.parametrize("kind", ["fifo", "hard link"])
def test_a_planted_fifo_or_hard_link_is_skipped_and_reported(tmp_path: Path, reported: list[Any], kind: str) -> None:
    spool_dir, outside = tmp_path / "spool", tmp_path / "outside"
    outside.mkdir()
    entry = spool_dir / "1-planted.seg"
    target = outside / "precious"
    target.write_bytes(dead_segment(spool_dir))
    before = target.read_bytes()
    if kind == "fifo":
        os.mkfifo(entry)  # opened for reading, it would block recovery forever
    else:
        os.link(target, entry)
    spool = Spool(spool_dir)
    spool.report = reported.append
    assert recover_all(spool) == []
    assert read_spool(spool_dir) == []
    assert target.read_bytes() == before
    (error,) = reported
    assert error.path == str(entry)
    assert ("not a regular file" if kind == "fifo" else "other hard links") in str(error)


def test_the_spool_directory_is_created_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        Spool(tmp_path / "spool")
    finally:
        os.umask(old)
    assert (tmp_path / "spool").stat().st_mode & 0o7777 == 0o700


@pytest.mark.parametrize(
    ("mode", "refused"), [(0o777, True), (0o770, True), (0o720, True), (0o1777, False), (0o1770, False), (0o755, False)]
)
def test_a_directory_other_users_can_write_is_refused_unless_sticky(tmp_path: Path, mode: int, refused: bool) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    directory.chmod(mode)
    if not refused:
        Spool(directory).write(make_batch(1))
        return
    with pytest.raises(SpoolError, match="writable by other users") as info:
        Spool(directory)
    assert info.value.path == str(directory)
    assert str(directory) in str(info.value)
    with pytest.raises(ConfigurationError, match="writable by other users"):
        instrument.configure("wk", host="http://127.0.0.1:9", spool=directory)


def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        directory = tmp_path / "spool"
        directory.mkdir(mode=0o700)
        os.chown(directory, 65534, -1)  # nobody's
    else:
        directory = Path("/")  # root's
    with pytest.raises(SpoolError, match="belongs to another user") as info:
        Spool(directory)
    assert info.value.path == str(directory)


def test_a_symlink_as_the_spool_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(SpoolError, match="symbolic link"):
        Spool(tmp_path / "link")


def test_without_fcntl_instrument_imports_and_the_spool_refuses_clearly(tmp_path: Path) -> None:
    script = f"""
import sys
sys.modules["fcntl"] = None  # as on a platform without it
import instrument
from instrument import ConfigurationError, Spool, SpoolError
try:
    Spool({str(tmp_path / "spool")!r})
except SpoolError as error:
    print("spool:", error)
try:
    instrument.configure("wk", host="http://127.0.0.1:9", spool={str(tmp_path / "spool")!r})
except ConfigurationError as error:
    print("configure:", error)
instrument.configure("wk", host="http://127.0.0.1:9")  # without a spool, all is well
print("fcntl" in sys.modules and sys.modules["fcntl"] is None)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True).stdout
    lines = out.splitlines()
    assert lines[0].startswith("spool: ")
    assert lines[1].startswith("configure: ")
    assert all("fcntl.flock" in line for line in lines[:2])
    assert lines[2] == "True"


# -- adopting dead owners' segments while this process lives ----------------------------------------


def test_adopt_orphans_takes_a_dead_owners_segment_once_and_recover_yields_it(tmp_path: Path) -> None:
    dead = Spool(tmp_path)
    batch = make_batch(4, "dead")
    dead.write(batch)
    dead.close()
    spool = Spool(tmp_path)
    assert spool.adopt_orphans() == 4
    assert spool.adopt_orphans() == 0, "idempotent: taken over already"
    assert spool.stats.recovered == 4
    assert recover_all(spool) == [batch]
    assert recover_all(spool) == []
    spool.close()
    assert segments(tmp_path) == []


def test_adopt_orphans_leaves_live_owners_alone_and_finds_them_once_they_die(tmp_path: Path) -> None:
    live = Spool(tmp_path)
    live.write(make_batch(2))
    spool = Spool(tmp_path)
    assert spool.adopt_orphans() == 0
    live.close()  # as if its process died: the lock is free
    assert spool.adopt_orphans() == 2


def test_adoption_is_bounded_and_the_rest_comes_with_the_next_batches(tmp_path: Path) -> None:
    for _ in range(5):
        dead = Spool(tmp_path)
        dead.write(make_batch(10))
        dead.close()
    spool = Spool(tmp_path, segment_bytes=100)  # less than one dead segment's messages: one at a time
    assert spool.adopt_orphans() == 10
    assert spool.adopt_orphans() == 0, "the bound: nothing more while ten wait"
    rounds = [sum(len(batch) for batch in recover_all(spool)) for _ in range(6)]
    assert rounds == [10, 10, 10, 10, 10, 0], "one segment per round: never the whole spool in memory"
    assert segments(tmp_path) == []


def spool_then_exit(url: str, spool: str, tag: str, count: int) -> None:
    """A multiprocessing child: record ``count`` events towards a dead endpoint, wait until they are in
    the spool, and end through ``os._exit`` (no delivery at exit: only the spool has them)."""
    client = instrument.configure("wk-spool", host=url, spool=spool, flush_interval=0.05, on_error=lambda e: None)
    with analytics_scope(user_id=tag):
        for n in range(count):
            assert instrument.track(Beat(n=n)).ok
    assert client.spool is not None
    deadline = time.monotonic() + 60
    while client.spool.stats.appended < count and time.monotonic() < deadline:
        time.sleep(0.02)
    os._exit(0 if client.spool.stats.appended == count else 3)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_children_that_exit_leave_their_events_to_the_living_parent(
    endpoint: SegmentEndpoint, spool_dir: Path, method: str
) -> None:
    with socket.socket() as closed:  # a port nobody listens on: the children cannot deliver
        closed.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    parent = instrument.configure("wk-spool", host=endpoint.url, spool=spool_dir, flush_interval=0.05)
    context = multiprocessing.get_context(method)
    counts = {f"{method}-{i}": 100 + 50 * i for i in range(4)}
    children = [
        context.Process(target=spool_then_exit, args=(dead_url, str(spool_dir), tag, n)) for tag, n in counts.items()
    ]
    for process in children:
        process.start()
    for process in children:
        process.join(90)
        assert process.exitcode == 0

    expected = {(tag, n) for tag, count in counts.items() for n in range(count)}
    deadline = time.monotonic() + 60
    while len(set(endpoint.message_ids)) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.05)

    received = {(m["userId"], m["properties"]["n"]) for m in endpoint.messages}
    assert received == expected, "every child's event, delivered by the parent while it lives"
    assert len(set(endpoint.message_ids)) == len(expected)
    assert parent.spool is not None
    assert parent.spool.stats.recovered >= len(expected)
    deadline = time.monotonic() + 10
    while segments(spool_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert segments(spool_dir) == [], "each adopted segment goes once all of it is acknowledged"
