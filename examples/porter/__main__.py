"""Run the example service: ``python -m examples.porter`` (no Segment key needed)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from types import FrameType

import instrument
from examples.porter.service import Applications, Projects, Request, Users, handle
from instrument import ConsoleTransport, analytics_scope

PII = ("email", "name", "company")


def redact(event: str, properties: dict[str, object]) -> dict[str, object]:
    """Personal data goes out only as identify traits, never as track properties."""
    return {k: v for k, v in properties.items() if k not in PII}


def setup(events_file: str) -> None:
    """Segment when a key is set; otherwise print events and append them to ``events_file``."""
    if os.environ.get("SEGMENT_WRITE_KEY") or os.environ.get("SEGMENT_CLIENT_KEY"):
        instrument.configure(redact=redact)
        print("sending to Segment")
    else:
        instrument.configure(transport=ConsoleTransport(path=events_file), redact=redact)
        print(f"no Segment key: printing events and writing them to {events_file}")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Deliver what is queued (bounded), then exit like the default handler would.
    lost = instrument.shutdown(timeout=5.0)
    stats = instrument.stats()
    print(f"terminated: recorded={stats.recorded} sent={stats.sent} dropped={stats.dropped_total}", flush=True)
    sys.exit(128 + signum if not lost else 1)


def main(argv: list[str] | None = None) -> int:
    """Simulate a few requests and a webhook, then flush and print the counters."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events-file", default=os.path.join("examples", "out", "events.jsonl"))
    parser.add_argument("--serve", action="store_true", help="keep handling requests until SIGTERM")
    args = parser.parse_args(argv)
    setup(args.events_file)
    signal.signal(signal.SIGTERM, _on_sigterm)

    with analytics_scope(user_id=42):
        Users().login("ada@example.com", github=True)
        project_id = Projects().create("demo")
    request = Request(user_id=42, project_id=project_id)
    for action in ("provision-cluster", "provision-unsupported", "provision-registry", "launch-app", "build-stack"):
        handle(request, action)
    with analytics_scope(project_id=project_id):
        Applications().redeploy_from_webhook(
            cluster_id=3, app_name="web", app_namespace="default", image_uri="registry.local/web:1.2"
        )
    handle(request, "delete-project")
    if args.serve:
        print("serving until SIGTERM", flush=True)
        while True:  # a long-running service: SIGTERM ends it through _on_sigterm
            handle(request, "provision-registry")
            time.sleep(0.05)

    instrument.flush(timeout=5.0)
    stats = instrument.stats()
    print(f"recorded={stats.recorded} sent={stats.sent} dropped={stats.dropped_total}")
    instrument.shutdown(timeout=5.0)
    return 0 if stats.dropped_total == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
