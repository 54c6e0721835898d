"""The durable spool: accepted events written to local disk before they are sent, until acknowledged.

Layout: one directory shared by every process that uses it. Each process appends to its own segment
files (``<pid>-<random>.seg``) and holds an exclusive ``fcntl.flock`` on each while it lives; the
kernel drops the lock when the process dies, however it dies (kill -9, OOM kill, SIGTERM, crash). A
new process takes over only segments whose lock is free, so two live processes never touch each
other's files. After ``os.fork()`` the child forgets the parent's segments and opens its own.

A segment is a sequence of framed records::

    magic(4) | length(4) | crc32(4) | kind(1) | seq(8) | payload(length)

``crc32`` covers length, kind, seq and payload. A message record's payload is
``len(messageId)(2) | messageId | message bytes``; the messages of one batch share its ``seq``. An ack
record (empty payload) says batch ``seq`` was acknowledged by the endpoint. A torn tail (the writer
died mid-write), a flipped byte or a foreign file fragment fails the frame or CRC check: the reader
skips to the next magic, reports what it skipped, and delivers the rest.

What it guarantees: the dispatcher's worker appends a batch before handing it to the transport, so
an event ``track()`` accepted can be lost only until the worker has written it: at most one
``flush_interval`` after ``track()`` returned while the worker keeps up (a backlog in the in-memory
queue lengthens it; an endpoint outage does not). Records go into the page cache with one
``os.write`` per batch, which survives the death of the process (kill -9, OOM kill, SIGTERM,
``os._exit``), not a kernel crash or power loss before writeback; ``fsync=True`` survives those too,
at one ``fsync`` per batch on the worker thread (see bench/RESULTS.md). Acks are never fsynced: a
lost ack means the batch is sent again with the same messageIds (at least once), never lost.
"""

from __future__ import annotations

import collections
import errno
import os
import secrets
import stat
import struct
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from instrument._errors import AnalyticsError, SpoolError, SpoolFullError
from instrument.transports._base import EncodedBatch

try:
    import fcntl
except ImportError:  # Windows, some sandboxes: importing instrument works, a spool is refused
    HAVE_FLOCK = False
else:
    HAVE_FLOCK = True

#: One spooled message: its messageId and its encoded JSON bytes.
SpooledMessage = tuple[str, bytes]

MAGIC = b"\xf7IS\x01"  # 0xf7 never occurs in UTF-8 (so never in a message's JSON)
_HEAD = struct.Struct("<4sIIBQ")  # magic, length, crc, kind, seq
_CRC_PART = struct.Struct("<IBQ")  # length, kind, seq: covered by the crc with the payload
_ID_LEN = struct.Struct("<H")
_MESSAGE, _ACK = 1, 2
_MAX_PAYLOAD = 1 << 20  # a message is at most 32 KB; anything larger is a corrupt length
_SUFFIX = ".seg"
_TMP_SUFFIX = ".tmp"
_STALE_TMP_SECONDS = 60.0
_SCAN_INTERVAL = 1.0  # seconds between two measurements of the other processes' segments

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024


def _frame(kind: int, seq: int, payload: bytes) -> bytes:
    length = len(payload)
    crc = zlib.crc32(payload, zlib.crc32(_CRC_PART.pack(length, kind, seq)))
    return _HEAD.pack(MAGIC, length, crc, kind, seq) + payload


def encode_batch(seq: int, batch: Sequence[SpooledMessage]) -> bytes:
    """The bytes of one batch's message records (one per message, sharing ``seq``)."""
    parts = []
    for message_id, data in batch:
        ident = message_id.encode()
        parts.append(_frame(_MESSAGE, seq, _ID_LEN.pack(len(ident)) + ident + data))
    return b"".join(parts)


@dataclass
class _Scan:
    """What reading a segment found."""

    batches: dict[int, list[SpooledMessage]]
    acked: set[int]
    good_end: int  # offset just past the last valid record
    skipped_bytes: int
    skipped_records: int  # corrupt spans (each a run of bytes between two valid records, or a torn tail)


def scan(data: bytes) -> _Scan:
    """Parse a segment's bytes: batches by seq, acked seqs, and what was corrupt (skipped)."""
    batches: dict[int, list[SpooledMessage]] = {}
    acked: set[int] = set()
    pos, end, good_end = 0, len(data), 0
    skipped_bytes = skipped_records = 0
    head = _HEAD.size
    while pos < end:
        bad = True
        if pos + head <= end and data.startswith(MAGIC, pos):
            _, length, crc, kind, seq = _HEAD.unpack_from(data, pos)
            stop = pos + head + length
            if length <= _MAX_PAYLOAD and stop <= end:
                payload = data[pos + head : stop]
                if zlib.crc32(payload, zlib.crc32(_CRC_PART.pack(length, kind, seq))) == crc:
                    if kind == _ACK:
                        acked.add(seq)
                        bad = False
                    elif kind == _MESSAGE and length >= _ID_LEN.size:
                        (id_len,) = _ID_LEN.unpack_from(payload)
                        if _ID_LEN.size + id_len <= length:
                            ident = payload[_ID_LEN.size : _ID_LEN.size + id_len].decode(errors="replace")
                            batches.setdefault(seq, []).append((ident, payload[_ID_LEN.size + id_len :]))
                            bad = False
                    if not bad:
                        pos = good_end = stop
                        continue
        # Not a valid record here: skip to the next magic (a torn tail runs to the end of the file).
        following = data.find(MAGIC, pos + 1)
        following = end if following < 0 else following
        skipped_bytes += following - pos
        skipped_records += 1
        pos = following
    return _Scan(batches, acked, good_end, skipped_bytes, skipped_records)


# Every open in the spool: never through a symbolic link, never blocking on a planted FIFO, never
# inherited by an exec'd child. (Windows has no O_NOFOLLOW, but no flock either: no spool there.)
_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _OPEN_FLAGS


def _open_directory(directory: Path, *, create: bool) -> int:
    """Open the spool directory (creating it 0700) and check that no other user can write into it.

    Every later file operation is relative to this descriptor, so renaming or replacing the path
    afterwards cannot redirect the spool. Raises SpoolError naming the path.
    """
    where = str(directory)
    if not HAVE_FLOCK:
        raise SpoolError(
            f"spool directory {where!r}: the durable spool needs fcntl.flock, which this platform lacks", path=where
        )
    try:
        if create:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if directory.is_symlink():
            raise SpoolError(f"spool directory {where!r} is a symbolic link: give the real path", path=where)
        fd = os.open(directory, _DIR_FLAGS)
    except OSError as error:
        raise SpoolError(f"spool directory {where!r} is not writable: {error.strerror}", path=where) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISDIR(info.st_mode):
            raise SpoolError(f"spool directory {where!r} is not a directory", path=where)
        if info.st_uid != os.geteuid():
            raise SpoolError(
                f"spool directory {where!r} belongs to another user: refused (they could plant files in it)",
                path=where,
            )
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
            raise SpoolError(
                f"spool directory {where!r} is writable by other users (group or world, no sticky bit): refused",
                path=where,
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _list(dir_fd: int) -> list[str]:
    """The directory's entry names, read through a descriptor of its own (threads never share a read offset)."""
    fd = os.open(".", _DIR_FLAGS, dir_fd=dir_fd)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    """The entry itself (a link is not followed), or None when it is gone."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None


def _open_entry(dir_fd: int, name: str, flags: int) -> tuple[int, str]:
    """Open a spool entry safely: ``(fd, "")``, or ``(-1, why)`` when it is not a file this spool may touch.

    Refused: a symbolic link (never followed), anything but a regular file (a FIFO, a device), a file
    of another user, and a file with other hard links (truncating or appending to it would change a
    file outside the spool). Raises OSError when the entry cannot be opened at all (gone meanwhile).
    """
    try:
        fd = os.open(name, flags | _OPEN_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return -1, "is a symbolic link"
        raise
    info = os.fstat(fd)
    why = ""
    if not stat.S_ISREG(info.st_mode):
        why = "is not a regular file"
    elif info.st_uid != os.geteuid():
        why = "belongs to another user"
    elif info.st_nlink != 1:
        why = "has other hard links"
    if why:
        os.close(fd)
        return -1, why
    return fd, ""


class _Segment:
    """One segment file this process holds the lock of (its own, or a dead owner's it took over)."""

    def __init__(self, path: Path, fd: int, size: int, *, own: bool, dir_fd: int) -> None:
        self.path = path
        self.fd = fd
        self.size = size
        self.own = own
        self.dir_fd = dir_fd
        self.outstanding: set[int] = set()
        self.next_seq = 1
        self.current = False  # the one own segment new batches go to

    def close(self, *, unlink: bool) -> None:
        if unlink:
            try:
                os.unlink(self.path.name, dir_fd=self.dir_fd)  # the entry only: a link is never followed
            except OSError:
                pass
        try:
            os.close(self.fd)  # releases the flock (once every copy of the descriptor is closed)
        except OSError:
            pass


@dataclass(frozen=True)
class SpoolHandle:
    """What ``Spool.append`` returns and ``Spool.ack`` takes: one durable batch."""

    segment: _Segment
    seq: int
    count: int


@dataclass
class SpoolStats:
    """Counters of one spool since it was opened (this process).

    ``appended``: messages written; ``acked``: messages acknowledged (removed); ``recovered``: messages
    taken over from dead processes' segments (made deliverable); ``unspooled``: messages sent without
    being kept because the spool was full or the disk refused them; ``corrupt_records``/``corrupt_bytes``:
    corrupt or torn spans skipped while recovering; ``refused_entries``: entries of the directory left
    untouched because they were not safe to open (a symbolic link, a FIFO, another user's file, a file
    with other hard links).
    """

    appended: int = 0
    acked: int = 0
    recovered: int = 0
    unspooled: int = 0
    corrupt_records: int = 0
    corrupt_bytes: int = 0
    refused_entries: int = 0


class Spool:
    """A directory of append-only segment files that keeps accepted events until they are acknowledged.

    The pipeline (``SegmentTransport(..., spool=)``, or ``configure(spool=)``) calls ``append(batch)``
    before a batch's first send attempt and ``ack(handle)`` once the endpoint accepted it (or refused
    it for good). ``adopt_orphans()`` takes over the segments of processes that died (a crash, kill -9,
    a child that exited before delivering) and ``recover()`` yields their unacknowledged batches, with
    their original messageIds, to be sent and acked like new ones; the sender calls them again every
    second, so a parent delivers what its exited children left while it lives.
    ``max_bytes`` bounds the directory (all processes together): a batch that would pass it is not
    kept, but still sent; it is counted (``stats.unspooled``) and reported as a SpoolFullError.
    ``fsync`` makes each append survive power loss too (slower). ``report`` receives every
    SpoolError (set by ``configure`` to the client's ``on_error`` or log). Only for a local filesystem
    (``flock`` is not reliable over NFS).

    The directory cannot be turned against its host: it is created 0700; no symbolic link in it is
    ever followed (every open is ``O_NOFOLLOW``, every entry is checked with ``lstat``/``fstat``), and
    a planted link, FIFO, foreign or hard-linked file is skipped, counted and reported, never opened
    for writing. Raises SpoolError naming the path when the directory cannot be created or written,
    is a symbolic link, belongs to another user, or is writable by others without the sticky bit, and
    on a platform without ``fcntl.flock``.

    What can still be lost with it: an event between ``track()`` returning and its batch's
    ``append`` (at most one ``flush_interval`` while the worker keeps up), and, without ``fsync``,
    what the kernel had not written back when the machine (not the process) died.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        fsync: bool = False,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.fsync = bool(fsync)
        self.segment_bytes = max(1, min(int(segment_bytes), self.max_bytes // 4 or 1))
        self.stats = SpoolStats()
        self.report: Callable[[AnalyticsError], None] = _no_report
        self._dir_fd = _open_directory(self.directory, create=True)
        weakref.finalize(self, _close_quietly, self._dir_fd)
        try:
            probe = f".probe-{os.getpid()}-{secrets.token_hex(4)}"
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600, dir_fd=self._dir_fd))
            os.unlink(probe, dir_fd=self._dir_fd)
        except OSError as error:
            raise SpoolError(
                f"spool directory {str(self.directory)!r} is not writable: {error.strerror}", path=str(self.directory)
            ) from None
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._adopting = threading.Lock()  # one adoption scan at a time (the sender's, a flush's)
        self._segments: list[_Segment] = []
        self._current: _Segment | None = None
        self._others_bytes = 0
        self._others_scanned = -_SCAN_INTERVAL
        self._closed = False
        self._read_cache: tuple[_Segment, dict[int, list[SpooledMessage]]] | None = None  # read()'s last scan
        self._adopted: collections.deque[EncodedBatch] = collections.deque()  # taken over, not yet yielded
        self._adopted_bytes = 0
        self._refused: set[str] = set()  # unsafe entries reported already (each once)

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r}, max_bytes={self.max_bytes}, fsync={self.fsync})"

    # -- writing ----------------------------------------------------------------------------

    def append(self, batch: EncodedBatch) -> SpoolHandle | None:
        """Write ``batch`` (one ``write``) before it is sent; the handle to ack it with, or None if not kept.

        Never raises: a full spool (SpoolFullError) or a disk that refuses the write (SpoolError; no
        torn record is left behind) is counted in ``stats.unspooled`` and reported, and the batch goes
        on without the spool.
        """
        try:
            return self.write(list(zip(batch.ids, batch.messages, strict=True)))
        except SpoolError as error:
            failure = error
        except OSError as error:  # a lock or a directory the system refuses
            failure = SpoolError(f"spool write failed: {error.strerror or error}", path=str(self.directory))
        self.stats.unspooled += len(batch)
        self.report(failure)
        return None

    def write(self, batch: Sequence[SpooledMessage]) -> SpoolHandle:
        """``append`` for a batch of ``(messageId, bytes)``; raises SpoolFullError or SpoolError instead."""
        with self._lock:
            if self._closed:
                raise SpoolError("the spool is closed")
            segment = self._current
            if segment is None:
                segment = self._rotate()
            seq = segment.next_seq
            data = encode_batch(seq, batch)
            if segment.size and segment.size + len(data) > self.segment_bytes:
                segment = self._rotate()
                seq = segment.next_seq
                data = encode_batch(seq, batch)
            if self._used() + len(data) > self.max_bytes:
                raise SpoolFullError(
                    f"spool full ({self.max_bytes} bytes): {len(batch)} message(s) sent without being kept",
                    path=str(self.directory),
                    count=len(batch),
                )
            self._write(segment, data)
            segment.next_seq = seq + 1
            segment.outstanding.add(seq)
            self.stats.appended += len(batch)
            return SpoolHandle(segment, seq, len(batch))

    def ack(self, handle: object) -> None:
        """Record that ``handle``'s batch is finished; its segment goes once all of it is. Never raises."""
        if not isinstance(handle, SpoolHandle):
            return
        with self._lock:
            segment = handle.segment
            if handle.seq not in segment.outstanding or segment not in self._segments:
                return  # acked already, or the segment was released (closed, forked)
            segment.outstanding.discard(handle.seq)
            self.stats.acked += handle.count
            if not segment.outstanding and not segment.current:
                self._release(segment, unlink=True)
                return
            try:
                # Not fsynced even with fsync=True: a lost ack only means a resend with the same messageId.
                self._write(segment, _frame(_ACK, handle.seq, b""), sync=False)
            except SpoolError as error:
                self.report(error)

    def _write(self, segment: _Segment, data: bytes, *, sync: bool | None = None) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(segment.fd, view)
                view = view[written:]
            if self.fsync if sync is None else sync:
                os.fsync(segment.fd)
        except OSError as error:
            try:  # leave no torn record behind (a reader would skip it anyway)
                os.ftruncate(segment.fd, segment.size)
            except OSError:
                pass
            raise SpoolError(
                f"spool write to {segment.path.name} failed: {error.strerror or error}",
                path=str(segment.path),
                count=0,
            ) from None
        segment.size += len(data)

    def _rotate(self) -> _Segment:
        """Open a new own segment (locked before it gets its final name) and make it the current one."""
        old = self._current
        for _ in range(10):
            name = f"{os.getpid()}-{time.time_ns():x}-{secrets.token_hex(4)}"
            tmp = name + _TMP_SUFFIX
            try:
                # O_EXCL never opens an existing entry, a planted link included.
                fd = os.open(
                    tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | _OPEN_FLAGS, 0o600, dir_fd=self._dir_fd
                )
            except OSError as error:
                raise SpoolError(
                    f"cannot create a spool segment: {error.strerror}", path=str(self.directory / tmp), count=0
                ) from None
            fcntl.flock(fd, fcntl.LOCK_EX)  # a fresh file: nobody else can hold it
            try:
                # Only now can recovery see it, and it is locked already (a planted entry of that name is replaced).
                os.rename(tmp, name + _SUFFIX, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            except FileNotFoundError:  # a recovery removed it as a stale temporary: try another name
                os.close(fd)
                continue
            if self.fsync:
                os.fsync(self._dir_fd)  # the new name itself must survive a power loss too
            segment = _Segment(self.directory / (name + _SUFFIX), fd, 0, own=True, dir_fd=self._dir_fd)
            segment.current = True
            self._segments.append(segment)
            self._current = segment
            if old is not None:
                old.current = False
                if not old.outstanding:
                    self._release(old, unlink=True)
            return segment
        raise SpoolError("cannot create a spool segment", path=str(self.directory), count=0)

    def _release(self, segment: _Segment, *, unlink: bool) -> None:
        if segment in self._segments:
            self._segments.remove(segment)
        if segment is self._current:
            self._current = None
        segment.close(unlink=unlink)

    def _used(self) -> int:
        """Bytes in the spool: ours exactly, the other processes' as of the last scan (at most 1 s old)."""
        now = time.monotonic()
        if now - self._others_scanned >= _SCAN_INTERVAL:
            mine = {segment.path.name for segment in self._segments}
            total = 0
            try:
                names = _list(self._dir_fd)
            except OSError:
                names = []
            for name in names:
                if name.endswith(_SUFFIX) and name not in mine:
                    info = _lstat(self._dir_fd, name)
                    if info is not None and stat.S_ISREG(info.st_mode):  # a link's target is not the spool's
                        total += info.st_size
            self._others_bytes, self._others_scanned = total, now
        return self._others_bytes + sum(segment.size for segment in self._segments)

    # -- recovery ---------------------------------------------------------------------------

    def adopt_orphans(self) -> int:
        """Take over the segments of processes that are gone; how many messages that made deliverable.

        Cheap and idempotent: one directory listing and a non-blocking lock attempt per segment of
        another process (a live owner holds its lock: its segment is left alone); what was taken
        over already is never taken again. The unacknowledged batches wait here until ``recover()``
        yields them. Bounded: once about ``segment_bytes`` wait, the rest is left for a later call.
        Never raises: I/O trouble, corrupt records and unsafe entries are reported (SpoolError).
        """
        with self._adopting:
            adopted = 0
            for name in self._candidates():
                if self._adopted_bytes >= self.segment_bytes:
                    break
                taken = self._take_over(name)
                if taken is None:
                    continue
                segment, unacked = taken
                with self._lock:
                    for seq, batch in unacked:
                        encoded = EncodedBatch([data for _, data in batch], [i for i, _ in batch], recovered=True)
                        encoded.handle = SpoolHandle(segment, seq, len(batch))
                        self._adopted.append(encoded)
                        self._adopted_bytes += encoded.size
                        adopted += len(batch)
                    self.stats.recovered += sum(len(batch) for _, batch in unacked)
            return adopted

    def recover(self) -> Iterator[EncodedBatch]:
        """Adopt dead processes' segments (``adopt_orphans``) and yield every unacknowledged batch taken over.

        One bounded round: what the bound leaves (about ``segment_bytes`` of messages per round) comes
        with the next call, so a large spool is never read into memory at once.

        Each batch has its ``handle`` set (to ``ack`` once delivered) and ``recovered`` True; a
        segment is deleted when all of its batches are acked (if this process dies first, the next
        one takes it over). Corrupt or torn records are skipped and reported (SpoolError), never
        fatal. Segments of live processes are left alone.
        """
        self.adopt_orphans()
        while True:
            with self._lock:
                if not self._adopted:
                    return
                batch = self._adopted.popleft()
                self._adopted_bytes -= batch.size
                handle = batch.handle
                assert isinstance(handle, SpoolHandle)
                if handle.segment not in self._segments or handle.seq not in handle.segment.outstanding:
                    continue  # closed meanwhile
            yield batch

    def _candidates(self) -> list[str]:
        """Names of other processes' segments (safe regular files); unsafe entries are reported once."""
        with self._lock:
            if self._closed:
                return []
            mine = {segment.path.name for segment in self._segments}
        found = []
        try:
            names = _list(self._dir_fd)
        except OSError as error:
            self.report(SpoolError(f"cannot list the spool: {error.strerror}", path=str(self.directory), count=0))
            return []
        for name in names:
            if name.endswith(_SUFFIX) and name not in mine:
                info = _lstat(self._dir_fd, name)
                if info is not None and stat.S_ISLNK(info.st_mode):
                    self._refuse(name, "is a symbolic link")
                elif info is not None:
                    found.append(name)
            elif name.endswith(_TMP_SUFFIX):
                self._remove_stale_tmp(name)
        return sorted(found)

    def _refuse(self, name: str, why: str) -> None:
        """Report an entry the spool will not touch (once per name): it stays as it is, and so does its target."""
        if name in self._refused:
            return
        self._refused.add(name)
        self.stats.refused_entries += 1
        self.report(
            SpoolError(
                f"spool entry {name!r} {why}: skipped, never opened for writing or followed",
                path=str(self.directory / name),
                count=1,
            )
        )

    def _remove_stale_tmp(self, name: str) -> None:
        # A process that died between creating and naming a segment leaves an empty temporary file.
        info = _lstat(self._dir_fd, name)
        if info is None or time.time() - info.st_mtime < _STALE_TMP_SECONDS:
            return
        try:
            fd, why = _open_entry(self._dir_fd, name, os.O_RDONLY)
        except OSError:
            return
        if fd < 0:
            self._refuse(name, why)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino == os.stat(name, dir_fd=self._dir_fd, follow_symlinks=False).st_ino:
                os.unlink(name, dir_fd=self._dir_fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _take_over(self, name: str) -> tuple[_Segment, list[tuple[int, list[SpooledMessage]]]] | None:
        """Lock a dead process's segment and read it; None if its owner lives, it is gone or unsafe."""
        path = self.directory / name
        try:
            fd, why = _open_entry(self._dir_fd, name, os.O_RDWR | os.O_APPEND)
        except OSError:
            return None  # taken and finished by another process meanwhile
        if fd < 0:
            self._refuse(name, why)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                self.report(SpoolError(f"cannot lock {name}: {error.strerror}", path=str(path), count=0))
            return None
        try:
            if os.fstat(fd).st_ino != os.stat(name, dir_fd=self._dir_fd, follow_symlinks=False).st_ino:
                raise FileNotFoundError(name)  # finished and removed by another process before our lock
            with open(fd, "rb", closefd=False) as file:
                data = file.read()
        except OSError:
            os.close(fd)
            return None
        result = scan(data)
        if result.skipped_records:
            self.stats.corrupt_records += result.skipped_records
            self.stats.corrupt_bytes += result.skipped_bytes
            self.report(
                SpoolError(
                    f"spool segment {name}: skipped {result.skipped_records} corrupt or torn record span(s) "
                    f"({result.skipped_bytes} bytes); the rest is delivered",
                    path=str(path),
                    count=result.skipped_records,
                )
            )
            if result.good_end < len(data):
                try:  # cut a torn tail, so our ack records follow a valid record
                    os.ftruncate(fd, result.good_end)
                    data = data[: result.good_end]
                except OSError:
                    pass
        segment = _Segment(path, fd, len(data), own=False, dir_fd=self._dir_fd)
        unacked = [(seq, result.batches[seq]) for seq in sorted(result.batches) if seq not in result.acked]
        # Every unacked batch is outstanding from now on: the segment goes only when all are acked.
        segment.outstanding.update(seq for seq, _ in unacked)
        with self._lock:
            if self._closed:
                segment.close(unlink=False)
                return None
            if not unacked:
                segment.close(unlink=True)
                return None
            self._segments.append(segment)
        return segment, unacked

    def read(self, handle: object) -> EncodedBatch | None:
        """The batch of ``handle`` read back from its segment (one spilled there instead of kept in
        memory); None if it is acked or released. Never raises: a read error is reported, None."""
        if not isinstance(handle, SpoolHandle):
            return None
        segment = handle.segment
        with self._lock:
            if segment not in self._segments or handle.seq not in segment.outstanding:
                return None
            cached = self._read_cache
            if cached is None or cached[0] is not segment or handle.seq not in cached[1]:
                try:  # the whole segment at once: a reader behind the writer finds the next batches here
                    data = os.pread(segment.fd, segment.size, 0)
                except OSError as error:
                    self.report(SpoolError(f"spool read failed: {error.strerror}", path=str(segment.path)))
                    return None
                cached = self._read_cache = (segment, scan(data).batches)
            messages = cached[1].get(handle.seq)
        if not messages:
            return None
        batch = EncodedBatch([data for _, data in messages], [ident for ident, _ in messages])
        batch.handle = handle
        return batch

    # -- lifecycle --------------------------------------------------------------------------

    def pending(self) -> int:
        """How many messages this process holds in the spool, not yet acknowledged."""
        with self._lock:
            return sum(len(segment.outstanding) for segment in self._segments)

    def close(self) -> None:
        """Release every segment: fully acked ones are deleted, the rest stay for the next process."""
        with self._lock:
            self._closed = True
            self._adopted.clear()
            self._adopted_bytes = 0
            for segment in list(self._segments):
                self._release(segment, unlink=not segment.outstanding)

    def after_fork(self) -> None:
        """In a forked child: let go of the parent's segments (without touching them); start afresh."""
        for segment in self._segments:
            try:
                os.close(segment.fd)  # the parent's copy keeps its lock
            except OSError:
                pass
        self.stats = SpoolStats()
        self._reset()


def _no_report(error: AnalyticsError) -> None:
    pass


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def read_spool(directory: str | os.PathLike[str]) -> list[SpooledMessage]:
    """The unacknowledged messages in the segments of ``directory`` no live process holds (read-only).

    For inspection and tests: nothing is taken over or removed, and unsafe entries (links, FIFOs,
    other users' files) are skipped. Each segment is held with a shared lock while it is read, so a
    process starting at that moment leaves it for the next one. A missing directory holds nothing.
    Raises SpoolError for a directory a Spool would refuse.
    """
    if not os.path.lexists(directory):
        return []
    dir_fd = _open_directory(Path(directory), create=False)
    found: list[SpooledMessage] = []
    try:
        for name in sorted(name for name in _list(dir_fd) if name.endswith(_SUFFIX)):
            try:
                fd, _ = _open_entry(dir_fd, name, os.O_RDONLY)
            except OSError:
                continue
            if fd < 0:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # a live owner
            try:
                with open(fd, "rb") as file:
                    result = scan(file.read())
            except OSError:
                continue
            for seq in sorted(result.batches):
                if seq not in result.acked:
                    found.extend(result.batches[seq])
    finally:
        os.close(dir_fd)
    return found
