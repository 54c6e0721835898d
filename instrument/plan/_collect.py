"""``instrument collect``: a local Segment-compatible collector for development and CI.

It accepts what Segment's tracking API accepts (``POST /v1/batch``, ``/v1/track``, ``/v1/identify`` and the
other single-message paths; Basic auth or ``writeKey``; gzip), refuses what Segment refuses (a message over
32 KB, a batch over 500 KB) with 400 and a reason, and stores every event in SQLite *before* it answers,
so a test can query right after its client's flush returns. With a plan, each event is checked against it.

The query API (modelled on Snowplow Micro): ``GET /micro/all`` (counts), ``/micro/good`` and ``/micro/bad``
(filtered by ``event``, ``type``, ``user``), ``POST /micro/reset``, ``GET /micro/wait?count=N&timeout=S``
(a long poll: 200 once N events are stored, 408 when the timeout passes first), ``/micro/events?after=ID``
and ``/micro/plan`` for the page at ``/``.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import sqlite3
import threading
import time
import zlib
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from instrument import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES
from instrument.plan._export import segment_document
from instrument.plan._model import Plan
from instrument.plan._validate import Checker

_SINGLE_PATHS = {
    "/v1/track": "track",
    "/v1/identify": "identify",
    "/v1/page": "page",
    "/v1/screen": "screen",
    "/v1/group": "group",
    "/v1/alias": "alias",
}
# Guards the collector's memory before a body is read; Segment's own limits are checked after decoding.
_MAX_REQUEST_BYTES = 8 * MAX_BATCH_BYTES
_MAX_WAIT_SECONDS = 300.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    type TEXT,
    event TEXT,
    user_id TEXT,
    good INTEGER NOT NULL,
    violations TEXT NOT NULL,
    payload TEXT NOT NULL
)
"""


class Refused(Exception):
    """A request the collector answers with a 4xx: the status and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Store:
    """The events, in SQLite (a file, or ``:memory:``), and a condition to wait on for new ones."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL" if path != ":memory:" else "PRAGMA journal_mode=MEMORY")
        self._db.execute(_SCHEMA)
        self._changed = threading.Condition()

    def add(self, rows: list[tuple[dict[str, Any], list[dict[str, str]]]]) -> None:
        """Store messages with their violations in one transaction, then wake the waiters."""
        now = time.time()
        values = [
            (
                now,
                _text(m.get("type")),
                _text(m.get("event")),
                _text(m.get("userId", m.get("anonymousId"))),
                0 if violations else 1,
                json.dumps(violations),
                json.dumps(m, sort_keys=True),
            )
            for m, violations in rows
        ]
        with self._changed:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO events (received_at, type, event, user_id, good, violations, payload) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            self._db.execute("COMMIT")
            self._changed.notify_all()

    def counts(self) -> dict[str, int]:
        with self._changed:
            total, good = self._db.execute("SELECT COUNT(*), COALESCE(SUM(good), 0) FROM events").fetchone()
        return {"total": total, "good": good, "bad": total - good}

    def reset(self) -> None:
        with self._changed:
            self._db.execute("DELETE FROM events")
            self._changed.notify_all()

    def events(
        self,
        *,
        good: bool | None = None,
        event: str | None = None,
        type: str | None = None,
        user: str | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Stored events, newest first, filtered by outcome, event name, message type and user."""
        where: list[str] = ["id > ?"]
        args: list[object] = [after]
        for column, value in (("good", None if good is None else int(good)), ("event", event), ("type", type)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if user is not None:
            where.append("user_id = ?")
            args.append(user)
        sql = (
            "SELECT id, received_at, type, event, user_id, good, violations, payload FROM events "
            f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
        )
        with self._changed:
            rows = self._db.execute(sql, [*args, limit]).fetchall()
        return [
            {
                "id": row[0],
                "receivedAt": row[1],
                "type": row[2],
                "event": row[3],
                "userId": row[4],
                "good": bool(row[5]),
                "violations": json.loads(row[6]),
                "payload": json.loads(row[7]),
            }
            for row in rows
        ]

    def wait(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` events are stored or ``timeout`` seconds pass; True if reached."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.counts()["total"] < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def close(self) -> None:
        with self._changed:
            self._db.close()


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _write_key(headers: Mapping[str, str], body: Mapping[str, Any]) -> str | None:
    auth = headers.get("Authorization", "")
    if auth.startswith("Basic "):
        try:
            user = base64.b64decode(auth[6:], validate=True).decode("utf-8").split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            raise Refused(400, "Authorization: malformed Basic credentials") from None
        if user:
            return user
    key = body.get("writeKey")
    return key if isinstance(key, str) and key else None


def parse_request(path: str, headers: Mapping[str, str], raw: bytes, write_key: str | None) -> list[dict[str, Any]]:
    """The messages of one tracking-API request, or Refused with Segment's reasons."""
    content_type = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise Refused(415, f"Content-Type must be application/json, got {content_type or 'none'!r}")
    encoding = headers.get("Content-Encoding", "").strip().lower()
    if encoding == "gzip":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            raise Refused(400, "Content-Encoding gzip: the body is not valid gzip") from None
    elif encoding not in ("", "identity"):
        raise Refused(415, f"Content-Encoding {encoding!r} is not supported (gzip or none)")
    if len(raw) > MAX_BATCH_BYTES:
        raise Refused(400, f"batch is {len(raw)} bytes, over the {MAX_BATCH_BYTES}-byte limit")
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise Refused(400, f"malformed JSON: {error}") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    key = _write_key(headers, body)
    if key is None:
        raise Refused(401, "missing write key (Basic auth user, or writeKey in the body)")
    if write_key is not None and key != write_key:
        raise Refused(401, "unknown write key")
    if path == "/v1/batch":
        batch = body.get("batch")
        if not isinstance(batch, list):
            raise Refused(400, "batch: expected a list of messages")
    else:
        batch = [{"type": _SINGLE_PATHS[path], **body}]
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(batch):
        if not isinstance(message, dict):
            raise Refused(400, f"batch[{index}]: a message must be a JSON object")
        message.pop("writeKey", None)
        size = len(json.dumps(message).encode())
        if size > MAX_MESSAGE_BYTES:
            raise Refused(400, f"batch[{index}]: message is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")
        messages.append(message)
    return messages


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the collector is quiet; the page shows events
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode())

    def _refuse(self, status: int, reason: str) -> None:
        self._json(status, {"success": False, "message": reason})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_REQUEST_BYTES:
            self.close_connection = True
            self._refuse(413 if length > 0 else 411, "a Content-Length up to the batch limit is required")
            return
        raw = self.rfile.read(length)
        if url.path == "/micro/reset":
            self.server.store.reset()
            self._json(200, self.server.store.counts())
            return
        if url.path != "/v1/batch" and url.path not in _SINGLE_PATHS:
            self._refuse(404, f"no such endpoint {url.path!r}")
            return
        try:
            messages = parse_request(url.path, dict(self.headers.items()), raw, self.server.write_key)
        except Refused as refused:
            self._refuse(refused.status, refused.reason)
            return
        checker = self.server.checker
        rows = [(m, [v.as_dict() for v in checker.check(m)] if checker else []) for m in messages]
        self.server.store.add(rows)  # stored before the answer: a flush() that returned means it is queryable
        self._json(200, {"success": True})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        store = self.server.store
        try:
            if url.path == "/":
                self._send(200, self.server.page, "text/html; charset=utf-8")
            elif url.path == "/micro/all":
                self._json(200, store.counts())
            elif url.path in ("/micro/good", "/micro/bad"):
                good = url.path == "/micro/good"
                self._json(200, store.events(good=good, **_filters(query)))
            elif url.path == "/micro/events":
                self._json(200, store.events(after=int(query.get("after", 0)), **_filters(query)))
            elif url.path == "/micro/plan":
                plan = self.server.checker.plan if self.server.checker else None
                self._json(200, segment_document(plan) if plan else {"rules": []})
            elif url.path == "/micro/wait":
                count = int(query.get("count", 1))
                timeout = min(float(query.get("timeout", 10)), _MAX_WAIT_SECONDS)
                reached = store.wait(count, max(timeout, 0.0))
                self._json(200 if reached else 408, {"reached": reached, **store.counts()})
            else:
                self._refuse(404, f"no such endpoint {url.path!r}")
        except ValueError as error:
            self._refuse(400, f"bad query parameter: {error}")


def _filters(query: Mapping[str, str]) -> dict[str, Any]:
    return {"event": query.get("event"), "type": query.get("type"), "user": query.get("user")}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    store: Store
    checker: Checker | None
    write_key: str | None
    page: bytes


def page_html() -> bytes:
    """The live page: one static HTML file with its script, shipped in the package."""
    return resources.files("instrument.plan").joinpath("_page.html").read_bytes()


class Collector:
    """The collector server: ``with Collector(plan=...) as c: ... c.url``; or ``serve_forever()``.

    Binds ``host`` (127.0.0.1 unless told otherwise) on ``port`` (0 picks a free one). ``db`` is an SQLite
    file or ``:memory:``. With ``write_key``, other keys are refused; without, any non-empty key is taken.
    Raises PlanError for a plan whose schemas are not valid, OSError when the address cannot be bound.
    """

    def __init__(
        self,
        *,
        plan: Plan | None = None,
        db: str = ":memory:",
        host: str = "127.0.0.1",
        port: int = 0,
        write_key: str | None = None,
    ) -> None:
        checker = Checker(plan) if plan is not None else None  # a bad plan fails before anything is opened
        self.store = Store(db)
        try:
            self._server = _Server((host, port), _Handler)
        except OSError:
            self.store.close()
            raise
        self._server.store = self.store
        self._server.checker = checker
        self._server.write_key = write_key
        self._server.page = page_html()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Collector:
        """Serve on a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="instrument-collect", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until ``stop()`` (or KeyboardInterrupt)."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the store."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.store.close()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
