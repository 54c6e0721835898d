"""Enqueue reports under a request's scope: ``python -m examples.celery_worker --count 10 --user 42 --project 7``."""

from __future__ import annotations

import argparse

from instrument import analytics_scope

from .app import generate_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--user", default="42")
    parser.add_argument("--project", type=int, default=7)
    args = parser.parse_args()
    with analytics_scope(user_id=args.user, project_id=args.project):  # e.g. bound by your web middleware
        for report_id in range(args.count):
            generate_report.delay(report_id)
    print(f"enqueued {args.count} report(s) for user {args.user}, project {args.project}")


if __name__ == "__main__":
    main()
