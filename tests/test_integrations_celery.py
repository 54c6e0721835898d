"""Celery: eager mode, a real embedded worker (in-memory broker), and the example's prefork worker in a
subprocess recycling its children (``--max-tasks-per-child``) against a loopback Segment endpoint.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from celery import Celery, signals
from celery.contrib.testing.worker import start_worker

import instrument
from instrument import EventName, PropagationError, Track, analytics_scope, current_scope
from instrument.integrations import celery as instrument_celery
from instrument.testing import CapturedEvents, SegmentEndpoint

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parent.parent


class Events(EventName):
    TASK_RAN = "Task Ran"


class TaskRan(Track, event=Events.TASK_RAN, scope="project"):
    n: int


seen_scopes: list[dict[str, object]] = []


app = Celery("tests", broker="memory://", backend="cache+memory://", set_as_current=False)
app.conf.update(worker_hijack_root_logger=False, broker_transport_options={"polling_interval": 0.05})


@app.task(name="tests.run")
def run(n: int) -> int:
    seen_scopes.append(dict(current_scope()))
    instrument.track(TaskRan(n=n))
    return n


@app.task(name="tests.peek")
def peek() -> dict[str, object]:
    return dict(current_scope())


@contextmanager
def _root_logger_kept() -> Iterator[None]:
    # start_worker sets up Celery's logging: the root logger's level and a handler. Other tests' caplog
    # needs them back.
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


@pytest.fixture(scope="module")
def worker() -> Iterator[None]:
    """One real embedded worker (3 threads, in-memory broker) for the module's tests.

    Stopping one takes about 4 s (its loop drains the broker in 2 s waits), so the tests share it. The
    integration's signal handlers are looked up at each publish and each run, so each test's own
    install() (and a test's disconnect of the publish handler) applies to this worker.
    """
    with (
        _root_logger_kept(),
        start_worker(app, pool="threads", concurrency=3, perform_ping_check=False, shutdown_timeout=10),
    ):
        yield


@pytest.fixture(autouse=True)
def _installed() -> Iterator[None]:
    with _root_logger_kept():
        instrument_celery.install()
        seen_scopes.clear()
        try:
            yield
        finally:
            instrument_celery.uninstall()


def test_eager_tasks_keep_the_caller_s_scope_and_leave_it_unchanged(analytics_events: CapturedEvents) -> None:
    app.conf.task_always_eager = True
    try:
        with analytics_scope(user_id="eager", project_id=3):
            assert run.delay(1).get() == 1
            assert run.apply(args=(2,)).get() == 2
            assert current_scope() == {"user_id": "eager", "project_id": 3}
    finally:
        app.conf.task_always_eager = False
    assert current_scope() == {}
    events = analytics_events.assert_tracked(TaskRan, user_id="eager", project_id=3)
    assert [e.properties["n"] for e in events] == [1, 2]


@pytest.mark.usefixtures("worker")
def test_a_real_worker_runs_every_task_under_its_producer_s_scope(analytics_events: CapturedEvents) -> None:
    results = []
    for n in range(40):
        with analytics_scope(user_id=f"user-{n % 2}", project_id=n % 2):
            results.append(run.delay(n))
    assert sorted(r.get(timeout=30, interval=0.02) for r in results) == list(range(40))
    # A task published with nothing bound runs with nothing bound, on the same worker threads.
    assert peek.delay().get(timeout=30, interval=0.02) == {}
    events = analytics_events.of(TaskRan)
    assert len(events) == 40
    for event in events:
        n = event.properties["n"]
        assert (event.user_id, event.properties["project_id"]) == (f"user-{n % 2}", n % 2), event
    assert current_scope() == {}


@pytest.mark.usefixtures("worker")
@pytest.mark.analytics_lenient
def test_a_missing_or_garbage_header_leaves_the_task_unbound_and_succeeding(analytics_events: CapturedEvents) -> None:
    with analytics_scope(user_id="bound-before", project_id=1):
        assert peek.delay().get(timeout=30, interval=0.02) == {"user_id": "bound-before", "project_id": 1}
    # Published by a producer without the integration: no header at all.
    signals.before_task_publish.disconnect(dispatch_uid="instrument.integrations.celery.publish")
    assert peek.delay().get(timeout=30, interval=0.02) == {}
    for garbage in ("not-a-carrier", '1:{"password": "hunter2"}', "1:" + "x" * 10_000, "2:{}"):
        headers = {instrument_celery.HEADER: garbage, "headers": {instrument_celery.HEADER: garbage}}
        assert peek.apply_async(headers=headers).get(timeout=30, interval=0.02) == {}
    assert len(analytics_events.errors) == 4
    assert all(isinstance(e, PropagationError) for e in analytics_events.errors)
    assert not any("hunter2" in str(e) for e in analytics_events.errors)


@pytest.mark.timeout(180)
def test_the_example_s_prefork_worker_recycling_children_loses_nothing(
    tmp_path: Path, endpoint: SegmentEndpoint
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EXAMPLE_BROKER_DIR": str(tmp_path / "broker"),
        "SEGMENT_WRITE_KEY": "wk-celery",
        "SEGMENT_HOST": endpoint.url,
        # Longer than the test: only the flush at each child's exit can deliver the events.
        "EXAMPLE_FLUSH_INTERVAL": "120",
        "EXAMPLE_RESULT_BACKEND": results.as_uri(),
    }
    env.pop("INSTRUMENT_STRICT", None)
    producer = subprocess.run(
        [sys.executable, "-m", "examples.celery_worker", "--count", "30", "--user", "42", "--project", "7"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert producer.returncode == 0, producer.stderr
    command = "-m celery -A examples.celery_worker.app worker -P prefork -c 2 --max-tasks-per-child 4"
    command += " --without-gossip --without-mingle --without-heartbeat -l warning"
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, *command.split()], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        # 30 tasks over children recycled every 4 tasks: at least 7 children end through os._exit. Wait
        # until every task has run (its result is stored); the last children deliver when stopped below.
        deadline = time.monotonic() + 120
        while len(list(results.glob("*"))) < 30 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
        done = len(list(results.glob("*")))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        log.close()
    output = (tmp_path / "worker.log").read_text()
    assert done == 30, f"{done} of 30 tasks ran; worker log:\n{output}"
    assert worker.returncode == 0, output
    assert endpoint.wait_for(30, timeout=20), f"{endpoint.message_count} delivered; worker log:\n{output}"
    messages = endpoint.messages
    # Delivery is at least once (a retried request repeats its messageId): one message per task.
    assert endpoint.unique_message_ids == 30
    by_id = {m["messageId"]: m["properties"]["report_id"] for m in messages}
    assert Counter(by_id.values()) == Counter(range(30))
    assert {(m["userId"], m["properties"]["project_id"]) for m in messages} == {("42", 7)}
    assert len({m["properties"]["pid"] for m in messages}) >= 7  # really many recycled children


@pytest.mark.usefixtures("worker")
def test_a_task_s_event_without_ids_names_the_celery_fix(analytics_events: CapturedEvents) -> None:
    # Published by a producer without the integration: the task has no scope, its event no ids.
    signals.before_task_publish.disconnect(dispatch_uid="instrument.integrations.celery.publish")
    with pytest.raises(Exception, match=r"instrument\.integrations\.celery\.install\(\)"):
        run.delay(1).get(timeout=30, interval=0.02)
