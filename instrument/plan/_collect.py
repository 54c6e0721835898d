"""``instrument collect``: a local Segment-compatible collector for development and CI.

It accepts what Segment's tracking API accepts (``POST /v1/batch``, ``/v1/track``, ``/v1/identify`` and the
other single-message paths, analytics.js's ``/v1/t``, ``/v1/i``, ... with ``text/plain`` bodies and CORS;
Basic auth or ``writeKey``; gzip), refuses what Segment refuses (a message over 32 KB, a batch over 500 KB,
NaN, lone surrogates) with a 4xx and a reason, and stores every event in SQLite *before* it answers, so a
test can query right after its client's flush returns. With a plan, each event is checked against it.
Parsing and the HTTP side are the testing kit's endpoint's (``instrument.testing._ingest``): one ingest path.

The query API (modelled on Snowplow Micro): ``GET /micro/all`` (counts); ``GET /micro/good`` and
``/micro/bad`` (newest first, filtered by ``event``, ``type``, ``user``, at most ``limit``), and the same
as ``POST`` with Micro's JSON filter (``event_type`` is the message type, ``schema`` the event name, and
``limit``; ``event``, ``type``, ``user`` too); ``GET`` or ``POST /micro/reset``;
``GET /micro/wait?count=N&timeout=S`` (a long poll: 200 once N events are stored, 408 when the timeout
passes first); ``/micro/events?after=ID&limit=N`` (oldest first: a reader catches up without gaps) and
``/micro/plan`` for the page at ``/``. Each event is ``{id, receivedAt, type, event, userId, good,
violations, payload}`` plus Micro's ``eventType`` (the type) and, for bad ones, ``errors`` (one line per
violation): Micro's ``event`` is its enriched event, here it is the event name and ``payload`` the message.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Mapping
from importlib import resources
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

from instrument.plan._export import segment_document
from instrument.plan._model import Plan
from instrument.plan._validate import Checker
from instrument.testing._ingest import (
    PATHS,
    REQUEST_TIMEOUT,
    IngestHandler,
    IngestServer,
    Refused,
    decode,
    inflate,
    parse,
)

_MAX_WAIT_SECONDS = 300.0
_MAX_LIMIT = 100_000
_MAX_ID = 2**63 - 1
_BUSY_SECONDS = 2.0  # how long a write waits for a lock held by another process before it is refused

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


class StoreError(Exception):
    """The store could not take a batch; the transaction was rolled back and nothing of it is stored."""


class Store:
    """The events, in SQLite (a file, or ``:memory:``), and a condition to wait on for new ones."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=_BUSY_SECONDS)
        self._db.execute("PRAGMA journal_mode=WAL" if path != ":memory:" else "PRAGMA journal_mode=MEMORY")
        self._db.execute(_SCHEMA)
        self._changed = threading.Condition()

    def add(self, rows: list[tuple[dict[str, Any], list[dict[str, str]]]]) -> None:
        """Store messages with their violations in one transaction, then wake the waiters.

        Raises StoreError (after a rollback: all of the batch or nothing) when SQLite refuses it."""
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
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(
                        "INSERT INTO events (received_at, type, event, user_id, good, violations, payload) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        values,
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, ValueError) as error:  # ValueError: text SQLite cannot encode
                raise StoreError(f"the store refused the batch: {type(error).__name__}: {error}") from None
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
        oldest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Stored events after id ``after``, newest first (or oldest first, for catching up), at most
        ``limit``, filtered by outcome, event name, message type and user."""
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
            f"WHERE {' AND '.join(where)} ORDER BY id {'ASC' if oldest_first else 'DESC'} LIMIT ?"
        )
        with self._changed:
            rows = self._db.execute(sql, [*args, limit]).fetchall()
        return [_event_of(row) for row in rows]

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


def _event_of(row: tuple[Any, ...]) -> dict[str, Any]:
    violations = json.loads(row[6])
    event = {
        "id": row[0],
        "receivedAt": row[1],
        "type": row[2],
        "eventType": row[2],
        "event": row[3],
        "userId": row[4],
        "good": bool(row[5]),
        "violations": violations,
        "payload": json.loads(row[7]),
    }
    if violations:
        event["errors"] = [f"{v['type']} at {v['field'] or '/'}: {v['reason']}" for v in violations]
    return event


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Refused(400, f"{name}: expected an integer") from None
    if not low <= value <= high:
        raise Refused(400, f"{name}: expected an integer in {low}..{high}")
    return value


def _seconds(query: Mapping[str, str], name: str, default: float) -> float:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise Refused(400, f"{name}: expected a number of seconds") from None
    if not (math.isfinite(value) and 0 <= value <= _MAX_WAIT_SECONDS):
        raise Refused(400, f"{name}: expected a finite number of seconds in 0..{_MAX_WAIT_SECONDS:g}")
    return value


# Micro's POST filter keys, and ours, mapped to the store's filters.
_FILTER_KEYS = {"event_type": "type", "schema": "event", "type": "type", "event": "event", "user": "user"}


def _filters(query: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(query) - set(_FILTER_KEYS) - {"limit"})
    if unknown:
        raise Refused(400, f"unsupported filter {unknown[0]!r} (event_type, schema, event, type, user, limit)")
    found: dict[str, Any] = {"event": None, "type": None, "user": None}
    for key, column in _FILTER_KEYS.items():
        value = query.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise Refused(400, f"filter {key!r}: expected a string")
        found[column] = value
    limit = query.get("limit")
    found["limit"] = _int({"limit": str(limit)} if limit is not None else {}, "limit", 1000, 1, _MAX_LIMIT)
    return found


class _Server(IngestServer):
    store: Store
    checker: Checker | None
    write_key: str | None
    page: bytes


class _Handler(IngestHandler):
    server: _Server
    server_version = "instrument-collect/1"

    def post(self, path: str) -> None:
        raw = self.read_body()
        if path == "/micro/reset":
            self.server.store.reset()
            self.answer_json(200, self.server.store.counts())
            return
        if path in ("/micro/good", "/micro/bad"):
            query = decode(inflate(raw, self.headers.get("Content-Encoding", ""))) if raw.strip() else {}
            if not isinstance(query, dict):
                raise Refused(400, "the filter must be a JSON object")
            self.answer_json(200, self.server.store.events(good=path == "/micro/good", **_filters(query)))
            return
        if path not in PATHS:
            raise Refused(404, f"no such endpoint {path!r}", "not_found")
        ingested = parse(path, dict(self.headers.items()), raw)
        if ingested.write_key is None:
            raise Refused(401, "missing write key (Basic auth user, or writeKey in the body)", "unauthorized")
        if self.server.write_key is not None and ingested.write_key != self.server.write_key:
            raise Refused(401, "unknown write key", "unauthorized")
        checker = self.server.checker
        rows = [(m, [v.as_dict() for v in checker.check(m)] if checker else []) for m in ingested.messages]
        try:
            self.server.store.add(rows)  # stored before the answer: a flush() that returned means it is queryable
        except StoreError as error:
            raise Refused(503, str(error), "store_unavailable") from None
        self.answer_json(200, {"success": True})

    def get(self, path: str, query_string: str) -> None:
        query = {k: v[-1] for k, v in parse_qs(query_string).items()}
        store = self.server.store
        if path == "/":
            self.answer(200, self.server.page, "text/html; charset=utf-8")
        elif path == "/micro/all":
            self.answer_json(200, store.counts())
        elif path == "/micro/reset":
            store.reset()
            self.answer_json(200, store.counts())
        elif path in ("/micro/good", "/micro/bad"):
            self.answer_json(200, store.events(good=path == "/micro/good", **_filters(query)))
        elif path == "/micro/events":
            after = _int(query, "after", 0, 0, _MAX_ID)
            filters = _filters({k: v for k, v in query.items() if k != "after"})
            self.answer_json(200, store.events(after=after, oldest_first=True, **filters))
        elif path == "/micro/plan":
            plan = self.server.checker.plan if self.server.checker else None
            self.answer_json(200, segment_document(plan) if plan else {"rules": []})
        elif path == "/micro/wait":
            count = _int(query, "count", 1, 0, _MAX_ID)
            timeout = _seconds(query, "timeout", 10.0)
            reached = store.wait(count, timeout)
            self.answer_json(200 if reached else 408, {"reached": reached, **store.counts()})
        else:
            raise Refused(404, f"no such endpoint {path!r}", "not_found")


def page_html() -> bytes:
    """The live page: one static HTML file with its script, shipped in the package."""
    return resources.files("instrument.plan").joinpath("_page.html").read_bytes()


class Collector:
    """The collector server: ``with Collector(plan=...) as c: ... c.url``; or ``serve_forever()``.

    Binds ``host`` (127.0.0.1 unless told otherwise) on ``port`` (0 picks a free one). ``db`` is an SQLite
    file or ``:memory:``. With ``write_key``, other keys are refused; without, any non-empty key is taken.
    A connection has ``request_timeout`` seconds to send each request (slow or idle ones are closed).
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
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        checker = Checker(plan) if plan is not None else None  # a bad plan fails before anything is opened
        self.store = Store(db)
        try:
            self._server = _Server((host, port), _Handler, request_timeout=request_timeout)
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
        """Stop serving, end the open connections and close the store."""
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.store.close()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
