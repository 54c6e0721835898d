"""The Celery app: one tracked task, the instrument integration installed on both sides."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from celery import Celery

import instrument
from instrument import EventName, Track, tracks
from instrument.integrations import celery as instrument_celery


class Events(EventName):
    REPORT_GENERATED = "Report Generated"


class ReportGenerated(Track, event=Events.REPORT_GENERATED, scope="project"):
    report_id: int
    pid: int


BROKER_DIR = Path(os.environ.get("EXAMPLE_BROKER_DIR") or Path(tempfile.gettempdir()) / "instrument-celery-example")
for sub in ("queue", "processed", "control"):
    (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)

# Results are kept only when a backend is named (e.g. file:///tmp/results): the tests wait on them.
RESULT_BACKEND = os.environ.get("EXAMPLE_RESULT_BACKEND") or None

app = Celery("reports", broker=os.environ.get("EXAMPLE_BROKER_URL", "filesystem://"), backend=RESULT_BACKEND)
app.conf.update(
    broker_transport_options={
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Its exchange tables too (kombu's default is ./control, in whatever directory the worker runs).
        "control_folder": str(BROKER_DIR / "control"),
    },
    task_ignore_result=RESULT_BACKEND is None,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

# Key from SEGMENT_WRITE_KEY; with none, events are validated and dropped (a warning says so).
instrument.configure(
    host=os.environ.get("SEGMENT_HOST") or None,
    flush_interval=float(os.environ.get("EXAMPLE_FLUSH_INTERVAL", "0.5")),
)
instrument_celery.install()


@app.task(name="reports.generate")  # type: ignore[untyped-decorator]  # celery ships no types
@tracks(ReportGenerated, props=lambda call: {"pid": os.getpid()})
def generate_report(report_id: int) -> int:
    """The business function: no ids passed, they come from the producer's analytics_scope."""
    return report_id * 2
